"""The trainer stores what the critic needs to bootstrap correctly through time limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import Env, State

from mjx_som.agents import EnvSpec, make_agent
from mjx_som.config import RunConfig, apply_overrides, default_config
from mjx_som.trainer import Trainer


class Counter(Env):
    """obs = steps taken since reset; never terminates; the time limit ends episodes."""

    episode_length = 3

    @property
    def observation_size(self):
        return 1

    @property
    def action_size(self):
        return 1

    @property
    def backend(self):
        return "none"

    def reset(self, rng):
        obs, zero = jnp.zeros(1), jnp.zeros(())
        return State(None, obs, zero, zero, {}, {"terminated": zero, "truncated": zero, "final_obs": obs})

    def step(self, state, action):
        obs = state.obs + 1.0
        info = {**state.info, "terminated": jnp.zeros(()), "final_obs": obs}
        return state.replace(obs=obs, reward=jnp.ones(()), info=info)


def test_replay_holds_the_true_final_observation_at_truncation():
    config = apply_overrides(
        RunConfig(env="Counter", normalize_obs=False),
        dict(
            num_envs=2,
            total_steps=14,
            log_every=14,
            batch_size=4,
            buffer_size=64,
            learning_starts=10**6,
            som=dict(actor_hidden=(8,), critic_hidden=(8,), num_samples=4, num_candidates=2),
        ),
    )
    agent = make_agent("som", config.som, EnvSpec(1, 1, 1))
    trainer = Trainer(Counter(), agent, config, eval_episodes=2)
    state, _ = trainer.chunk(trainer.init(jax.random.PRNGKey(0)))
    size = int(state.replay.size)
    assert size == 14
    obs = np.asarray(state.replay.data.obs[:size, 0])
    next_obs = np.asarray(state.replay.data.next_obs[:size, 0])
    terminated = np.asarray(state.replay.data.terminated[:size])
    np.testing.assert_array_equal(next_obs, obs + 1)  # never the reset observation 0
    assert set(obs.tolist()) == {0.0, 1.0, 2.0}  # episodes restart after 3 steps
    assert np.all(terminated == 0)  # truncation is not termination: the critic bootstraps


def test_the_trainer_traces_under_the_configured_matmul_precision():
    """TF32 (the float32 default on Ampere/Hopper GPUs) breaks MJX physics and the argmax selection: every
    matmul of the evaluation is lowered at float32 precision HIGHEST unless another is asked for."""
    import envs

    def dot_precisions(precision):
        config = apply_overrides(default_config("InvertedPendulum-v4"), dict(num_envs=2, matmul_precision=precision))
        env = envs.make(config.env)
        agent = make_agent("som", config.som, EnvSpec(env.observation_size, env.action_size, 10))
        trainer = Trainer(env, agent, config, eval_episodes=2)
        abstract = trainer.abstract_state
        text = trainer.evaluate.lower(abstract.agent, abstract.normalizer, jax.random.PRNGKey(0)).as_text()
        return {line.split("precision = [")[1].split("]")[0] for line in text.splitlines() if "dot_general" in line}

    assert dot_precisions("highest") == {"HIGHEST, HIGHEST"}
    assert dot_precisions("default") == {"DEFAULT, DEFAULT"}


def test_the_networks_take_their_own_precision_and_the_physics_keep_theirs():
    """--network-precision default with --matmul-precision highest: every matmul of the agent (acting, sampling,
    the update) is DEFAULT (TF32 on a GPU) and exactly the physics' matmuls stay HIGHEST."""
    import envs

    def precisions(text):
        found = [line.split("precision = [")[1].split("]")[0] for line in text.splitlines() if "dot_general" in line]
        return {p: found.count(p) for p in set(found)}

    config = apply_overrides(default_config("InvertedPendulum-v4"), dict(num_envs=2, network_precision="default"))
    env = envs.make(config.env)
    agent = make_agent("som", config.som, EnvSpec(env.observation_size, env.action_size, 10))
    trainer = Trainer(env, agent, config, eval_episodes=2)
    abstract = trainer.abstract_state
    evaluation = precisions(
        trainer.evaluate.lower(abstract.agent, abstract.normalizer, jax.random.PRNGKey(0)).as_text()
    )
    obs = jnp.zeros((2, env.observation_size))
    with jax.default_matmul_precision("highest"):  # the run's --matmul-precision around the agent's own
        act = precisions(
            jax.jit(trainer.agent.act, static_argnums=3)
            .lower(abstract.agent, obs, jax.random.PRNGKey(0), False)
            .as_text()
        )
    assert set(act) == {"DEFAULT, DEFAULT"}
    # the episode: the policy's matmuls (exactly act's) at DEFAULT, the physics' at HIGHEST
    assert set(evaluation) == {"HIGHEST, HIGHEST", "DEFAULT, DEFAULT"}
    assert evaluation["DEFAULT, DEFAULT"] == act["DEFAULT, DEFAULT"]
    batch = jax.tree.map(lambda x: jnp.zeros((8,) + x.shape[1:], x.dtype), abstract.replay.data)
    update = jax.jit(trainer.agent.update).lower(abstract.agent, batch, jax.random.PRNGKey(0)).as_text()
    assert set(precisions(update)) == {"DEFAULT, DEFAULT"}


def chunk_metrics(multiplier: float, normalize_rewards: bool) -> dict:
    """One training chunk of a tiny SOM on eight_gaussians with rewards x multiplier."""
    from conftest import TINY

    import envs

    env = envs.make("bandit/eight_gaussians", reward_multiplier=multiplier)
    settings = {k: v for k, v in TINY.items() if k not in ("progress", "wandb_mode", "eval_every", "eval_episodes")}
    config = apply_overrides(
        default_config("bandit/eight_gaussians"),
        dict(settings, total_steps=400, normalize_rewards=normalize_rewards),
    )
    agent = make_agent("som", config.som, EnvSpec(env.observation_size, env.action_size, config.total_updates))
    trainer = Trainer(env, agent, config, eval_episodes=2)
    state, metrics = trainer.chunk(trainer.init(jax.random.PRNGKey(0)))
    return {k: float(v) for k, v in metrics.items()} | {"actor": jax.tree.leaves(state.agent.actor_params)[0]}


def test_normalized_rewards_make_training_independent_of_the_reward_units():
    """Rewards x128 and /128 (powers of two, so that scaling is exact in float32 and the same chunk must give the
    same bits: a tolerance would let a Boltzmann draw flip on a rounding difference): with normalize_rewards the
    critic sees the same rewards and trains the same critic and actor; without it the critic's Q follows the units."""
    base = chunk_metrics(1.0, True)
    assert base["train/updates"] > 10 and base["train/q_mean"] != 0.0
    for multiplier in (128.0, 1 / 128):
        scaled = chunk_metrics(multiplier, True)
        assert scaled["train/q_mean"] == pytest.approx(base["train/q_mean"], rel=1e-6)
        assert scaled["train/critic_loss"] == pytest.approx(base["train/critic_loss"], rel=1e-6)
        assert scaled["train/reward_factor"] == pytest.approx(base["train/reward_factor"] / multiplier, rel=1e-6)
        np.testing.assert_allclose(np.asarray(scaled["actor"]), np.asarray(base["actor"]), rtol=1e-6, atol=1e-7)
    raw, raw_big = chunk_metrics(1.0, False), chunk_metrics(128.0, False)
    assert abs(raw_big["train/q_mean"]) > 4 * abs(raw["train/q_mean"])  # Q in the reward's units
    assert raw_big["train/critic_loss"] > 128 * raw["train/critic_loss"]  # far from fitted at x128


def test_warmup_share_draws_that_share_of_each_batch_from_the_warm_up_rows():
    """warmup_share 0.25, learning_starts 5 with 2 envs: the warm-up is 3 vector steps (rows 0-5); a quarter of
    each batch comes from them, the rest from all 40 rows."""
    config = apply_overrides(
        RunConfig(env="Counter", normalize_obs=False, normalize_rewards=False, reward_scale=1.0),
        dict(
            num_envs=2,
            total_steps=40,
            log_every=40,
            batch_size=4000,
            buffer_size=64,
            learning_starts=5,
            warmup_share=0.25,
            som=dict(actor_hidden=(8,), critic_hidden=(8,), num_samples=4, num_candidates=2),
        ),
    )
    trainer = Trainer(Counter(), make_agent("som", config.som, EnvSpec(1, 1, 1)), config, eval_episodes=2)
    assert trainer.warmup_draw == (1000, 6)
    replay = trainer.init(jax.random.PRNGKey(0)).replay
    index = jnp.arange(40, dtype=jnp.float32)
    data = replay.data.replace(reward=replay.data.reward.at[:40].set(index), done=jnp.ones_like(replay.data.done))
    replay = replay.replace(data=data, size=jnp.asarray(40), insert_pos=jnp.asarray(40))
    rewards = np.asarray(trainer.sample_batch(replay, None, 1.0, jax.random.PRNGKey(1)).reward).astype(int)
    np.testing.assert_allclose(np.bincount(rewards[:1000], minlength=40)[:6] / 1000, 1 / 6, atol=0.04)
    assert rewards[:1000].max() == 5
    assert rewards[1000:].max() > 30 and np.mean(rewards[1000:] < 6) < 0.25

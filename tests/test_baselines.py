"""The baselines' own mechanisms, as their authors run them (docs/baselines.md): DIPO's improved actions
and their write-back, the learned temperatures of SDAC, DPMD and DACER, QSM's regression target,
QVPO's entropy weight, and the acting EMA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_learning_baselines import TARGET, one_mode_bandit

from mjx_som.agents import EnvSpec, config_class, make_agent, setting_paths, with_settings
from mjx_som.agents.dipo import DIPOConfig, improve_actions
from mjx_som.agents.dpmd import noise_entropy
from mjx_som.agents.qsm import QSMConfig, action_gradient
from mjx_som.agents.qvpo import QVPOConfig, entropy_weight
from mjx_som.config import RunConfig, apply_overrides
from mjx_som.critic import critic_init, critic_network, min_q
from mjx_som.diffusion import ddpm_schedule, reverse_sample
from mjx_som.replay import Transition
from mjx_som.trainer import Trainer

SMALL = dict(actor_hidden=(16,), critic_hidden=(16,), diffusion_steps=4)


def _batch(key, size=32, obs_size=3, action_size=2, column=False):
    keys = jax.random.split(key, 3)
    action = jax.random.uniform(keys[1], (size, action_size), minval=-1.0, maxval=1.0)
    return Transition(
        obs=jax.random.normal(keys[0], (size, obs_size)),
        action=action,
        reward=jax.random.uniform(keys[2], (size,)),
        next_obs=jax.random.normal(keys[2], (size, obs_size)),
        terminated=jnp.zeros(size),
        done=jnp.zeros(size),
        discount=jnp.full(size, 0.99),
        agent_column=action if column else None,
        row=jnp.arange(size),
    )


def test_dipo_improved_actions_raise_the_true_q_well_above_the_replayed_ones():
    target = jnp.asarray(TARGET)
    true_q = lambda a: 1.0 - jnp.sum(jnp.square(a - target), axis=-1)  # noqa: E731  the bandit's reward
    replayed = jax.random.uniform(jax.random.PRNGKey(0), (512, 2), minval=-1.0, maxval=1.0)
    improved = improve_actions(DIPOConfig(), true_q, replayed)
    assert float(jnp.mean(true_q(replayed))) < -0.1  # about -0.28 under uniform actions
    assert float(jnp.mean(true_q(improved))) > 0.6
    # an optimum outside the box: each step's clip keeps the actions on the box's face nearest it
    beyond = lambda a: -jnp.sum(jnp.square(a - jnp.array([3.0, 0.0])), axis=-1)  # noqa: E731
    on_face = improve_actions(DIPOConfig(), beyond, replayed)
    near = np.asarray(replayed[:, 0]) > 0.3  # 30 Adam steps of 0.03 move them past 1.2 unclipped
    np.testing.assert_array_equal(np.asarray(on_face)[near, 0], 1.0)
    # one step of the old rule, a + 0.03 grad Q, gained about 0.15: 30 clipped Adam steps gain far more
    one_step = jnp.clip(replayed + 0.03 * jax.vmap(jax.grad(true_q))(replayed), -1, 1)
    assert float(jnp.mean(true_q(improved)) - jnp.mean(true_q(one_step))) > 0.5


def test_the_trainer_writes_the_agents_column_back_and_the_next_update_starts_from_it():
    """A one-row replay: every update draws that row; an update that returns its column plus 0.1 must leave
    action + 0.1 * updates in the row's agent_column (each update starts from the last)."""
    config = apply_overrides(
        RunConfig(env="bandit", algo="dipo", normalize_obs=False),
        dict(
            num_envs=1,
            total_steps=1,
            log_every=1,
            batch_size=4,
            buffer_size=1,
            learning_starts=1,
            updates_per_step=3,
            dipo=dict(SMALL, num_candidates=1),
        ),
    )
    env = one_mode_bandit()
    dipo = make_agent("dipo", config.dipo, EnvSpec(env.observation_size, env.action_size, 3))

    def update(state, batch, key):
        new_state, metrics, _ = dipo.update(state, batch, key)
        return new_state, metrics, batch.agent_column + 0.1

    agent = dipo._replace(update=update)
    trainer = Trainer(env, agent, config, eval_episodes=1)
    state, _ = trainer.chunk(trainer.init(jax.random.PRNGKey(0)))
    data = state.replay.data
    assert int(state.skipped_updates) == 0
    np.testing.assert_allclose(np.asarray(data.agent_column), np.asarray(data.action) + 0.3, atol=1e-5)


def test_only_dipo_keeps_a_column_of_its_own_in_the_replay():
    config = apply_overrides(RunConfig(env="bandit"), dict(num_envs=1, buffer_size=8))
    env = one_mode_bandit()
    for algo, column in (("dipo", True), ("sdac", False)):
        agent = make_agent(algo, _config(algo), EnvSpec(env.observation_size, env.action_size, 1))
        replay = Trainer(env, agent, config, eval_episodes=1).init(jax.random.PRNGKey(0)).replay
        assert (replay.data.agent_column is not None) == column


def _config(algo, **settings):
    """The algorithm's config with small networks (and 4 diffusion steps where it has them)."""
    config = config_class(algo)()
    paths = setting_paths(config)
    return with_settings(config, {**{k: v for k, v in SMALL.items() if k in paths}, **settings})


def _one_update(algo, state=None, **settings):
    agent = make_agent(algo, _config(algo, **settings), EnvSpec(3, 2, 10))
    state = agent.init(jax.random.PRNGKey(0)) if state is None else state
    batch = _batch(jax.random.PRNGKey(1), column=agent.init_column is not None)
    return agent, state, jax.jit(agent.update)(state, batch, jax.random.PRNGKey(2))[:2]


def test_sdac_temperature_takes_a_step_down_its_authors_objective():
    agent, state, (new_state, metrics) = _one_update("sdac")
    config, q = agent.config, metrics["alpha_objective_q"]
    target = config.temperature.target_entropy_per_dim * 2

    def loss(log_alpha):
        return -log_alpha * (q / jax.nn.softplus(log_alpha) + target)

    old, new = state.extra["log_alpha"], new_state.extra["log_alpha"]
    assert float(jnp.abs(new - old)) == pytest.approx(config.temperature.alpha_lr, rel=1e-3)  # Adam's first step
    assert float(loss(new)) < float(loss(old))


@pytest.mark.parametrize(("target_action", "drawn_by"), [("noisy_raw", "actor_params"), ("greedy", "actor_ema")])
def test_sdacs_critic_target_draws_its_next_action_with_the_authors_weights(target_action, drawn_by):
    """The authors' get_action draws the TD target's next action with the raw weights (plus the noise 0.1
    alpha); the greedy variant with the acting EMA. Moving the other set of weights leaves the target alone."""
    agent, state, (_, metrics) = _one_update("sdac", target_action=target_action, ema=0.5)
    batch = _batch(jax.random.PRNGKey(1))
    shifted = {name: jax.tree.map(lambda x: x + 0.3, getattr(state, name)) for name in ("actor_params", "actor_ema")}
    targets = {
        name: float(
            jax.jit(agent.update)(state.replace(**{name: params}), batch, jax.random.PRNGKey(2))[1]["td_target_mean"]
        )
        for name, params in shifted.items()
    }
    other = "actor_ema" if drawn_by == "actor_params" else "actor_params"
    assert targets[other] == float(metrics["td_target_mean"])
    assert abs(targets[drawn_by] - float(metrics["td_target_mean"])) > 1e-4, targets


def test_dpmd_temperature_moves_the_noise_entropy_towards_its_target():
    agent, state, (new_state, _) = _one_update("dpmd")
    config = agent.config
    target = config.temperature.target_entropy_per_dim * 2
    old, new = state.extra["log_alpha"], new_state.extra["log_alpha"]
    assert float(noise_entropy(config, old, 2)) > target  # lambda = 5: noise std 0.5, entropy above -1.8
    assert abs(float(noise_entropy(config, new, 2)) - target) < abs(float(noise_entropy(config, old, 2)) - target)


@pytest.mark.parametrize(("target_per_dim", "direction"), [(-5.0, -1.0), (5.0, 1.0)])
def test_dacer_temperature_follows_the_entropy_of_the_acting_distribution(target_per_dim, direction):
    """The acting distribution's estimated entropy (about 0.8 per dim for the untrained actor and noise
    0.15 alpha) above the target: alpha falls; below it: alpha rises. The next step is not due before
    alpha_update_every updates."""
    settings = dict(target_entropy_per_dim=target_per_dim, entropy_samples=64)
    agent, state, (new_state, metrics) = _one_update("dacer", **settings)
    step = float(new_state.extra["log_alpha"] - state.extra["log_alpha"])
    assert np.sign(step) == direction, (step, float(metrics["entropy"]))
    assert abs(step) == pytest.approx(agent.config.temperature.alpha_lr, rel=1e-3)
    later, _, _ = jax.jit(agent.update)(new_state, _batch(jax.random.PRNGKey(3)), jax.random.PRNGKey(4))
    assert float(later.extra["log_alpha"]) == float(new_state.extra["log_alpha"])


@pytest.mark.parametrize("algo", ["sdac", "qvpo", "dipo", "mfp"])
def test_generative_actors_act_with_the_ema_of_their_weights(algo):
    """After one update the acting weights are ema * initial + (1 - ema) * trained (0.5 here)."""
    agent, state, (new_state, _) = _one_update(algo, ema=0.5, **({"num_candidates": 4} if algo == "qvpo" else {}))
    expected = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, state.actor_params, new_state.actor_params)
    for got, want in zip(jax.tree.leaves(new_state.actor_ema), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(new_state.actor_ema)[0], jax.tree.leaves(new_state.actor_params)[0])


def test_qsm_regresses_on_the_twin_critics_mean_action_gradient():
    """QSM's target -M_q mean(grad Q1, grad Q2) (its authors average the two critics' gradients): the
    gradient against central differences of (Q1 + Q2) / 2 of a random critic."""
    config = with_settings(QSMConfig(), dict(critic_hidden=(16, 16)))
    params = critic_init(jax.random.PRNGKey(0), 3, 2, config.critic).params
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
    action = jax.random.uniform(jax.random.PRNGKey(2), (8, 2), minval=-0.9, maxval=0.9)
    mean_q = lambda a: jnp.mean(critic_network(config.critic).apply(params, obs, a), axis=0)  # noqa: E731
    h = 1e-3
    numeric = jnp.stack([(mean_q(action + h * e) - mean_q(action - h * e)) / (2 * h) for e in jnp.eye(2)], -1)
    np.testing.assert_allclose(np.asarray(action_gradient(config, params, obs, action)), np.asarray(numeric), atol=2e-3)
    q1_only = jax.vmap(jax.grad(lambda a, o: critic_network(config.critic).apply(params, o[None], a[None])[0, 0]))(
        action, obs
    )
    assert not np.allclose(np.asarray(action_gradient(config, params, obs, action)), np.asarray(q1_only), atol=2e-3)


def _jaxrl5_ddpm_sampler(eps_fn, steps, start, step_noise, beta_min=0.1, beta_max=10.0, clip_sampler=True):
    """The reference: jaxrl5/networks/diffusion.py's ddpm_sampler with clip_sampler=True and its vp_beta_schedule
    (Alescontrela/score_matching_rl at 2e77893), written out in numpy. eps_fn(a [B, A], t = (index + 1) / T [B]);
    step_noise [T, B, A]: z of each step, the first drawn for the noisiest step (unused at the last).
    clip_sampler=False clips only the result."""
    t = np.arange(1, steps + 1)
    alphas = np.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / steps**2)
    betas, alpha_hats = 1 - alphas, np.cumprod(alphas)
    x = np.asarray(start, np.float64)
    for i, time in enumerate(range(steps - 1, -1, -1)):
        eps = np.asarray(eps_fn(jnp.asarray(x, jnp.float32), jnp.full(x.shape[0], (time + 1) / steps)))
        x = (x - (1 - alphas[time]) / np.sqrt(1 - alpha_hats[time]) * eps) / np.sqrt(alphas[time])
        x = x + (time > 0) * np.sqrt(betas[time]) * step_noise[i]
        x = np.clip(x, -1, 1) if clip_sampler else x
    return np.clip(x, -1, 1)


def test_qsms_sampler_is_its_authors_ddpm_sampler():
    """QSM's chain (reverse_sample with clip "sample" on the VP schedule with beta_max 10) against its authors'
    sampler step by step, with a noise prediction that takes samples past the box's faces on the way. The x0-clipped
    posterior (every other baseline's, QSM's port before 2026-12-03) ends elsewhere."""
    steps, key = 5, jax.random.PRNGKey(3)
    start = 1.5 * jax.random.normal(jax.random.PRNGKey(4), (64, 2))
    eps_fn = lambda a, t: 1.2 * a - 0.8 * jnp.sin(3.0 * a) + 0.5 * t[:, None] - 0.3  # noqa: E731
    # reverse_sample's per-step noise: key -> (start key, steps key) -> one key per step, the noisiest first
    step_keys = jax.random.split(jax.random.split(key)[1], steps)
    step_noise = np.stack([np.asarray(jax.random.normal(k, start.shape)) for k in step_keys])
    want = _jaxrl5_ddpm_sampler(eps_fn, steps, start, step_noise)
    schedule = ddpm_schedule(steps, beta_max=QSMConfig().actor.beta_max)
    got = reverse_sample(eps_fn, schedule, key, start.shape, noise=start, clip="sample")
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)  # float32 against float64
    clipped_at_the_end_only = _jaxrl5_ddpm_sampler(eps_fn, steps, start, step_noise, clip_sampler=False)
    assert np.max(np.abs(clipped_at_the_end_only - want)) > 0.1  # the clip after each step mattered
    old = reverse_sample(eps_fn, schedule, key, start.shape, noise=start, clip="x0")
    assert np.max(np.abs(np.asarray(old) - want)) > 0.5


def test_qvpo_entropy_weight_decays_linearly_and_the_update_uses_the_current_one():
    config = QVPOConfig()
    assert [round(float(entropy_weight(config, u, 100)), 6) for u in (0, 50, 100, 200)] == [0.02, 0.011, 0.002, 0.002]
    agent, state, (new_state, metrics) = _one_update("qvpo", train_candidates=8, uniform_actions=2)
    assert float(metrics["entropy_weight"]) == pytest.approx(0.02) and int(new_state.extra["updates"]) == 1
    _, later, _ = jax.jit(agent.update)(new_state, _batch(jax.random.PRNGKey(3)), jax.random.PRNGKey(4))
    assert float(later["entropy_weight"]) == pytest.approx(0.02 + 0.1 * (0.002 - 0.02))  # 1 of 10 updates


def test_evaluation_acts_with_eval_candidates_and_exploration_with_num_candidates():
    """QVPO's authors act with the best of 4 and evaluate with the best of 32 (eval_candidates)."""
    obs = jax.random.normal(jax.random.PRNGKey(5), (256, 3))
    actions = {}
    for eval_candidates in (32, 0):  # 0: evaluate with num_candidates = 4 too
        agent = make_agent("qvpo", _config("qvpo", eval_candidates=eval_candidates), EnvSpec(3, 2, 10))
        state = agent.init(jax.random.PRNGKey(0))
        for explore in (False, True):
            actions[eval_candidates, explore] = agent.act(state, obs, jax.random.PRNGKey(6), explore)
    q = lambda a: float(jnp.mean(min_q(agent.config.critic, state.critic.params, obs, a)))  # noqa: E731
    assert q(actions[32, False]) > q(actions[0, False]) + 1e-4
    np.testing.assert_array_equal(np.asarray(actions[32, True]), np.asarray(actions[0, True]))

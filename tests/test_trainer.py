"""The trainer stores what the critic needs to bootstrap correctly through time limits."""

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State

from mjx_som import api
from mjx_som.agents import EnvSpec, make_agent
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
    config = api.apply_overrides(
        api.RunConfig(env="Counter", normalize_obs=False),
        dict(num_envs=2, total_steps=14, log_every=14, batch_size=4, buffer_size=64, learning_starts=10**6,
             som=dict(actor_hidden=(8,), critic_hidden=(8,), num_samples=4, num_candidates=2)),
    )  # fmt: skip
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

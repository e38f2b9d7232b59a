"""VecEnv: time limit, auto-reset with the true final observation, flags."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.wrappers import VecEnv


@pytest.fixture(scope="module")
def pendulum_rollout():
    """4 InvertedPendulum envs pushed hard to one side: they terminate after a few steps."""
    vec = VecEnv(envs.make("InvertedPendulum-v4"), 4, episode_length=30)
    state = jax.jit(vec.reset)(jax.random.PRNGKey(0))

    def body(state, _):
        nstate = vec.step(state, jnp.ones((4, 1)))
        return nstate, (state.obs, nstate)

    _, (prev_obs, traj) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=60))(state)
    return vec, prev_obs, traj


def test_termination_keeps_final_obs_and_resets(pendulum_rollout):
    vec, prev_obs, traj = pendulum_rollout
    term = np.asarray(traj.info["terminated"]) > 0
    assert term.any(), "the pushed pendulum should fall"
    t, i = np.argwhere(term)[0]
    final_obs = np.asarray(traj.info["final_obs"])[t, i]
    assert abs(final_obs[1]) > 0.2  # the true last observation: pole beyond the limit
    obs = np.asarray(traj.obs)[t, i]
    assert abs(obs[1]) <= 0.01 + 1e-6 and abs(obs[0]) <= 0.01 + 1e-6  # a fresh start
    assert np.asarray(traj.info["truncated"])[t, i] == 0
    assert np.asarray(traj.done)[t, i] == 1
    assert np.asarray(traj.info["steps"])[t, i] == 0
    # off episode ends, final_obs is the observation itself
    not_done = np.asarray(traj.done) == 0
    np.testing.assert_array_equal(np.asarray(traj.info["final_obs"])[not_done], np.asarray(traj.obs)[not_done])


def test_truncation_at_episode_length():
    vec = VecEnv(envs.make("Swimmer-v4"), 2)  # never terminates; Gymnasium's limit: 1000
    state = jax.jit(vec.reset)(jax.random.PRNGKey(1))

    def body(state, _):
        nstate = vec.step(state, jnp.zeros((2, 2)))
        return nstate, (nstate.info["truncated"], nstate.info["terminated"], nstate.info["completed_return"])

    _, (trunc, term, completed) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=1001))(state)
    trunc = np.asarray(trunc)
    assert trunc[:999].sum() == 0 and trunc[999].tolist() == [1.0, 1.0] and trunc[1000].sum() == 0
    assert np.asarray(term).sum() == 0
    assert np.all(np.asarray(completed)[999] != 0) and np.asarray(completed)[:999].sum() == 0


def test_episode_return_accumulates(pendulum_rollout):
    _, _, traj = pendulum_rollout
    done = np.asarray(traj.done)[:, 0] > 0
    t = int(np.argmax(done))
    # InvertedPendulum pays 1 per step, so the completed return is the episode length
    assert np.asarray(traj.info["completed_return"])[t, 0] == t + 1


def test_bandit_is_one_step():
    vec = VecEnv(envs.make("bandit/eight_gaussians"), 3)
    state = vec.reset(jax.random.PRNGKey(0))
    nstate = vec.step(state, jnp.zeros((3, 2)))
    np.testing.assert_array_equal(nstate.info["terminated"], [1, 1, 1])
    np.testing.assert_array_equal(nstate.info["truncated"], [0, 0, 0])

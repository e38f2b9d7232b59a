"""Best-of-N selection, the TD target (bootstrap through truncation only), the replay ring buffer."""

import jax
import jax.numpy as jnp
import numpy as np

from mjx_som.critic import CriticConfig, best_of_n, critic_init, min_q, td_target
from mjx_som.replay import Transition, replay_init, replay_insert, replay_sample

CONFIG = CriticConfig(critic_hidden=(16, 16), gamma=0.9)


def test_best_of_n_picks_the_highest_min_q():
    params = critic_init(jax.random.PRNGKey(0), 3, 2, CONFIG).params
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    candidates = jax.random.uniform(jax.random.PRNGKey(2), (4, 7, 2), minval=-1, maxval=1)
    chosen = best_of_n(CONFIG, params, obs, candidates)
    q = np.asarray(min_q(CONFIG, params, jnp.repeat(obs[:, None], 7, axis=1), candidates))
    expected = np.asarray(candidates)[np.arange(4), q.argmax(axis=1)]
    np.testing.assert_array_equal(np.asarray(chosen), expected)


def test_td_target_bootstraps_through_truncation_not_termination():
    params = critic_init(jax.random.PRNGKey(0), 3, 2, CONFIG).params
    next_obs = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
    next_action = jnp.zeros((2, 2))
    batch = Transition(
        obs=jnp.zeros((2, 3)), action=jnp.zeros((2, 2)), reward=jnp.array([1.0, 1.0]),
        next_obs=next_obs, terminated=jnp.array([1.0, 0.0]),  # row 0 terminated, row 1 truncated
    )  # fmt: skip
    y = np.asarray(td_target(CONFIG, params, batch, lambda obs: (next_action, 0.5)))
    q_next = np.asarray(min_q(CONFIG, params, next_obs, next_action))
    np.testing.assert_allclose(y, [1.0, 1.0 + 0.9 * (q_next[1] + 0.5)], rtol=1e-6)


def test_td_target_of_an_all_terminated_batch_never_samples_the_next_action():
    """A bandit batch (every row terminated) is r exactly: the next-action branch is not run, so
    even a next action of NaN (which 0 * NaN would let through) cannot reach the target."""
    params = critic_init(jax.random.PRNGKey(0), 3, 2, CONFIG).params
    reward = jnp.array([0.3, -1.0, 2.0])
    batch = Transition(jnp.zeros((3, 3)), jnp.zeros((3, 2)), reward, jnp.zeros((3, 3)), jnp.ones(3))

    def nan_action(obs):
        return jnp.full((obs.shape[0], 2), jnp.nan), 0.0

    target = jax.jit(lambda b: td_target(CONFIG, params, b, nan_action))
    np.testing.assert_array_equal(np.asarray(target(batch)), reward)
    one_truncated = batch.replace(terminated=jnp.array([1.0, 1.0, 0.0]))
    assert np.isnan(np.asarray(target(one_truncated))[2])


def _rows(n, start):
    x = jnp.arange(start, start + n, dtype=jnp.float32)
    return Transition(x[:, None], jnp.stack([x, x], 1), x, x[:, None] + 0.5, jnp.zeros(n))


def test_replay_wraps_around():
    state = replay_init(5, 1, 2)
    state = replay_insert(state, _rows(3, 0))
    assert int(state.size) == 3 and int(state.insert_pos) == 3
    state = replay_insert(state, _rows(4, 3))  # rows 3..6 -> positions 3, 4, 0, 1
    assert int(state.size) == 5 and int(state.insert_pos) == 2
    np.testing.assert_array_equal(np.asarray(state.data.reward), [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(np.asarray(state.data.next_obs[:, 0]), [5.5, 6.5, 2.5, 3.5, 4.5])


def test_replay_samples_uniformly_from_filled_rows():
    state = replay_insert(replay_init(100, 1, 2), _rows(10, 0))
    batch = replay_sample(state, jax.random.PRNGKey(0), 50_000)
    counts = np.bincount(np.asarray(batch.reward).astype(int), minlength=100)
    assert counts[10:].sum() == 0
    np.testing.assert_allclose(counts[:10] / 50_000, 0.1, atol=0.01)
    # rows stay aligned across fields
    np.testing.assert_array_equal(np.asarray(batch.obs[:, 0]), np.asarray(batch.reward))

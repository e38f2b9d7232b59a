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
        obs=jnp.zeros((2, 3)),
        action=jnp.zeros((2, 2)),
        reward=jnp.array([1.0, 1.0]),
        next_obs=next_obs,
        terminated=jnp.array([1.0, 0.0]),
        done=jnp.ones(2),  # row 0 terminated, row 1 truncated
    )
    y = np.asarray(td_target(CONFIG, params, batch, lambda obs: (next_action, 0.5)))
    q_next = np.asarray(min_q(CONFIG, params, next_obs, next_action))
    np.testing.assert_allclose(y, [1.0, 1.0 + 0.9 * (q_next[1] + 0.5)], rtol=1e-6)


def test_td_target_of_an_all_terminated_batch_never_samples_the_next_action():
    """A bandit batch (every row terminated) is r exactly: the next-action branch is not run, so
    even a next action of NaN (which 0 * NaN would let through) cannot reach the target."""
    params = critic_init(jax.random.PRNGKey(0), 3, 2, CONFIG).params
    reward = jnp.array([0.3, -1.0, 2.0])
    batch = Transition(jnp.zeros((3, 3)), jnp.zeros((3, 2)), reward, jnp.zeros((3, 3)), jnp.ones(3), jnp.ones(3))

    def nan_action(obs):
        return jnp.full((obs.shape[0], 2), jnp.nan), 0.0

    target = jax.jit(lambda b: td_target(CONFIG, params, b, nan_action))
    np.testing.assert_array_equal(np.asarray(target(batch)), reward)
    one_truncated = batch.replace(terminated=jnp.array([1.0, 1.0, 0.0]))
    assert np.isnan(np.asarray(target(one_truncated))[2])


def test_td_target_masks_a_non_finite_next_value_of_a_terminated_row():
    """Ant terminates on a non-finite state: that row's target is r, whatever its final observation holds
    (0 * NaN would be NaN), while the other rows still bootstrap."""
    params = critic_init(jax.random.PRNGKey(0), 3, 2, CONFIG).params
    next_obs = jnp.array([[jnp.nan, 0.0, 0.0], [0.1, 0.2, 0.3]])
    batch = Transition(
        jnp.zeros((2, 3)), jnp.zeros((2, 2)), jnp.array([2.0, 1.0]), next_obs, jnp.array([1.0, 0.0]), jnp.ones(2)
    )
    y = np.asarray(td_target(CONFIG, params, batch, lambda obs: (jnp.zeros((2, 2)), 0.0)))
    q_next = float(min_q(CONFIG, params, next_obs[1:], jnp.zeros((1, 2)))[0])
    np.testing.assert_allclose(y, [2.0, 1.0 + 0.9 * q_next], rtol=1e-6)
    # an n-step row bootstraps with its own discount gamma^m
    y3 = np.asarray(
        td_target(CONFIG, params, batch.replace(discount=jnp.array([0.729, 0.729])), lambda o: (o[:, :2], 0))
    )
    q_next = float(min_q(CONFIG, params, next_obs[1:], next_obs[1:, :2])[0])
    np.testing.assert_allclose(y3, [2.0, 1.0 + 0.729 * q_next], rtol=1e-6)


def test_n_step_returns_across_termination_truncation_and_the_ring_buffer_wrap():
    """Two envs (stride 2), seven vector steps into a 10-row ring (times 0 and 1 overwritten), 3-step
    returns with gamma = 0.5. Env 0 terminates at time 2 and is truncated at time 4; env 1 runs on."""
    num_envs, gamma, state = 2, 0.5, replay_init(10, 1, 1)
    for time in range(7):
        ids = jnp.array([10.0 * time, 10.0 * time + 1])  # obs = 10 time + env: which transition was drawn
        reward = jnp.array([time + 1.0, 100.0 + time])
        terminated = jnp.array([time == 2, False], jnp.float32)
        done = jnp.array([time in (2, 4), False], jnp.float32)
        state = replay_insert(
            state, Transition(ids[:, None], jnp.zeros((2, 1)), reward, ids[:, None] + 0.5, terminated, done)
        )
    assert int(state.insert_pos) == 4  # wrapped: times 5 and 6 sit in rows 0..3
    batch = replay_sample(state, jax.random.PRNGKey(0), 4000, gamma, n_step=3, stride=num_envs)
    drawn = {}
    for i, key in enumerate(np.asarray(batch.obs[:, 0]).astype(int)):
        drawn[key] = tuple(
            float(np.asarray(x)[i]) for x in (batch.reward, batch.discount, batch.terminated, batch.next_obs[:, 0])
        )
    assert sorted(drawn) == [20, 21, 30, 31, 40, 41, 50, 51, 60, 61]  # times 0 and 1 were overwritten
    expected = {
        20: (3.0, 0.5, 1.0, 20.5),  # terminates at once: no further reward, no bootstrap
        30: (4.0 + 0.5 * 5.0, 0.25, 0.0, 40.5),  # truncated at time 4: bootstraps from time 4's final obs
        40: (5.0, 0.5, 0.0, 40.5),
        50: (6.0 + 0.5 * 7.0, 0.25, 0.0, 60.5),  # the newest row ends the sum
        60: (7.0, 0.5, 0.0, 60.5),
        21: (102.0 + 0.5 * 103.0 + 0.25 * 104.0, 0.125, 0.0, 41.5),
        41: (104.0 + 0.5 * 105.0 + 0.25 * 106.0, 0.125, 0.0, 61.5),
        51: (105.0 + 0.5 * 106.0, 0.25, 0.0, 61.5),
    }
    for key, values in expected.items():
        np.testing.assert_allclose(drawn[key], values, rtol=1e-6, err_msg=f"transition {key}")


def _rows(n, start):
    x = jnp.arange(start, start + n, dtype=jnp.float32)
    return Transition(x[:, None], jnp.stack([x, x], 1), x, x[:, None] + 0.5, jnp.zeros(n), jnp.zeros(n))


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
    batch = replay_sample(state, jax.random.PRNGKey(0), 50_000, gamma=0.9)
    counts = np.bincount(np.asarray(batch.reward).astype(int), minlength=100)
    assert counts[10:].sum() == 0
    np.testing.assert_allclose(counts[:10] / 50_000, 0.1, atol=0.01)
    # rows stay aligned across fields
    np.testing.assert_array_equal(np.asarray(batch.obs[:, 0]), np.asarray(batch.reward))


def test_replay_draws_a_set_share_from_the_oldest_rows():
    """The trainer's warmup_share: the first oldest_draws rows of a batch come from the oldest_rows oldest rows
    (uniformly), the rest from every filled row, after the buffer's start has moved on."""
    state = replay_insert(replay_init(100, 1, 2), _rows(60, 0))
    batch = replay_sample(state, jax.random.PRNGKey(0), 40_000, gamma=0.9, oldest_draws=30_000, oldest_rows=10)
    drawn = np.asarray(batch.reward).astype(int)
    np.testing.assert_allclose(np.bincount(drawn[:30_000], minlength=60)[:10] / 30_000, 0.1, atol=0.01)
    assert drawn[:30_000].max() == 9
    np.testing.assert_allclose(np.bincount(drawn[30_000:], minlength=60) / 10_000, 1 / 60, atol=0.006)
    np.testing.assert_array_equal(np.asarray(batch.obs[:, 0]), drawn)

"""On-device ring-buffer replay: insert writes only the new rows; sampling is uniform.

State is a flax.struct pytree so it lives inside the jitted training scan (where XLA
updates the buffer in place) and in checkpoints.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transition:
    """One batch of transitions; leading axis [N]."""

    obs: jax.Array  # [N, O] raw (unnormalised) observation
    action: jax.Array  # [N, A] in [-1, 1]
    reward: jax.Array  # [N]
    next_obs: jax.Array  # [N, O] the true next observation (before any auto-reset)
    terminated: jax.Array  # [N] 1.0 where the task ended the episode (no bootstrap)
    done: jax.Array  # [N] 1.0 where the episode ended by termination or truncation (an n-step return stops)
    # [N] the factor on the bootstrapped value, gamma^m for an m-step return; set by replay_sample, not stored
    discount: jax.Array | None = None
    # [N, E] a column an agent keeps per row and rewrites as it learns: Agent.init_column gives its first value at
    # insertion, Agent.update returns the batch rows' new values; None for an agent that keeps none
    agent_column: jax.Array | None = None
    # [N] int32 the buffer rows a batch was drawn from (for writing agent_column back); set by replay_sample
    row: jax.Array | None = None


@struct.dataclass
class ReplayState:
    data: Transition  # leading axis [capacity]
    insert_pos: jax.Array  # int32 scalar: next row to write
    size: jax.Array  # int32 scalar: rows filled

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[0]


def replay_init(capacity: int, obs_size: int, action_size: int, column_size: int = 0) -> ReplayState:
    """An empty buffer; column_size E > 0: with an agent_column [capacity, E] (Agent.init_column)."""
    z = lambda *shape: jnp.zeros((capacity, *shape), jnp.float32)  # noqa: E731
    data = Transition(
        z(obs_size),
        z(action_size),
        z(),
        z(obs_size),
        z(),
        z(),
        agent_column=z(column_size) if column_size else None,
    )
    return ReplayState(data=data, insert_pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def replay_write_column(state: ReplayState, rows: jax.Array, values: jax.Array) -> ReplayState:
    """values [N, E] written into the buffer's agent_column at rows [N] (a row drawn twice keeps one of its
    values)."""
    data = state.data.replace(agent_column=state.data.agent_column.at[rows].set(values))
    return state.replace(data=data)


def replay_insert(state: ReplayState, batch: Transition) -> ReplayState:
    """Writes the N rows of batch at insert_pos, wrapping around the end."""
    n = batch.reward.shape[0]
    rows = (state.insert_pos + jnp.arange(n)) % state.capacity
    data = jax.tree.map(lambda buf, x: buf.at[rows].set(x), state.data, batch)
    return ReplayState(
        data=data,
        insert_pos=(state.insert_pos + n) % state.capacity,
        size=jnp.minimum(state.size + n, state.capacity),
    )


def replay_sample(
    state: ReplayState,
    key: jax.Array,
    batch_size: int,
    gamma: float,
    n_step: int = 1,
    stride: int = 1,
    oldest_draws: int = 0,
    oldest_rows: int = 0,
) -> Transition:
    """batch_size n-step transitions whose first steps are drawn uniformly (with replacement) from the filled
    rows; the first oldest_draws of them from the oldest_rows oldest rows only (the trainer's warm-up data).
    The buffer holds whole vector steps, so one environment's next transition is `stride` (num_envs)
    rows later. Each return sums gamma^k r_k along them and stops after n_step steps, at the end of an
    episode (termination or truncation: next_obs is then that step's true final observation) or at the newest
    row; `discount` is gamma^m for the m steps taken and `terminated` is the last step's."""
    capacity = state.capacity
    size = jnp.maximum(state.size, 1)
    key_all, key_oldest = jax.random.split(key) if oldest_draws else (key, None)
    age = jax.random.randint(key_all, (batch_size - oldest_draws,), 0, size)  # 0 = the oldest filled row
    if oldest_draws:
        oldest_age = jax.random.randint(key_oldest, (oldest_draws,), 0, jnp.minimum(size, oldest_rows))
        age = jnp.concatenate([oldest_age, age])
    oldest = state.insert_pos - state.size

    def rows(k):
        return (oldest + age + k * stride) % capacity

    batch = jax.tree.map(lambda buf: buf[rows(0)], state.data)
    reward, next_obs, terminated, done = batch.reward, batch.next_obs, batch.terminated, batch.done
    discount = jnp.full_like(reward, gamma)
    going = done == 0
    for k in range(1, n_step):
        valid = going & (age + k * stride < state.size)
        row = rows(k)
        reward = reward + jnp.where(valid, discount * state.data.reward[row], 0.0)
        next_obs = jnp.where(valid[:, None], state.data.next_obs[row], next_obs)
        terminated = jnp.where(valid, state.data.terminated[row], terminated)
        discount = jnp.where(valid, discount * gamma, discount)
        going = valid & (state.data.done[row] == 0)
    return batch.replace(reward=reward, next_obs=next_obs, terminated=terminated, discount=discount, row=rows(0))

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


@struct.dataclass
class ReplayState:
    data: Transition  # leading axis [capacity]
    insert_pos: jax.Array  # int32 scalar: next row to write
    size: jax.Array  # int32 scalar: rows filled

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[0]


def replay_init(capacity: int, obs_size: int, action_size: int) -> ReplayState:
    z = lambda *shape: jnp.zeros((capacity, *shape), jnp.float32)  # noqa: E731
    data = Transition(z(obs_size), z(action_size), z(), z(obs_size), z())
    return ReplayState(data=data, insert_pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def replay_bytes(capacity: int, obs_size: int, action_size: int) -> int:
    """Bytes of a buffer of `capacity` float32 transitions."""
    return 4 * capacity * (2 * obs_size + action_size + 2)


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


def replay_sample(state: ReplayState, key: jax.Array, batch_size: int) -> Transition:
    """batch_size transitions drawn uniformly (with replacement) from the filled rows."""
    rows = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda buf: buf[rows], state.data)

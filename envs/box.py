"""The action convention shared by every environment: agents act in [-1, 1]^A."""

import jax
import jax.numpy as jnp


def scale_to_box(action: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Clips action to [-1, 1] and maps it linearly onto [low, high] (per coordinate)."""
    action = jnp.clip(action, -1.0, 1.0)
    return low + (action + 1.0) * 0.5 * (high - low)

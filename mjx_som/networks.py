"""Networks shared by every agent: MLPs, sinusoidal time embeddings, twin critics and
the time-conditioned velocity network used by MeanFlow and diffusion actors."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"mish": jax.nn.mish, "relu": jax.nn.relu, "silu": jax.nn.silu}


class MLP(nn.Module):
    """Dense layers with an activation (and optional LayerNorm) between them."""

    hidden: Sequence[int]
    out: int
    activation: str = "mish"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return nn.Dense(self.out)(x)


def sinusoidal_embedding(t: jax.Array, dim: int, max_freq: float = 20.0) -> jax.Array:
    """Embeds times t [...] in [0, 1] as [..., dim] sines and cosines (dim even), with
    angular frequencies log-spaced in [1, max_freq]. MeanFlow differentiates the network
    in t (d/dt u), so the frequencies stay moderate: a 1000-rad/unit embedding (diffusion
    convention) makes d/dt u, and the regression target, ~1000x larger at init."""
    freqs = jnp.exp(jnp.linspace(0.0, jnp.log(max_freq), dim // 2))
    angles = t[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TwinCritic(nn.Module):
    """Two independent Q networks; __call__(obs [..., O], action [..., A]) -> [2, ...]."""

    hidden: Sequence[int]
    activation: str = "mish"
    layer_norm: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        q1 = MLP(self.hidden, 1, self.activation, self.layer_norm)(x)[..., 0]
        q2 = MLP(self.hidden, 1, self.activation, self.layer_norm)(x)[..., 0]
        return jnp.stack([q1, q2])


class VelocityNet(nn.Module):
    """u(a, r, t | s): an action-shaped output from (a, s, emb(t), emb(t - r)).

    obs [..., O], action [..., A], r and t [...] -> [..., A]. A diffusion actor uses it with
    r = t (its emb(t - r) is then constant).
    """

    hidden: Sequence[int]
    action_size: int
    activation: str = "mish"
    time_dim: int = 16

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, r: jax.Array, t: jax.Array) -> jax.Array:
        emb = jnp.concatenate(
            [sinusoidal_embedding(t, self.time_dim), sinusoidal_embedding(t - r, self.time_dim)], axis=-1
        )
        x = jnp.concatenate([action, obs, emb], axis=-1)
        return MLP(self.hidden, self.action_size, self.activation)(x)

"""MeanFlow: the (t, r) sampler, the JVP loss and the one-step sampler (docs/algorithm.md, "Background").

u(a_t, r, t) is the average velocity over [r, t]; one evaluation maps noise to an
action: a_0 = a_1 - u(a_1, r=0, t=1). The MeanFlow identity gives the regression target

    u_tgt = v(a_t, t) - (t - r) d/dt u(a_t, r, t),   d/dt u = v . grad_a u + d_t u,

with the total derivative from ONE forward-mode jax.jvp, tangents (v, 0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

UFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (a [B, A], r [B], t [B]) -> u [B, A]


@dataclass(frozen=True)
class MeanFlowConfig:
    """The (t, r) sampler and the adaptive loss weight."""

    flow_matching_fraction: float = 0.5
    """share of the batch with r = t (plain flow matching)"""
    r_zero_fraction: float = 0.3
    """share of the r < t pairs with r = 0: the interval one-step sampling uses (docs/algorithm.md)"""
    adaptive_p: float = 0.5
    """exponent p of the adaptive loss weight 1 / stop_grad(err + c)^p"""
    adaptive_c: float = 1e-3
    """constant c of the adaptive loss weight"""
    t_min: float = 1e-3
    """times are drawn from [t_min, 1] (the target velocity divides by t or sigma_t)"""

    def validate(self) -> None:
        for name in ("flow_matching_fraction", "r_zero_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.t_min < 1.0:
            raise ValueError(f"t_min must be in (0, 1), got {self.t_min}")
        if self.adaptive_p < 0 or self.adaptive_c <= 0:
            raise ValueError(f"need adaptive_p >= 0 and adaptive_c > 0, got {self.adaptive_p}, {self.adaptive_c}")


def sample_times(key, batch: int, config: MeanFlowConfig) -> tuple[jax.Array, jax.Array]:
    """(r [B], t [B]) with 0 <= r <= t <= 1: t ~ U(t_min, 1), r ~ U(0, t), then r = t for
    flow_matching_fraction of the batch and r = 0 for r_zero_fraction of the rest."""
    key_t, key_r, key_fm, key_zero = jax.random.split(key, 4)
    t = jax.random.uniform(key_t, (batch,), minval=config.t_min, maxval=1.0)
    r = t * jax.random.uniform(key_r, (batch,))
    flow_matching = jax.random.uniform(key_fm, (batch,)) < config.flow_matching_fraction
    r_zero = jax.random.uniform(key_zero, (batch,)) < config.r_zero_fraction
    r = jnp.where(flow_matching, t, jnp.where(r_zero, 0.0, r))
    return r, t


def total_derivative(u_fn: UFn, a_t, r, t, v) -> tuple[jax.Array, jax.Array]:
    """(u [B, A], d/dt u [B, A]) along the flow: d/dt u = v . grad_a u + d_t u, one JVP."""
    return jax.jvp(u_fn, (a_t, r, t), (v, jnp.zeros_like(r), jnp.ones_like(t)))


def meanflow_target(u_fn: UFn, a_t, r, t, v) -> tuple[jax.Array, jax.Array]:
    """(u_pred [B, A], u_tgt [B, A]); u_tgt has its gradient stopped."""
    u_pred, du_dt = total_derivative(u_fn, a_t, r, t, v)
    u_tgt = jax.lax.stop_gradient(v - (t - r)[:, None] * du_dt)
    return u_pred, u_tgt


def meanflow_loss(u_fn: UFn, a_t, r, t, v, config: MeanFlowConfig) -> tuple[jax.Array, jax.Array]:
    """Adaptively weighted MeanFlow loss (scalar) and the mean squared error (for logging)."""
    u_pred, u_tgt = meanflow_target(u_fn, a_t, r, t, v)
    err = jnp.sum(jnp.square(u_pred - u_tgt), axis=-1)
    weight = jax.lax.stop_gradient(1.0 / (err + config.adaptive_c) ** config.adaptive_p)
    return jnp.mean(weight * err), jnp.mean(err)


def one_step_sample(u_fn: UFn, noise: jax.Array) -> jax.Array:
    """a_0 = a_1 - u(a_1, 0, 1) for noise a_1 [B, A] (unclipped)."""
    batch = noise.shape[0]
    return noise - u_fn(noise, jnp.zeros((batch,)), jnp.ones((batch,)))

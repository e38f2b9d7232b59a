"""Discrete-time diffusion (DDPM) pieces shared by the iterative baselines (DACER, QSM, SDAC, DPMD,
QVPO, DIPO): the schedule, forward noising, the reverse sampler, the (weighted) denoising loss and an
on-device entropy estimate.

The schedule is the VP schedule of mjx_som/score.py sampled at T steps: alpha_bar_k = mu(k/T)^2,
so a T-step chain and SOM's continuous path share one noise process. Step k = 1..T; index k - 1
in the arrays. The network predicts the noise eps(a_k, k | s) and is called with time k/T.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from mjx_som.score import vp_mu_sigma

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (a_k [B, A], t = k/T [B]) -> predicted noise [B, A]


@struct.dataclass
class Schedule:
    alpha_bar: jax.Array  # [T] cumulative signal fraction after step k
    alpha: jax.Array  # [T] per-step alpha_k = alpha_bar_k / alpha_bar_{k-1}

    @property
    def steps(self) -> int:
        return self.alpha.shape[0]


def ddpm_schedule(steps: int, beta_min: float = 0.1, beta_max: float = 20.0) -> Schedule:
    t = jnp.arange(1, steps + 1) / steps
    alpha_bar = jnp.square(vp_mu_sigma(t, beta_min, beta_max)[0])
    previous = jnp.concatenate([jnp.ones(1), alpha_bar[:-1]])
    return Schedule(alpha_bar=alpha_bar, alpha=alpha_bar / previous)


def q_sample(schedule: Schedule, k: jax.Array, a0: jax.Array, eps: jax.Array) -> jax.Array:
    """a_k = sqrt(alpha_bar_k) a0 + sqrt(1 - alpha_bar_k) eps for steps k [B] (1..T), a0 [B, A]."""
    ab = schedule.alpha_bar[k - 1][:, None]
    return jnp.sqrt(ab) * a0 + jnp.sqrt(1.0 - ab) * eps


def predict_a0(schedule: Schedule, k: jax.Array, a_k: jax.Array, eps: jax.Array) -> jax.Array:
    """The clean action implied by a noise prediction, clipped to the box. k [B], a_k, eps [B, A]."""
    ab = schedule.alpha_bar[k - 1][:, None]
    return jnp.clip((a_k - jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(ab), -1.0, 1.0)


def reverse_sample(
    eps_fn: EpsFn, schedule: Schedule, key: jax.Array, shape: tuple[int, int], noise=None, clip: str = "x0"
) -> jax.Array:
    """DDPM ancestral sampling from N(0, I) over T steps; differentiable in eps_fn's parameters. noise
    [B, A]: the starting a_T (default: drawn from key; the per-step noise is always drawn from key).
    clip "x0": each step is the forward process's posterior q(a_{k-1} | a_k, a0) around the clean action
    a0 predicted from the noise and clipped to the box (diffusers' clip_sample, DACER's and SDAC's
    authors); "sample": the noise-form step 1/sqrt(alpha_k) (a_k - beta_k / sqrt(1 - alpha_bar_k) eps)
    + sqrt(beta_k) z with the noisy action clipped to the box after each step (jaxrl5's ddpm_sampler
    with clip_sampler, QSM's authors). Returns actions [B, A] in the box."""
    steps = schedule.steps
    key_init, key_steps = jax.random.split(key)

    def step(a_k, inputs):
        k, key = inputs
        ks = jnp.full((shape[0],), k)
        eps = eps_fn(a_k, ks / steps)
        ab, alpha = schedule.alpha_bar[k - 1], schedule.alpha[k - 1]
        z = jnp.where(k > 1, 1.0, 0.0) * jax.random.normal(key, a_k.shape)
        if clip == "sample":
            mean = (a_k - (1.0 - alpha) / jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(alpha)
            return jnp.clip(mean + jnp.sqrt(1.0 - alpha) * z, -1.0, 1.0), None
        a0 = predict_a0(schedule, ks, a_k, eps)
        ab_prev = jnp.where(k > 1, schedule.alpha_bar[jnp.maximum(k - 2, 0)], 1.0)
        # posterior q(a_{k-1} | a_k, a0) of the forward process
        mean = (jnp.sqrt(ab_prev) * (1.0 - alpha) * a0 + jnp.sqrt(alpha) * (1.0 - ab_prev) * a_k) / (1.0 - ab)
        std = jnp.sqrt((1.0 - ab_prev) * (1.0 - alpha) / (1.0 - ab))
        return mean + std * z, None

    ks = jnp.arange(steps, 0, -1)
    start = jax.random.normal(key_init, shape) if noise is None else noise
    a, _ = jax.lax.scan(step, start, (ks, jax.random.split(key_steps, steps)))
    return jnp.clip(a, -1.0, 1.0)


def denoising_loss(eps_fn: EpsFn, schedule: Schedule, key, a0: jax.Array, weights: jax.Array | None = None):
    """(weighted) DDPM loss mean_b w_b |eps_fn(a_k, k/T) - eps|^2 at random steps k; a0 [B, A]."""
    key_k, key_eps = jax.random.split(key)
    k = jax.random.randint(key_k, (a0.shape[0],), 1, schedule.steps + 1)
    eps = jax.random.normal(key_eps, a0.shape)
    err = jnp.sum(jnp.square(eps_fn(q_sample(schedule, k, a0, eps), k / schedule.steps) - eps), axis=-1)
    return jnp.mean(err if weights is None else weights * err)


def kde_entropy(samples: jax.Array) -> jax.Array:
    """Leave-one-out Gaussian-kernel estimate of the differential entropy (nats) of the
    distribution of samples [M, A], bandwidth by Silverman's rule per dimension."""
    m, dim = samples.shape
    std = jnp.std(samples, axis=0) + 1e-6
    h = std * (4.0 / ((dim + 2.0) * m)) ** (1.0 / (dim + 4.0))  # [A]
    diff = (samples[:, None, :] - samples[None, :, :]) / h  # [M, M, A]
    log_kernel = -0.5 * jnp.sum(jnp.square(diff), -1) - jnp.sum(jnp.log(h)) - 0.5 * dim * jnp.log(2 * jnp.pi)
    log_kernel = jnp.where(jnp.eye(m, dtype=bool), -jnp.inf, log_kernel)
    log_density = jax.nn.logsumexp(log_kernel, axis=1) - jnp.log(m - 1.0)
    return -jnp.mean(log_density)

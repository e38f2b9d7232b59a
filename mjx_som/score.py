"""Noise paths and the critic-derived target velocity of SOM (som.md §2-§4, §9).

Time runs from t = 0 (clean action a_0) to t = 1 (noise). Two paths:

    vp:     a_t = mu_t a_0 + sigma_t eps,  mu_t = exp(-B(t)/2), sigma_t = sqrt(1 - mu_t^2)
    linear: a_t = (1 - t) a_0 + t eps

and two estimators of the velocity field that transports N(0, I) onto the Boltzmann
policy p_0(a|s) ∝ exp(alpha Q(s, a)) on the action box [-1, 1]^A:

    "denoise": the posterior mean D = E[a_0 | a_t] by self-normalised importance sampling
               over K proposals from the kernel's Gaussian posterior truncated to the box
               (the exact posterior under a uniform prior on the box); forward passes only.
               vp: score = (mu_t D - a_t) / sigma_t^2, v = -beta_t/2 (a_t + score)
               linear: v = (a_t - D) / t
    "idem":    the paper's estimator as publicly described: g = grad_{a_t} logsumexp_k
               alpha Q(a_t/mu_t + sigma_t/mu_t eps_k) and v = -beta_t/2 (a_t + w g/(|g|+eps)).
               vp only. som.md §9 records that this field diverges; tests show it.

Every function works on one (state, noisy action) pair; callers vmap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

QFn = Callable[[jax.Array], jax.Array]  # actions [K, A] -> Q values [K] for one fixed state

PATHS = ("vp", "linear")
ESTIMATORS = ("denoise", "idem")


@dataclass(frozen=True)
class ScoreConfig:
    """How the target velocity is estimated from the critic."""

    path: str = "linear"
    """noise path: linear (a_t = (1-t) a_0 + t eps) or vp"""
    estimator: str = "denoise"
    """target velocity: denoise (posterior-mean form) or idem (the paper's literal form; diverges, som.md §9)"""
    alpha: float = 30.0
    """inverse temperature of the Boltzmann target exp(alpha Q), Q in scaled reward units"""
    num_samples: int = 100
    """K: Monte-Carlo proposals per (state, noisy action)"""
    w: float = 5.0
    """score rescaling coefficient (idem estimator only)"""
    clip_proposals: bool = False
    """idem only: clip proposals a_{0|t} to the box (the SDAC repository's variant)"""
    standardize_q: bool = False
    """divide Q by its std over the K proposals, sqrt(var + 1e-8), before weighting"""
    beta_min: float = 0.1
    """VP schedule beta at t = 0"""
    beta_max: float = 20.0
    """VP schedule beta at t = 1"""
    t_max: float = 0.999
    """linear path: t is capped here (the posterior blows up at t = 1)"""

    def validate(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"path={self.path!r}; allowed: {', '.join(PATHS)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator={self.estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        if self.estimator == "idem" and self.path != "vp":
            raise ValueError("estimator='idem' is defined for path='vp' only")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")


# ----- VP schedule (som.md §2) -----------------------------------------------------------
def vp_beta(t, beta_min=0.1, beta_max=20.0):
    return beta_min + t * (beta_max - beta_min)


def vp_integral(t, beta_min=0.1, beta_max=20.0):
    """B(t) = int_0^t beta(s) ds."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t**2


def vp_mu_sigma(t, beta_min=0.1, beta_max=20.0):
    mu_t = jnp.exp(-0.5 * vp_integral(t, beta_min, beta_max))
    return mu_t, jnp.sqrt(1.0 - mu_t**2)


def path_coefficients(t: jax.Array, config: ScoreConfig) -> tuple[jax.Array, jax.Array]:
    """(signal, noise) coefficients: a_t = signal * a_0 + noise * eps."""
    if config.path == "vp":
        return vp_mu_sigma(t, config.beta_min, config.beta_max)
    t = jnp.minimum(t, config.t_max)
    return 1.0 - t, t


def noise_action(a0: jax.Array, eps: jax.Array, t: jax.Array, config: ScoreConfig) -> jax.Array:
    """a_t for clean actions a0 [..., A], noise eps [..., A], times t [...]."""
    signal, noise = path_coefficients(t, config)
    return signal[..., None] * a0 + noise[..., None] * eps


# ----- the estimators (som.md §3-§4, §9) -------------------------------------------------
def _boltzmann_logits(q: jax.Array, config: ScoreConfig) -> jax.Array:
    if config.standardize_q:
        q = (q - q.mean()) / jnp.sqrt(q.var() + 1e-8)
    return config.alpha * q


def posterior_proposals(key, a_t, t, config: ScoreConfig) -> jax.Array:
    """K samples [K, A] of a_0 | a_t: the kernel's Gaussian posterior truncated to [-1, 1]^A."""
    signal, noise = path_coefficients(t, config)
    mean, std = a_t / signal, noise / signal
    lower, upper = (-1.0 - mean) / std, (1.0 - mean) / std
    z = jax.random.truncated_normal(key, lower, upper, (config.num_samples,) + a_t.shape)
    proposals = jnp.clip(mean + std * z, -1.0, 1.0)  # the clip only guards float round-off
    # A posterior far in a tail (both bounds beyond ~8 std) can make the inverse-CDF sampler
    # return NaN; the exact posterior is then a point mass at the projected mean.
    return jnp.where(jnp.isfinite(proposals), proposals, jnp.clip(mean, -1.0, 1.0))


def posterior_mean(key, q_fn: QFn, a_t, t, config: ScoreConfig) -> jax.Array:
    """D = E[a_0 | a_t] under p_0 ∝ exp(alpha Q) on the box, by self-normalised IS. [A]"""
    proposals = posterior_proposals(key, a_t, t, config)
    weights = jax.nn.softmax(_boltzmann_logits(q_fn(proposals), config))
    return jnp.sum(weights[:, None] * proposals, axis=0)


def idem_score(key, q_fn: QFn, a_t, t, config: ScoreConfig) -> jax.Array:
    """g = grad_{a_t} logsumexp_k alpha Q(a_{0|t}^(k)), a_{0|t} = a_t/mu_t + sigma_t/mu_t eps_k. [A]"""
    mu_t, sigma_t = vp_mu_sigma(t, config.beta_min, config.beta_max)
    eps = jax.random.normal(key, (config.num_samples,) + a_t.shape)

    def logsumexp_q(a):
        proposals = a / mu_t + (sigma_t / mu_t) * eps
        if config.clip_proposals:
            proposals = jnp.clip(proposals, -1.0, 1.0)
        return jax.nn.logsumexp(_boltzmann_logits(q_fn(proposals), config))

    return jax.grad(logsumexp_q)(a_t)


def target_velocity(key, q_fn: QFn, a_t: jax.Array, t: jax.Array, config: ScoreConfig) -> jax.Array:
    """The regression target v(a_t, t | s) [A] (gradient stopped) for one state."""
    if config.estimator == "idem":
        g = idem_score(key, q_fn, a_t, t, config)
        v = -0.5 * vp_beta(t, config.beta_min, config.beta_max) * (a_t + config.w * g / (jnp.linalg.norm(g) + 1e-6))
    else:
        d = posterior_mean(key, q_fn, a_t, t, config)
        if config.path == "vp":
            mu_t, sigma_t = vp_mu_sigma(t, config.beta_min, config.beta_max)
            score = (mu_t * d - a_t) / sigma_t**2
            v = -0.5 * vp_beta(t, config.beta_min, config.beta_max) * (a_t + score)
        else:
            v = (a_t - d) / jnp.minimum(t, config.t_max)
    return jax.lax.stop_gradient(v)

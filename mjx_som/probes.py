"""Mechanism probes (launch/probes.py): the estimated score against a closed form, and the transport
the estimated velocity field performs on its own, with the TRUE reward as Q (no learning). Both go
through mjx_som/score.py, the code the SOM agent trains with.

Gaussian-mixture targets: p_0 = sum_i w_i N(mu_i, s^2 I). Under a path a_t = c_t a_0 + n_t eps the
noised density is sum_i w_i N(c_t mu_i, (c_t^2 s^2 + n_t^2) I), so its score is analytic. With
Q(a) = log p_0(a) / alpha the Boltzmann target exp(alpha Q) is p_0 itself (restricted to the action
box, where the estimator's uniform prior lives: keep the modes well inside it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_som.score import ScoreConfig, path_coefficients, posterior_mean, target_velocity


def gmm_log_density(a, means, std, weights) -> jax.Array:
    """log p(a) for a [A] under sum_i weights_i N(means_i [M, A], std_i^2 I) (std [M])."""
    dim = a.shape[-1]
    sq = jnp.sum(jnp.square(a - means), axis=-1)
    log_n = -0.5 * sq / std**2 - dim * jnp.log(std) - 0.5 * dim * jnp.log(2 * jnp.pi)
    return jax.nn.logsumexp(log_n + jnp.log(weights))


def gmm_noised_score(a_t, t, means, std0, weights, config: ScoreConfig) -> jax.Array:
    """The analytic score grad log p_t(a_t) [A] of the noised mixture at time t (scalar); std0 [M]."""
    signal, noise = path_coefficients(t, config)
    var = signal**2 * std0**2 + noise**2
    diff = a_t - signal * means  # [M, A]
    log_n = -0.5 * jnp.sum(jnp.square(diff), -1) / var - 0.5 * a_t.shape[-1] * jnp.log(var)
    resp = jax.nn.softmax(log_n + jnp.log(weights))
    return -jnp.sum(resp[:, None] * diff / var[:, None], axis=0)


def estimated_score(key, q_fn, a_t, t, config: ScoreConfig) -> jax.Array:
    """The score implied by SOM's denoising estimator: (c_t D - a_t) / n_t^2, D = E[a_0 | a_t]. [A]"""
    signal, noise = path_coefficients(t, config)
    return (signal * posterior_mean(key, q_fn, a_t, t, config) - a_t) / noise**2


def cosine(u: jax.Array, v: jax.Array) -> jax.Array:
    """Row-wise cosine similarity of [P, A] arrays."""
    return jnp.sum(u * v, -1) / (jnp.linalg.norm(u, axis=-1) * jnp.linalg.norm(v, axis=-1) + 1e-12)


def integrate_field(key, q_fn, num_samples: int, action_size: int, config: ScoreConfig, steps: int = 100):
    """Euler-integrates the estimated target velocity from noise at t = 1 down to t = 0 (the flow the
    actor is trained to reproduce in one step); returns [num_samples, A] (unclipped)."""
    key_init, key_steps = jax.random.split(key)
    a = jax.random.normal(key_init, (num_samples, action_size))
    dt = 1.0 / steps
    times = 1.0 - dt * jnp.arange(steps)

    def step(a, inputs):
        t, key = inputs
        keys = jax.random.split(key, num_samples)
        v = jax.vmap(lambda k, x: target_velocity(k, q_fn, x, t, config))(keys, a)
        return a - dt * v, None

    a, _ = jax.lax.scan(step, a, (times, jax.random.split(key_steps, steps)))
    return a

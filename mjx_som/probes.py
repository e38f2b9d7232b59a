"""Mechanism probes (launch/probes.py): the estimated score against a closed form, and the transport
the estimated velocity field performs on its own, with the TRUE reward as Q (no learning). Both go
through mjx_som/score.py, the code the SOM agent trains with.

The probes of trained runs (transport maps, learned Q and velocity fields, candidate values) take a
run restored by mjx_som.load and call its agent's own functions.

Gaussian-mixture targets: p_0 = sum_i w_i N(mu_i, s^2 I). Under a path a_t = c_t a_0 + n_t eps the
noised density is sum_i w_i N(c_t mu_i, (c_t^2 s^2 + n_t^2) I), so its score is analytic. With
Q(a) = log p_0(a) / alpha the Boltzmann target exp(alpha Q) is p_0 itself (restricted to the action
box, where the estimator's uniform prior lives: keep the modes well inside it).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mjx_som.critic import ascend_actions, min_q
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


def integrate_field(key, q_fn, num_samples: int, action_size: int, config: ScoreConfig, steps: int = 100, noise=None):
    """Euler-integrates the estimated target velocity from noise at t = 1 down to t = 0 (the flow the
    actor is trained to reproduce in one step); returns [num_samples, A] (unclipped). noise
    [num_samples, A]: the starting points (default: drawn from key)."""
    key_init, key_steps = jax.random.split(key)
    a = jax.random.normal(key_init, (num_samples, action_size)) if noise is None else noise
    dt = 1.0 / steps
    times = 1.0 - dt * jnp.arange(steps)

    def step(a, inputs):
        t, key = inputs
        keys = jax.random.split(key, num_samples)
        v = jax.vmap(lambda k, x: target_velocity(k, q_fn, x, t, config))(keys, a)
        return a - dt * v, None

    a, _ = jax.lax.scan(step, a, (times, jax.random.split(key_steps, steps)))
    return a


# ----- probes of trained runs (mjx_som.load) ----------------------------------------------------
def square_grid(side: int, half_width: float) -> jax.Array:
    """A side x side grid of 2-D points over [-half_width, half_width]^2, [side^2, 2] (x varies fastest)."""
    axis = jnp.linspace(-half_width, half_width, side)
    return jnp.stack(jnp.meshgrid(axis, axis), -1).reshape(-1, 2)


def transport(run, noise: jax.Array, key: jax.Array, obs: jax.Array | None = None) -> jax.Array:
    """Where the run's raw generative map sends each noise point [P, A] (for the states obs [P, O],
    raw; default the zero observation of a bandit): agent.sample with that starting noise. [P, A]"""
    obs = jnp.zeros((noise.shape[0], run.env.observation_size)) if obs is None else obs
    return run.agent.sample(run.state.agent, run.normalize(obs), key, noise)


def critic_params(run):
    """The online twin critics' parameters of any generative or SAC agent."""
    return run.state.agent.critic.params


def q_values(run, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """min(Q1, Q2) of the run's critics: raw obs [..., O], actions [..., A] -> [...]."""
    obs = run.normalize(obs.reshape(-1, obs.shape[-1])).reshape(obs.shape)
    obs = jnp.broadcast_to(obs, actions.shape[:-1] + obs.shape[-1:])
    return min_q(run.config.algo_config(), critic_params(run), obs, actions)


def velocity_field(run, points: jax.Array, t: float, key: jax.Array, obs=None, q_fn=None) -> jax.Array:
    """SOM's target velocity v(a_t, t | s) [P, A] at points a_t [P, A]: the field its actor regresses
    on, from the run's learned critic, or from q_fn (actions [K, A] -> [K]) when given (e.g. the true
    Q). obs [O]: the raw state, default the bandit's zero observation."""
    config = run.config.algo_config()
    obs = jnp.zeros(run.env.observation_size) if obs is None else obs
    q_fn = functools.partial(q_values, run, obs[None]) if q_fn is None else q_fn
    keys = jax.random.split(key, points.shape[0])
    return jax.vmap(lambda k, a: target_velocity(k, q_fn, a, jnp.asarray(t), config.score_config()))(keys, points)


def candidates(run, obs: jax.Array, num: int, key: jax.Array) -> jax.Array:
    """num raw samples of the run's generative map per state: raw obs [S, O] -> [S, num, A]."""
    obs_n = jnp.repeat(run.normalize(obs), num, axis=0)
    return run.agent.sample(run.state.agent, obs_n, key).reshape(obs.shape[0], num, -1)


def ascend_q(q_fn, actions: jax.Array, steps: int = 200, learning_rate: float = 0.01) -> jax.Array:
    """actions [B, A] moved up q_fn (actions [B, A] -> [B], one state per row) by `steps` Adam steps of
    size learning_rate, kept in the box (mjx_som.critic.ascend_actions, DIPO's improvement loop). [B, A]"""
    return ascend_actions(q_fn, actions, optax.adam(learning_rate), steps)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, float]:
    """x [M, D] projected on its first two principal axes [M, 2], and their share of the variance."""
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    share = float(np.sum(singular[:2] ** 2) / max(np.sum(singular**2), 1e-12))
    return centred @ vt[:2].T, share

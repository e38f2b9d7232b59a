"""The target-velocity estimators against closed forms, and the literal estimator's divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from mjx_som.score import ScoreConfig, noise_action, posterior_mean, target_velocity, vp_mu_sigma

# Q(a) = -|a - m|^2 / 2 makes the Boltzmann target exp(alpha Q) the Gaussian N(m, I / alpha).
# With alpha = 100 its std is 0.1 and m sits >= 8 std inside the box, so truncation is negligible.
M = jnp.array([0.2, -0.1])
ALPHA = 100.0
PRIOR_VAR = 1.0 / ALPHA


def quadratic_q(actions):
    return -0.5 * jnp.sum(jnp.square(actions - M), axis=-1)


def analytic_velocity(a_t, t, config: ScoreConfig):
    """The exact velocity for the Gaussian target, per path."""
    if config.path == "linear":
        signal, noise = 1.0 - t, t
    else:
        signal, noise = vp_mu_sigma(t, config.beta_min, config.beta_max)
    precision = 1.0 / PRIOR_VAR + signal**2 / noise**2
    posterior = (M / PRIOR_VAR + signal * a_t / noise**2) / precision  # E[a_0 | a_t]
    if config.path == "linear":
        return (a_t - posterior) / t
    score = -(a_t - signal * M) / (signal**2 * PRIOR_VAR + noise**2)
    beta = config.beta_min + t * (config.beta_max - config.beta_min)
    return -0.5 * beta * (a_t + score)


def mean_error(config, t, num_points=64, seed=0):
    key_a, key_eps, key_est = jax.random.split(jax.random.PRNGKey(seed), 3)
    a0 = M + jnp.sqrt(PRIOR_VAR) * jax.random.normal(key_a, (num_points, 2))
    ts = jnp.full((num_points,), t)
    a_t = noise_action(a0, jax.random.normal(key_eps, (num_points, 2)), ts, config)
    est = jax.vmap(lambda k, a: target_velocity(k, quadratic_q, a, t, config))(
        jax.random.split(key_est, num_points), a_t
    )
    exact = jax.vmap(lambda a: analytic_velocity(a, t, config))(a_t)
    scale = jnp.mean(jnp.linalg.norm(exact, axis=-1))
    return float(jnp.mean(jnp.linalg.norm(est - exact, axis=-1)) / scale)


@pytest.mark.parametrize("path,t", [("linear", 0.2), ("linear", 0.7), ("vp", 0.1), ("vp", 0.3)])
def test_denoise_velocity_converges_to_the_analytic_one(path, t):
    errors = [mean_error(ScoreConfig(path=path, alpha=ALPHA, num_samples=k), t) for k in (10, 100, 10_000)]
    assert errors[2] < 0.05, errors  # relative error of the velocity with K = 10k samples
    assert errors[2] < errors[0] / 3, errors  # and it shrinks as K grows


def test_posterior_is_finite_far_in_the_tail():
    config = ScoreConfig(path="linear", num_samples=8)
    d = posterior_mean(jax.random.PRNGKey(0), quadratic_q, jnp.array([1.5, -1.5]), 1e-4, config)
    assert np.all(np.isfinite(d)) and np.all(np.abs(d) <= 1.0)


def integrate_field(config: ScoreConfig, num_points=256, steps=200, seed=0):
    """Euler-integrates the estimated target field from noise (t = 1) to t = 0 with the TRUE Q."""
    bandit = envs.make("bandit/eight_gaussians")
    q_fn = jax.vmap(bandit.reward_fn)
    ts = jnp.linspace(1.0, 0.0, steps + 1)
    a = jax.random.normal(jax.random.PRNGKey(seed), (num_points, 2))

    def step(a, inputs):
        key, t, t_next = inputs
        t = jnp.maximum(t, 1e-3)
        v = jax.vmap(lambda k, x: target_velocity(k, q_fn, x, t, config))(jax.random.split(key, num_points), a)
        return a - (t - t_next) * v, None

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
    a, _ = jax.jit(lambda a: jax.lax.scan(step, a, (keys, ts[:-1], ts[1:])))(a)
    return bandit, a


def test_denoise_field_transports_noise_to_all_high_modes():
    bandit, a = integrate_field(ScoreConfig(path="linear", estimator="denoise", alpha=30.0, num_samples=100))
    stats = bandit.mode_stats(a)
    assert stats["modes_covered"] == 4 and stats["high_reward_fraction"] > 0.8, stats


def test_literal_idem_field_diverges():
    """som.md §9: the paper's estimator as publicly described sends samples out of the box."""
    config = ScoreConfig(path="vp", estimator="idem", alpha=30.0, w=5.0, num_samples=100)
    _, a = integrate_field(config)
    outside = np.mean(np.max(np.abs(np.asarray(a)), axis=-1) > 1.5)
    assert outside > 0.9, outside


def test_config_rejects_idem_on_linear_path():
    with pytest.raises(ValueError, match="path='vp' only"):
        ScoreConfig(path="linear", estimator="idem").validate()

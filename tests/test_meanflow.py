"""MeanFlow: the JVP total derivative against finite differences; the (t, r) sampler."""

import jax
import jax.numpy as jnp
import numpy as np

from mjx_som.meanflow import MeanFlowConfig, meanflow_target, one_step_sample, sample_times, total_derivative
from mjx_som.networks import VelocityNet


def test_jvp_total_derivative_matches_finite_differences():
    with jax.enable_x64(True):
        net = VelocityNet((32, 32), 3)
        obs = jax.random.normal(jax.random.PRNGKey(0), (5, 4), jnp.float64)
        a_t = jax.random.normal(jax.random.PRNGKey(1), (5, 3), jnp.float64)
        v = jax.random.normal(jax.random.PRNGKey(2), (5, 3), jnp.float64)
        r = jnp.array([0.0, 0.1, 0.2, 0.3, 0.5], jnp.float64)
        t = jnp.array([0.4, 0.5, 0.9, 0.3, 0.8], jnp.float64)
        params = net.init(jax.random.PRNGKey(3), obs, a_t, r, t)
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        u_fn = lambda a, r, t: net.apply(params, obs, a, r, t)  # noqa: E731

        _, du_dt = total_derivative(u_fn, a_t, r, t, v)
        h = 1e-5  # move along the flow: a -> a + h v, t -> t + h, r fixed
        fd = (u_fn(a_t + h * v, r, t + h) - u_fn(a_t - h * v, r, t - h)) / (2 * h)
        np.testing.assert_allclose(du_dt, fd, rtol=1e-6, atol=1e-8)

        u_pred, u_tgt = meanflow_target(u_fn, a_t, r, t, v)
        np.testing.assert_allclose(u_tgt, v - (t - r)[:, None] * fd, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(u_pred, u_fn(a_t, r, t))


def test_time_sampler_fractions():
    config = MeanFlowConfig(flow_matching_fraction=0.5, r_zero_fraction=0.3)
    r, t = sample_times(jax.random.PRNGKey(0), 100_000, config)
    r, t = np.asarray(r), np.asarray(t)
    assert np.all(r <= t) and np.all(r >= 0) and np.all(t <= 1) and np.all(t >= config.t_min)
    equal = r == t
    assert abs(equal.mean() - 0.5) < 0.01
    assert abs((r[~equal] == 0).mean() - 0.3) < 0.01


def test_one_step_sample_subtracts_the_average_velocity():
    u_fn = lambda a, r, t: a * 0.5 + (t - r)[:, None]  # noqa: E731
    noise = jnp.ones((2, 3))
    np.testing.assert_allclose(one_step_sample(u_fn, noise), noise - (0.5 * noise + 1.0))

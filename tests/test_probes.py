"""Mechanism probes (issue 7): the analytic mixture score they compare against is itself right, the
estimator agrees with it, and launch/probes.py runs at tiny sizes and writes its files."""

import json
import runpy
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mjx_som.probes import cosine, estimated_score, gmm_log_density, gmm_noised_score
from mjx_som.score import ScoreConfig, path_coefficients

MEANS = jnp.array([[0.7, 0.0], [0.0, 0.7], [-0.7, 0.0], [0.0, -0.7]])
STD0, WEIGHTS = jnp.full(4, 0.1), jnp.array([0.1, 0.2, 0.3, 0.4])


def test_analytic_mixture_score_is_the_gradient_of_the_noised_log_density():
    points = jax.random.normal(jax.random.PRNGKey(0), (20, 2))
    for path in ("linear", "vp"):
        config = ScoreConfig(path=path)
        for t in (0.05, 0.4, 0.9):
            signal, noise = path_coefficients(jnp.asarray(t), config)
            std_t = jnp.sqrt(signal**2 * STD0**2 + noise**2)
            log_p = lambda a, c=signal, s=std_t: gmm_log_density(a, c * MEANS, s, WEIGHTS)  # noqa: E731
            grad = jax.vmap(jax.grad(log_p))(points)
            analytic = jax.vmap(lambda a, t=t, cfg=config: gmm_noised_score(a, t, MEANS, STD0, WEIGHTS, cfg))(points)
            np.testing.assert_allclose(analytic, grad, rtol=1e-4, atol=1e-4)


def test_estimated_score_points_like_the_analytic_one_near_the_modes():
    """Near the modes, the estimator's direction matches the closed form, better with more proposals."""
    t = jnp.asarray(0.3)
    points = (0.7 * MEANS[:, None] + 0.15 * jax.random.normal(jax.random.PRNGKey(1), (4, 8, 2))).reshape(-1, 2)
    keys = jax.random.split(jax.random.PRNGKey(2), points.shape[0])

    def agreement(num_samples):
        config = ScoreConfig(num_samples=num_samples)
        q_fn = jax.vmap(lambda a: gmm_log_density(a, MEANS, STD0, WEIGHTS) / config.alpha)
        est = jax.vmap(lambda k, a: estimated_score(k, q_fn, a, t, config))(keys, points)
        true = jax.vmap(lambda a: gmm_noised_score(a, t, MEANS, STD0, WEIGHTS, config))(points)
        return cosine(est, true)

    few, many = agreement(20), agreement(2000)
    assert float(jnp.median(many)) > 0.99 and float(jnp.mean(many)) > 0.93
    assert float(jnp.mean(many)) > float(jnp.mean(few))


def test_probes_command_writes_its_files(tmp_path, monkeypatch):
    out = tmp_path / "probes"
    argv = ["--out", str(out), "--quick", "--bandits", "bandit/eight_gaussians", "--methods", "som", "--seeds", "0",
            "--set", "total_steps=8192", "--set", "log_every=4096",
            "--set", "som={actor_hidden: [32], critic_hidden: [32]}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["probes.py", *argv])
    results = runpy.run_path("launch/probes.py", run_name="not_main")["main"](argv)
    assert set(results) == {"score", "ablation", "learned"}
    assert json.loads((out / "probes.json").read_text()).keys() == results.keys()
    for name in ("score_estimate.png", "estimator_ablation.png", "transport_eight_gaussians_som.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    assert results["ablation"]["settings"]["w (idem, vp)=5.0"]["outside_box_fraction"] > 0.5  # som.md §9
    learned = results["learned"]["bandit/eight_gaussians som"]
    assert learned["runs"][0]["env_steps"] == 8192 and learned["num_high_modes"] == 4

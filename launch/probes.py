"""Mechanism probes: pictures and numbers that show what SOM's actor does on 2-D bandits.

    python launch/probes.py                       # everything; the learned probes take long on a CPU
    python launch/probes.py --probes score,ablation          # the estimator probes only (minutes on a CPU)
    python launch/probes.py --probes learned --methods som,mfp --seeds 0,1,2 --bandits bandit/eight_gaussians
    python launch/probes.py --probes noise,qdiag     # critic-noise robustness; Q diagnostics on HalfCheetah

Probes (each writes PNGs into --out and its numbers into --out/probes.json):
- score: SOM's estimated score (the denoising estimator, mjx_som/score.py) against the analytic noised
  score of a Gaussian-mixture target (the four high modes of eight_gaussians), at several t: cosine
  similarity near the modes and far from them, and a quiver picture.
- ablation: the transport performed by the estimated velocity field itself, integrated from noise with
  the TRUE reward as Q (no learning): mode coverage as a function of K (Monte-Carlo proposals) and
  alpha (inverse temperature), and the paper's literal estimator (idem, VP path) as a function of w.
- learned: training runs (the bandit preset and any --set) per bandit, method and seed: a coverage
  table (mean ± std over seeds) and per bandit one transport picture, every method side by side:
  where each raw map sends a grid of noise points (seed 0).
- noise: SOM trained with Gaussian noise of several scales on the observed rewards: coverage per
  scale, the learned Q field against the true reward, and the target velocity the learned Q induces
  against the one the true reward induces (cosine, several t), with a picture of both fields.
- qdiag: Q diagnostics on a locomotion task from checkpoints: SOM's and MFP's N candidates on shared
  states scored by each run's critic (box plots of the mean and std of Q per state) and a PCA of the
  candidates (--qdiag-runs compares any runs instead of training its own).

Training runs go to --runs (default OUT/runs); a finished run with the same config is reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs
from mjx_som import agents
from mjx_som.agents import SOMConfig
from mjx_som.api import load, run
from mjx_som.config import RunConfig, check_resume, parse_settings, resolve_config
from mjx_som.logging import bandit_reward_image, pyplot
from mjx_som.probes import (
    candidates,
    cosine,
    estimated_score,
    gmm_log_density,
    gmm_noised_score,
    integrate_field,
    pca_2d,
    q_values,
    square_grid,
    transport,
    velocity_field,
)  # fmt: skip
from mjx_som.score import ScoreConfig, path_coefficients

PROBES = ("score", "ablation", "learned", "noise", "qdiag")


def probe_score(out: str, quick: bool) -> dict:
    """Estimated vs analytic score for the mixture of eight_gaussians' four high modes (std 0.1)."""
    bandit = envs.make("bandit/eight_gaussians")
    means = jnp.asarray(bandit.modes)  # agent coordinates: this bandit's box is [-1, 1]^2
    std0, weights = jnp.full(len(means), 0.1), jnp.full(len(means), 1.0 / len(means))
    config = ScoreConfig(temperature="fixed", num_samples=32 if quick else 100)
    q_fn = jax.vmap(lambda a: gmm_log_density(a, means, std0, weights) / config.alpha)
    times = (0.2, 0.8) if quick else (0.1, 0.3, 0.6, 0.9)
    side = 9 if quick else 41
    grid = square_grid(side, 1.5)
    results, fields = {}, []
    for t in times:
        true = jax.vmap(lambda a, t=t: gmm_noised_score(a, t, means, std0, weights, config))(grid)
        keys = jax.random.split(jax.random.PRNGKey(0), grid.shape[0])
        est = jax.vmap(lambda k, a, t=t: estimated_score(k, q_fn, a, jnp.asarray(t), config))(keys, grid)
        signal, noise = path_coefficients(jnp.asarray(t), config)
        spread = jnp.sqrt(signal**2 * 0.01 + noise**2)
        near = jnp.min(jnp.linalg.norm(grid[:, None] - signal * means[None], axis=-1), axis=1) <= 2 * spread
        cos = cosine(est, true)
        results[f"t={t}"] = {
            "cosine_near_modes": float(jnp.mean(cos[near])),
            "cosine_far": float(jnp.mean(cos[~near])) if bool(jnp.any(~near)) else None,
            "median_relative_error": float(
                jnp.median(jnp.linalg.norm(est - true, axis=-1) / (jnp.linalg.norm(true, axis=-1) + 1e-8))
            ),  # fmt: skip
            "points_near": int(jnp.sum(near)),
            "points_far": int(jnp.sum(~near)),
        }
        fields.append((t, np.asarray(true), np.asarray(est)))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(times), figsize=(4.2 * len(times), 4.2), squeeze=False)
    step = max(1, side // 15)
    pick = np.asarray(jnp.arange(side * side).reshape(side, side)[::step, ::step].reshape(-1))
    g = np.asarray(grid)
    for ax, (t, true, est) in zip(axes[0], fields, strict=True):
        unit = lambda v: v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)  # noqa: E731
        ax.quiver(g[pick, 0], g[pick, 1], *unit(true[pick]).T, color="black", alpha=0.6, label="analytic")
        ax.quiver(g[pick, 0], g[pick, 1], *unit(est[pick]).T, color="red", alpha=0.6, label="estimated")
        r = results[f"t={t}"]
        ax.set_title(f"t = {t}: cos near {r['cosine_near_modes']:.2f}, far {r['cosine_far'] or float('nan'):.2f}")
        ax.set_aspect("equal")
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"score directions, linear path, K = {config.num_samples}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "score_estimate.png"), dpi=100)
    plt.close(fig)
    return {"num_samples": config.num_samples, "times": results}


def probe_ablation(out: str, quick: bool) -> dict:
    """Coverage of the integrated estimated field on eight_gaussians with its true reward as Q."""
    bandit = envs.make("bandit/eight_gaussians")
    q_fn = bandit.expected_reward
    samples, steps = (128, 20) if quick else (2048, 100)
    settings = {
        "K": [(k, ScoreConfig(num_samples=k)) for k in ((8,) if quick else (8, 32, 100, 300))],
        "alpha": [(a, ScoreConfig(temperature="fixed", alpha=a)) for a in (() if quick else (3.0, 10.0, 30.0, 100.0))],
        "w (idem, vp)": [
            (w, ScoreConfig(estimator="idem", path="vp", w=w)) for w in ((5.0,) if quick else (1.0, 5.0, 20.0))
        ],  # fmt: skip
    }
    results, pictures = {}, []
    for axis, configs in settings.items():
        for value, config in configs:
            if quick:
                config = dataclasses.replace(config, num_samples=min(config.num_samples, 32))
            actions = integrate_field(jax.random.PRNGKey(1), q_fn, samples, 2, config, steps)
            stats = bandit.mode_stats(jnp.clip(actions, -1.0, 1.0))
            stats["outside_box_fraction"] = float(jnp.mean(jnp.any(jnp.abs(actions) > 1.5, axis=-1)))
            results[f"{axis}={value}"] = stats
            pictures.append((f"{axis} = {value}", np.asarray(actions), stats))
    plt = pyplot()
    cols = 4
    rows = -(-len(pictures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    heat = bandit_reward_image(bandit)
    for ax in axes.reshape(-1):
        ax.axis("off")
    for ax, (title, actions, stats) in zip(axes.reshape(-1), pictures, strict=False):
        ax.axis("on")
        ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="viridis", alpha=0.8)
        clipped = np.clip(actions, -1.0, 1.0)
        ax.scatter(clipped[:, 0], clipped[:, 1], s=1, c="white", alpha=0.4)
        ax.set_title(
            f"{title}\n{stats['modes_covered']} modes, {stats['high_reward_fraction']:.2f} in them", fontsize=8
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("the estimated field integrated from noise, true Q (no learning)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "estimator_ablation.png"), dpi=100)
    plt.close(fig)
    return {"samples": samples, "euler_steps": steps, "settings": results}


class RunStore:
    """The probes' training runs, one folder per (env, algo, seed) under `folder`. A finished run with
    the same config is reused (an interrupted probe sweep picks up where it stopped); train=False uses
    the finished runs as they are, whatever their config, and trains none."""

    def __init__(self, folder: str, train: bool = True):
        self.folder, self.train = folder, train

    def path(self, env_name: str, algo: str, seed: int) -> str:
        return os.path.join(self.folder, f"{env_name.replace('/', '_').replace('+', '_')}-{algo}-s{seed}")

    def seeds(self, env_name: str, algo: str, seeds: list[int]) -> list[int]:
        """The seeds to use: all of them when training, else those with a finished run (at least one)."""
        if self.train:
            return seeds
        done = [s for s in seeds if os.path.exists(os.path.join(self.path(env_name, algo, s), "summary.json"))]
        if not done:
            raise SystemExit(f"--no-train: no finished run of {algo} on {env_name} in {self.folder} (seeds {seeds})")
        return done

    def summary(self, env, algo: str, seed: int, **settings) -> dict:
        """summary.json of the run of (env, algo, seed, settings over the env's preset): a finished run with
        that config is reused, an interrupted one resumed from its checkpoint, a missing one trained. A
        folder holding anything else (another config, a run without checkpoints, files that are not a run)
        stops the probes with the reason; nothing is ever deleted."""
        run_dir = self.path(env if isinstance(env, str) else env.name, algo, seed)
        config = resolve_config(env, algo, seed=seed, run_dir=run_dir, progress=False, wandb_mode="disabled",
                                **settings)  # fmt: skip
        summary_path = os.path.join(run_dir, "summary.json")
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        if not self.train:
            if summary is None:
                raise SystemExit(f"--no-train: {run_dir} holds no finished run")
            return summary
        env_object = None if isinstance(env, str) else env
        if not os.path.isdir(run_dir) or not os.listdir(run_dir):
            return run(config, env=env_object).summary
        try:
            resumed = check_resume(dataclasses.replace(config, resume=run_dir))
        except ValueError as e:
            raise SystemExit(
                f"cannot use {run_dir} for this probe: {e}. Nothing was deleted: move that folder or point --runs "
                "at another one"
            ) from e
        if summary is not None and summary["env_steps"] >= config.total_steps and not summary["interrupted"]:
            print(f"reusing {run_dir}", flush=True)
            return summary
        print(f"resuming {run_dir}", flush=True)
        return run(resumed, env=env_object).summary

    def load(self, env, algo: str, seed: int):
        """The finished run restored (mjx_som.load)."""
        name = env if isinstance(env, str) else env.name
        return load(self.path(name, algo, seed), env=None if isinstance(env, str) else env)


def mean_std(summaries: list[dict], keys) -> dict:
    values = {k: np.asarray([s[k] for s in summaries], float) for k in keys}
    return {k: {"mean": float(v.mean()), "std": float(v.std())} for k, v in values.items()}


COVERAGE_KEYS = ("modes_covered", "high_reward_fraction", "bon_modes_covered", "bon_high_reward_fraction")


def bandit_q(bandit, reward_scale: float):
    """The exact Q of a bandit's one-step episodes in the critic's units: actions [K, A] -> [K]."""
    return lambda actions: reward_scale * bandit.expected_reward(actions)


def noise_colours(noise: np.ndarray, radius: float) -> np.ndarray:
    """RGB per 2-D noise point: hue = its angle, brightness falls with its radius."""
    from matplotlib.colors import hsv_to_rgb

    hue = (np.arctan2(noise[:, 1], noise[:, 0]) / (2 * np.pi)) % 1.0
    r = np.linalg.norm(noise, axis=-1) / radius
    return hsv_to_rgb(np.stack([hue, np.clip(0.3 + r, 0, 1), np.clip(1.0 - 0.5 * r, 0.3, 1)], -1))


def plot_transport_maps(path: str, bandit, maps: dict, coverage: dict, noise: jax.Array) -> None:
    """One row: the noise grid, then per map where it sends each grid point (colour = the point's place
    in the noise disc) over the reward heat map. maps: title -> actions [P, 2] in agent coordinates,
    coverage: title -> mode_stats."""
    radius = float(jnp.max(jnp.abs(noise)))
    colours = noise_colours(np.asarray(noise), radius)
    plt = pyplot()
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3.6 * (1 + len(maps)), 4.0), squeeze=False)
    axes[0][0].scatter(noise[:, 0], noise[:, 1], s=6, c=colours)
    axes[0][0].set_title("noise grid (N(0, I) points)", fontsize=9)
    axes[0][0].set_aspect("equal")
    heat = bandit_reward_image(bandit)
    for ax, (method, agent_actions) in zip(axes[0][1:], maps.items(), strict=True):
        actions = np.asarray(bandit.scale_action(agent_actions))
        ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.6)
        ax.scatter(actions[:, 0], actions[:, 1], s=4, c=colours, alpha=0.8)
        for centre in bandit.modes:
            ax.add_patch(plt.Circle(centre, bandit.mode_radius, fill=False, color="red", lw=0.8))
        c = coverage[method]
        ax.set_title(f"{method}\n{c['modes_covered']} / {c['num_high_modes']} modes, {c['high_reward_fraction']:.2f} "
                     f"in them", fontsize=9)  # fmt: skip
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
    fig.suptitle(f"{bandit.name}: where each map sends a grid of noise points (each method's first seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def field_transport(bandit, q_fn, score_config, noise, quick) -> tuple[dict, jax.Array]:
    """SOM's target field for Q = q_fn integrated from noise (mjx_som.probes.integrate_field): coverage
    of 2048 random draws, and where it sends the noise points [P, 2] (clipped to the box)."""
    steps = 20 if quick else 100
    samples = integrate_field(jax.random.PRNGKey(1), q_fn, 128 if quick else 2048, 2, score_config, steps)
    stats = {**bandit.mode_stats(jnp.clip(samples, -1.0, 1.0)), "num_high_modes": bandit.modes.shape[0]}
    grid = integrate_field(jax.random.PRNGKey(1), q_fn, noise.shape[0], 2, score_config, steps, noise)
    return stats, jnp.clip(grid, -1.0, 1.0)


def probe_learned(out, runs: RunStore, bandits, methods, seeds, settings, quick) -> dict:
    """Training runs: coverage per (bandit, method) over seeds (mean ± std) and one transport picture
    per bandit with every method side by side (its first seed). settings: overrides of the bandit preset."""
    results = {}
    for bandit_name in bandits:
        bandit = envs.make(bandit_name)
        first = {}
        first_seed = {}
        for method in methods:
            summaries = []
            method_seeds = runs.seeds(bandit_name, method, seeds)
            first_seed[method] = method_seeds[0]
            for seed in method_seeds:
                summary = runs.summary(bandit_name, method, seed, **settings)
                summaries.append({k: summary[k] for k in (*COVERAGE_KEYS, "env_steps", "walltime_s", "num_high_modes")})
            first[method] = summaries[0]
            results[f"{bandit_name} {method}"] = {
                "runs": summaries, **mean_std(summaries, COVERAGE_KEYS), "num_high_modes": bandit.modes.shape[0],
            }  # fmt: skip
        # SOM's target field integrated from noise, with the TRUE reward as Q (what a perfect learner would
        # reproduce) and with SOM's learned critic (what its actor is asked to reproduce)
        noise = square_grid(15 if quick else 41, 2.5)
        noise = noise[jnp.linalg.norm(noise, axis=-1) <= 2.5]
        # the settings SOM has (a --set for another algorithm's field leaves SOM's field as it is)
        som_fields = {f.name for f in dataclasses.fields(RunConfig)} | {f.name for f in dataclasses.fields(SOMConfig)}
        som_config = resolve_config(bandit_name, "som", **{k: v for k, v in settings.items() if k in som_fields})
        score_config = som_config.som.score_config()
        fields = {"SOM's target field, true Q": bandit_q(bandit, som_config.reward_scale)}
        maps = {}
        for m in methods:
            loaded = runs.load(bandit_name, m, first_seed[m])
            maps[m] = transport(loaded, noise, jax.random.PRNGKey(0))
            if m == "som":
                fields[f"SOM's target field, its learned Q (seed {first_seed[m]})"] = functools.partial(
                    q_values, loaded, jnp.zeros((1, bandit.observation_size))
                )  # fmt: skip
        field_maps = {}
        for title, q_fn in fields.items():
            stats, field_maps[title] = field_transport(bandit, q_fn, score_config, noise, quick)
            first[title] = stats
            results[f"{bandit_name} {title}"] = {"runs": [stats], **mean_std([stats], COVERAGE_KEYS[:2]),
                                                 "num_high_modes": stats["num_high_modes"]}  # fmt: skip
        name = f"transport_{bandit_name.split('/')[-1]}.png"
        plot_transport_maps(os.path.join(out, name), bandit, {**field_maps, **maps}, first, noise)
    return results


def probe_noise(out, runs: RunStore, bandit_name, scales, seeds, settings, quick) -> dict:
    """SOM trained on observed rewards with N(0, scale^2) noise: per scale, coverage over seeds, the
    learned Q against the true reward, and the target velocity the learned Q induces against the one
    the true reward induces (mean cosine on a grid of a_t, per t). Picture: per scale (rows) the learned
    Q field, the induced velocity at a few t and the raw map's samples."""
    base = envs.make(bandit_name)
    times = (0.2, 0.6) if quick else (0.1, 0.3, 0.6)
    side = 9 if quick else 25
    box = square_grid(side, 1.0)  # agent coordinates
    points = 1.5 * box  # where a_t lives (wider than the box at larger t)
    results, rows = {}, []
    for scale in scales:
        bandit = base.with_reward_noise(scale)
        summaries = []
        for seed in seeds:
            summary = runs.summary(bandit, "som", seed, **settings)
            summaries.append({k: summary[k] for k in (*COVERAGE_KEYS, "env_steps", "walltime_s")})
        run_ = runs.load(bandit, "som", seeds[0])
        q = q_values(run_, jnp.zeros((1, bandit.observation_size)), box)
        centres = jnp.asarray(bandit.modes)  # env coordinates == agent coordinates on these bandits' [-1, 1] box
        in_modes = jnp.min(jnp.linalg.norm(box[:, None] - centres[None], axis=-1), axis=1) <= bandit.mode_radius
        true_q_fn = bandit_q(bandit, run_.config.reward_scale)
        true_q = true_q_fn(box)
        fields, agreement = [], {}
        for t in times:
            key = jax.random.PRNGKey(int(1000 * t))  # the same proposals for both fields
            learned_v = velocity_field(run_, points, t, key)
            true_v = velocity_field(run_, points, t, key, q_fn=true_q_fn)
            agreement[f"t={t}"] = float(jnp.mean(cosine(learned_v, true_v)))
            fields.append((t, np.asarray(learned_v)))
        noise = jax.random.normal(jax.random.PRNGKey(3), (2048, bandit.action_size))
        samples = np.asarray(transport(run_, noise, jax.random.PRNGKey(4)))
        results[f"reward_noise={scale:g}"] = {
            "runs": summaries, **mean_std(summaries, COVERAGE_KEYS), "num_high_modes": base.modes.shape[0],
            "q_rmse_seed0": float(jnp.sqrt(jnp.mean(jnp.square(q - true_q)))),
            "q_rmse_in_modes_seed0": float(jnp.sqrt(jnp.mean(jnp.square(q - true_q)[in_modes]))),
            "q_corr_seed0": float(np.corrcoef(np.asarray(q), np.asarray(true_q))[0, 1]),
            "velocity_cosine_learned_vs_true_q_seed0": agreement,
        }  # fmt: skip
        rows.append((scale, np.asarray(q).reshape(side, side), fields, samples, results[f"reward_noise={scale:g}"]))
    plt = pyplot()
    cols = 2 + len(times)
    fig, axes = plt.subplots(len(rows), cols, figsize=(3.3 * cols, 3.3 * len(rows)), squeeze=False)
    p, heat = np.asarray(points), bandit_reward_image(base)
    for ax_row, (scale, q, fields, samples, r) in zip(axes, rows, strict=True):
        image = ax_row[0].imshow(q, origin="lower", extent=[-1, 1, -1, 1], cmap="viridis")
        fig.colorbar(image, ax=ax_row[0], fraction=0.046)
        ax_row[0].set_title(f"noise std {scale:g}: learned min Q\nRMSE to true reward: in the high modes "
                            f"{r['q_rmse_in_modes_seed0']:.3f}, box {r['q_rmse_seed0']:.3f}",
                            fontsize=8)  # fmt: skip
        shown = np.asarray(jnp.arange(side * side).reshape(side, side)[::2, ::2].reshape(-1))  # every other point
        for ax, (t, v) in zip(ax_row[1:], fields, strict=False):
            direction = -v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)  # a_t moves along -v as t falls
            ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.5)
            ax.quiver(p[shown, 0], p[shown, 1], direction[shown, 0], direction[shown, 1], color="tab:red",
                      angles="xy", scale_units="xy", scale=8.0, width=0.006)  # fmt: skip
            ax.set_xlim(-1.55, 1.55)
            ax.set_ylim(-1.55, 1.55)
            cos = r["velocity_cosine_learned_vs_true_q_seed0"][f"t={t}"]
            ax.set_title(f"-v(a_t, t={t}) from learned Q\ncosine to true-Q field {cos:.2f}", fontsize=8)
            ax.set_aspect("equal")
        ax = ax_row[-1]
        ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.6)
        ax.scatter(samples[:, 0], samples[:, 1], s=1, c="tab:red", alpha=0.4)
        ax.set_title(f"raw map: {r['runs'][0]['modes_covered']} modes, {r['runs'][0]['high_reward_fraction']:.2f} in "
                     "them", fontsize=8)  # fmt: skip
        ax.set_aspect("equal")
    fig.suptitle(f"SOM on {bandit_name} with noisy rewards (seed {seeds[0]})")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "critic_noise.png"), dpi=90)
    plt.close(fig)
    return {"bandit": bandit_name, "times": list(times), "levels": results}


# CPU-sized locomotion runs for the Q diagnostics (docs/benchmarks.md's short HalfCheetah run)
QDIAG_SETTINGS = dict(
    num_envs=32, total_steps=96_000, batch_size=256, updates_per_step=8, learning_starts=8_000, log_every=8_000,
    eval_every=16_000, eval_episodes=4, actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu",
)  # fmt: skip
QDIAG_QUICK = dict(
    QDIAG_SETTINGS, num_envs=4, total_steps=512, learning_starts=256, log_every=256, eval_every=512, eval_episodes=2,
    updates_per_step=1, batch_size=32, actor_hidden=(16,), critic_hidden=(16,),
)  # fmt: skip


def probe_qdiag(out, runs: RunStore, run_dirs, env_name, methods, quick, num_states: int = 256) -> dict:
    """Q diagnostics on shared states: per run (default: SOM and MFP trained on env_name with the CPU
    settings of QDIAG_SETTINGS), N raw candidates per state scored by every run's critic (mean and
    std of Q over the candidates, per state: box plots), their spread, and a PCA of the candidates
    of a few states."""
    if not run_dirs:
        run_dirs = []
        for method in methods:
            settings = dict(QDIAG_QUICK if quick else QDIAG_SETTINGS)
            if method == "som":
                settings["num_samples"] = 32  # K: the CPU run's Monte-Carlo proposals
            runs.summary(env_name, method, 0, **settings)
            run_dirs.append(runs.path(env_name, method, 0))
    loaded = [load(d) for d in run_dirs]
    labels = [f"{r.config.algo}" if [x.config.algo for x in loaded].count(r.config.algo) == 1 else
              f"{r.config.algo} ({os.path.basename(d)})" for r, d in zip(loaded, run_dirs, strict=True)]  # fmt: skip
    replay = loaded[0].state.replay
    rows = jax.random.randint(jax.random.PRNGKey(0), (num_states,), 0, int(replay.size))
    states = replay.data.obs[rows]  # raw observations visited by the first run
    cands = {
        label: candidates(r, states, r.config.algo_config().num_candidates, jax.random.PRNGKey(1 + i))
        for i, (label, r) in enumerate(zip(labels, loaded, strict=True))
    }  # [S, N, A] each
    values, stats = {}, {}
    for critic_label, critic_run in zip(labels, loaded, strict=True):
        for label, c in cands.items():
            q = np.asarray(q_values(critic_run, states[:, None, :], c))  # [S, N]
            values[(critic_label, label)] = q
            stats[f"critic {critic_label}, candidates {label}"] = {
                "q_mean": float(q.mean()), "q_std_within_state": float(q.std(axis=1).mean()),
                "q_best_minus_mean": float((q.max(axis=1) - q.mean(axis=1)).mean()),
            }  # fmt: skip
    spread = {label: float(np.linalg.norm(c - c.mean(axis=1, keepdims=True), axis=-1).mean()) for label, c in
              ((k, np.asarray(v)) for k, v in cands.items())}  # fmt: skip
    plt = pyplot()
    shown = 3
    fig, axes = plt.subplots(1, 2 + shown, figsize=(4.2 * (2 + shown), 4.2), squeeze=False)
    axes = axes[0]
    keys = list(values)
    names = [f"{c[0]}'s Q\n{c[1]} cand." for c in keys]
    axes[0].boxplot([values[k].mean(axis=1) for k in keys], tick_labels=names)
    axes[0].set_title("per state: mean of Q over the N candidates", fontsize=9)
    axes[1].boxplot([values[k].std(axis=1) for k in keys], tick_labels=names)
    axes[1].set_title("per state: std of Q over the N candidates", fontsize=9)
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=7)
    pca_share, markers = [], "ox^sv"
    for j, ax in enumerate(axes[2:]):
        pooled = np.concatenate([np.asarray(c[j]) for c in cands.values()])
        xy, share = pca_2d(pooled)
        pca_share.append(share)
        q_judge = np.concatenate([values[(labels[0], label)][j] for label in cands])  # colour: the first run's Q
        n = 0
        for i, (label, c) in enumerate(cands.items()):
            part = slice(n, n + c.shape[1])
            points = ax.scatter(xy[part, 0], xy[part, 1], c=q_judge[part], vmin=q_judge.min(), vmax=q_judge.max(),
                                cmap="viridis", marker=markers[i % len(markers)], s=22, label=label)  # fmt: skip
            n += c.shape[1]
        fig.colorbar(points, ax=ax, fraction=0.046, label=f"{labels[0]}'s Q")
        ax.set_title(f"state {j}: PCA of the candidates ({share:.0%} of variance)", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Q diagnostics on {loaded[0].config.env}, {num_states} states from {labels[0]}'s replay")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "q_diagnostics.png"), dpi=90)
    plt.close(fig)
    return {
        "env": loaded[0].config.env, "runs": dict(zip(labels, run_dirs, strict=True)), "num_states": num_states,
        "env_steps": {label: r.env_steps for label, r in zip(labels, loaded, strict=True)},
        "eval_return": {label: _last_eval(d) for label, d in zip(labels, run_dirs, strict=True)},
        "values": stats, "candidate_spread": spread, "pca_variance_share": pca_share,
    }  # fmt: skip


def _last_eval(run_dir: str):
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f).get("eval/episode_return")


def summary_markdown(results: dict) -> str:
    lines = []

    def cell(r, k, f):
        return f"{r[k]['mean']:{f}} ± {r[k]['std']:{f}}"

    if "score" in results:
        lines += ["## score", "| t | cosine near modes | cosine far | median relative error |", "|---|---|---|---|"]
        for t, r in results["score"]["times"].items():
            far = "—" if r["cosine_far"] is None else f"{r['cosine_far']:.3f}"
            lines.append(f"| {t[2:]} | {r['cosine_near_modes']:.3f} | {far} | {r['median_relative_error']:.3f} |")
    if "ablation" in results:
        lines += ["", "## ablation", "| setting | modes covered | in high modes | |a| > 1.5 |", "|---|---|---|---|"]
        for name, r in results["ablation"]["settings"].items():
            lines.append(f"| {name} | {r['modes_covered']} / {r['num_high_modes']} | {r['high_reward_fraction']:.3f} | "
                         f"{r['outside_box_fraction']:.3f} |")  # fmt: skip
    if "learned" in results:
        lines += ["", "## learned", "| bandit, method | raw map: modes | raw map: in high modes | best-of-N: modes |"
                  " best-of-N: in high modes | seeds |", "|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in results["learned"].items():
            bon = (
                "— | —"
                if "bon_modes_covered" not in r
                else (f"{cell(r, 'bon_modes_covered', '.1f')} | {cell(r, 'bon_high_reward_fraction', '.3f')}")
            )
            lines.append(f"| {name} | {cell(r, 'modes_covered', '.1f')} / {r['num_high_modes']} | "
                         f"{cell(r, 'high_reward_fraction', '.3f')} | {bon} | {len(r['runs'])} |")  # fmt: skip
    if "noise" in results:
        times = results["noise"]["times"]
        lines += ["", f"## noise ({results['noise']['bandit']}, SOM)",
                  "| reward noise std | raw map: modes | raw map: in high modes | best-of-N: in high modes | "
                  "learned Q RMSE: in high modes, box (seed 0) | "
                  + " | ".join(f"velocity cosine t={t}" for t in times) + " |",
                  "|---" * (5 + len(times)) + "|"]  # fmt: skip
        for name, r in results["noise"]["levels"].items():
            cos = " | ".join(f"{r['velocity_cosine_learned_vs_true_q_seed0'][f't={t}']:.3f}" for t in times)
            lines.append(f"| {name.split('=')[1]} | {cell(r, 'modes_covered', '.1f')} / {r['num_high_modes']} | "
                         f"{cell(r, 'high_reward_fraction', '.3f')} | {cell(r, 'bon_high_reward_fraction', '.3f')} | "
                         f"{r['q_rmse_in_modes_seed0']:.3f}, {r['q_rmse_seed0']:.3f} | {cos} |")  # fmt: skip
    if "qdiag" in results:
        r = results["qdiag"]
        lines += ["", f"## qdiag ({r['env']}, {r['num_states']} states)",
                  "| critic, candidates | mean Q | std of Q within a state | best minus mean |",
                  "|---|---|---|---|"]  # fmt: skip
        for name, v in r["values"].items():
            lines.append(
                f"| {name} | {v['q_mean']:.3f} | {v['q_std_within_state']:.3f} | {v['q_best_minus_mean']:.3f} |"
            )
        spread = ", ".join(f"{k} {v:.3f}" for k, v in r["candidate_spread"].items())
        lines += ["", f"candidate spread (mean distance to the state's candidate mean): {spread}; "
                  f"eval returns: {r['eval_return']}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/probes", help="output folder (default docs/probes)")
    parser.add_argument("--runs", default="", help="folder of the probes' training runs (default OUT/runs); "
                        "finished runs with the same config are reused")  # fmt: skip
    parser.add_argument("--probes", default=",".join(PROBES), help=f"comma-separated, from: {', '.join(PROBES)}")
    parser.add_argument("--bandits", default=",".join(envs.bandits.BANDITS), help="bandits of the learned probe")
    parser.add_argument("--methods", default="som,mfp,dacer,sdac", help="algorithms of the learned probe")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the learned and noise probes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="learned/noise probes: a setting over the bandit preset, e.g. total_steps=96000",
    )
    parser.add_argument("--noise-bandit", default="bandit/eight_gaussians", help="bandit of the noise probe")
    parser.add_argument("--noise-scales", default="0,0.3,1", help="reward noise stds of the noise probe")
    parser.add_argument("--qdiag-env", default="HalfCheetah-v4", help="env of the qdiag probe's own runs")
    parser.add_argument("--qdiag-methods", default="som,mfp", help="algorithms of the qdiag probe's own runs")
    parser.add_argument("--qdiag-runs", default="", help="qdiag: comma-separated run directories to compare "
                        "instead of training its own (any env; states come from the first run's replay)")  # fmt: skip
    parser.add_argument("--no-train", action="store_true", help="build the tables and pictures from the finished "
                        "runs in --runs as they are (their env steps are in the table), training none")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for the tests)")
    args = parser.parse_args(argv)
    probes = [p for p in args.probes.split(",") if p]
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        parser.error(f"--probes: unknown {', '.join(unknown)}; choose from: {', '.join(PROBES)}")
    for algo in args.methods.split(",") + args.qdiag_methods.split(","):
        if algo not in agents.algos():
            parser.error(f"unknown algorithm {algo!r}; choose from: {', '.join(agents.algos())}")
    os.makedirs(args.out, exist_ok=True)
    runs = RunStore(args.runs or os.path.join(args.out, "runs"), train=not args.no_train)
    path = os.path.join(args.out, "probes.json")
    results = json.load(open(path)) if os.path.exists(path) else {}  # noqa: SIM115  (keeps earlier probes)
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = parse_settings(args.set)
    for probe in probes:
        start = time.perf_counter()
        if probe == "score":
            results["score"] = probe_score(args.out, args.quick)
        elif probe == "ablation":
            results["ablation"] = probe_ablation(args.out, args.quick)
        elif probe == "learned":
            learned = probe_learned(args.out, runs, args.bandits.split(","), args.methods.split(","), seeds, settings,
                                    args.quick)  # fmt: skip
            results["learned"] = {**results.get("learned", {}), **learned}
        elif probe == "noise":
            scales = [float(x) for x in args.noise_scales.split(",")]
            results["noise"] = probe_noise(args.out, runs, args.noise_bandit, scales, seeds, settings, args.quick)
        else:
            run_dirs = [d for d in args.qdiag_runs.split(",") if d]
            results["qdiag"] = probe_qdiag(args.out, runs, run_dirs, args.qdiag_env, args.qdiag_methods.split(","),
                                           args.quick)  # fmt: skip
        print(f"probe {probe}: {time.perf_counter() - start:.0f} s", flush=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    summary = summary_markdown(results)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    return results


if __name__ == "__main__":
    main()

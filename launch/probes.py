"""Mechanism probes: pictures and numbers that show what SOM's actor does on 2-D bandits.

    python launch/probes.py                       # everything; the learned probes take long on a CPU
    python launch/probes.py --probes score,ablation          # the estimator probes only (minutes on a CPU)
    python launch/probes.py --probes learned --methods som,mfp --seeds 0,1,2 --bandits bandit/eight_gaussians

Probes (each writes PNGs into --out and its numbers into --out/probes.json):
- score: SOM's estimated score (the denoising estimator, mjx_som/score.py) against the analytic noised
  score of a Gaussian-mixture target (the four high modes of eight_gaussians), at several t: cosine
  similarity near the modes and far from them, and a quiver picture.
- ablation: the transport performed by the estimated velocity field itself, integrated from noise with
  the TRUE reward as Q (no learning): mode coverage as a function of K (Monte-Carlo proposals) and
  alpha (inverse temperature), and the paper's literal estimator (idem, VP path) as a function of w.
- learned: training runs (mjx_som.train, the bandit preset and any --set) per bandit, method
  and seed: the transport picture of each method (seed 0) and a coverage table, mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs
import mjx_som
from mjx_som.api import parse_settings
from mjx_som.logging import pyplot
from mjx_som.probes import cosine, estimated_score, gmm_log_density, gmm_noised_score, integrate_field
from mjx_som.score import ScoreConfig, path_coefficients

PROBES = ("score", "ablation", "learned")


def probe_score(out: str, quick: bool) -> dict:
    """Estimated vs analytic score for the mixture of eight_gaussians' four high modes (std 0.1)."""
    bandit = envs.make("bandit/eight_gaussians")
    means = jnp.asarray(bandit.modes)  # agent coordinates: this bandit's box is [-1, 1]^2
    std0, weights = jnp.full(len(means), 0.1), jnp.full(len(means), 1.0 / len(means))
    config = ScoreConfig(num_samples=32 if quick else 100)
    q_fn = jax.vmap(lambda a: gmm_log_density(a, means, std0, weights) / config.alpha)
    times = (0.2, 0.8) if quick else (0.1, 0.3, 0.6, 0.9)
    side = 9 if quick else 41
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-1.5, 1.5, side), jnp.linspace(-1.5, 1.5, side)), -1).reshape(-1, 2)
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
    q_fn = jax.vmap(lambda a: bandit.reward_fn(bandit.scale_action(a)))
    samples, steps = (128, 20) if quick else (2048, 100)
    settings = {
        "K": [(k, ScoreConfig(num_samples=k)) for k in ((8,) if quick else (8, 32, 100, 300))],
        "alpha": [(a, ScoreConfig(alpha=a)) for a in (() if quick else (3.0, 10.0, 30.0, 100.0))],
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
    grid = np.linspace(-1, 1, 121)
    xy = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    heat = np.asarray(q_fn(jnp.asarray(xy))).reshape(121, 121)
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


def probe_learned(out: str, bandits: list[str], methods: list[str], seeds: list[int], settings: dict) -> dict:
    """Training runs: coverage per (bandit, method) over seeds, and each method's transport picture.
    settings: overrides of the bandit preset (mjx_som.train's keyword arguments)."""
    results = {}
    for bandit in bandits:
        for method in methods:
            runs = []
            for seed in seeds:
                run_dir = os.path.join(out, "runs", f"{bandit.replace('/', '_')}-{method}-s{seed}")
                start = time.perf_counter()
                result = mjx_som.train(bandit, algo=method, seed=seed, run_dir=run_dir, progress=False,
                                       wandb_mode="disabled", **settings)  # fmt: skip
                runs.append({**{k: result.summary[k] for k in ("modes_covered", "high_reward_fraction",
                             "bon_modes_covered", "bon_high_reward_fraction", "env_steps")},
                             "walltime_s": time.perf_counter() - start})  # fmt: skip
                if seed == seeds[0]:
                    name = f"transport_{bandit.split('/')[-1]}_{method}.png"
                    shutil.copy(os.path.join(run_dir, "returns.png"), os.path.join(out, name))
            summary = {}
            for key in ("modes_covered", "high_reward_fraction", "bon_modes_covered", "bon_high_reward_fraction"):
                values = np.asarray([r[key] for r in runs], float)
                summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
            results[f"{bandit} {method}"] = {
                "runs": runs,
                **summary,
                "num_high_modes": envs.make(bandit).modes.shape[0],
            }
    return results


def summary_markdown(results: dict) -> str:
    lines = []
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

        def cell(r, k, f):
            return f"{r[k]['mean']:{f}} ± {r[k]['std']:{f}}"

        for name, r in results["learned"].items():
            lines.append(f"| {name} | {cell(r, 'modes_covered', '.1f')} / {r['num_high_modes']} | "
                         f"{cell(r, 'high_reward_fraction', '.3f')} | {cell(r, 'bon_modes_covered', '.1f')} | "
                         f"{cell(r, 'bon_high_reward_fraction', '.3f')} | {len(r['runs'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/probes", help="output folder (default docs/probes)")
    parser.add_argument("--probes", default=",".join(PROBES), help=f"comma-separated, from: {', '.join(PROBES)}")
    parser.add_argument("--bandits", default=",".join(envs.bandits.BANDITS), help="bandits of the learned probe")
    parser.add_argument("--methods", default="som,mfp,dacer,sdac", help="algorithms of the learned probe")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the learned probe")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="learned probe: a setting over the bandit preset, e.g. total_steps=96000")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for the tests)")
    args = parser.parse_args(argv)
    probes = [p for p in args.probes.split(",") if p]
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        parser.error(f"--probes: unknown {', '.join(unknown)}; choose from: {', '.join(PROBES)}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "probes.json")
    results = json.load(open(path)) if os.path.exists(path) else {}  # noqa: SIM115  (keeps earlier probes)
    for probe in probes:
        start = time.perf_counter()
        if probe == "score":
            results["score"] = probe_score(args.out, args.quick)
        elif probe == "ablation":
            results["ablation"] = probe_ablation(args.out, args.quick)
        else:
            seeds = [int(s) for s in args.seeds.split(",")]
            settings = parse_settings(args.set)
            bandits, methods = args.bandits.split(","), args.methods.split(",")
            results["learned"] = probe_learned(args.out, bandits, methods, seeds, settings)
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

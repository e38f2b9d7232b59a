"""The research tools' figures, on matplotlib's file-only Agg backend: launch/bench.py's bars and scaling
curves, launch/report.py's return curves and the mechanism probes' pictures (mjx_som_lab/probe_suite.py).
Functions take numbers, draw and save; none computes a result."""

from __future__ import annotations

import numpy as np

from mjx_som.plotting import bandit_reward_image, pyplot, save_figure


def bench_bars(records: list[dict], path: str, title: str) -> None:
    """launch/bench.py's bench.png: inference ms per call (per batch size) and training ms per update,
    per algorithm, log scale."""
    plt = pyplot()
    algos = list(dict.fromkeys(r["algo"] for r in records))
    batches = sorted({r["batch_size"] for r in records})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(batches)
    for i, batch in enumerate(batches):
        rows = {r["algo"]: r for r in records if r["batch_size"] == batch}
        xs = [j + i * width for j in range(len(algos))]
        axes[0].bar(
            xs,
            [rows[a]["infer_ms_mean"] for a in algos],
            width,
            yerr=[rows[a]["infer_ms_std"] for a in algos],
            label=f"batch {batch}",
        )
    axes[0].set_xticks([j + width * (len(batches) - 1) / 2 for j in range(len(algos))], algos)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("inference ms per call")
    axes[0].legend()
    first = {r["algo"]: r for r in records if r["batch_size"] == batches[0]}
    axes[1].bar(algos, [first[a]["train_ms_mean"] for a in algos], yerr=[first[a]["train_ms_std"] for a in algos])
    axes[1].set_yscale("log")
    axes[1].set_ylabel(f"training ms per update (batch {first[algos[0]]['train_batch_size']})")
    fig.suptitle(title)
    save_figure(fig, path, 110)


def bench_scaling(rows: list[dict], path: str, title: str) -> None:
    """launch/bench.py's bench_scaling.png: inference ms against batch size and training-loop env steps/s
    against num_envs, one line per algorithm, log-log."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = [r for r in rows if r["algo"] == algo]
        axes[0].plot([r["batch_size"] for r in mine], [r["infer_ms_mean"] for r in mine], "o-", label=algo)
        axes[1].plot([r["num_envs"] for r in mine], [r["loop_env_steps_per_s"] for r in mine], "o-", label=algo)
    labels = ((axes[0], "inference ms per call", "batch size"), (axes[1], "training-loop env steps/s", "num_envs"))
    for ax, ylabel, xlabel in labels:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path, 110)


def report_curves(curves: dict, path: str) -> None:
    """launch/report.py's curves.png: per env (columns) eval return against env steps (top) and wall clock
    (bottom), mean ± std over seeds. curves: {(env, label): (steps, wall s, mean, std, seeds)} (report.curve)."""
    plt = pyplot()
    env_names = sorted({env for env, _ in curves})
    fig, axes = plt.subplots(2, len(env_names), figsize=(5.5 * len(env_names), 8), squeeze=False)
    for column, env in enumerate(env_names):
        for (curve_env, label), (steps, walls, mean, std, seeds) in sorted(curves.items()):
            if curve_env != env:
                continue
            for ax, x in ((axes[0, column], steps), (axes[1, column], walls)):
                ax.plot(x, mean, "-o", ms=3, label=f"{label} (n={seeds})")
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        for row, xlabel in enumerate(("environment steps", "wall clock (s, mean over seeds)")):
            ax = axes[row, column]
            ax.set_title(env)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("eval episode return")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    save_figure(fig, path, 110)


def score_directions(path: str, grid: np.ndarray, side: int, fields: list, results: dict, num_samples: int) -> None:
    """The score probe's picture: per t, unit arrows of the analytic (black) and estimated (red) score on
    a subgrid. fields: [(t, analytic [P, 2], estimated [P, 2])], results: "t=..." -> cosines."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 4.2), squeeze=False)
    step = max(1, side // 15)
    pick = np.arange(side * side).reshape(side, side)[::step, ::step].reshape(-1)

    def unit(v):
        return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)

    for ax, (t, true, est) in zip(axes[0], fields, strict=True):
        ax.quiver(grid[pick, 0], grid[pick, 1], *unit(true[pick]).T, color="black", alpha=0.6, label="analytic")
        ax.quiver(grid[pick, 0], grid[pick, 1], *unit(est[pick]).T, color="red", alpha=0.6, label="estimated")
        r = results[f"t={t}"]
        ax.set_title(f"t = {t}: cos near {r['cosine_near_modes']:.2f}, far {r['cosine_far'] or float('nan'):.2f}")
        ax.set_aspect("equal")
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"score directions, linear path, K = {num_samples}")
    save_figure(fig, path, 100)


def field_samples(path: str, bandit, pictures: list, title: str) -> None:
    """The ablation probe's picture: per setting, samples [S, 2] over the bandit's reward heat map.
    pictures: [(title, samples, mode_stats)]."""
    plt = pyplot()
    cols = 4
    rows = -(-len(pictures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    heat = bandit_reward_image(bandit)
    for ax in axes.reshape(-1):
        ax.axis("off")
    for ax, (name, actions, stats) in zip(axes.reshape(-1), pictures, strict=False):
        ax.axis("on")
        ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="viridis", alpha=0.8)
        clipped = np.clip(actions, -1.0, 1.0)
        ax.scatter(clipped[:, 0], clipped[:, 1], s=1, c="white", alpha=0.4)
        modes = f"{stats['modes_covered']} modes, {stats['high_reward_fraction']:.2f} in them"
        ax.set_title(f"{name}\n{modes}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    save_figure(fig, path, 100)


def noise_colours(noise: np.ndarray, radius: float) -> np.ndarray:
    """RGB per 2-D noise point: hue = its angle, brightness falls with its radius."""
    from matplotlib.colors import hsv_to_rgb

    hue = (np.arctan2(noise[:, 1], noise[:, 0]) / (2 * np.pi)) % 1.0
    r = np.linalg.norm(noise, axis=-1) / radius
    return hsv_to_rgb(np.stack([hue, np.clip(0.3 + r, 0, 1), np.clip(1.0 - 0.5 * r, 0.3, 1)], -1))


def transport_maps(path: str, bandit, maps: dict, coverage: dict, noise: np.ndarray) -> None:
    """One row: the noise grid, then per map where it sends each grid point (colour = the point's place
    in the noise disc) over the reward heat map. maps: title -> actions [P, 2] in agent coordinates,
    coverage: title -> mode_stats."""
    noise = np.asarray(noise)
    colours = noise_colours(noise, float(np.max(np.abs(noise))))
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
        for centre, radius in zip(bandit.modes, bandit.mode_radii, strict=True):
            ax.add_patch(plt.Circle(centre, radius, fill=False, color="red", lw=0.8))
        c = coverage[method]
        modes = f"{c['modes_covered']} / {c['num_high_modes']} modes, {c['high_reward_fraction']:.2f} in them"
        ax.set_title(f"{method}\n{modes}", fontsize=9)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
    fig.suptitle(f"{bandit.name}: where each map sends a grid of noise points (each method's first seed)")
    save_figure(fig, path, 100)


def family_maps(path: str, methods: list[str], landscapes: list[int], maps: dict) -> None:
    """A grid: one row per method, one column per landscape of the procedural bandit family; each panel the
    reward heat map, the high modes (red circles) and where the method's raw map sends 4096 noise draws.
    maps: (method, landscape) -> (the bandit, actions [P, 2] in agent coordinates)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(methods), len(landscapes), figsize=(2.6 * len(landscapes), 2.7 * len(methods)))
    axes = np.asarray(axes).reshape(len(methods), len(landscapes))
    for row, method in enumerate(methods):
        for col, landscape in enumerate(landscapes):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if (method, landscape) not in maps:
                continue
            bandit, actions = maps[method, landscape]
            xy = np.asarray(bandit.scale_action(actions))
            ax.imshow(bandit_reward_image(bandit, 101), origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.7)
            ax.scatter(xy[:, 0], xy[:, 1], s=1, c="tab:orange", alpha=0.3)
            for centre, radius in zip(bandit.modes, bandit.mode_radii, strict=True):
                ax.add_patch(plt.Circle(centre, radius, fill=False, color="red", lw=0.8))
            stats = bandit.mode_stats(actions)
            ax.set_title(
                f"{method}, landscape {landscape}\n{stats['modes_covered']}/{stats['num_high_modes']} modes, "
                f"{stats['high_reward_fraction']:.2f} in them",
                fontsize=7,
            )
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
    fig.suptitle("procedural bandits: where each raw map sends noise (seed 0)", fontsize=9)
    save_figure(fig, path, 90)


def critic_noise(path: str, bandit, rows: list, points: np.ndarray, side: int, title: str) -> None:
    """The noise probe's picture, per reward-noise level (rows): the learned Q on the box, -v(a_t, t) from
    it at a few t (arrows on every other grid point) and the raw map's samples. rows: [(scale, Q [side,
    side], [(t, v [P, 2])], samples [S, 2], the level's results)]."""
    plt = pyplot()
    cols = 2 + len(rows[0][2])
    fig, axes = plt.subplots(len(rows), cols, figsize=(3.3 * cols, 3.3 * len(rows)), squeeze=False)
    heat = bandit_reward_image(bandit)
    shown = np.arange(side * side).reshape(side, side)[::2, ::2].reshape(-1)
    for ax_row, (scale, q, fields, samples, r) in zip(axes, rows, strict=True):
        image = ax_row[0].imshow(q, origin="lower", extent=[-1, 1, -1, 1], cmap="viridis")
        fig.colorbar(image, ax=ax_row[0], fraction=0.046)
        rmse = f"in the high modes {r['q_rmse_in_modes_seed0']:.3f}, box {r['q_rmse_seed0']:.3f}"
        ax_row[0].set_title(f"noise std {scale:g}: learned min Q\nRMSE to true reward: {rmse}", fontsize=8)
        for ax, (t, v) in zip(ax_row[1:], fields, strict=False):
            direction = -v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)  # a_t moves along -v as t falls
            ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.5)
            ax.quiver(
                points[shown, 0],
                points[shown, 1],
                direction[shown, 0],
                direction[shown, 1],
                color="tab:red",
                angles="xy",
                scale_units="xy",
                scale=8.0,
                width=0.006,
            )
            ax.set_xlim(-1.55, 1.55)
            ax.set_ylim(-1.55, 1.55)
            cos = r["velocity_cosine_learned_vs_true_q_seed0"][f"t={t}"]
            ax.set_title(f"-v(a_t, t={t}) from learned Q\ncosine to true-Q field {cos:.2f}", fontsize=8)
            ax.set_aspect("equal")
        ax = ax_row[-1]
        ax.imshow(heat, origin="lower", extent=[-1, 1, -1, 1], cmap="gray", alpha=0.6)
        ax.scatter(samples[:, 0], samples[:, 1], s=1, c="tab:red", alpha=0.4)
        first = r["runs"][0]
        modes = f"{first['modes_covered']} modes, {first['high_reward_fraction']:.2f} in them"
        ax.set_title(f"raw map: {modes}", fontsize=8)
        ax.set_aspect("equal")
    fig.suptitle(title)
    save_figure(fig, path, 90)


def q_diagnostics(path: str, values: dict, candidates: dict, labels: list[str], title: str, shown: int = 3) -> list:
    """The qdiag probe's picture: box plots over states of the mean and std of Q over each run's N
    candidates (per critic x candidates pair), and a PCA of the pooled candidates of `shown` states
    coloured by the first run's Q. values: (critic label, candidates label) -> Q [S, N]; candidates:
    label -> [S, N, A]. Returns the PCA's variance share per shown state."""
    from mjx_som_lab.probes import pca_2d

    plt = pyplot()
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
    shares, markers = [], "ox^sv"
    for j, ax in enumerate(axes[2:]):
        pooled = np.concatenate([np.asarray(c[j]) for c in candidates.values()])
        xy, share = pca_2d(pooled)
        shares.append(share)
        q_judge = np.concatenate([values[(labels[0], label)][j] for label in candidates])  # colour: the first run's Q
        n = 0
        for i, (label, c) in enumerate(candidates.items()):
            part = slice(n, n + c.shape[1])
            points = ax.scatter(
                xy[part, 0],
                xy[part, 1],
                c=q_judge[part],
                vmin=q_judge.min(),
                vmax=q_judge.max(),
                cmap="viridis",
                marker=markers[i % len(markers)],
                s=22,
                label=label,
            )
            n += c.shape[1]
        fig.colorbar(points, ax=ax, fraction=0.046, label=f"{labels[0]}'s Q")
        ax.set_title(f"state {j}: PCA of the candidates ({share:.0%} of variance)", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path, 90)
    return shares

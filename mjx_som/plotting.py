"""A run's own figures, on matplotlib's file-only Agg backend: returns.png and a bandit's transport
picture. The research tools' figures (bench bars, report curves, the probes' pictures) are in
mjx_som_lab/figures.py. Functions take numbers, draw and save; none computes a result."""

from __future__ import annotations

import os

import numpy as np

from mjx_som.logging import read_metrics


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_returns(run_dir: str, title: str) -> str:
    """returns.png: eval (and training) episode return against env steps."""
    plt = pyplot()
    records = read_metrics(run_dir)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in (("eval/episode_return", "o-"), ("train/episode_return", "-")):
        points = [(r["env_steps"], r[key]) for r in records if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=key, alpha=0.8)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path = os.path.join(run_dir, "returns.png")
    save_figure(fig, path, 120)
    return path


def bandit_reward_image(env, side: int = 161) -> np.ndarray:
    """A bandit's expected reward on a side x side grid over its action box [-1, 1]^2 (rows = y), for imshow."""
    import jax.numpy as jnp

    axis = np.linspace(-1.0, 1.0, side)
    actions = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    return np.asarray(env.expected_reward(jnp.asarray(actions))).reshape(side, side)


def plot_bandit_transport(path: str, env, raw_actions, bon_actions, title: str) -> str:
    """A bandit run's picture (its returns.png, and one per evaluation): the reward heat map with where the
    raw one-step map sends noise (left) and the acting best-of-N policy's actions (right), in env
    coordinates."""
    import jax.numpy as jnp

    plt = pyplot()
    reward = bandit_reward_image(env)
    extent = [float(env.low[0]), float(env.high[0]), float(env.low[1]), float(env.high[1])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, actions, name in ((axes[0], raw_actions, "raw one-step map"), (axes[1], bon_actions, "best-of-N policy")):
        ax.imshow(reward, origin="lower", extent=extent, cmap="viridis", alpha=0.85)
        xy = np.asarray(env.scale_action(jnp.asarray(actions)))
        ax.scatter(xy[:, 0], xy[:, 1], s=2, c="white", alpha=0.4)
        if env.modes is not None:
            for centre, radius in zip(env.modes, env.mode_radii, strict=True):
                ax.add_patch(plt.Circle(centre, radius, fill=False, color="red", lw=1))
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.suptitle(title)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    save_figure(fig, path, 110)
    return path


def save_figure(fig, path: str, dpi: int) -> None:
    """fig laid out tightly, written to path at dpi and closed (every figure of the project ends here)."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)

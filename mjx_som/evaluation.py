"""What launch/eval.py does with a run: greedy episodes (optionally on a variant of the task), a video of
the first one, a frame strip, and the exported policy."""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
import tyro

import envs
from mjx_som.config import parse_overrides


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    run_dir: tyro.conf.Positional[str]
    """the run directory"""
    step: int = 0
    """the checkpoint's env step (0 = the latest)"""
    episodes: int = 0
    """greedy episodes, batched on the device (0 = the run's --eval-episodes)"""
    seed: int = -1
    """key of the episodes (-1 = the key of the run's own evaluation at that checkpoint)"""
    env: str = ""
    """another task with the same observation and action sizes (default: the run's)"""
    env_override: tuple[str, ...] = ()
    """task attributes for a variant of it, NAME=VALUE (e.g. ctrl_cost_weight=0.5; envs.make's overrides)"""
    video: str = ""
    """render the first episode into this file (.mp4 or .gif)"""
    strip: str = ""
    """write 8 evenly spaced frames of the first episode side by side into this PNG"""
    seconds: float = 0.0
    """film only the first SECONDS of the episode (0 = all of it)"""
    export: str = ""
    """write the greedy policy into this folder (policy.jax + policy.json, runs with jax alone)"""


def check_options(options: EvalOptions) -> None:
    """A ValueError naming the flag, before anything is loaded or evaluated: counts in range, and every output
    path writable where it points (an --export folder that is a file, a --video in a missing folder)."""
    for name in ("episodes", "step"):
        if getattr(options, name) < 0:
            raise ValueError(f"--{name} must be >= 0 (0 = the run's own), got {getattr(options, name)}")
    if options.seconds < 0:
        raise ValueError(f"--seconds must be >= 0 (0 = the whole episode), got {options.seconds}")
    if options.export and os.path.exists(options.export) and not os.path.isdir(options.export):
        raise ValueError(f"--export {options.export!r} is a file; give a folder (it is created if missing)")
    for flag, path, suffixes in (("--video", options.video, (".mp4", ".gif")), ("--strip", options.strip, (".png",))):
        if not path:
            continue
        if not path.endswith(suffixes):
            raise ValueError(f"{flag} {path!r}: the file name must end in {' or '.join(suffixes)}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"{flag} {path!r}: the folder {folder!r} does not exist")


def evaluate_run(options: EvalOptions) -> dict:
    """Loads the run, evaluates it (printing mean ± std return and length), renders and exports as asked;
    returns the metrics (with the variant's name, "env")."""
    from mjx_som.api import load

    check_options(options)
    run = load(options.run_dir, step=options.step or None)
    name = options.env or run.config.env
    overrides = parse_overrides(options.env_override)
    try:
        env = envs.make(name, **overrides) if (options.env or overrides) else None
    except (TypeError, ValueError) as e:
        raise ValueError(f"--env {name!r} with --env-override {list(options.env_override)}: {e}") from e
    key = None if options.seed < 0 else jax.random.PRNGKey(options.seed)
    metrics, episode = run.evaluate(options.episodes, env, key)
    episodes = options.episodes or run.config.eval_episodes
    print(
        f"{options.run_dir} at env step {run.env_steps} on {name}{' ' + str(overrides) if overrides else ''}: "
        f"{episodes} episodes, return {metrics['eval/episode_return']:.2f} ± {metrics['eval/episode_return_std']:.2f}, "
        f"length {metrics['eval/episode_length']:.1f}"
    )
    if options.video or options.strip:
        if not episode:
            raise ValueError(f"{name} has no MuJoCo state to render (a bandit: see its returns.png)")
        task = env or run.env
        if options.seconds > 0:
            episode = {**episode, "length": min(int(episode["length"]), max(1, round(options.seconds / task.dt)))}
        frames = episode_frames(task, episode, run.config.video_size)
        if options.video:
            from mjx_som.video import write_video

            write_video(options.video, frames, 1.0 / task.dt)
            print(f"video of the first episode ({len(frames)} frames): {options.video}")
        if options.strip:
            write_strip(options.strip, frames)
            print(f"frame strip: {options.strip}")
    if options.export:
        spec = run.export(options.export)
        print(
            f"policy exported to {options.export} (observations {spec['observation_size']}, actions "
            f"{spec['action_size']}); load it with: {spec['load']}"
        )
    return {**metrics, "env": name}


def episode_frames(env, episode: dict, size: tuple[int, int]) -> np.ndarray:
    """The episode's frames [T, H, W, 3], rendered here (MUJOCO_GL; a clear error when it cannot)."""
    from mjx_som.video import render

    length = max(int(episode["length"]), 1)
    qpos, qvel = np.asarray(episode["qpos"])[:length], np.asarray(episode["qvel"])[:length]
    try:
        return render(env.mj_model, qpos, qvel, env.camera, *size)
    except Exception as e:  # noqa: BLE001 — each OpenGL backend fails in its own way
        raise ValueError(
            f"cannot render with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} ({type(e).__name__}: {e}); "
            "try MUJOCO_GL=osmesa (or egl), set before Python starts"
        ) from e


def write_strip(path: str, frames: np.ndarray, count: int = 8) -> None:
    """count evenly spaced frames side by side, one PNG."""
    import imageio.v3 as iio

    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    iio.imwrite(path, np.concatenate([frames[i] for i in picks], axis=1))

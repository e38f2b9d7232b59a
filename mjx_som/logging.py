"""Run records: metrics.jsonl (always), Weights & Biases (when enabled), returns.png, and a
live progress bar. Training never depends on W&B: any W&B failure prints one warning and
the local files go on."""

from __future__ import annotations

import functools
import json
import math
import netrc
import os
import secrets
import warnings

import numpy as np

WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB_INIT_TIMEOUT_S = 15  # without a network W&B's own default waits 90 s before the first chunk


def resolve_wandb_mode(mode: str) -> str:
    """auto -> online when an API key is configured (WANDB_API_KEY or ~/.netrc), else offline."""
    if mode not in WANDB_MODES:
        raise ValueError(f"--wandb-mode {mode!r}; allowed: {', '.join(WANDB_MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE") in ("online", "offline", "disabled"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError):
        pass
    return "offline"


def new_wandb_run_id() -> str:
    """A fresh W&B run id (kept in checkpoints so a resumed run continues the same W&B run)."""
    return secrets.token_hex(4)


def _jsonable(value):
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.item() if np.ndim(value) == 0 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLogger:
    """Writes one JSON object per log point to metrics.jsonl and mirrors it to W&B."""

    def __init__(
        self, run_dir: str, config: dict, wandb_mode: str, wandb_project: str, run_name: str, run_id: str,
        group: str = "", enabled: bool = True,
    ):  # fmt: skip
        """enabled=False (processes other than 0 of a multi-host run): writes and logs nothing."""
        self.path = os.path.join(run_dir, "metrics.jsonl") if enabled else None
        self.wandb_run = None
        self.wandb_mode = resolve_wandb_mode(wandb_mode)
        if self.wandb_mode != "disabled" and enabled:
            try:
                import wandb

                init = functools.partial(
                    wandb.init, project=wandb_project, config=config, dir=run_dir, name=run_name, id=run_id,
                    resume="allow", group=group or None,
                    settings=wandb.Settings(silent=True, init_timeout=WANDB_INIT_TIMEOUT_S),
                )  # fmt: skip
                try:
                    self.wandb_run = init(mode=self.wandb_mode)
                except Exception as e:  # noqa: BLE001
                    if self.wandb_mode != "online":
                        raise
                    warnings.warn(
                        f"W&B online init failed ({type(e).__name__}: {e}); logging offline to {run_dir}/wandb "
                        "instead (upload it later with `wandb sync`)",
                        stacklevel=2,
                    )
                    self.wandb_mode = "offline"
                    self.wandb_run = init(mode="offline")
            except Exception as e:  # noqa: BLE001 — W&B must never stop training
                self._wandb_failed(e)

    def _wandb_failed(self, error: Exception) -> None:
        warnings.warn(f"W&B disabled for this run ({type(error).__name__}: {error}); local files go on", stacklevel=3)
        self.wandb_run = None

    def log(self, record: dict) -> None:
        if self.path is None:
            return
        record = {k: _jsonable(v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            try:
                self.wandb_run.log({k: v for k, v in record.items() if v is not None}, step=int(record["env_steps"]))
            except Exception as e:  # noqa: BLE001
                self._wandb_failed(e)

    def finish(self, summary: dict) -> None:
        if self.wandb_run is not None:
            try:
                self.wandb_run.summary.update({k: _jsonable(v) for k, v in summary.items()})
                self.wandb_run.finish()
            except Exception as e:  # noqa: BLE001
                self._wandb_failed(e)


def flatten_config(values: dict, prefix: str = "") -> dict:
    """{"som": {"w": 5}} -> {"som.w": 5}: a config dict with dotted names for nested settings."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_metrics(run_dir: str) -> list[dict]:
    """The records of run_dir/metrics.jsonl. A partial last line (a process killed mid-write) is left out
    with a warning; a damaged line before it is a ValueError naming the file and line."""
    path = os.path.join(run_dir, "metrics.jsonl")
    with open(path) as f:
        lines = [(number, line) for number, line in enumerate(f, 1) if line.strip()]
    records = []
    for i, (number, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < len(lines) - 1:
                raise ValueError(f"{path}, line {number}: not a JSON record ({e})") from e
            warnings.warn(f"{path}, line {number}: a partial last record (cut off mid-write) is left out", stacklevel=2)
    return records


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bandit_reward_image(env, side: int = 161) -> np.ndarray:
    """A bandit's expected reward on a side x side grid over its action box [-1, 1]^2 (rows = y), for imshow."""
    import jax.numpy as jnp

    axis = np.linspace(-1.0, 1.0, side)
    actions = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    return np.asarray(env.expected_reward(jnp.asarray(actions))).reshape(side, side)


def plot_bandit_transport(run_dir: str, env, raw_actions, bon_actions, title: str) -> str:
    """returns.png for bandits: the reward heat map with where the raw one-step map sends noise
    (left) and the acting best-of-N policy's actions (right), in env coordinates."""
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
            for centre in env.modes:
                ax.add_patch(plt.Circle(centre, env.mode_radius, fill=False, color="red", lw=1))
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.suptitle(title)
    path = os.path.join(run_dir, "returns.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class Progress:
    """A rich progress bar: env steps, env steps/s, latest eval return, ETA."""

    def __init__(self, total_steps: int, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), disable=not enabled,
        )  # fmt: skip
        self.task = self.bar.add_task("train", total=total_steps, info="compiling...")

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def update(self, env_steps: int, steps_per_s: float | None, eval_return) -> None:
        ret = "—" if eval_return is None else f"{eval_return:.1f}"
        speed = "compiling..." if steps_per_s is None else f"{steps_per_s:,.0f} steps/s"
        self.bar.update(self.task, completed=env_steps, info=f"{speed}  eval return {ret}")

"""Run records: metrics.jsonl (always), Weights & Biases (when enabled) and a live progress bar
(returns.png is drawn by mjx_som.plotting). Training never depends on W&B: any W&B failure prints one warning and
the local files go on."""

from __future__ import annotations

import functools
import json
import math
import netrc
import os
import secrets
import sys
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
        self,
        run_dir: str,
        config: dict,
        wandb_mode: str,
        wandb_project: str,
        run_name: str,
        run_id: str,
        group: str = "",
        enabled: bool = True,
    ):
        """enabled=False (processes other than 0 of a multi-host run): writes and logs nothing."""
        self.path = os.path.join(run_dir, "metrics.jsonl") if enabled else None
        self.wandb_run = None
        self.wandb_mode = resolve_wandb_mode(wandb_mode)
        if self.wandb_mode != "disabled" and enabled:
            try:
                import wandb

                init = functools.partial(
                    wandb.init,
                    project=wandb_project,
                    config=config,
                    dir=run_dir,
                    name=run_name,
                    id=run_id,
                    resume="allow",
                    group=group or None,
                    settings=wandb.Settings(silent=True, init_timeout=WANDB_INIT_TIMEOUT_S),
                )
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
                    wandb.teardown()  # the failed online run keeps its id "in use" in W&B's service otherwise
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

    def log_media(self, key: str, files: list[tuple[str, str]], step: int) -> None:
        """Videos (.mp4) or picture files [(path, caption)] to W&B under key at env step `step`, in one call:
        W&B keeps one value per key and step, so several files at one step go as one list (the files stay
        in the run)."""
        if self.wandb_run is None or not files:
            return
        try:
            import wandb

            media = [
                wandb.Video(path, caption=caption) if path.endswith(".mp4") else wandb.Image(path, caption=caption)
                for path, caption in files
            ]
            self.wandb_run.log({key: media if len(media) > 1 else media[0]}, step=step)
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


class Progress:
    """A rich progress bar: env steps, env steps/s, latest eval return, ETA. When stdout is not a terminal (a
    log file, a pipe, a batch job) rich would draw nothing until the end: plain lines are printed instead, one
    per log point."""

    def __init__(self, total_steps: int, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.plain = enabled and not sys.stdout.isatty()
        self.total_steps = total_steps
        enabled = enabled and not self.plain
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
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
        if self.plain:
            print(f"train {env_steps:,}/{self.total_steps:,} env steps  {speed}  eval return {ret}", flush=True)

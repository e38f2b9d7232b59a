"""Training runs kept for reuse, one folder per (env, algo, seed) under a folder: the mechanism probes
(mjx_som_lab/probe_suite.py) train through it, so an interrupted probe sweep picks up where it stopped."""

from __future__ import annotations

import dataclasses
import json
import os

from mjx_som.api import load, run
from mjx_som.cli import config_from_flags
from mjx_som.config_file import check_resume


class RunStore:
    """Runs under `folder`, named <env>-<algo>-s<seed>. A finished run with the same config is reused, an
    interrupted one resumed; train=False uses the finished runs as they are, whatever their config, and
    trains none."""

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

    def summary(self, env, algo: str, seed: int, flags: list[str] = ()) -> dict:
        """summary.json of the run of (env, algo, seed) with launch/run.py's flags over the env's preset
        (config.config_from_flags; other algorithms' flags are ignored): a finished run with that config is
        reused, an interrupted one resumed from its checkpoint, a missing one trained, one stopped before its
        first checkpoint started again from its beginning (config.check_resume). A folder holding anything else
        (another config, files that are not a run) stops with the reason; nothing else is ever replaced."""
        env_name = env if isinstance(env, str) else env.name
        run_dir = self.path(env_name, algo, seed)
        summary_path = os.path.join(run_dir, "summary.json")
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        if not self.train:
            if summary is None or summary.get("interrupted"):
                raise SystemExit(f"--no-train: {run_dir} holds no finished run")
            return summary
        config = dataclasses.replace(
            config_from_flags(env, algo, flags), seed=seed, run_dir=run_dir, progress=False, wandb_mode="disabled"
        )
        env_object = None if isinstance(env, str) else env
        if not os.path.isdir(run_dir) or not os.listdir(run_dir):
            return _finished(run(config, env=env_object).summary, run_dir)
        try:
            resumed = check_resume(dataclasses.replace(config, resume=run_dir))
        except ValueError as e:
            raise SystemExit(
                f"cannot use {run_dir} here: {e}. Nothing was deleted: move that folder or point --runs at another one"
            ) from e
        if summary is not None and summary["env_steps"] >= config.total_steps and not summary["interrupted"]:
            print(f"reusing {run_dir}", flush=True)
            return summary
        print(f"resuming {run_dir}", flush=True)
        return _finished(run(resumed, env=env_object).summary, run_dir)

    def load(self, env, algo: str, seed: int):
        """The finished run restored (mjx_som.load)."""
        name = env if isinstance(env, str) else env.name
        return load(self.path(name, algo, seed), env=None if isinstance(env, str) else env)


def _finished(summary: dict, run_dir: str) -> dict:
    """summary, unless its run was interrupted (Ctrl-C): then the probes stop (exit status 130) instead of
    computing their figures from a partly trained run; running them again resumes it."""
    if summary["interrupted"]:
        print(f"{run_dir} was interrupted at {summary['env_steps']} env steps; run the probes again to resume it")
        raise SystemExit(130)
    return summary

"""A sweep's grid (the YAML file of launch/sweep.py): envs x algos x seeds x hyper-parameters expanded
into one launch/run.py command line per run."""

from __future__ import annotations

import itertools
import os

import yaml

from mjx_som.cli import to_flags

KNOWN_KEYS = {"name", "envs", "algos", "seeds", "grid", "flags"}


def load_grid(path: str) -> dict:
    with open(path) as f:
        spec = yaml.safe_load(f)
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(KNOWN_KEYS))}")
    for key in ("name", "envs", "algos"):
        if not spec.get(key):
            raise ValueError(f"{path}: '{key}' is required")
    spec.setdefault("seeds", [0])
    spec.setdefault("grid", {})
    spec.setdefault("flags", {})
    return spec


def expand(spec: dict, out: str) -> list[dict]:
    """One {run_dir, args} per (env, algo, grid point, seed); "algo.field" grid axes and flags apply only
    to that algo's runs (a run's CLI has its own algorithm's flags only)."""
    runs = []
    for env, algo in itertools.product(spec["envs"], spec["algos"]):
        axes = {k: v for k, v in spec["grid"].items() if "." not in k or k.split(".")[0] == algo}
        flags = {k: v for k, v in spec["flags"].items() if "." not in k or k.split(".")[0] == algo}
        for values in itertools.product(*axes.values()):
            point = dict(zip(axes, values, strict=True))
            tag = "".join(f"-{k.split('.')[-1]}={v}" for k, v in point.items())
            for seed in spec["seeds"]:
                run_dir = os.path.join(out, f"{env.replace('/', '_')}-{algo}{tag}-s{seed}")
                settings = {
                    **flags,
                    **point,
                    "env": env,
                    "algo": algo,
                    "seed": seed,
                    "run_dir": run_dir,
                    "wandb_group": spec["name"],
                }
                runs.append({"run_dir": run_dir, "args": to_flags(settings)})
    return runs

"""Run a grid of training runs locally: envs x algos x seeds x hyper-parameters, from a YAML file.

    python launch/sweep.py launch/sweeps/bandit_coverage.yaml
    python launch/sweep.py my_grid.yaml --parallel 4 --out runs/my_sweep     # 4 runs at a time
    python launch/report.py runs/my_sweep/*                                     # then aggregate

The YAML file:

    name: bandit-coverage          # W&B group and default output folder runs/<name>
    envs: [bandit/eight_gaussians]
    algos: [som, mfp]
    seeds: [0, 1, 2]
    grid:                          # optional: flag -> values; "algo.field" applies to that algo only
      som.w: [3.0, 5.0]
    flags:                         # optional: flags every run gets; "algo.field" only that algo's runs
      total_steps: 96000
      wandb_mode: offline

Every run is `python launch/run.py` in a subprocess with its own run directory
<out>/<env>-<algo>[-<flag>=<value>...]-s<seed>, so each one has the usual files and can be resumed on
its own. With --parallel K > 1, K runs go at once; on GPUs run i sees only device i mod K
(CUDA_VISIBLE_DEVICES). A run that fails is reported at the end; the others go on. launch/sweeps/ also
holds W&B sweep files (`wandb sweep launch/sweeps/wandb_*.yaml`) for W&B's online sweep agent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tyro

from mjx_som_lab.sweep import expand, load_grid


@dataclass(frozen=True)
class SweepOptions:
    grid: tyro.conf.Positional[str]
    """the sweep's YAML file"""
    out: str = ""
    """output folder (default runs/<name>)"""
    parallel: int = 1
    """runs at a time"""
    dry_run: bool = False
    """print the commands only"""


HERE = os.path.dirname(os.path.abspath(__file__))


def launch(run: dict, slot: int, parallel: int, log_dir: str) -> int:
    env = dict(os.environ)
    if parallel > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % parallel)
    log = os.path.join(log_dir, os.path.basename(run["run_dir"]) + ".log")
    with open(log, "w") as f:
        cmd = [sys.executable, os.path.join(HERE, "run.py"), "--no-progress", *run["args"]]
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(SweepOptions, args=argv, description=__doc__)
    spec = load_grid(args.grid)
    out = args.out or os.path.join("runs", spec["name"])
    runs = expand(spec, out)
    if args.dry_run:
        for run in runs:
            print("python launch/run.py " + " ".join(run["args"]))
        return 0
    log_dir = os.path.join(out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    print(f"{len(runs)} runs into {out} ({args.parallel} at a time); logs in {log_dir}", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        codes = list(pool.map(lambda ir: launch(ir[1], ir[0], args.parallel, log_dir), enumerate(runs)))
    failed = [r["run_dir"] for r, code in zip(runs, codes, strict=True) if code != 0]
    print(f"done in {time.perf_counter() - start:.0f} s: {len(runs) - len(failed)} ok, {len(failed)} failed")
    for run_dir in failed:
        print(f"  failed: {run_dir} (see {os.path.join(log_dir, os.path.basename(run_dir) + '.log')})")
    print(f"aggregate with: python launch/report.py {out}/*")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

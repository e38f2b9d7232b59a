"""Evaluate a trained run, film it, ship it.

    python launch/eval.py RUN_DIR                          # greedy episodes (the run's --eval-episodes): return, length
    python launch/eval.py RUN_DIR --video run.mp4          # and a video of the first episode (.gif works too)
    python launch/eval.py RUN_DIR --env-override ctrl_cost_weight=0.5   # a variant of the task (robustness)
    python launch/eval.py RUN_DIR --export policy/         # the policy as a jax.export file (docs/eval.md)

The latest checkpoint is used (--step picks another). With the run's own number of episodes and no
--seed, the key is the one the run's own evaluation used at that checkpoint, so the run's last
evaluation is reproduced.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; set before MuJoCo is imported

import sys  # noqa: E402

import tyro  # noqa: E402

from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som.evaluation import EvalOptions, evaluate_run  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    options = tyro.cli(EvalOptions, args=argv, description=__doc__)
    try:
        return evaluate_run(options)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()

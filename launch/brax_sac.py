"""brax's own SAC on one of our environments, with the settings of our SAC run for the same flags (the
peer anchor of docs/benchmarks.md). Takes launch/run.py's flags (--env, --seed, --num-envs, --sac.*, ...);
writes a run directory that launch/report.py reads.

    python launch/brax_sac.py --env HalfCheetah-v4 --seed 0 --run-dir runs/brax-hc-s0
"""

from __future__ import annotations

import sys

from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som.cli import config_from_flags, parse_selection
from mjx_som.config import RunConfig
from mjx_som_lab import peers


def main(argv: list[str] | None = None) -> int:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    argv = sys.argv[1:] if argv is None else argv
    chosen = parse_selection(argv)
    config = config_from_flags(chosen.env or RunConfig.env, "sac", argv, chosen.preset or "auto")
    run_dir = config.run_dir or f"runs/{config.env}-{peers.BRAX_ALGO}-s{config.seed}"
    try:
        summary = peers.train_brax_sac(config, run_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done: {summary['env_steps']} env steps, eval return {summary['eval/episode_return']}, run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

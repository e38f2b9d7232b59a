"""Train an agent: a thin CLI over mjx_som.api (every flag is a RunConfig / algorithm field).

    python launch/run.py                                   # SOM on HalfCheetah-v4 (4096 envs on a GPU, 32 on a CPU)
    python launch/run.py --env bandit/eight_gaussians
    python launch/run.py --env Hopper-v4 --num-envs 1024 --som.w 3 --wandb-mode offline

    python launch/run.py --resume runs/HalfCheetah-v4-som-s0-20261127-101500   # continue a run

Defaults come from the environment's preset for this machine (mjx_som.config.PRESETS; --preset
accelerator|cpu|none picks another), so pass --env first to see its defaults in --help; with --resume
they come from the run's config.json.
Ctrl-C (or SIGTERM) finishes the current chunk, writes a checkpoint and summary.json and
exits with status 130; a run stopped by non-finite updates exits with status 3.
"""

from __future__ import annotations

import argparse
import sys

import tyro

import envs
from mjx_som import agents, api
from mjx_som.benchmarks import device_name
from mjx_som.config import RunConfig, cli_class, default_config, load_config, to_run_config
from mjx_som.sharding import init_distributed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--resume", default="")
    pre.add_argument("--coordinator", default="")
    pre.add_argument("--num-processes", type=int, default=1)
    pre.add_argument("--process-id", type=int, default=0)
    known, _ = pre.parse_known_args(argv)
    try:  # before anything touches a device
        init_distributed(known.coordinator, known.num_processes, known.process_id)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        saved = load_config(known.resume) if known.resume else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pre.add_argument("--env", default=saved.env if saved else RunConfig.env)
    pre.add_argument("--algo", default=saved.algo if saved else RunConfig.algo)
    pre.add_argument("--preset", default=saved.preset if saved else RunConfig.preset)
    known, _ = pre.parse_known_args(argv)
    if known.env not in envs.names():
        print(f"error: --env {known.env!r} is unknown; valid names: {', '.join(envs.names())}", file=sys.stderr)
        return 2
    try:
        agents.config_class(known.algo)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default = saved if saved and (known.env, known.algo) == (saved.env, saved.algo) else None
    try:
        default = default or default_config(known.env, known.algo, known.preset)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cli = cli_class(default.algo)  # --help and the flags show this algorithm's block only
    config = to_run_config(tyro.cli(cli, args=argv, default=cli(**vars(default)), description=__doc__))
    if device_name() == "cpu" and config.num_envs >= 1024:
        print(
            f"note: {config.num_envs} envs on a CPU: compiling takes minutes and each log point "
            f"({config.log_every:,} env steps) many more; on a CPU try --env bandit/eight_gaussians "
            "or --env InvertedPendulum-v4",
            file=sys.stderr,
        )
    try:
        result = api.run(config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except api.NonFiniteUpdates as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    summary = result.summary
    if summary["interrupted"]:
        print(
            f"stopped at {summary['env_steps']} env steps; checkpoint, summary.json and metrics are in "
            f"{result.run_dir}; resume with: python launch/run.py --resume {result.run_dir}"
        )
        return 130
    print(
        f"done: {summary['env_steps']} env steps, eval return {summary['eval/episode_return']}, run in {result.run_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

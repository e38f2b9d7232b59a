"""Train an agent: a thin CLI over mjx_som.api (every flag is a RunConfig / algorithm field).

    python launch/run.py                                   # SOM on HalfCheetah-v4 (4096 envs on a GPU, 32 on a CPU)
    python launch/run.py --env bandit/eight_gaussians
    python launch/run.py --env Hopper-v4 --num-envs 1024 --som.w 3 --wandb-mode offline

    python launch/run.py --resume runs/HalfCheetah-v4-som-s0-20261127-101500   # continue a run

Defaults come from the environment's preset for this machine (mjx_som.config.PRESETS; --preset
accelerator|cpu|none picks another), so pass --env first to see its defaults in --help; with --resume
they come from the run's config.json.
Ctrl-C (or SIGTERM) finishes the current chunk, writes a checkpoint and summary.json and
exits with status 130; a run stopped by non-finite updates exits with status 3, one that could not write a
checkpoint (a full disk) with status 4; bad input exits with status 2 before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import sys

import envs
from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som import agents, api
from mjx_som.cli import parse_run_flags, parse_selection
from mjx_som.config import RunConfig, default_config
from mjx_som.config_file import load_config
from mjx_som.runner import default_run_dir
from mjx_som.sharding import device_name, init_distributed


def main(argv: list[str] | None = None) -> int:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    argv = sys.argv[1:] if argv is None else argv
    chosen = parse_selection(argv)
    try:  # before anything touches a device
        init_distributed(chosen.coordinator, chosen.num_processes, chosen.process_id)
        saved = load_config(chosen.resume) if chosen.resume else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env = chosen.env or (saved.env if saved else RunConfig.env)
    algo = chosen.algo or (saved.algo if saved else RunConfig.algo)
    preset = chosen.preset or (saved.preset if saved else RunConfig.preset)
    protocol = chosen.protocol or (saved.protocol if saved else RunConfig.protocol)
    if not envs.known(env):
        print(f"error: --env {env!r} is unknown; valid names: {', '.join(envs.names())}", file=sys.stderr)
        return 2
    try:
        agents.config_class(algo)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default = saved if saved and (env, algo) == (saved.env, saved.algo) else None
    try:
        default = default or default_config(env, algo, preset, protocol)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = parse_run_flags(default, argv, __doc__)  # --help and the flags show this algorithm's block only
    if device_name() == "cpu" and config.num_envs >= 1024:
        print(
            f"note: {config.num_envs} envs on a CPU: compiling takes minutes and each log point "
            f"({config.log_every:,} env steps) many more; on a CPU try --env bandit/eight_gaussians "
            "or --env InvertedPendulum-v4",
            file=sys.stderr,
        )
    config = dataclasses.replace(config, run_dir=config.run_dir or config.resume or default_run_dir(config))
    try:
        result = api.run(config)
    except KeyboardInterrupt:  # before the loop's own handler (while compiling): nothing was trained
        print(
            f"\ninterrupted while starting, before any training; `python launch/run.py --resume {config.run_dir}` "
            "starts it again",
            file=sys.stderr,
        )
        return 130
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except api.NonFiniteUpdates as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except api.CheckpointWriteFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
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

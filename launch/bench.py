"""Throughput benchmarks, in one process on one device.

    python launch/bench.py --env HalfCheetah-v4 --env-only --num-envs 256,4096 --json bench.json

--env-only measures environment steps per second under random actions (auto-reset on),
the physical limit that training throughput is compared with.
"""

from __future__ import annotations

import argparse
import json

import envs
from mjx_som.benchmarks import device_name, env_throughput


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v4", help=f"environment, one of: {', '.join(envs.names())}")
    parser.add_argument("--env-only", action="store_true", help="measure environment steps/s only")
    parser.add_argument("--num-envs", default="4096", help="comma-separated env counts (default 4096)")
    parser.add_argument("--steps-per-call", type=int, default=100, help="env steps per jitted call (default 100)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls after warm-up (default 30)")
    parser.add_argument("--json", default=None, help="write the records to this JSON file")
    args = parser.parse_args(argv)
    if args.env not in envs.names():
        parser.error(f"--env {args.env!r} is unknown; choose one of: {', '.join(envs.names())}")
    env = envs.make(args.env)
    records = []
    device = device_name()
    for num_envs in parse_ints(args.num_envs):
        r = env_throughput(env, num_envs, steps_per_call=args.steps_per_call, repeats=args.repeats)
        r.update(kind="env_only", env=args.env, device=device)
        records.append(r)
        print(
            f"{args.env} env-only  num_envs={num_envs:6d}  "
            f"{r['env_steps_per_s']:12,.0f} ± {r['env_steps_per_s_std']:,.0f} env steps/s  [{device}]",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=2)
    return records


if __name__ == "__main__":
    main()

"""Throughput benchmarks, in one process on one device.

    python launch/bench.py --env HalfCheetah-v4 --algos som,sac,mfp,dacer,qsm,sdac,dpmd,qvpo,dipo
    python launch/bench.py --env HalfCheetah-v4 --env-only --num-envs 256,4096

Per algorithm (its default config: the same networks for all): inference ms per greedy act() call
at each --batch-sizes (the whole sampler: every denoising step, all N candidates, the critic's
selection), training ms per gradient update at the config's batch size, and env steps/s of the whole
training loop (act, step, insert, updates) at --num-envs; plus env-only steps/s at --num-envs (the
physical limit) and every algorithm's inference time relative to SOM's. Times are means ± std over
--repeats calls after a warm-up call, blocked until ready.

Writes --json (one record per algorithm and batch size), bench.png (inference and training bars)
and, with --scaling, bench_scaling.png (inference ms and loop env steps/s against batch size /
num_envs, SOM vs --scaling-baseline). --env-only measures environment steps/s only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import envs
from mjx_som import agents
from mjx_som.agents import EnvSpec
from mjx_som.benchmarks import device_name, env_throughput, inference_ms, loop_throughput, update_ms
from mjx_som.config import apply_overrides, default_config, parse_settings
from mjx_som.trainer import Trainer


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def build(env, args, algo: str, num_envs: int):
    """(agent, trainer, config) from the env's default config for algo, learning from the first step."""
    config = apply_overrides(default_config(args.env, algo, args.preset), parse_settings(args.set))
    config = dataclasses.replace(
        config, num_envs=num_envs, learning_starts=0, log_every=num_envs * args.loop_iterations,
        buffer_size=args.buffer_size, batch_size=args.train_batch_size or config.batch_size,
    )  # fmt: skip
    spec = EnvSpec(env.observation_size, env.action_size, max(config.total_updates, 1))
    agent = agents.make_agent(algo, config.algo_config(), spec)
    return agent, Trainer(env, agent, config, eval_episodes=1), config


def bench_algo(env, args, algo: str, batch_sizes: list[int], num_envs: int) -> list[dict]:
    import jax

    agent, trainer, config = build(env, args, algo, num_envs)
    state = agent.init(jax.random.PRNGKey(0))
    train_ms, train_std = update_ms(
        agent, state, env.observation_size, env.action_size, config.batch_size, args.repeats
    )
    loop = (None, None) if args.skip_loop else loop_throughput(trainer, args.loop_repeats)
    records = []
    for batch in batch_sizes:
        infer_ms, infer_std = inference_ms(agent, state, env.observation_size, batch, args.repeats)
        records.append(
            dict(
                algo=algo, batch_size=batch, infer_ms_mean=infer_ms, infer_ms_std=infer_std, train_ms_mean=train_ms,
                train_ms_std=train_std, train_batch_size=config.batch_size, num_envs=num_envs,
                loop_env_steps_per_s=loop[0], loop_env_steps_per_s_std=loop[1],
                diffusion_steps=getattr(config.algo_config(), "diffusion_steps", 1),
                num_candidates=getattr(config.algo_config(), "num_candidates", 1),
            )
        )  # fmt: skip
    return records


def plot(records: list[dict], path: str, title: str) -> None:
    from mjx_som.logging import pyplot

    plt = pyplot()
    algos = list(dict.fromkeys(r["algo"] for r in records))
    batches = sorted({r["batch_size"] for r in records})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(batches)
    for i, batch in enumerate(batches):
        rows = {r["algo"]: r for r in records if r["batch_size"] == batch}
        xs = [j + i * width for j in range(len(algos))]
        axes[0].bar(xs, [rows[a]["infer_ms_mean"] for a in algos], width, yerr=[rows[a]["infer_ms_std"] for a in algos],
                    label=f"batch {batch}")  # fmt: skip
    axes[0].set_xticks([j + width * (len(batches) - 1) / 2 for j in range(len(algos))], algos)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("inference ms per call")
    axes[0].legend()
    first = {r["algo"]: r for r in records if r["batch_size"] == batches[0]}
    axes[1].bar(algos, [first[a]["train_ms_mean"] for a in algos], yerr=[first[a]["train_ms_std"] for a in algos])
    axes[1].set_yscale("log")
    axes[1].set_ylabel(f"training ms per update (batch {first[algos[0]]['train_batch_size']})")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(rows: list[dict], path: str, title: str) -> None:
    from mjx_som.logging import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = [r for r in rows if r["algo"] == algo]
        axes[0].plot([r["batch_size"] for r in mine], [r["infer_ms_mean"] for r in mine], "o-", label=algo)
        axes[1].plot([r["num_envs"] for r in mine], [r["loop_env_steps_per_s"] for r in mine], "o-", label=algo)
    for ax, ylabel, xlabel in ((axes[0], "inference ms per call", "batch size"),
                               (axes[1], "training-loop env steps/s", "num_envs")):  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v4", help=f"environment, one of: {', '.join(envs.names())}")
    parser.add_argument("--algos", default="som,dacer,sdac", help=f"comma-separated, from: {', '.join(agents.algos())}")
    parser.add_argument("--batch-sizes", default="", help="inference batch sizes (default 1,4096; 1,256 on a CPU)")
    parser.add_argument("--num-envs", default="", help="envs of the training-loop (and env-only) measurement "
                        "(default 4096; 64 on a CPU, where 4096 envs x 100 steps take minutes per call)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=30, help="timed calls after warm-up (default 30)")
    parser.add_argument("--loop-iterations", type=int, default=10, help="vector steps per timed training chunk")
    parser.add_argument("--loop-repeats", type=int, default=3, help="timed training chunks (default 3)")
    parser.add_argument("--buffer-size", type=int, default=1_000_000, help="replay capacity of the loop measurement")
    parser.add_argument("--train-batch-size", type=int, default=0, help="transitions per update (0 = the config's)")
    parser.add_argument(
        "--preset",
        default="auto",
        help="the env's preset for each algorithm's config: auto (this "
        "machine's), accelerator, cpu or none (the plain defaults)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every algorithm, e.g. --set actor_hidden=[64,64] (repeatable)")  # fmt: skip
    parser.add_argument(
        "--scaling", default="", help="batch sizes = num_envs for bench_scaling.png, e.g. 256,1024,4096"
    )
    parser.add_argument("--scaling-baseline", default="sdac", help="the diffusion actor compared with SOM there")
    parser.add_argument("--env-only", action="store_true", help="measure environment steps/s only")
    parser.add_argument("--skip-loop", action="store_true", help="skip the training-loop and env-only measurements")
    parser.add_argument("--steps-per-call", type=int, default=0, help="env steps per jitted env-only call "
                        "(default 100; 20 on a CPU)")  # fmt: skip
    parser.add_argument("--json", default=None, help="write the records to this JSON file")
    parser.add_argument("--out-dir", default=".", help="folder for bench.png and bench_scaling.png")
    args = parser.parse_args(argv)
    on_cpu = device_name() == "cpu"  # defaults sized for the device: a CPU call must take seconds, not minutes
    args.batch_sizes = args.batch_sizes or ("1,256" if on_cpu else "1,4096")
    args.num_envs = args.num_envs or ("64" if on_cpu else "4096")
    args.steps_per_call = args.steps_per_call or (20 if on_cpu else 100)
    if args.env not in envs.names():
        parser.error(f"--env {args.env!r} is unknown; choose one of: {', '.join(envs.names())}")
    algos = [a for a in args.algos.split(",") if a]
    unknown = [a for a in algos + [args.scaling_baseline] if a not in agents.algos()]
    if unknown:
        parser.error(f"--algos: unknown {', '.join(unknown)}; choose from: {', '.join(agents.algos())}")
    env = envs.make(args.env)
    device = device_name()
    records = []
    for num_envs in [] if args.skip_loop else parse_ints(args.num_envs):
        r = env_throughput(env, num_envs, steps_per_call=args.steps_per_call, repeats=max(3, args.repeats // 10))
        r.update(kind="env_only", env=args.env, device=device)
        records.append(r)
        print(f"{args.env} env-only  num_envs={num_envs:6d}  {r['env_steps_per_s']:12,.0f} env steps/s  [{device}]")
    if not args.env_only:
        num_envs = parse_ints(args.num_envs)[0]
        rows = []
        for algo in algos:
            rows += bench_algo(env, args, algo, parse_ints(args.batch_sizes), num_envs)
            for r in rows[-len(parse_ints(args.batch_sizes)) :]:
                print(
                    f"{algo:6s} batch {r['batch_size']:5d}: "
                    f"infer {r['infer_ms_mean']:9.3f} ± {r['infer_ms_std']:.3f} ms"
                    f"  train {r['train_ms_mean']:8.2f} ms/update"
                    f"  loop {r['loop_env_steps_per_s'] or 0:12,.0f} env steps/s",
                    flush=True,
                )
        som = {r["batch_size"]: r["infer_ms_mean"] for r in rows if r["algo"] == "som"}
        for r in rows:
            r.update(kind="algo", env=args.env, device=device)
            if r["batch_size"] in som:
                r["infer_ratio_vs_som"] = r["infer_ms_mean"] / som[r["batch_size"]]
        if som:
            print("inference time relative to SOM (same batch size):")
            for r in rows:
                print(f"  {r['algo']:6s} batch {r['batch_size']:5d}: {r['infer_ratio_vs_som']:6.2f}x")
        os.makedirs(args.out_dir, exist_ok=True)
        plot(rows, os.path.join(args.out_dir, "bench.png"), f"{args.env} on {device}")
        records += rows
        if args.scaling:
            scaling = []
            for algo in ("som", args.scaling_baseline):
                for n in parse_ints(args.scaling):
                    scaling += bench_algo(env, args, algo, [n], n)
            for r in scaling:
                r.update(kind="scaling", env=args.env, device=device)
            plot_scaling(scaling, os.path.join(args.out_dir, "bench_scaling.png"), f"{args.env} on {device}")
            records += scaling
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=2)
    return records


if __name__ == "__main__":
    main()

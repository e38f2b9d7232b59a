"""launch/bench.py's measurements (it is their CLI): per algorithm, inference ms per greedy act() call,
training ms per gradient update and the training loop's env steps/s, plus env-only steps/s; the
timing primitives are in mjx_som_lab/benchmarks.py, the figures in mjx_som_lab/figures.py."""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import envs
from envs.playground import PREFIX as PLAYGROUND_PREFIX
from mjx_som import agents
from mjx_som.agents import EnvSpec
from mjx_som.cli import check_replaced_flags, config_from_flags
from mjx_som.config import RunConfig
from mjx_som.sharding import device_name
from mjx_som.trainer import Trainer
from mjx_som_lab.benchmarks import (
    env_throughput,
    inference_cost,
    inference_ms,
    loop_throughput,
    update_cost,
    update_ms,
)
from mjx_som_lab.figures import bench_bars, bench_scaling


@functools.cache
def run_config(env: str, algo: str, flags: tuple[str, ...], preset: str) -> RunConfig:
    """run.py's config for algo with these flags, parsed once per algorithm (check() validates, the
    measurements reuse it)."""
    return config_from_flags(env, algo, list(flags), preset)


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    env: str = "HalfCheetah-v4"
    """environment (envs.names())"""
    algos: str = "som,dacer,sdac"
    """comma-separated algorithms"""
    batch_sizes: str = ""
    """inference batch sizes (default 1,4096; 1,256 on a CPU)"""
    num_envs: str = ""
    """envs of the training-loop (and env-only) measurement, comma-separated (default 4096; 64 on a CPU,
    where 4096 envs x 100 steps take minutes per call)"""
    repeats: int = 30
    """timed calls after warm-up"""
    loop_iterations: int = 10
    """vector steps per timed training chunk"""
    loop_repeats: int = 3
    """timed training chunks"""
    preset: str = "auto"
    """the env's preset for each algorithm's config: auto (this machine's), accelerator, cpu or none"""
    scaling: str = ""
    """batch sizes = num_envs for bench_scaling.png, e.g. 256,1024,4096"""
    scaling_baseline: str = "sdac"
    """the diffusion actor compared with SOM there"""
    env_only: bool = False
    """measure environment steps/s only"""
    skip_loop: bool = False
    """skip the training-loop and env-only measurements"""
    steps_per_call: int = 0
    """env steps per jitted env-only call (default 100; 20 on a CPU)"""
    json: str = ""
    """write the records to this JSON file"""
    out_dir: str = "."
    """folder for bench.png and bench_scaling.png"""

    def for_device(self) -> BenchOptions:
        """The sizes left empty, filled for this machine: a CPU call must take seconds, not minutes."""
        on_cpu = device_name() == "cpu"
        return dataclasses.replace(
            self,
            batch_sizes=self.batch_sizes or ("1,256" if on_cpu else "1,4096"),
            num_envs=self.num_envs or ("64" if on_cpu else "4096"),
            steps_per_call=self.steps_per_call or (20 if on_cpu else 100),
        )

    def check(self, flags: list[str]) -> None:
        """A ValueError naming the flag for an unknown env or algorithm or a replaced flag; run.py's flags
        are parsed for every algorithm (tyro exits with status 2 naming a bad one), all before compiling."""
        if self.env not in envs.names():
            raise ValueError(f"--env {self.env!r} is unknown; choose one of: {', '.join(envs.names())}")
        unknown = [a for a in self.algo_list + [self.scaling_baseline] if a not in agents.algos()]
        if unknown:
            raise ValueError(f"--algos: unknown {', '.join(unknown)}; choose from: {', '.join(agents.algos())}")
        check_replaced_flags(flags)
        for algo in self.algo_list:
            run_config(self.env, algo, tuple(flags), self.preset)

    @property
    def algo_list(self) -> list[str]:
        return [a for a in self.algos.split(",") if a]


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def build(env, options: BenchOptions, flags: list[str], algo: str, num_envs: int):
    """(agent, trainer, config): the env's config for algo with run.py's flags, learning from the first step."""
    config = dataclasses.replace(
        run_config(options.env, algo, tuple(flags), options.preset),
        num_envs=num_envs,
        learning_starts=0,
        log_every=num_envs * options.loop_iterations,
    )
    spec = EnvSpec(env.observation_size, env.action_size, max(config.total_updates, 1))
    agent = agents.make_agent(algo, config.algo_config(), spec)
    return agent, Trainer(env, agent, config, eval_episodes=1), config


def bench_algo(
    env, options: BenchOptions, flags: list[str], algo: str, batch_sizes: list[int], num_envs: int
) -> list[dict]:
    import jax

    agent, trainer, config = build(env, options, flags, algo, num_envs)
    state = agent.init(jax.random.PRNGKey(0))
    precision = config.network_precision or config.matmul_precision  # an agent's calls are networks only
    train_ms, train_std = update_ms(
        agent, state, env.observation_size, env.action_size, config.batch_size, options.repeats, precision
    )
    loop = (None, None) if options.skip_loop else loop_throughput(trainer, options.loop_repeats)
    # XLA's own count of each program's floating-point work (the same on any machine) and its compile time
    update = update_cost(agent, state, env.observation_size, env.action_size, config.batch_size, precision)
    records = []
    for batch in batch_sizes:
        infer_ms, infer_std = inference_ms(agent, state, env.observation_size, batch, options.repeats, precision)
        act = inference_cost(agent, state, env.observation_size, batch, precision)
        records.append(
            dict(
                algo=algo,
                update_gflops=update["gflops"],
                update_compile_s=update["compile_s"],
                act_gflops=act["gflops"],
                act_compile_s=act["compile_s"],
                batch_size=batch,
                infer_ms_mean=infer_ms,
                infer_ms_std=infer_std,
                train_ms_mean=train_ms,
                train_ms_std=train_std,
                train_batch_size=config.batch_size,
                num_envs=num_envs,
                matmul_precision=config.matmul_precision,
                network_precision=precision,
                loop_env_steps_per_s=loop[0],
                loop_env_steps_per_s_std=loop[1],
                diffusion_steps=agents.setting(config.algo_config(), "diffusion_steps", 1),
                num_candidates=agents.setting(config.algo_config(), "num_candidates", 1),
            )
        )
    return records


def run_bench(options: BenchOptions, flags: list[str]) -> list[dict]:
    """Every measurement options asks for (sizes already filled: BenchOptions.for_device), printed as it
    goes; writes bench.png (and bench_scaling.png) into options.out_dir and the records to options.json."""
    algos = options.algo_list
    env = envs.make(options.env)
    device = device_name()
    records = []
    # a Playground task is also stepped through Playground's own wrapper: our adapter should cost nothing
    wrappers = ("mjx_som", "playground") if options.env.startswith(PLAYGROUND_PREFIX) else ("mjx_som",)
    # the physics at the trainer's matmul precision (run.py's --matmul-precision; TF32 would flatter it on a GPU)
    precision = run_config(options.env, (algos or ["som"])[0], tuple(flags), options.preset).matmul_precision
    repeats = max(3, options.repeats // 10)
    for num_envs in [] if options.skip_loop else parse_ints(options.num_envs):
        for wrapper in wrappers:
            r = env_throughput(
                env, num_envs, options.steps_per_call, repeats, wrapper=wrapper, matmul_precision=precision
            )
            r.update(kind="env_only", env=options.env, device=device)
            records.append(r)
            print(
                f"{options.env} env-only ({wrapper})  num_envs={num_envs:6d}  "
                f"{r['env_steps_per_s']:12,.0f} ± {r['env_steps_per_s_std']:,.0f} env steps/s  "
                f"[{device}, matmul precision {precision}]"
            )
    if not options.env_only:
        num_envs = parse_ints(options.num_envs)[0]
        rows = []
        for algo in algos:
            rows += bench_algo(env, options, flags, algo, parse_ints(options.batch_sizes), num_envs)
            for r in rows[-len(parse_ints(options.batch_sizes)) :]:
                print(
                    f"{algo:6s} batch {r['batch_size']:5d}: "
                    f"infer {r['infer_ms_mean']:9.3f} ± {r['infer_ms_std']:.3f} ms"
                    f"  train {r['train_ms_mean']:8.2f} ms/update ({r['update_gflops']:.3g} GFLOP,"
                    f" compiled in {r['update_compile_s']:.1f} s)"
                    f"  loop {r['loop_env_steps_per_s'] or 0:12,.0f} env steps/s",
                    flush=True,
                )
        som = {r["batch_size"]: r["infer_ms_mean"] for r in rows if r["algo"] == "som"}
        for r in rows:
            r.update(kind="algo", env=options.env, device=device)
            if r["batch_size"] in som:
                r["infer_ratio_vs_som"] = r["infer_ms_mean"] / som[r["batch_size"]]
        if som:
            print("inference time relative to SOM (same batch size):")
            for r in rows:
                print(f"  {r['algo']:6s} batch {r['batch_size']:5d}: {r['infer_ratio_vs_som']:6.2f}x")
        os.makedirs(options.out_dir, exist_ok=True)
        bench_bars(rows, os.path.join(options.out_dir, "bench.png"), f"{options.env} on {device}")
        records += rows
        if options.scaling:
            scaling = []
            for algo in ("som", options.scaling_baseline):
                for n in parse_ints(options.scaling):
                    scaling += bench_algo(env, options, flags, algo, [n], n)
            for r in scaling:
                r.update(kind="scaling", env=options.env, device=device)
            bench_scaling(scaling, os.path.join(options.out_dir, "bench_scaling.png"), f"{options.env} on {device}")
            records += scaling
    if options.json:
        with open(options.json, "w") as f:
            json.dump(records, f, indent=2)
    return records

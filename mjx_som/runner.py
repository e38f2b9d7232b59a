"""The host side of a run: the run directory, resuming, the loop over jitted chunks (evaluation,
checkpoints, the non-finite stop, Ctrl-C), summary.json and the bandit coverage. mjx_som.api's train,
resume and load are built on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import envs
from envs.bandits import Bandit
from mjx_som import agents, sharding
from mjx_som.agents.base import EnvSpec
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.config import RunConfig, check_resume, config_to_dict, validate
from mjx_som.logging import Progress, RunLogger, new_wandb_run_id, read_metrics
from mjx_som.plotting import plot_bandit_transport, plot_returns
from mjx_som.sharding import device_name, host_value, make_mesh, per_device_bytes, replicated
from mjx_som.trainer import Trainer

COVERAGE_SAMPLES = 4096
RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "returns.png",
    "checkpoints",
    "corrupt_checkpoints",
    "wandb",
)


def _truncate_metrics(run_dir: str, env_steps: int) -> list[dict]:
    """Drops metrics.jsonl records logged after the checkpoint at env_steps; returns the rest."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    records = [r for r in read_metrics(run_dir) if r["env_steps"] <= env_steps]
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return records


NO_UPDATES = "no gradient update was made: the policy is the initial one (see --learning-starts, --total-steps)"


def _check_run_dir(run_dir: str, resuming: bool, overwrite: bool) -> None:
    """A ValueError unless run_dir can take this run's files: a folder (or nothing yet) that is writable, and
    empty unless the run resumes it or --overwrite replaces its run files."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"--run-dir {run_dir!r} is a file, not a folder")
    existing = os.path.isdir(run_dir)
    if existing and not resuming and not overwrite and os.listdir(run_dir):
        raise ValueError(
            f"--run-dir {run_dir!r} is not empty: continue that run with --resume {run_dir}, choose another "
            "--run-dir, or pass --overwrite to replace its run files"
        )
    parent = run_dir if existing else os.path.dirname(os.path.abspath(run_dir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--run-dir {run_dir!r}: {parent!r} is not writable")


def _remove_run_files(run_dir: str) -> None:
    """--overwrite: removes this package's files from run_dir (RUN_FILES), nothing else."""
    for name in RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


class NonFiniteUpdates(RuntimeError):
    """Raised when --max-consecutive-skips updates in a row were not finite."""


def check_memory(trainer: Trainer, num_devices: int) -> dict[str, int]:
    """The bytes per device of the whole training state (replay, env states, networks and optimiser
    states), from the trainer's abstract state; a ValueError naming the flags to change when it
    exceeds 80% of a device's memory. (Activations of the updates come on top.)"""
    abstract = trainer.abstract_state
    shardings = trainer.shardings or jax.tree.map(lambda _: replicated(make_mesh(1)), abstract)
    plan = per_device_bytes(abstract, shardings, num_devices)
    limit, total = sharding.memory_limit_bytes(), sum(plan.values())
    if total > 0.8 * limit:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in plan.items())
        raise ValueError(
            f"the training state needs {total / 2**30:.2f} GiB per device ({parts}), more than 80% of the "
            f"{limit / 2**30:.2f} GiB available on {device_name()}; lower --buffer-size or --num-envs, or use more "
            f"--devices"
        )
    return plan


@dataclass
class TrainResult:
    summary: dict
    run_dir: str
    policy: Callable  # policy(obs [B, O], rng) -> action [B, A], jitted, greedy


def _default_run_dir(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.env.replace('/', '_')}-{config.algo}-s{config.seed}-{stamp}")


def _coverage(env: Bandit, trainer: Trainer, state, key) -> tuple[dict, jax.Array, jax.Array]:
    """Mode coverage of the raw generative map and of the acting (best-of-N) policy, and the
    samples [COVERAGE_SAMPLES, 2] of each."""
    obs = trainer.normalize(state.normalizer, jnp.zeros((COVERAGE_SAMPLES, env.observation_size)))
    key_raw, key_bon = jax.random.split(key)
    raw_actions = trainer.agent.sample(state.agent, obs, key_raw)
    bon_actions = trainer.agent.act(state.agent, obs, key_bon, False)
    raw, bon = env.mode_stats(raw_actions), env.mode_stats(bon_actions)
    stats = {**raw, "bon_modes_covered": bon["modes_covered"], "bon_high_reward_fraction": bon["high_reward_fraction"]}
    return stats, raw_actions, bon_actions


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to stop after the current chunk; later ones are acknowledged and ignored
    (the checkpoint must be written whole)."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested:  # a second signal must not break the checkpoint being written
            print(f"\n{name}: already stopping; the checkpoint and summary.json follow this chunk", file=sys.stderr)
            return
        self.requested = True
        print(f"\n{name}: stopping after the current chunk...", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run(config: RunConfig, env=None) -> TrainResult:
    """Runs a resolved RunConfig; env: an environment object to use instead of config.env."""
    env_obj = envs.make(config.env) if env is None else env
    validate(config, env_obj)
    resuming = bool(config.resume)
    if resuming:
        config = check_resume(config)
    run_dir = config.run_dir or _default_run_dir(config)
    config = dataclasses.replace(config, run_dir=run_dir)
    config_dict = config_to_dict(config)
    is_main = jax.process_index() == 0  # only process 0 writes run files and logs
    if is_main:
        _check_run_dir(run_dir, resuming, config.overwrite)

    mesh = make_mesh(config.devices)
    trainer = make_trainer(config, env_obj, mesh)
    check_memory(trainer, mesh.size)  # before anything is allocated or written
    if not resuming and is_main:
        if config.overwrite:
            _remove_run_files(run_dir)
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config_dict, f, indent=2)

    checkpointer = Checkpointer(run_dir, config.keep_checkpoints)
    key_init, key_eval = jax.random.split(jax.random.PRNGKey(config.seed))
    last_eval = {}
    if resuming:
        state, meta = checkpointer.restore_intact(trainer.abstract_state, config.resume_step or None)
        state = trainer.place(state)
        records = _truncate_metrics(run_dir, meta["env_steps"]) if is_main else []
        evals = [r for r in records if r.get("eval/episode_return") is not None]
        if evals:
            last_eval = {k: v for k, v in evals[-1].items() if k.startswith("eval/")}
        wandb_run_id, walltime_before = meta["wandb_run_id"], meta["walltime_s"]
        updates = int(meta.get("updates", 0))
        print(f"resuming {run_dir} from env step {meta['env_steps']}", file=sys.stderr)
    else:
        state = trainer.init(key_init)
        wandb_run_id, walltime_before, updates = new_wandb_run_id(), 0.0, 0
    logger = RunLogger(
        run_dir, config_dict, config.wandb_mode, config.wandb_project, os.path.basename(run_dir), wandb_run_id,
        group=config.wandb_group, enabled=is_main,
    )  # fmt: skip

    start = time.perf_counter()
    env_steps = int(host_value(state.env_steps))
    steps_per_chunk = config.chunk_iterations * config.num_envs
    next_eval = (env_steps // config.eval_every + 1) * config.eval_every
    checkpoint_every = config.checkpoint_every or math.inf
    next_checkpoint = (env_steps // checkpoint_every + 1) * checkpoint_every

    def walltime() -> float:
        return walltime_before + time.perf_counter() - start

    def save_checkpoint():
        meta = {"env_steps": env_steps, "walltime_s": walltime(), "wandb_run_id": wandb_run_id, "updates": updates}
        checkpointer.save(state, meta)

    def write_summary(**extra) -> dict:
        """summary.json's record (bandits: with the mode coverage), written by process 0."""
        out = {
            "env": config.env, "algo": config.algo, "eval/episode_return": last_eval.get("eval/episode_return"),
            "env_steps": env_steps, "walltime_s": walltime(), "device": device_name(), "num_devices": mesh.size,
            "num_processes": jax.process_count(), "interrupted": stop.requested, "updates": updates,
            "skipped_updates": int(host_value(state.skipped_updates)),
            "checkpoint": f"{checkpoint_dir(run_dir)}/{checkpointer.manager.latest_step()}", **extra,
        }  # fmt: skip
        if updates == 0:
            out["warning"] = NO_UPDATES
        if is_main:
            with open(os.path.join(run_dir, "summary.json"), "w") as f:
                json.dump(out, f, indent=2)
        return out

    with _StopRequest() as stop, Progress(config.num_chunks * steps_per_chunk, config.progress) as progress:
        progress.update(env_steps, None, last_eval.get("eval/episode_return"))
        for chunk in range(env_steps // steps_per_chunk, config.num_chunks):
            chunk_start = time.perf_counter()
            state, metrics = trainer.chunk(state)
            metrics = {k: host_value(v) for k, v in metrics.items()}
            env_steps = int(host_value(state.env_steps))
            record = {"env_steps": env_steps, "walltime_s": walltime()}
            record["train/env_steps_per_s"] = steps_per_chunk / (time.perf_counter() - chunk_start)
            record.update({k: float(v) for k, v in metrics.items()})
            updates += int(record["train/updates"])
            record["train/updates"] = updates  # cumulative: a run that never updated shows a flat 0
            if env_steps >= next_eval or chunk == config.num_chunks - 1:
                key = jax.random.fold_in(key_eval, env_steps)
                evaluation = trainer.evaluate(state.agent, state.normalizer, key)
                last_eval = {k: float(host_value(v)) for k, v in evaluation.items()}
                record.update(last_eval)
                next_eval = (env_steps // config.eval_every + 1) * config.eval_every
            logger.log(record)
            progress.update(env_steps, record["train/env_steps_per_s"], last_eval.get("eval/episode_return"))
            skips = int(host_value(state.consecutive_skips))
            if config.max_consecutive_skips and skips >= config.max_consecutive_skips:
                skipped = int(host_value(state.skipped_updates))
                last = checkpointer.latest_step()
                where = f"{checkpoint_dir(run_dir)}/{last}" if last is not None else "none was written"
                if updates == 0:
                    where += " (no update was ever finite: it holds the initial, never-updated parameters)"
                message = (
                    f"{skips} consecutive non-finite updates by env step {env_steps} (--max-consecutive-skips "
                    f"{config.max_consecutive_skips}): the loss, gradients or parameters became NaN/inf; "
                    f"{skipped} updates were skipped in all. Last good checkpoint: {where}"
                )
                logger.finish(write_summary(stopped=message))
                checkpointer.close()
                raise NonFiniteUpdates(message)
            if env_steps >= next_checkpoint:
                save_checkpoint()
                next_checkpoint = (env_steps // checkpoint_every + 1) * checkpoint_every
            if stop.requested:
                break
        save_checkpoint()

    stats, transport = {}, None
    if isinstance(env_obj, Bandit) and env_obj.modes is not None:
        stats, *transport = _coverage(env_obj, trainer, state, jax.random.PRNGKey(config.seed + 1))
    summary = write_summary(**stats)
    checkpointer.close()
    if updates == 0:
        warnings.warn(f"{run_dir}: {NO_UPDATES}", stacklevel=2)
    if is_main:
        title = f"{config.algo} on {config.env}"
        if transport is not None:
            plot_bandit_transport(run_dir, env_obj, *transport, f"{title}, {env_steps} env steps")
        elif os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
            plot_returns(run_dir, title)
    logger.finish(summary)

    return TrainResult(summary=summary, run_dir=run_dir, policy=greedy_policy(trainer, state))


def make_trainer(config: RunConfig, env, mesh=None) -> Trainer:
    """The agent of config.algo for env, inside the trainer of config."""
    spec = EnvSpec(env.observation_size, env.action_size, config.total_updates)
    agent = agents.make_agent(config.algo, config.algo_config(), spec)
    return Trainer(env, agent, config, eval_episodes=config.eval_episodes, mesh=mesh)


def greedy_policy(trainer: Trainer, state) -> Callable:
    """policy(obs [B, O], rng) -> action [B, A]: jitted, greedy, raw observations in."""
    agent_state, normalizer = state.agent, state.normalizer

    @jax.jit
    def policy(obs, rng):
        return trainer.agent.act(agent_state, trainer.normalize(normalizer, obs), rng, False)

    return policy

"""The host side of a run: the run directory, resuming, the loop over jitted chunks (evaluation,
checkpoints, the non-finite stop, Ctrl-C), summary.json and the bandit coverage. mjx_som.api's train,
resume and load are built on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from envs.bandits import Bandit
from mjx_som import agents, sharding
from mjx_som.agents.base import EnvSpec
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.config import RunConfig
from mjx_som.config_file import check_resume, config_to_dict, load_config, settings_that_differ
from mjx_som.logging import Progress, RunLogger, flatten_config, new_wandb_run_id, read_metrics
from mjx_som.plotting import plot_bandit_transport, plot_returns
from mjx_som.sharding import device_name, host_value, make_mesh, per_device_bytes, replicated
from mjx_som.trainer import Trainer
from mjx_som.validation import validate
from mjx_som.video import VideoRecorder

COVERAGE_SAMPLES = 4096
RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "returns.png",
    "checkpoints",
    "corrupt_checkpoints",
    "wandb",
    "videos",
    "transport",
)
LOCK_FILE = "run.lock"  # held (flock) by the run writing the folder, for its whole life; never removed


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
    empty unless the run resumes it or --overwrite replaces its run files, which it does only in a folder
    that holds a run of this package (a config.json it can read)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"--run-dir {run_dir!r} is a file, not a folder")
    existing = os.path.isdir(run_dir)
    used = existing and bool(set(os.listdir(run_dir)) - {LOCK_FILE})
    if used and not resuming and not overwrite:
        raise ValueError(
            f"--run-dir {run_dir!r} is not empty: continue that run with --resume {run_dir}, choose another "
            "--run-dir, or pass --overwrite to replace its run files"
        )
    if used and overwrite and not resuming:
        try:
            load_config(run_dir, "--overwrite")
        except Exception as e:  # not a config.json of ours: JSON errors, unknown or missing settings
            raise ValueError(
                f"--overwrite: --run-dir {run_dir!r} is not a run of this package ({e}); nothing was deleted: "
                "choose another --run-dir"
            ) from e
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


class RunDirLock:
    """An exclusive lock on run_dir/run.lock (flock) for the life of a run, so that two runs never write one
    folder: the second gets a ValueError naming the process that holds it. Made before any file of the run is
    written; the folder is created if need be. release() (or the process's end) frees it."""

    def __init__(self, run_dir: str):
        os.makedirs(run_dir, exist_ok=True)
        self.file = open(os.path.join(run_dir, LOCK_FILE), "a+")  # noqa: SIM115 (held for the run's life)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise ValueError(
                f"--run-dir {run_dir!r} is in use by another run ({holder}): wait for it to end or choose another "
                "--run-dir"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()


class NonFiniteUpdates(RuntimeError):
    """Raised when --max-consecutive-skips updates in a row were not finite."""


class CheckpointWriteFailed(RuntimeError):
    """Raised when a checkpoint could not be written (a full disk): summary.json names the last good one."""


def check_memory(trainer: Trainer, num_devices: int) -> dict[str, int]:
    """The bytes per device of the whole training state (replay, env states, networks and optimiser
    states), from the trainer's abstract state; a ValueError naming the flags to change when it
    exceeds 80% of a device's memory. (Activations of the updates come on top.)"""
    abstract = trainer.abstract_state
    shardings = trainer.shardings or jax.tree.map(lambda _: replicated(make_mesh(1)), abstract)
    plan = per_device_bytes(abstract, shardings, num_devices)
    plan["update_activations"] = update_activation_bytes(trainer, num_devices)
    limit, total = sharding.memory_limit_bytes(), sum(plan.values())
    if total > 0.8 * limit:
        parts = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in plan.items())
        raise ValueError(
            f"the training state needs {total / 2**30:.2f} GiB per device ({parts}), more than 80% of the "
            f"{limit / 2**30:.2f} GiB available on {device_name()}; lower --buffer-size, --num-envs or --batch-size, "
            "or use more --devices"
        )
    return plan


def update_activation_bytes(trainer: Trainer, num_devices: int) -> int:
    """A lower bound on one update's activations per device: the batch's share times the candidates scored per
    state (num_candidates, 1 without) times the widest hidden layer, float32, forward and backward."""
    algo = trainer.agent.config
    widest = max((*algo.critic.critic_hidden, *agents.setting(algo, "actor_hidden", (1,))))
    rows = trainer.config.batch_size // num_devices * max(1, agents.setting(algo, "num_candidates", 1))
    return 2 * 4 * rows * widest


@dataclass
class TrainResult:
    summary: dict
    run_dir: str
    policy: Callable  # policy(obs [B, O], rng) -> action [B, A], jitted, greedy


def default_run_dir(config: RunConfig) -> str:
    """runs/<env>-<algo>-s<seed>-<date-time>: where a run without --run-dir goes."""
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
    stats = {**raw, **{f"bon_{name}": bon[name] for name in ("modes_covered", "high_reward_fraction", "mode_shares")}}
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


class _Session:
    """One run between its start and its summary: the trainer, the training state and the host-side
    counters (env steps, updates, the last evaluation, the next evaluation and checkpoint)."""

    def __init__(self, config: RunConfig, env):
        if config.resume:
            config = check_resume(config)  # resume="" when the run has no checkpoint to continue from
        self.resuming = bool(config.resume)
        self.run_dir = config.run_dir or default_run_dir(config)
        self.config = config = dataclasses.replace(config, run_dir=self.run_dir)
        self.config_dict = config_to_dict(config)
        self.env = env
        self.is_main = jax.process_index() == 0  # only process 0 writes run files and logs
        if self.is_main:
            _check_run_dir(self.run_dir, self.resuming, config.overwrite)
        self.mesh = make_mesh(config.devices)
        self.trainer = make_trainer(config, env, self.mesh)
        check_memory(self.trainer, self.mesh.size)  # before anything is allocated or written
        self.lock = RunDirLock(self.run_dir) if self.is_main else None
        try:
            self._start()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Frees the run folder's lock (the run has ended or failed)."""
        if self.lock is not None:
            self.lock.release()

    def _start(self) -> None:
        """With the folder locked: its check again (a run that ended meanwhile may have filled it), config.json,
        the state (new or restored), the logger and the host-side counters."""
        config = self.config
        if self.is_main:
            _check_run_dir(self.run_dir, self.resuming, config.overwrite)
        if not self.resuming and self.is_main:
            self._write_config()
        self.checkpointer = Checkpointer(self.run_dir, config.keep_checkpoints)
        key_init, self.key_eval = jax.random.split(jax.random.PRNGKey(config.seed))
        self.last_eval, self.evaluations = {}, 0
        if self.resuming:
            self._restore()
        else:
            self.state = self.trainer.init(key_init)
            self.wandb_run_id, self.walltime_before, self.updates = new_wandb_run_id(), 0.0, 0
        self.logger = RunLogger(
            self.run_dir,
            self.config_dict,
            config.wandb_mode,
            config.wandb_project,
            os.path.basename(self.run_dir),
            self.wandb_run_id,
            group=config.wandb_group,
            enabled=self.is_main,
        )
        self.start = time.perf_counter()
        self.env_steps = int(host_value(self.state.env_steps))
        self.steps_per_chunk = config.chunk_iterations * config.num_envs
        self.next_eval = (self.env_steps // config.eval_every + 1) * config.eval_every
        self.checkpoint_every = config.checkpoint_every or math.inf
        self.next_checkpoint = (self.env_steps // self.checkpoint_every + 1) * self.checkpoint_every
        self.stop: _StopRequest | None = None  # set by run() while the loop runs
        video_every = config.video_every if self.is_main else 0
        self.videos = VideoRecorder(self.run_dir, self.env, video_every, config.video_size)
        self.bandit_pictures = self.is_main and isinstance(self.env, Bandit) and self.env.modes is not None
        self._coverage_step, self._coverage, self._pictures = None, None, {}

    @property
    def interrupted(self) -> bool:
        return self.stop is not None and self.stop.requested

    def _write_config(self) -> None:
        if self.config.overwrite:
            _remove_run_files(self.run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, "config.json"), "w") as f:
            json.dump(self.config_dict, f, indent=2)

    def _restore(self) -> None:
        """The state and counters of the latest intact checkpoint (or --resume-step's); metrics.jsonl cut back
        to it."""
        self._check_config_json()
        state, meta = self.checkpointer.restore_intact(self.trainer.abstract_state, self.config.resume_step or None)
        self.state = self.trainer.place(state)
        records = _truncate_metrics(self.run_dir, meta["env_steps"]) if self.is_main else []
        evals = [r for r in records if r.get("eval/episode_return") is not None]
        self.evaluations = len(evals)
        if evals:
            self.last_eval = {k: v for k, v in evals[-1].items() if k.startswith("eval/")}
        self.wandb_run_id, self.walltime_before = meta["wandb_run_id"], meta["walltime_s"]
        self.updates = int(meta.get("updates", 0))
        print(f"resuming {self.run_dir} from env step {meta['env_steps']}", file=sys.stderr)

    def _check_config_json(self) -> None:
        """A ValueError naming config.json and the settings that differ when the run's config.json (the config
        resumed) is not the one its latest checkpoint was written with: a hand-edited file would otherwise
        give a state of other shapes, and every checkpoint would look unreadable."""
        step = self.config.resume_step or self.checkpointer.latest_step()
        try:
            written = self.checkpointer.read_meta(step).get("config")
        except Exception:  # noqa: BLE001 — an unreadable record: restore_intact names it
            return
        if written is None:  # checkpoints from before 2026-12-03 do not carry it
            return
        now, then = flatten_config(self.config_dict), flatten_config(written)
        differ = settings_that_differ(then, now)
        if differ:
            changes = "; ".join(f"{k} {now.get(k)!r} (the checkpoints have {then.get(k)!r})" for k in differ)
            raise ValueError(
                f"--resume {self.run_dir!r}: {os.path.join(self.run_dir, 'config.json')} differs from the config the "
                f"run's checkpoints were written with: {changes}; restore those values in config.json"
            )

    def walltime(self) -> float:
        return self.walltime_before + time.perf_counter() - self.start

    @property
    def last_return(self):
        return self.last_eval.get("eval/episode_return")

    def train_chunk(self, last: bool) -> dict:
        """One jitted chunk, its metrics record (with an evaluation when one is due or `last`), logged, and
        the evaluation videos finished meanwhile."""
        chunk_start = time.perf_counter()
        self.state, metrics = self.trainer.chunk(self.state)
        metrics = {k: host_value(v) for k, v in metrics.items()}
        self.env_steps = int(host_value(self.state.env_steps))
        record = {"env_steps": self.env_steps, "walltime_s": self.walltime()}
        record["train/env_steps_per_s"] = self.steps_per_chunk / (time.perf_counter() - chunk_start)
        record.update({k: float(v) for k, v in metrics.items()})
        self.updates += int(record["train/updates"])
        record["train/updates"] = self.updates  # cumulative: a run that never updated shows a flat 0
        evaluated = self.env_steps >= self.next_eval or last
        if evaluated:
            record.update(self.evaluate(last))
            self.next_eval = (self.env_steps // self.config.eval_every + 1) * self.config.eval_every
        self.logger.log(record)
        if evaluated and self.bandit_pictures:  # the transport picture of this evaluation
            path = self.transport_picture(os.path.join(self.run_dir, "transport", f"{self.env_steps}.png"))
            self.logger.log_media("eval/transport", [(path, "")], self.env_steps)
        if not (last or self.interrupted):  # at the run's last step finish() logs them all in one call (W&B
            self.log_videos(self.videos.poll())  # keeps one value per key and step)
        return record

    def evaluate(self, last: bool = False) -> dict:
        """The greedy evaluation at this env step; hands its first episode to the video recorder when due."""
        key = jax.random.fold_in(self.key_eval, self.env_steps)
        metrics, episode = self.trainer.evaluate(self.state.agent, self.state.normalizer, key)
        self.last_eval = {k: float(host_value(v)) for k, v in metrics.items()}
        if episode and self.videos.due(self.evaluations, last):
            self.videos.start(self.env_steps, {k: host_value(v) for k, v in episode.items()})
        self.evaluations += 1
        return self.last_eval

    def coverage(self) -> tuple[dict, jax.Array, jax.Array]:
        """The bandit's mode coverage and its samples at this env step (_coverage), computed once per step:
        the last evaluation's picture and the summary share them."""
        if self._coverage_step != self.env_steps:
            key = jax.random.PRNGKey(self.config.seed + 1)
            self._coverage = _coverage(self.env, self.trainer, self.state, key)
            self._coverage_step = self.env_steps
        return self._coverage

    def transport_picture(self, path: str) -> str:
        """The bandit's transport picture at this env step into path (drawn once per step, then copied)."""
        drawn = self._pictures.get(self.env_steps)
        if drawn is not None:
            shutil.copyfile(drawn, path)
        else:
            _, *samples = self.coverage()
            title = f"{self.config.algo} on {self.config.env}, {self.env_steps} env steps"
            plot_bandit_transport(path, self.env, *samples, title)
            self._pictures = {self.env_steps: path}
        return path

    def log_videos(self, finished: list[tuple[int, str]]) -> None:
        if finished:
            files = [(path, f"evaluation at env step {env_steps}") for env_steps, path in sorted(finished)]
            self.logger.log_media("eval/video", files, self.env_steps)

    def check_finite(self) -> None:
        """NonFiniteUpdates (after the summary is written) once --max-consecutive-skips updates in a row
        were not finite."""
        skips = int(host_value(self.state.consecutive_skips))
        if not self.config.max_consecutive_skips or skips < self.config.max_consecutive_skips:
            return
        skipped = int(host_value(self.state.skipped_updates))
        where = self._last_good()
        if self.updates == 0:
            where += " (no update was ever finite: it holds the initial, never-updated parameters)"
        message = (
            f"{skips} consecutive non-finite updates by env step {self.env_steps} (--max-consecutive-skips "
            f"{self.config.max_consecutive_skips}): the loss, gradients or parameters became NaN/inf; "
            f"{skipped} updates were skipped in all. {where}"
        )
        self.logger.finish(self.write_summary(stopped=message))
        self.checkpointer.close()
        raise NonFiniteUpdates(message)

    def _last_good(self) -> str:
        """Where the last written checkpoint is and how to resume from it, or that there is none."""
        last = self.checkpointer.latest_step()
        if last is None:
            return "No checkpoint was written yet."
        where = f"{checkpoint_dir(self.run_dir)}/{last}"
        return f"The last good checkpoint: {where} (python launch/run.py --resume {self.run_dir})"

    def checkpoint_if_due(self) -> None:
        if self.env_steps >= self.next_checkpoint:
            self.save_checkpoint()
            self.next_checkpoint = (self.env_steps // self.checkpoint_every + 1) * self.checkpoint_every

    def save_checkpoint(self) -> None:
        meta = {
            "env_steps": self.env_steps,
            "walltime_s": self.walltime(),
            "wandb_run_id": self.wandb_run_id,
            "updates": self.updates,
            "config": self.config_dict,  # what the state's shapes follow: resume checks config.json against it
        }
        try:
            self.checkpointer.save(self.state, meta)
        except Exception as e:  # noqa: BLE001 — orbax/TensorStore raise many kinds on a full or failing disk
            text = str(e).strip()  # orbax's errors end with the OS's reason
            reason = f"{type(e).__name__}: {text.splitlines()[-1][:300] if text else ''}"
            message = (
                f"could not write the checkpoint at env step {self.env_steps} into {checkpoint_dir(self.run_dir)} "
                f"({reason}); is the disk full? {self._last_good()}"
            )
            with contextlib.suppress(Exception):  # summary.json is small: on a full disk it may still fit
                self.logger.finish(self.write_summary(stopped=message))
            raise CheckpointWriteFailed(message) from e

    def write_summary(self, **extra) -> dict:
        """summary.json's record (bandits: with the mode coverage), written by process 0."""
        last = self.checkpointer.latest_step()
        out = {
            "env": self.config.env,
            "algo": self.config.algo,
            "eval/episode_return": self.last_return,
            "env_steps": self.env_steps,
            "walltime_s": self.walltime(),
            "device": device_name(),
            "num_devices": self.mesh.size,
            "num_processes": jax.process_count(),
            "interrupted": self.interrupted,
            "updates": self.updates,
            "skipped_updates": int(host_value(self.state.skipped_updates)),
            "checkpoint": None if last is None else f"{checkpoint_dir(self.run_dir)}/{last}",
            **extra,
        }
        if self.updates == 0:
            out["warning"] = NO_UPDATES
        if self.is_main:
            with open(os.path.join(self.run_dir, "summary.json"), "w") as f:
                json.dump(out, f, indent=2)
        return out

    def finish(self) -> TrainResult:
        """summary.json (bandits: with the mode coverage), returns.png, the end of the W&B run."""
        bandit = isinstance(self.env, Bandit) and self.env.modes is not None
        stats = self.coverage()[0] if bandit else {}
        if self.videos.pending:
            print(f"finishing {len(self.videos.pending)} evaluation video(s)...", file=sys.stderr, flush=True)
        self.log_videos(self.videos.poll(wait=True))
        # the run's own videos (<env_steps>.mp4) in env-step order: a short late episode can finish rendering
        # before an earlier long one
        folder = os.path.abspath(os.path.join(self.run_dir, "videos"))  # absolute, as the checkpoint path
        steps = [os.path.basename(p)[: -len(".mp4")] for p in glob.glob(os.path.join(folder, "*.mp4"))]
        videos = [os.path.join(folder, f"{s}.mp4") for s in sorted(int(s) for s in steps if s.isdigit())]
        summary = self.write_summary(**stats, **({"videos": videos} if videos else {}))
        self.checkpointer.close()
        if self.updates == 0:
            warnings.warn(f"{self.run_dir}: {NO_UPDATES}", stacklevel=3)
        if self.is_main:
            if bandit:
                self.transport_picture(os.path.join(self.run_dir, "returns.png"))
            elif os.path.exists(os.path.join(self.run_dir, "metrics.jsonl")):
                plot_returns(self.run_dir, f"{self.config.algo} on {self.config.env}")
        self.logger.finish(summary)
        return TrainResult(summary=summary, run_dir=self.run_dir, policy=greedy_policy(self.trainer, self.state))


def run(config: RunConfig, env=None) -> TrainResult:
    """Runs a resolved RunConfig; env: an environment object to use instead of config.env. The loop: a
    jitted chunk, its record (and evaluation), the non-finite check, a checkpoint when due; Ctrl-C stops
    it after the chunk, with a checkpoint and summary.json."""
    env = config.make_env() if env is None else env
    validate(config, env)
    use_compile_cache(config.compile_cache)
    session = _Session(config, env)
    total = config.num_chunks * session.steps_per_chunk
    try:
        with _StopRequest() as session.stop, Progress(total, config.progress) as progress:
            progress.update(session.env_steps, None, session.last_return)
            for chunk in range(session.env_steps // session.steps_per_chunk, config.num_chunks):
                record = session.train_chunk(last=chunk == config.num_chunks - 1)
                progress.update(session.env_steps, record["train/env_steps_per_s"], session.last_return)
                session.check_finite()
                session.checkpoint_if_due()
                if session.interrupted:
                    break
            session.save_checkpoint()
            return session.finish()  # inside: a second Ctrl-C must not break summary.json either
    finally:
        session.release()


def use_compile_cache(folder: str) -> None:
    """Points JAX's persistent compilation cache at folder ("" = leave it off) unless the environment's
    JAX_COMPILATION_CACHE_DIR already chose one."""
    if folder and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(folder))


def make_trainer(config: RunConfig, env, mesh=None) -> Trainer:
    """The agent of config.algo for env, inside the trainer of config."""
    spec = EnvSpec(env.observation_size, env.action_size, config.total_updates)
    agent = agents.make_agent(config.algo, config.algo_config(), spec)
    return Trainer(env, agent, config, eval_episodes=config.eval_episodes, mesh=mesh)


def greedy_policy(trainer: Trainer, state) -> Callable:
    """policy(obs [B, O], rng) -> action [B, A] in [-1, 1]: jitted, greedy, raw observations in, under the
    run's matmul precision (as its evaluations)."""
    agent_state, normalizer = state.agent, state.normalizer

    @jax.jit
    @trainer.precise
    def policy(obs, rng):
        return trainer.agent.act(agent_state, trainer.normalize(normalizer, obs), rng, False)

    return policy

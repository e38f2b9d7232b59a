"""Checkpoints, exact resume, SIGINT/SIGKILL safety, the non-finite guard, determinism (issue 6)."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, dotted

import envs
import mjx_som
from mjx_som import api
from mjx_som.agents import EnvSpec, make_agent
from mjx_som.api import make_trainer
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.cli import to_flags
from mjx_som.config_file import load_config
from mjx_som.runner import LOCK_FILE, RunDirLock
from mjx_som.trainer import all_finite

TINY = {**TINY, "total_steps": 1_600, "checkpoint_every": 800}
TIMING = ("walltime_s", "train/env_steps_per_s")


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in f]


def _final_state(run_dir, config, env=None):
    """The TrainState of the run's latest checkpoint."""
    env = env or envs.make(config.env)
    abstract = jax.eval_shape(make_trainer(config, env).init, jax.random.PRNGKey(0))
    return Checkpointer(run_dir, read_only=True).restore(abstract)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("straight") / "a")
    return mjx_som.train("bandit/eight_gaussians", run_dir=run_dir, **TINY)


def test_checkpoints_hold_the_whole_state(straight_run):
    steps = sorted(int(d) for d in os.listdir(checkpoint_dir(straight_run.run_dir)))
    assert steps == [800, 1600] and straight_run.summary["checkpoint"].endswith("/1600")
    config = load_config(straight_run.run_dir)
    state, meta = _final_state(straight_run.run_dir, config)
    assert meta["env_steps"] == 1600 and len(meta["wandb_run_id"]) == 8
    # the clock at the checkpoint: after the 800-step row was logged, no later than the run's end
    with open(os.path.join(straight_run.run_dir, "metrics.jsonl")) as f:
        at_800 = next(r["walltime_s"] for r in map(json.loads, f) if r["env_steps"] == 800)
    assert at_800 < meta["walltime_s"] <= straight_run.summary["walltime_s"], meta
    assert int(state.env_steps) == 1600 and int(state.replay.size) == 1000  # replay full, wrapped
    assert int(state.replay.insert_pos) == 1600 % 1000
    # the checkpointed actor is the one the returned policy acts with
    obs, key = jnp.zeros((4, 1)), jax.random.PRNGKey(3)
    agent = make_agent("som", config.som, EnvSpec(1, 2, config.total_updates))
    np.testing.assert_allclose(straight_run.policy(obs, key), agent.act(state.agent, obs, key, False), atol=1e-6)


def test_resume_is_exact(straight_run, tmp_path):
    """N/2 steps, then resume and N/2 more == N straight: same metrics, same parameters (bitwise)."""
    half = str(tmp_path / "half")
    shutil.copytree(straight_run.run_dir, half)
    shutil.rmtree(os.path.join(checkpoint_dir(half), "1600"))  # as if stopped right after step 800
    with open(os.path.join(half, "metrics.jsonl"), "a") as f:  # a record logged after that checkpoint
        f.write(json.dumps({"env_steps": 1200, "walltime_s": 1.0}) + "\n")
    resumed = mjx_som.resume(half)
    assert _metrics(half) == _metrics(straight_run.run_dir)  # appended, not duplicated
    assert [r["env_steps"] for r in _metrics(half)] == [400, 800, 1200, 1600]
    config = load_config(straight_run.run_dir)
    (a, _), (b, _) = _final_state(straight_run.run_dir, config), _final_state(half, config)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b))
    summary = {k: v for k, v in resumed.summary.items() if k not in ("walltime_s", "checkpoint")}
    assert summary == {k: v for k, v in straight_run.summary.items() if k not in ("walltime_s", "checkpoint")}


def test_same_seed_same_metrics(straight_run, tmp_path):
    again = mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "again"), **TINY)
    assert _metrics(again.run_dir) == _metrics(straight_run.run_dir)
    other = mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "other"), **{**TINY, "seed": 1})
    assert _metrics(other.run_dir) != _metrics(straight_run.run_dir)


def _nan_bandit(region: float):
    """eight_gaussians' reward, NaN where the first action coordinate exceeds `region`."""
    base = envs.make("bandit/eight_gaussians")

    def reward(a):
        return jnp.where(a[0] > region, jnp.nan, base.reward_fn(a))

    return envs.Bandit(reward, low=base.low, high=base.high, modes=base.modes, mode_radius=base.mode_radius)


def test_nonfinite_updates_are_skipped_and_counted(tmp_path):
    bandit = _nan_bandit(0.97)
    result = mjx_som.train(bandit, run_dir=str(tmp_path / "nan"), **TINY)
    skipped = [r["train/skipped_updates"] for r in _metrics(result.run_dir)]
    assert sum(skipped) == result.summary["skipped_updates"] > 0, skipped
    state, _ = _final_state(result.run_dir, load_config(result.run_dir), bandit)
    assert bool(all_finite(state.agent))  # (the eval return itself may be NaN: the env's reward is)
    assert all(np.isfinite(r["train/critic_loss"]) for r in _metrics(result.run_dir)[1:])


def test_repeated_nonfinite_updates_stop_the_run(tmp_path):
    run_dir = str(tmp_path / "allnan")
    settings = {**TINY, "checkpoint_every": 400, "max_consecutive_skips": 50}
    with pytest.raises(mjx_som.NonFiniteUpdates, match=r"consecutive non-finite updates by env step 800") as err:
        mjx_som.train(_nan_bandit(-2.0), run_dir=run_dir, **settings)
    assert f"last good checkpoint: {checkpoint_dir(run_dir)}/400 (python launch/run.py --resume {run_dir})" in str(
        err.value
    )
    # every update was non-finite from the first: the message and summary.json say so
    assert "it holds the initial, never-updated parameters" in str(err.value)
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert (
        summary["updates"] == 0 and summary["stopped"] == str(err.value) and "no gradient update" in summary["warning"]
    )


def test_a_checkpoint_that_cannot_be_written_stops_the_run_with_a_summary(tmp_path, monkeypatch):
    """A full disk at the second checkpoint: the run stops with one message naming the step, the reason and the
    last good checkpoint (in summary.json too), not a traceback counted as bad input."""
    save = Checkpointer.save

    def fill_up(self, state, meta):
        if meta["env_steps"] > 400:
            raise OSError(28, "No space left on device")
        save(self, state, meta)

    monkeypatch.setattr(Checkpointer, "save", fill_up)
    run_dir = str(tmp_path / "full")
    with pytest.raises(mjx_som.CheckpointWriteFailed, match="could not write the checkpoint at env step 800") as err:
        mjx_som.train("bandit/eight_gaussians", run_dir=run_dir, **{**TINY, "checkpoint_every": 400})
    assert "No space left on device" in str(err.value) and f"{checkpoint_dir(run_dir)}/400" in str(err.value)
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["stopped"] == str(err.value) and summary["checkpoint"] == f"{checkpoint_dir(run_dir)}/400"


def _cli(args):
    settings = dict(
        env="bandit/eight_gaussians",
        wandb_mode="disabled",
        progress=False,
        num_envs=8,
        batch_size=32,
        learning_starts=64,
        warmup_share=0.0,
        som=TINY["som"],
    )
    return subprocess.Popen(
        [sys.executable, "launch/run.py", *to_flags(dotted(settings)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path, proc, timeout=240):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)


def test_sigint_writes_checkpoint_summary_and_resume_hint(tmp_path):
    run_dir = str(tmp_path / "sigint")
    proc = _cli(
        [
            "--run-dir",
            run_dir,
            "--total-steps",
            "100000000",
            "--log-every",
            "400",
            "--checkpoint-every",
            "100000000",
            "--buffer-size",
            "1000",
        ]
    )
    _wait_for(os.path.join(run_dir, "metrics.jsonl"), proc)
    proc.send_signal(signal.SIGINT)
    before = []  # stderr up to the acknowledgement of the first signal
    while not (before and before[-1].startswith("SIGINT: stopping after the current chunk")):
        before.append(proc.stderr.readline())
        assert before[-1] != "", "".join(before)  # end of stream: the run exited without acknowledging
    # an impatient second Ctrl-C, sent once the first is acknowledged (the run then still has its chunk, its
    # checkpoint and summary.json ahead), must not break either
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = "".join(before) + err
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "already stopping" in err
    assert not any("tmp" in name for name in os.listdir(checkpoint_dir(run_dir)))
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["interrupted"] is True and summary["env_steps"] >= 400
    assert Checkpointer(run_dir, read_only=True).latest_step() == summary["env_steps"]
    assert f"resume with: python launch/run.py --resume {run_dir}" in out
    # the CLI takes the run's config from config.json, and refuses a changed one before compiling
    proc = subprocess.run(
        [sys.executable, "launch/run.py", "--resume", run_dir, "--seed", "5"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--seed 5 (the run has 0)" in proc.stderr, proc.stderr


def test_sigkill_while_writing_a_checkpoint_resumes_from_the_previous_one(tmp_path):
    """A large replay buffer makes each checkpoint take a while to write; the process is killed as
    soon as a write is seen in progress (orbax's temporary directory) after one has completed."""
    run_dir = str(tmp_path / "killed")
    proc = _cli(
        [
            "--run-dir",
            run_dir,
            "--total-steps",
            "4000",
            "--log-every",
            "400",
            "--checkpoint-every",
            "400",
            "--buffer-size",
            "6000000",
            "--keep-checkpoints",
            "2",
        ]
    )
    ckpt = checkpoint_dir(run_dir)
    deadline = time.time() + 240
    while True:
        names = os.listdir(ckpt) if os.path.isdir(ckpt) else []
        if any("tmp" in n for n in names) and any(n.isdigit() for n in names):
            proc.send_signal(signal.SIGKILL)
            break
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.001)
    proc.communicate(timeout=60)
    names = os.listdir(ckpt)
    assert any("tmp" in n for n in names), names  # it really died mid-write
    completed = sorted(int(n) for n in names if n.isdigit())
    assert Checkpointer(run_dir, read_only=True).latest_step() == completed[-1]
    result = mjx_som.resume(run_dir)
    steps = [r["env_steps"] for r in _metrics(run_dir)]
    assert steps == list(range(400, 4001, 400)) and result.summary["env_steps"] == 4000
    assert not any("tmp" in n for n in os.listdir(ckpt))  # the broken write was cleaned up


def test_mujoco_states_round_trip_through_a_checkpoint(tmp_path):
    """MJX states hold zero-size arrays (no actuator activations), which orbax cannot store."""
    env = envs.make("InvertedPendulum-v4")
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 2))
    assert any(leaf.size == 0 for leaf in jax.tree.leaves(state))
    Checkpointer(str(tmp_path)).save(state, {"env_steps": 7})
    restored, meta = Checkpointer(str(tmp_path), read_only=True).restore(jax.eval_shape(lambda: state))
    assert meta == {"env_steps": 7}
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), state, restored))


# ----- run directories, corrupt checkpoints and metrics (issue 15) ------------------------------------------
def test_a_used_run_directory_is_refused_and_overwrite_keeps_other_files(straight_run, tmp_path):
    with pytest.raises(ValueError, match=r"--run-dir .* is not empty: continue that run with --resume"):
        mjx_som.train("bandit/eight_gaussians", run_dir=straight_run.run_dir, **{**TINY, "seed": 7})
    reused = str(tmp_path / "reused")
    shutil.copytree(straight_run.run_dir, reused)
    with open(os.path.join(reused, "notes.txt"), "w") as f:
        f.write("mine")
    for stale in ("videos/99.mp4", "transport/99.png"):  # the old run's media go with it
        os.makedirs(os.path.dirname(os.path.join(reused, stale)), exist_ok=True)
        open(os.path.join(reused, stale), "w").close()  # noqa: SIM115
    mjx_som.train("bandit/eight_gaussians", run_dir=reused, overwrite=True, **TINY)
    assert open(os.path.join(reused, "notes.txt")).read() == "mine"  # noqa: SIM115
    assert not os.path.exists(os.path.join(reused, "videos"))
    transport = sorted(os.listdir(os.path.join(reused, "transport")))
    assert (
        transport == sorted(os.listdir(os.path.join(straight_run.run_dir, "transport"))) and "99.png" not in transport
    )
    assert _metrics(reused) == _metrics(straight_run.run_dir)  # one run's records, not two runs' mixed
    file_dir = tmp_path / "a_file"
    file_dir.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        mjx_som.train("bandit/eight_gaussians", run_dir=str(file_dir), **TINY)


def test_overwrite_refuses_a_folder_that_is_not_a_run_of_ours(tmp_path):
    """A user's folder with a config.json and checkpoints/ of its own: --overwrite deletes nothing."""
    mine = tmp_path / "mine"
    os.makedirs(mine / "checkpoints")
    (mine / "config.json").write_text('{"mine": 1}')
    (mine / "checkpoints" / "model.pt").write_text("x")
    with pytest.raises(ValueError, match=r"--overwrite: --run-dir .*mine' is not a run of this package .*nothing was"):
        mjx_som.train("bandit/eight_gaussians", run_dir=str(mine), overwrite=True, **TINY)
    assert (mine / "config.json").read_text() == '{"mine": 1}' and (mine / "checkpoints" / "model.pt").exists()
    os.remove(mine / "config.json")  # no config.json at all: not ours either
    with pytest.raises(ValueError, match="no config.json there"):
        mjx_som.train("bandit/eight_gaussians", run_dir=str(mine), overwrite=True, **TINY)
    assert (mine / "checkpoints" / "model.pt").exists()


def test_a_folder_in_use_by_another_run_is_refused(tmp_path):
    """While a run holds its folder's lock, a second run on that folder stops before writing anything."""
    folder = str(tmp_path / "busy")
    lock = RunDirLock(folder)
    try:
        with pytest.raises(ValueError, match=rf"--run-dir .*busy' is in use by another run \(process {os.getpid()} on"):
            mjx_som.train("bandit/eight_gaussians", run_dir=folder, **TINY)
        assert os.listdir(folder) == [LOCK_FILE]
    finally:
        lock.release()
    RunDirLock(folder).release()  # the refused run holds nothing (runs that end let go: the resume tests)


def _corrupt_latest(run_dir, how: str = "truncate") -> str:
    """Damages the latest checkpoint: truncates its largest file (as a full disk would), or ("garble") overwrites
    256 bytes in the middle of its largest array-data file with random bytes, same size (a bad disk or copy:
    orbax reads that back without complaint, as wrong numbers); returns that checkpoint."""
    latest = os.path.join(checkpoint_dir(run_dir), str(Checkpointer(run_dir, read_only=True).latest_step()))
    files = [os.path.join(d, n) for d, _, names in os.walk(latest) for n in names]
    if how == "garble":
        files = [f for f in files if f"{os.sep}ocdbt.process_0{os.sep}d{os.sep}" in f]
    biggest = max(files, key=os.path.getsize)
    size = os.path.getsize(biggest)
    with open(biggest, "r+b") as f:
        if how == "truncate":
            f.truncate(size // 3)
        else:
            f.seek(size // 2 - 128)
            f.write(np.random.default_rng(0).bytes(256))
    assert how == "truncate" or os.path.getsize(biggest) == size
    return latest


@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_resume_falls_back_from_a_corrupt_checkpoint(straight_run, tmp_path, how):
    copy = str(tmp_path / "corrupt")
    shutil.copytree(straight_run.run_dir, copy)
    bad = _corrupt_latest(copy, how)
    with pytest.warns(UserWarning, match=f"checkpoint {bad} cannot be read"):  # load (eval.py) falls back too
        assert mjx_som.load(copy).env_steps == 800
    with pytest.raises(ValueError, match=r"--resume: no intact checkpoint .*unreadable: .*/1600"):
        api.run(dataclasses.replace(load_config(copy), resume=copy, resume_step=1600))
    with pytest.warns(UserWarning, match=f"checkpoint {bad} cannot be read"):
        result = mjx_som.resume(copy)  # continues from 800, and recomputes 800 -> 1600 exactly
    assert [r["env_steps"] for r in _metrics(copy)] == [400, 800, 1200, 1600]
    config = load_config(copy)
    (a, _), (b, _) = _final_state(straight_run.run_dir, config), _final_state(copy, config)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b))
    assert result.summary["env_steps"] == 1600


@pytest.mark.parametrize(
    "edit,message",
    [
        ({"num_envs": "abc"}, "setting 'num_envs' is 'abc'; expected a whole number"),
        ({"num_envs": [8]}, r"setting 'num_envs' is \(8,\); expected a whole number"),
        (
            {"som": {"actor": {"actor_hidden": "wide"}}},
            "setting 'som.actor.actor_hidden' is 'wide'; expected a list of whole",
        ),
        ({"som": {"actor": {"actor_lr": None}}}, "setting 'som.actor.actor_lr' is None; expected a number"),
        (
            {"num_envs": 16},
            r"config.json differs from the config the run's checkpoints were written with: num_envs 16 ",
        ),
    ],
)
def test_a_hand_edited_config_json_is_named_before_anything_runs(straight_run, tmp_path, edit, message):
    copy = str(tmp_path / "edited")
    shutil.copytree(straight_run.run_dir, copy)
    path = os.path.join(copy, "config.json")
    with open(path) as f:
        values = json.load(f)
    for name, value in edit.items():
        if isinstance(value, dict):  # one setting inside its block
            (block, settings), *_ = value.items()
            values[name][block] = {**values[name][block], **settings}
        else:
            values[name] = value
    with open(path, "w") as f:
        json.dump(values, f)
    before = sorted(os.listdir(copy))
    with pytest.raises(ValueError, match=rf"{re.escape(path)}.*{message}" if "differs" not in message else message):
        mjx_som.resume(copy)
    assert sorted(os.listdir(copy)) == before  # nothing set aside as corrupt, nothing written


def test_load_names_itself_in_its_errors(straight_run, tmp_path):
    with pytest.raises(ValueError, match=r"mjx_som.load '.*nowhere': no such directory"):
        mjx_som.load(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"load\('.*', step=5\): the checkpoints there are at env steps \[800, 1600\]"):
        mjx_som.load(straight_run.run_dir, step=5)


def test_a_partial_last_metrics_line_is_dropped_and_a_damaged_one_named(tmp_path):
    from mjx_som.logging import read_metrics

    good = json.dumps({"env_steps": 400}) + "\n"
    (tmp_path / "metrics.jsonl").write_text(good + '{"env_steps": 8')
    with pytest.warns(UserWarning, match="line 2: a partial last record"):
        assert read_metrics(str(tmp_path)) == [{"env_steps": 400}]
    (tmp_path / "metrics.jsonl").write_text(good + '{"env_ste\n' + good)
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_metrics(str(tmp_path))


def test_cpu_cholesky_and_triangular_solves_avoid_jaxlibs_deadlocking_lapack_kernels():
    """jaxlib 0.10's batched LAPACK kernels deadlock XLA:CPU's intra-op pool at thousands of MJX envs
    (docs/troubleshooting.md): once lower_cpu_linalg_without_lapack() ran (conftest calls it, as every launch
    script and the Trainer do) the CPU lowering of MJX's cho_factor / cho_solve calls no LAPACK kernel and
    still solves the systems; importing envs and mjx_som alone changes nothing (a fresh process)."""
    from envs.cpu_runtime import lower_cpu_linalg_without_lapack

    probe = (
        "import jax, jax.numpy as jnp, envs, mjx_som; a = jnp.eye(3)[None]; "
        "print(jax.jit(lambda a: jax.scipy.linalg.cho_factor(a)[0]).lower(a).as_text().count('lapack'))"
    )
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert int(fresh.stdout.strip()) > 0  # on import the LAPACK lowering stays: nothing is patched
    assert lower_cpu_linalg_without_lapack()  # this machine's jaxlib is older than the fixed one
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 9, 9)).astype(np.float32)
    a = a @ a.transpose(0, 2, 1) + 9 * np.eye(9, dtype=np.float32)
    b = rng.standard_normal((64, 9, 1)).astype(np.float32)
    solve = jax.jit(lambda a, b: jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), b))
    lowered = solve.lower(a, b).as_text()
    assert "lapack" not in lowered and "stablehlo.cholesky" in lowered
    np.testing.assert_allclose(a @ np.asarray(solve(a, b)), b, atol=1e-4)


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_its_beginning(tmp_path):
    """Ctrl-C while compiling leaves config.json and an empty checkpoints/: --resume starts that run again from
    step 0 with its config.json (nothing was trained), in its own folder."""
    from mjx_som.config import resolve_config
    from mjx_som.config_file import config_to_dict

    folder = tmp_path / "early"
    os.makedirs(folder / "checkpoints")
    config = resolve_config("bandit/eight_gaussians", run_dir=str(folder), **TINY)
    (folder / "config.json").write_text(json.dumps(config_to_dict(config)))
    result = mjx_som.resume(str(folder))
    assert result.summary["env_steps"] == 1600 and not result.summary["interrupted"] and result.summary["updates"] > 0
    assert [r["env_steps"] for r in _metrics(str(folder))] == [400, 800, 1200, 1600]

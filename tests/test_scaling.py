"""Multi-device runs (issue 5): the same program on 1, 2 and 4 simulated CPU devices computes the same
training (the data really split across devices), bad device layouts and oversized states are refused
before anything compiles."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY, tiny_flags

import mjx_som
from mjx_som import sharding
from mjx_som.logging import read_metrics


@pytest.fixture(scope="module")
def multi_device():
    proc = subprocess.run(
        [sys.executable, "tests/multi_device_check.py", "1", "2", "4"], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("devices", ["2", "4"])
def test_sharded_run_matches_one_device(multi_device, devices):
    one, many = multi_device["1"], multi_device[devices]
    assert len(one["metrics"]) == len(many["metrics"]) == 3
    for a, b in zip(one["metrics"], many["metrics"], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-4, err_msg=key)
    n = int(devices)
    assert many["replay_obs_devices"] == n and many["replay_obs_shard_rows"] == [1000 // n] * n
    assert many["env_obs_shard_rows"] == [8 // n] * n and many["actor_replicated"]
    # each device computes the update on its share of the batch (the gradient mean is all-reduced)
    assert many["batch_obs_shard_rows"] == many["batch_reward_shard_rows"] == [32 // n] * n
    assert one["batch_obs_shard_rows"] == [32]


def test_layouts_that_do_not_divide_are_refused(multi_device):
    assert multi_device["errors"] == {
        "num_envs": "--num-envs 6 is not divisible by the device count 4",
        "buffer": "--buffer-size 1001 is not divisible by the device count 4",
    }


def test_memory_planner_refuses_a_state_that_does_not_fit(tmp_path, monkeypatch):
    replay = 1000 * 4 * (2 * 1 + 2 + 3)  # obs, next_obs, action, reward, terminated, done
    monkeypatch.setattr(sharding, "memory_limit_bytes", lambda: int(replay / 0.8) + 1)  # the replay alone fits
    with pytest.raises(
        ValueError,
        match=r"the training state needs .* GiB per device \(replay .* GiB, env_states "
        r".* GiB, networks .* GiB, update_activations .* GiB\).*lower --buffer-size, --num-envs or --batch-size, "
        r"or use more "
        r"--devices",
    ):
        mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "big"), **TINY)
    assert not os.path.exists(tmp_path / "big")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_run_the_same_training(tmp_path):
    """launch/run.py as 2 processes x 2 simulated devices (jax.distributed over localhost, gloo
    collectives): process 0 alone writes the run files, and the training matches the 1-device run."""
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
    )
    run_dir, port = tmp_path / "two_hosts", _free_port()
    flags = [
        "--env",
        "bandit/eight_gaussians",
        "--coordinator",
        f"localhost:{port}",
        "--num-processes",
        "2",
        *tiny_flags(run_dir=str(run_dir)),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "launch/run.py", *flags, "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_devices"] == 4 and summary["num_processes"] == 2
    records = read_metrics(str(run_dir))
    assert len(records) == 3  # written once, by process 0
    single = read_metrics(mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "one"), **TINY).run_dir)
    for record, reference in zip(records, single, strict=True):
        for key in (k for k in reference if k.startswith("train/") and k != "train/env_steps_per_s"):
            np.testing.assert_allclose(record[key], reference[key], rtol=1e-3, atol=1e-4, err_msg=key)

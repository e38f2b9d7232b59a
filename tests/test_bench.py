"""launch/bench.py runs at tiny sizes and writes valid JSON."""

import json
import runpy
import sys


def test_env_only_bench_writes_json(tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    argv = ["bench.py", "--env", "bandit/eight_gaussians", "--env-only", "--num-envs", "2,8", "--repeats", "2"]
    monkeypatch.setattr(sys, "argv", argv + ["--steps-per-call", "5", "--json", str(out)])
    runpy.run_path("launch/bench.py", run_name="__main__")
    records = json.loads(out.read_text())
    assert [r["num_envs"] for r in records] == [2, 8]
    assert all(r["env_steps_per_s"] > 0 and r["device"] == "cpu" for r in records)

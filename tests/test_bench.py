"""launch/bench.py (run.py flags, clear errors) and mjx_som_lab.bench_suite at tiny sizes: JSON and pictures."""

import json
import runpy
import sys

import numpy as np
import pytest
from conftest import assert_picture

import envs


def _bench(monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", ["bench.py", *argv])
    return runpy.run_path("launch/bench.py", run_name="__main__")


def test_env_only_bench_writes_json(tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    timed = _recording_time_calls(monkeypatch)
    _bench(
        monkeypatch,
        [
            "--env",
            "bandit/eight_gaussians",
            "--env-only",
            "--num-envs",
            "2,8",
            "--repeats",
            "20",
            "--steps-per-call",
            "5",
            "--json",
            str(out),
        ],
    )
    records = json.loads(out.read_text())
    assert [(r["num_envs"], r["wrapper"]) for r in records] == [(2, "mjx_som"), (8, "mjx_som")]
    assert all(r["device"] == "cpu" for r in records)
    # the rate of each record: its envs x 5 steps per call over each timed call's seconds, averaged
    for r, seconds in zip(records, timed, strict=True):
        assert r["env_steps_per_s"] == pytest.approx(np.mean(r["num_envs"] * 5 / np.asarray(seconds)), rel=1e-6)
    # each measurement call reports its progress (a stuck one is visible, and dumps its stacks)
    err = capsys.readouterr().err
    assert "[bench] env-only (mjx_som), 8 envs x 5 steps: call 3/3" in err and "warm-up (compile)" in err


def test_algorithm_bench_writes_records_ratios_and_plots(tmp_path, monkeypatch):
    import mjx_som_lab.bench_suite as suite

    parsed = []  # run.py's flags are parsed once per algorithm: by the check, reused by every measurement
    parse = suite.config_from_flags
    monkeypatch.setattr(
        suite, "config_from_flags", lambda env, algo, *rest: parsed.append(algo) or parse(env, algo, *rest)
    )
    suite.run_config.cache_clear()
    out = tmp_path / "bench.json"
    _bench(
        monkeypatch,
        [
            "--env",
            "bandit/eight_gaussians",
            "--algos",
            "som,dacer",
            "--batch-sizes",
            "1,8",
            "--num-envs",
            "8",
            "--repeats",
            "3",
            "--loop-iterations",
            "2",
            "--loop-repeats",
            "1",
            "--buffer-size",
            "1000",
            "--scaling",
            "8",
            "--scaling-baseline",
            "dacer",
            "--som.actor-hidden",
            "32",
            "--som.critic-hidden",
            "32",
            "--dacer.actor-hidden",
            "32",
            "--dacer.critic-hidden",
            "32",
            "--json",
            str(out),
            "--out-dir",
            str(tmp_path),
        ],
    )
    records = json.loads(out.read_text())
    algo_rows = [r for r in records if r["kind"] == "algo"]
    assert [(r["algo"], r["batch_size"]) for r in algo_rows] == [("som", 1), ("som", 8), ("dacer", 1), ("dacer", 8)]
    for algo in ("som", "dacer"):
        rows = [r for r in algo_rows if r["algo"] == algo]
        # one update and one loop measurement per algorithm, one act() timing per batch size
        assert len({(r["train_ms_mean"], r["loop_env_steps_per_s"], r["update_gflops"]) for r in rows}) == 1, rows
        assert rows[0]["infer_ms_mean"] != rows[1]["infer_ms_mean"] and rows[0]["act_gflops"] < rows[1]["act_gflops"]
    for r in algo_rows:
        assert r["device"] == "cpu" and r["env"] == "bandit/eight_gaussians"
        # XLA's counts: an update on the training batch is more work than one act() on a single state
        assert r["update_gflops"] > r["act_gflops"] > 0
    dacer = next(r for r in algo_rows if r["algo"] == "dacer")
    som = next(r for r in algo_rows if r["algo"] == "som" and r["batch_size"] == dacer["batch_size"])
    assert dacer["infer_ratio_vs_som"] == dacer["infer_ms_mean"] / som["infer_ms_mean"]
    assert dacer["diffusion_steps"] == 20 and dacer["num_candidates"] == 1
    assert [r["algo"] for r in records if r["kind"] == "scaling"] == ["som", "dacer"]
    assert_picture(tmp_path / "bench.png")
    assert_picture(tmp_path / "bench_scaling.png")
    assert sorted(parsed) == ["dacer", "som"]


def test_bench_takes_run_flags_and_names_replaced_ones(monkeypatch, capsys):
    """Settings reach bench.py as launch/run.py's flags (checked before anything compiles); --set, its
    earlier mechanism, fails naming what replaced it."""
    import pytest

    for argv, message in (
        (["--set", "total_steps=5"], "--set was replaced: use run.py's own flags"),
        (["--train-batch-size", "256"], "--train-batch-size was replaced: use --batch-size"),
        (["--som.num-sample", "3"], "--som.score.num-samples"),  # tyro's suggestion for a misspelt flag
    ):
        with pytest.raises(SystemExit) as stop:
            _bench(monkeypatch, ["--env", "bandit/eight_gaussians", "--algos", "som", *argv])
        assert stop.value.code == 2 and message in capsys.readouterr().err


def _recording_time_calls(monkeypatch) -> list:
    """benchmarks.time_calls, recording the seconds of each call it returns."""
    from mjx_som_lab import benchmarks

    timed, real = [], benchmarks.time_calls

    def recording(*args, **kwargs):
        timed.append(real(*args, **kwargs))
        return timed[-1]

    monkeypatch.setattr(benchmarks, "time_calls", recording)
    return timed


def test_dipo_update_is_timed_with_its_replay_column(monkeypatch):
    """DIPO's update needs the replay's own column (the actions it improves), which the bench's batch must
    carry as the trainer's does: the bench used to fail on it (every other agent's update is timed above)."""
    import jax

    from mjx_som.agents import EnvSpec, make_agent, with_settings
    from mjx_som.agents.dipo import DIPOConfig
    from mjx_som_lab.benchmarks import update_ms

    config = with_settings(DIPOConfig(), dict(actor_hidden=(8,), critic_hidden=(8,), diffusion_steps=2))
    agent = make_agent("dipo", config, EnvSpec(3, 2, 4))
    timed = _recording_time_calls(monkeypatch)
    mean, std = update_ms(agent, agent.init(jax.random.PRNGKey(0)), 3, 2, 8, 2)
    assert len(timed) == 1 and len(timed[0]) == 2  # two timed calls, after the warm-ups
    assert (mean, std) == pytest.approx((1e3 * np.mean(timed[0]), 1e3 * np.std(timed[0])))


def test_a_playground_task_is_also_stepped_through_playgrounds_own_wrapper(tmp_path, monkeypatch):
    """The adapter's cost: the same task, the same envs, through our VecEnv and through Playground's
    training wrapper (docs/benchmarks.md has the figures)."""
    out = tmp_path / "bench.json"
    timed = _recording_time_calls(monkeypatch)
    flags = ["--env", "playground/CartpoleBalance", "--env-only", "--num-envs", "4", "--repeats", "30"]
    _bench(monkeypatch, [*flags, "--steps-per-call", "3", "--json", str(out)])
    records = json.loads(out.read_text())
    assert [(r["num_envs"], r["wrapper"]) for r in records] == [(4, "mjx_som"), (4, "playground")]
    # two measurements, each its own timed calls (4 envs x 3 steps a call)
    for r, seconds in zip(records, timed, strict=True):
        assert r["env_steps_per_s"] == pytest.approx(np.mean(12 / np.asarray(seconds)), rel=1e-6)


def test_calls_that_compile_are_warm_ups_never_timed(capsys):
    """A state threaded through calls can compile twice (the first output is held unlike the fresh
    input): such a call is a warm-up, not a timing; a function that compiles every call is an error."""
    import jax
    import jax.numpy as jnp
    import pytest

    from mjx_som_lab.benchmarks import time_calls

    double = jax.jit(lambda x: 2 * x)
    sizes = iter([3, 4, 4, 4, 4, 4])  # the second call sees a new shape: it compiles again

    seconds = time_calls(lambda: double(jnp.ones(next(sizes))), 4, "grows once")
    assert len(seconds) == 4
    assert capsys.readouterr().err.count("grows once: warm-up (compile)") == 2
    with pytest.raises(RuntimeError, match="compiled in 4 calls: it recompiles on every call"):
        time_calls(lambda: jax.jit(lambda x: x + 1)(jnp.ones(2)), 3, "new function each call")


def test_an_update_that_compiles_twice_is_timed_with_a_key_for_every_call(monkeypatch):
    """DPMD's update compiles again on its second call (its first output is held unlike the fresh state):
    the bench makes one more warm-up and must still have a key for each call (it ran out: StopIteration)."""
    import jax

    from mjx_som.agents import EnvSpec, make_agent, with_settings
    from mjx_som.config import RunConfig
    from mjx_som_lab.benchmarks import update_ms

    config = with_settings(RunConfig().dpmd, dict(actor_hidden=(8,), critic_hidden=(8,), diffusion_steps=2))
    agent = make_agent("dpmd", config, EnvSpec(3, 2, 4))
    timed = _recording_time_calls(monkeypatch)
    mean, std = update_ms(agent, agent.init(jax.random.PRNGKey(0)), 3, 2, 8, 2)
    assert len(timed) == 1 and len(timed[0]) == 2  # two timed calls, after the warm-ups
    assert (mean, std) == pytest.approx((1e3 * np.mean(timed[0]), 1e3 * np.std(timed[0])))


def test_bench_traces_at_the_trainers_matmul_precision():
    """The bench times what the trainer runs: its jitted act() and update are traced under the run's
    float32 matmul precision (highest by default). They were traced at JAX's default (TF32 on an H200),
    which made the GPU figures of 2026-11-28 incomparable with the training loop's."""
    import re

    import jax

    from mjx_som.agents import EnvSpec, make_agent, with_settings
    from mjx_som.config import RunConfig
    from mjx_som.replay import Transition
    from mjx_som_lab.benchmarks import inference_fn, update_fn

    config = with_settings(RunConfig().som, dict(actor_hidden=(8,), critic_hidden=(8,), num_samples=4))
    agent = make_agent("som", config, EnvSpec(3, 2, 4))
    state = agent.init(jax.random.PRNGKey(0))
    obs, key = jax.numpy.zeros((4, 3)), jax.random.PRNGKey(1)
    zeros = jax.numpy.zeros(4)
    batch = Transition(obs, jax.numpy.zeros((4, 2)), zeros, obs, zeros, zeros)

    def precisions(lowered) -> set[str]:
        return set(re.findall(r"precision = \[(\w+), \w+\]", lowered.as_text()))

    assert RunConfig().matmul_precision == "highest"
    assert precisions(inference_fn(agent).lower(state, obs, key)) == {"HIGHEST"}
    assert precisions(update_fn(agent).lower(state, batch, key)) == {"HIGHEST"}
    assert precisions(inference_fn(agent, "default").lower(state, obs, key)) == {"DEFAULT"}


def test_env_only_records_carry_the_run_flags_matmul_precision(tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    flags = ["--env", "bandit/eight_gaussians", "--env-only", "--num-envs", "4", "--steps-per-call", "2"]
    _bench(monkeypatch, [*flags, "--json", str(out), "--matmul-precision", "high"])
    assert [r["matmul_precision"] for r in json.loads(out.read_text())] == ["high"]


def test_xla_cost_counts_a_matmuls_flops():
    """2 m k n floating-point operations for an [m, k] x [k, n] product, as XLA's cost analysis counts them."""
    import jax
    import jax.numpy as jnp

    from mjx_som_lab.benchmarks import xla_cost

    cost = xla_cost(jax.jit(jnp.dot), jnp.ones((64, 128)), jnp.ones((128, 32)))
    assert cost["gflops"] == pytest.approx(2 * 64 * 128 * 32 / 1e9, rel=1e-6)


def _update_gflops(algo: str, preset: str, flags: tuple[str, ...] = ()) -> float:
    """XLA's FLOPs of one update of algo at HalfCheetah-v4's sizes (17-d observation, 6-d action) and the
    preset's batch and networks: lowered and compiled, never run."""
    import jax

    from mjx_som import agents
    from mjx_som.agents.base import EnvSpec
    from mjx_som_lab.bench_suite import run_config
    from mjx_som_lab.benchmarks import update_cost

    config = run_config("HalfCheetah-v4", algo, flags, preset)
    agent = agents.make_agent(algo, config.algo_config(), EnvSpec(17, 6, 1000))
    state = agent.init(jax.random.PRNGKey(0))
    return update_cost(agent, state, 17, 6, config.batch_size)["gflops"]


def test_soms_update_at_the_accelerator_preset_costs_at_most_8x_sacs_flops():
    """Issue "A fast SOM loop": 24x before (32 candidates, 100 proposals and 16 uniform actions through the
    512-wide twin critics at every one of 8192 states), now 6.5x."""
    som, sac = _update_gflops("som", "accelerator"), _update_gflops("sac", "accelerator")
    assert 0 < som <= 8 * sac, (som, sac)


def test_actor_batch_size_cuts_the_actors_share_of_the_update():
    """The actor regresses at every (batch / n)-th row: halving its rows halves the proposals' and the
    MeanFlow step's work; the critic's (the TD target's candidates and the TD step) stays."""
    flags = ("--som.num-samples", "64", "--batch-size", "256")
    whole, half = (_update_gflops("som", "cpu", flags + ("--som.actor-batch-size", n)) for n in ("0", "128"))
    actor_share = 2 * (whole - half)  # what the actor's rows cost at the whole batch: 64 proposals per state
    assert 0.5 * whole < actor_share < whole, (whole, half)


def test_the_algorithm_bench_times_the_networks_at_the_network_precision(monkeypatch):
    """--network-precision sets what an agent's act() and update are traced under (they are networks only);
    --matmul-precision (the physics') is recorded beside it."""
    from mjx_som_lab import bench_suite

    seen = []
    fake_time = lambda *args: seen.append(args[-1]) or (1.0, 0.0)  # noqa: E731  (ms, std)
    fake_cost = lambda *args: seen.append(args[-1]) or {"gflops": 1.0, "compile_s": 0.0}  # noqa: E731
    for name in ("update_ms", "inference_ms"):
        monkeypatch.setattr(bench_suite, name, fake_time)
    for name in ("update_cost", "inference_cost"):
        monkeypatch.setattr(bench_suite, name, fake_cost)
    options = bench_suite.BenchOptions(env="bandit/eight_gaussians", algos="sac", skip_loop=True)
    env = envs.make("bandit/eight_gaussians")
    flags = ["--network-precision", "default", "--sac.actor-hidden", "8", "--sac.critic-hidden", "8"]
    (record,) = bench_suite.bench_algo(env, options, flags, "sac", [4], 8)
    assert seen == ["default"] * 4
    assert (record["network_precision"], record["matmul_precision"]) == ("default", "highest")

"""launch/sweep.py runs a 2 x 2 grid of tiny runs; mjx_som_lab.report turns them into the table and plot."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import TINY, assert_picture, dotted

from mjx_som_lab.report import write_report
from mjx_som_lab.sweep import expand, load_grid

# TINY's run, eval every 400 steps, and MFP's networks as small as SOM's (YAML takes lists, not tuples)
SWEEP_FLAGS = dotted(
    {
        **TINY,
        "eval_every": 400,
        "som": {k: list(v) if isinstance(v, tuple) else v for k, v in TINY["som"].items()},
        "mfp": {"actor_hidden": [16], "critic_hidden": [16], "num_candidates": 4},
    }
)


def test_grid_expands_per_algo_axes(tmp_path):
    spec = {
        "name": "g",
        "envs": ["bandit/eight_gaussians"],
        "algos": ["som", "mfp"],
        "seeds": [0, 1],
        "grid": {"som.w": [3.0, 5.0], "batch_size": [32, 64]},
        "flags": {"progress": False},
    }
    runs = expand(spec, "out")
    assert len(runs) == (2 * 2 + 2) * 2  # som: w x batch; mfp: batch only; x 2 seeds
    som = next(r for r in runs if "-som-" in r["run_dir"])
    assert som["run_dir"] == "out/bandit_eight_gaussians-som-w=3.0-batch_size=32-s0"
    assert som["args"][som["args"].index("--som.w") : som["args"].index("--som.w") + 2] == ["--som.w", "3.0"]
    assert "--no-progress" in som["args"] and som["args"][-2:] == ["--wandb-group", "g"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "envs": ["a"], "algos": ["som"], "algo": 1}))
    with pytest.raises(ValueError, match=r"unknown keys \['algo'\]"):
        load_grid(str(bad))


def test_sweep_then_report(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "envs": ["bandit/eight_gaussians"],
                "algos": ["som", "mfp"],
                "seeds": [0, 1],
                "flags": SWEEP_FLAGS,
            }
        )
    )
    out = tmp_path / "sweep"
    sweep = subprocess.run([sys.executable, "launch/sweep.py", str(grid), "--out", str(out), "--parallel", "2"])
    assert sweep.returncode == 0, [p.read_text()[-2000:] for p in (out / "logs").iterdir()]
    run_dirs = sorted(p for p in out.iterdir() if p.name != "logs")
    assert [p.name for p in run_dirs] == [
        "bandit_eight_gaussians-mfp-s0",
        "bandit_eight_gaussians-mfp-s1",
        "bandit_eight_gaussians-som-s0",
        "bandit_eight_gaussians-som-s1",
    ]
    assert json.loads((run_dirs[0] / "config.json").read_text())["wandb_group"] == "tiny"
    report_dir = tmp_path / "report"
    report = write_report([str(p) for p in out.iterdir()], str(report_dir))
    entries = report["bandit/eight_gaussians"]
    assert set(entries) == {"som", "mfp"} and all(e["seeds"] == 2 for e in entries.values())
    summaries = [json.loads((d / "summary.json").read_text()) for d in run_dirs if "-som-" in d.name]
    assert entries["som"]["final_mean"] == pytest.approx(sum(s["eval/episode_return"] for s in summaries) / 2)
    table = (report_dir / "table.md").read_text()
    assert "| bandit/eight_gaussians | som |" in table and "modes [" in table
    assert_picture(report_dir / "curves.png")


def test_report_groups_seeds_across_code_versions_and_output_settings():
    """Seeds whose configs differ only in where and how often they save, or in a setting an older version
    of the code wrote (or lacked), form one group; a setting that changes learning still splits them."""
    from mjx_som_lab.report import group_runs

    def run(seed, som=(), **extra):
        som = {"alpha_scaled": 5.0, **dict(som)} if "score" not in dict(som) else dict(som)
        return {"config": {"env": "Hopper-v4", "algo": "som", "seed": seed, "som": som, **extra}, "evals": []}

    runs = [
        run(0, checkpoint_every=1_000_000, som={"a_t_source": "policy"}),  # an older version's config
        run(1, checkpoint_every=16_000, video_every=10, overwrite=True),
        run(2, checkpoint_every=16_000, video_every=10, som={"alpha_scaled": 20.0}),
        # today's config.json holds SOM's settings in blocks: the same setting as the flat block's before it
        run(3, som={"score": {"alpha_scaled": 20.0}}),
        run(4, som={"score": {"alpha_scaled": 5.0}}),
    ]
    groups = group_runs(runs)
    assert {label: [r["config"]["seed"] for r in members] for (_, label), members in groups.items()} == {
        "som alpha_scaled=5.0": [0, 1, 4],
        "som alpha_scaled=20.0": [2, 3],
    }


def test_report_statistics_over_seeds(tmp_path):
    """Final returns average each run's last K evaluations; the interval holds the mean and lies within the
    seeds' range; each group meets the env's best with the share of seed pairs it wins and Welch's p-value
    (checked against the t distribution by hand); the CLI refuses --last-evals 0 before reading any run."""
    from scipy import stats

    from mjx_som_lab.report import build_report, table_markdown

    def run(seed, returns, lengths=None):
        evals = [(1000 * (i + 1), 10.0 * (i + 1), r) for i, r in enumerate(returns)]
        lengths = lengths or [None] * len(returns)  # None: a run of a version that did not log the length
        config = {"env": "Hopper-v4", "algo": "x", "seed": seed}
        return {"config": config, "evals": evals, "lengths": lengths, "summary": {}}

    groups = {
        ("Hopper-v4", "som"): [
            run(0, [0, 900, 1000], [100, 300, 400]),
            run(1, [0, 700, 800], [100, 250, 200]),
            run(2, [0, 800, 1000], [100, 300, 1000]),
        ],
        ("Hopper-v4", "sac"): [run(0, [0, 1500, 1700]), run(1, [0, 3000, 3400]), run(2, [0, 800, 800])],
    }
    report = build_report(groups, {}, last_evals=2)["Hopper-v4"]
    som, sac = report["som"], report["sac"]
    assert som["finals"] == [950, 750, 900] and sac["finals"] == [1600, 3200, 800]
    # each run's mean of every evaluation; the episode length of its last 2 (absent where a run did not log it)
    assert som["every_eval_mean"] == pytest.approx([1900 / 3, 500, 600])
    assert som["final_episode_length"] == [350, 225, 650] and "final_episode_length" not in sac
    assert som["final_mean"] == pytest.approx(866.667, abs=1e-3)
    # the sample std (ddof = 1): squared deviations 83.3^2 + 116.7^2 + 33.3^2 = 21,666.7, over 3 - 1 seeds
    assert som["final_std"] == pytest.approx(np.sqrt(21_666.667 / 2), rel=1e-5)  # 104.08; ddof = 0 gives 84.98
    low, high = sac["final_ci95"]
    assert 800 <= low < sac["final_mean"] < high <= 3200
    assert "vs_best" not in sac and som["vs_best"]["label"] == "sac"
    # SOM's 950, 750, 900 against SAC's 1600, 3200, 800: of the 9 pairs SOM wins 950 > 800 and 900 > 800
    assert som["vs_best"]["prob_improvement"] == pytest.approx(2 / 9)
    x, y = np.array(som["finals"]), np.array(sac["finals"])
    vx, vy = x.var(ddof=1) / 3, y.var(ddof=1) / 3
    t = (x.mean() - y.mean()) / np.sqrt(vx + vy)
    dof = (vx + vy) ** 2 / (vx**2 / 2 + vy**2 / 2)
    assert som["vs_best"]["welch_p"] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-6)
    table = table_markdown({"Hopper-v4": report})
    assert "mean of the last 2 evals" in table and "| Hopper-v4 | som | 866.7 ± 104.1 (3) |" in table
    # the mean of every eval over seeds: 577.8 ± 69.4 (the std of 633.3, 500, 600 with ddof = 1); length 408;
    # SAC's runs logged no length
    assert "| 577.8 ± 69.4 | 408 | 3425.2 ± 353.6 |" in table and "| — | 3425.2 ± 353.6 |" in table
    result = subprocess.run(
        [sys.executable, "launch/report.py", str(tmp_path / "nothing"), "--last-evals", "0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--last-evals must be >= 1, got 0" in result.stderr


@pytest.mark.parametrize("path", sorted(__import__("glob").glob("launch/sweeps/wandb_*.yaml")))
def test_every_wandb_sweep_file_sets_settings_run_py_takes(path):
    """W&B's agent calls run.py with each swept parameter as --name=value: every value of every parameter must be
    a flag run.py parses (before anything compiles), and each swept value must reach the config (a sweep file names
    an algorithm's setting with its block: the W&B charts then group runs by the key config.json has)."""
    from mjx_som.cli import config_from_flags
    from mjx_som.config_file import config_to_dict
    from mjx_som.logging import flatten_config

    with open(path) as f:
        sweep = yaml.safe_load(f)
    assert sweep["program"] == "launch/run.py"
    fixed = {k: v["value"] for k, v in sweep["parameters"].items() if "value" in v}
    env, algos = fixed.pop("env"), [fixed.pop("algo", "som")]
    swept = {k: v["values"] for k, v in sweep["parameters"].items() if "values" in v}
    algos = swept.pop("algo", algos)
    flags = [f"--{name}={value}" for name, value in fixed.items()]
    for algo in algos:
        for name, values in swept.items():
            configs = [
                flatten_config(config_to_dict(config_from_flags(env, algo, [*flags, f"--{name}={value}"], "cpu")))
                for value in values
            ]
            for config, value in zip(configs, values, strict=True):
                key = name.replace("-", "_")
                assert config[key] == value, (path, name, value)

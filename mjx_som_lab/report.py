"""Aggregating run directories (e.g. a sweep's) into Table-1-style results: runs grouped by env, algo
and every setting that differs between them, final returns mean ± std over seeds with a bootstrap
confidence interval, each group against the env's best (probability of improvement, Welch's test), the
wall clock to a target return, the paper's numbers beside ours. launch/report.py is its CLI."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
from scipy import stats

from mjx_som import agents
from mjx_som.agents.base import flat_settings, nest_settings
from mjx_som.logging import flatten_config, read_metrics
from mjx_som_lab.figures import report_curves

# Table 1 of the SOM paper (arXiv 2605.23365): final return, mean ± std over seeds.
PAPER = {
    "Ant-v4": ("7033.5 ± 304.2", "DACER 6953.5 ± 1029.7"),
    "HalfCheetah-v4": ("15789.8 ± 910.9", "SDAC 14820.9 ± 1049.0"),
    "Hopper-v4": ("3425.2 ± 353.6", "DACER 3462.8 ± 709.2"),
    "Humanoid-v4": ("7365.7 ± 493.3", "DIPO 6139.4 ± 645.9"),
    "Walker2d-v4": ("5472.8 ± 526.9", "DIPO 5425.8 ± 181.3"),
}
# settings that never change what a run learns: where it writes, how often it saves or films, how it is shown
IGNORED = {
    "seed",
    "run_dir",
    "resume",
    "resume_step",
    "overwrite",
    "checkpoint_every",
    "keep_checkpoints",
    "video_every",
    "video_size",
    "progress",
    "wandb_mode",
    "wandb_project",
    "wandb_group",
    "coordinator",
    "process_id",
    "num_processes",
}


def _comparable(config: dict) -> dict:
    """Dotted setting names -> JSON text of the value (hashable, for comparing runs)."""
    return {k: json.dumps(v) for k, v in flatten_config(config).items()}


def _nested_block(values: dict, algo: str) -> dict:
    """An algorithm's block of a config.json as today's writes it (settings in their blocks: a flat block of a
    run from before 2026-12-04 compares with today's); a block of an algorithm this version lacks as it is."""
    if algo not in agents.REGISTRY:
        return values
    config_class = agents.config_class(algo)
    return nest_settings(flat_settings(values, config_class), config_class)


def load_runs(run_dirs: list[str]) -> list[dict]:
    runs = []
    for run_dir in run_dirs:
        paths = [os.path.join(run_dir, name) for name in ("config.json", "metrics.jsonl")]
        if not all(os.path.exists(p) for p in paths):
            continue
        with open(paths[0]) as f:
            config = json.load(f)
        metrics = read_metrics(run_dir)
        summary_path = os.path.join(run_dir, "summary.json")
        summary = {}
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        rows = [m for m in metrics if m.get("eval/episode_return") is not None]
        evals = [(m["env_steps"], m["walltime_s"], m["eval/episode_return"]) for m in rows]
        lengths = [m.get("eval/episode_length") for m in rows]  # None where an older version did not log it
        if evals:
            runs.append({"dir": run_dir, "config": config, "evals": evals, "lengths": lengths, "summary": summary})
    return runs


def group_runs(runs: list[dict]) -> dict[tuple, list[dict]]:
    """{(env, label): runs}; label is the algo plus every setting (of that algo or the run) that
    differs between the runs of the same env and algo, seeds and IGNORED excepted; a setting missing
    from some of their configs (written by another version of the code) is not compared."""
    by_env_algo = defaultdict(list)
    for run in runs:
        by_env_algo[(run["config"]["env"], run["config"]["algo"])].append(run)
    groups = {}
    for (env, algo), members in by_env_algo.items():
        flats = [
            _comparable(
                {
                    k: _nested_block(v, algo) if k == algo else v
                    for k, v in m["config"].items()
                    if k not in IGNORED and (k == algo or not isinstance(v, dict))
                }
            )
            for m in members
        ]
        # a setting only some configs hold came or went with a code version; it does not tell runs apart
        shared = set.intersection(*(set(f) for f in flats))
        varying = sorted(k for k in shared if len({f[k] for f in flats}) > 1)
        for member, flat in zip(members, flats, strict=True):
            label = algo + "".join(f" {k.split('.')[-1]}={json.loads(flat[k])}" for k in varying)
            groups.setdefault((env, label), []).append(member)
    return groups


def sample_std(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The sample standard deviation over seeds (ddof = 1; the population std understates it by sqrt((n - 1) /
    n), 18% with 3 seeds); 0 for a single seed."""
    values = np.asarray(values, float)
    return values.std(axis=axis, ddof=1) if values.shape[axis] > 1 else np.zeros_like(values.mean(axis=axis))


def curve(members: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, mean wall clock s, mean return, sample std of the return) over the eval points every member
    has."""
    common = sorted(set.intersection(*({s for s, _, _ in m["evals"]} for m in members)))
    at = [{s: (w, r) for s, w, r in m["evals"]} for m in members]
    walls = np.array([[a[s][0] for s in common] for a in at])
    values = np.array([[a[s][1] for s in common] for a in at])
    return np.asarray(common), walls.mean(0), values.mean(0), sample_std(values)


def time_to_target(members: list[dict], target: float) -> dict:
    """Mean wall clock (s) and env steps to the first eval >= target, over the seeds that got there."""
    hits = [next(((s, w) for s, w, r in m["evals"] if r >= target), None) for m in members]
    reached = [h for h in hits if h is not None]
    if not reached:
        return {"reached": 0, "seeds": len(members)}
    return {
        "reached": len(reached),
        "seeds": len(members),
        "walltime_s": float(np.mean([w for _, w in reached])),
        "env_steps": float(np.mean([s for s, _ in reached])),
    }


def final_returns(members: list[dict], last_evals: int = 1) -> np.ndarray:
    """Per run, the mean of its last `last_evals` evaluation returns (1 = the final evaluation)."""
    return np.array([np.mean([r for _, _, r in m["evals"][-last_evals:]]) for m in members])


def final_lengths(members: list[dict], last_evals: int = 1) -> np.ndarray | None:
    """Per run, the mean greedy episode length (env steps) of its last `last_evals` evaluations: on a task whose
    episodes end when the robot falls (Hopper, Walker2d, Ant, Humanoid) it tells a policy that falls from one that
    is slow. None unless every run logged it."""
    lengths = [m["lengths"][-last_evals:] for m in members]
    if any(value is None for run in lengths for value in run):
        return None
    return np.array([np.mean(run) for run in lengths])


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> list[float] | None:
    """Percentile-bootstrap interval of the mean over seeds (scipy.stats.bootstrap, 10,000 resamples, fixed
    seed); None with fewer than 2 seeds. With 3-5 seeds a percentile bootstrap covers less than it claims:
    read it as a lower bound on the uncertainty."""
    if len(values) < 2:
        return None
    if np.ptp(values) == 0:
        return [float(values[0])] * 2
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=10_000,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def compare(values: np.ndarray, reference: np.ndarray) -> dict:
    """One group's final returns against another's: the probability of improvement P(X > Y) + P(X = Y) / 2
    over all pairs of their seeds (rliable's; the Mann-Whitney U over n m) and the two-sided p-value of
    Welch's t-test (None with fewer than 2 seeds on either side)."""
    wins = (values[:, None] > reference[None, :]).mean() + 0.5 * (values[:, None] == reference[None, :]).mean()
    welch = None
    if min(len(values), len(reference)) >= 2 and np.ptp(np.concatenate([values, reference])) > 0:
        welch = float(stats.ttest_ind(values, reference, equal_var=False).pvalue)
    return {"prob_improvement": float(wins), "welch_p": welch}


def build_report(groups: dict, targets: dict[str, float], last_evals: int = 1) -> dict:
    """{env: {label: entry}}: each group's final returns (the mean of each run's last `last_evals`
    evaluations), their mean, sample std (ddof = 1) and 95% bootstrap interval, the comparison with the env's
    group of the highest mean (`vs_best`, absent for that group), coverage for bandits and the time to target."""
    report = {}
    for (env, label), members in sorted(groups.items()):
        values = final_returns(members, last_evals)
        entry = {
            "final_mean": float(values.mean()),
            "final_std": float(sample_std(values)),
            "seeds": len(members),
            "finals": values.tolist(),
            "final_ci95": mean_interval(values),
            "last_evals": last_evals,
            # the mean of every evaluation of each run (the area under its curve over the eval points)
            "every_eval_mean": [float(np.mean([r for _, _, r in m["evals"]])) for m in members],
        }
        lengths = final_lengths(members, last_evals)
        if lengths is not None:
            entry["final_episode_length"] = lengths.tolist()
        coverage = [m["summary"]["modes_covered"] for m in members if "modes_covered" in m["summary"]]
        if coverage:
            entry["modes_covered"] = coverage
            entry["high_reward_fraction"] = [m["summary"]["high_reward_fraction"] for m in members]
        report.setdefault(env, {})[label] = entry
    for env, entries in report.items():
        best = max(entries, key=lambda label: entries[label]["final_mean"])
        target = targets.get(env, 0.8 * entries[best]["final_mean"])
        for label, entry in entries.items():
            if label != best:
                finals, best_finals = np.asarray(entry["finals"]), np.asarray(entries[best]["finals"])
                entry["vs_best"] = {"label": best, **compare(finals, best_finals)}
            entry["target"] = target
            entry["to_target"] = time_to_target(groups[(env, label)], target)
    return report


def table_markdown(report: dict) -> str:
    some = next(iter(next(iter(report.values())).values()))
    which = "final eval return" if some["last_evals"] == 1 else f"mean of the last {some['last_evals']} evals"
    lines = [
        f"| env | run | {which} (mean ± std, seeds) | 95% CI of the mean | vs the env's best: P(better), Welch p |"
        " mean of every eval | episode length | paper: SOM | paper: strongest baseline | time to target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env, entries in report.items():
        paper = PAPER.get(env, ("—", "—"))
        for label, e in entries.items():
            final = f"{e['final_mean']:.1f} ± {e['final_std']:.1f} ({e['seeds']})"
            if "modes_covered" in e:
                final += (
                    f"; modes {e['modes_covered']}, in high modes {np.round(e['high_reward_fraction'], 2).tolist()}"
                )
            interval = "—" if e["final_ci95"] is None else f"[{e['final_ci95'][0]:.1f}, {e['final_ci95'][1]:.1f}]"
            versus = "best"
            if "vs_best" in e:
                welch = e["vs_best"]["welch_p"]
                versus = f"{e['vs_best']['prob_improvement']:.2f}, " + ("—" if welch is None else f"{welch:.2f}")
            every = np.asarray(e["every_eval_mean"])
            every_text = f"{every.mean():.1f} ± {sample_std(every):.1f}"
            length = "—" if "final_episode_length" not in e else f"{np.mean(e['final_episode_length']):.0f}"
            hit = e["to_target"]
            reach = (
                f"{hit['walltime_s']:.0f} s / {hit['env_steps']:,.0f} steps ({hit['reached']}/{hit['seeds']})"
                if hit["reached"]
                else f"not reached (0/{hit['seeds']})"
            )
            lines.append(
                f"| {env} | {label} | {final} | {interval} | {versus} | {every_text} | {length} | {paper[0]} |"
                f" {paper[1]} |"
                f" {reach} (≥ {e['target']:.1f}) |"
            )
    return "\n".join(lines) + "\n"


def parse_targets(text: str) -> dict[str, float]:
    targets = {}
    for item in filter(None, text.split(",")):
        env, _, value = item.rpartition("=")
        targets[env] = float(value)
    return targets


def write_report(run_dirs: list[str], out: str, targets: dict[str, float] | None = None, last_evals: int = 1) -> dict:
    """report.json, table.md and curves.png of the runs in run_dirs (those without config.json and an
    evaluation are skipped) into out; a run's final return is the mean of its last `last_evals`
    evaluations; returns the report. A ValueError when no run is left or last_evals < 1."""
    if last_evals < 1:
        raise ValueError(f"--last-evals must be >= 1, got {last_evals}")
    runs = load_runs(run_dirs)
    if not runs:
        raise ValueError("no run directory with config.json and evaluations in metrics.jsonl among the arguments")
    groups = group_runs(runs)
    report = build_report(groups, targets or {}, last_evals)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    table = table_markdown(report)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    curves = {key: (*curve(members), len(members)) for key, members in groups.items()}
    report_curves(curves, os.path.join(out, "curves.png"))
    print(table)
    print(f"{len(runs)} runs in {len(groups)} groups -> {out}/table.md, curves.png, report.json")
    return report

"""Aggregate run directories (e.g. a sweep's) into Table-1-style results.

    python launch/report.py runs/locomotion/* --out reports/locomotion
    python launch/report.py runs/bandit-coverage/* --targets bandit/eight_gaussians=0.9
    python launch/report.py runs/hopper-*/ --last-evals 4

Groups runs by (env, algo) (and by any other setting that differs between them, e.g. som.w) across
seeds, and writes into --out:
- curves.png: eval return against env steps (top row) and against wall clock (bottom row: the mean
  over seeds of the wall clock at each eval point), mean ± std over seeds, one column per env;
- table.md: per env and algo the final eval return (or, with --last-evals K, each run's mean of its last
  K evaluations: steadier where evaluations swing) as mean ± std over seeds, the 95% percentile-bootstrap
  interval of that mean, each group against the env's best group (the probability of improvement, i.e.
  the share of seed pairs it wins, and Welch's t-test p-value), the paper's SOM and strongest-baseline
  numbers beside them (docs/reference-results.md), and for bandits the raw-map mode coverage; the mean of
  every evaluation of a run (mean ± std over seeds: the area under its curve, which one late jump does not
  decide) and the greedy episode length of those final evaluations (on Hopper, Walker2d, Ant and Humanoid an
  episode ends when the robot falls: a policy that falls is told from one that is slow);
- the wall-clock (and env steps) to first reach a target return, per env and algo: --targets
  ENV=RETURN,...; by default 80% of the best final mean return among the runs of that env;
- report.json: the same numbers.
Directories without config.json and metrics.jsonl (e.g. a sweep's logs/) are skipped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from mjx_som_lab.report import parse_targets, write_report


@dataclass(frozen=True)
class ReportOptions:
    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """run directories"""
    out: str = "report"
    """output folder"""
    targets: str = ""
    """ENV=RETURN,... for the time-to-target column (default: 80% of the best final mean per env)"""
    last_evals: int = 1
    """a run's final return is the mean of its last K evaluations (1 = the final evaluation)"""


def main(argv: list[str] | None = None) -> dict:
    options = tyro.cli(ReportOptions, args=argv, description=__doc__)
    try:
        return write_report(list(options.run_dirs), options.out, parse_targets(options.targets), options.last_evals)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()

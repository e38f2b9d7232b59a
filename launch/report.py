"""Aggregate run directories (e.g. a sweep's) into Table-1-style results.

    python launch/report.py runs/locomotion/* --out reports/locomotion
    python launch/report.py runs/bandit-coverage/* --targets bandit/eight_gaussians=0.9

Groups runs by (env, algo) (and by any other setting that differs between them, e.g. som.w) across
seeds, and writes into --out:
- curves.png: eval return against env steps (top row) and against wall clock (bottom row: the mean
  over seeds of the wall clock at each eval point), mean ± std over seeds, one column per env;
- table.md: final eval return mean ± std (n seeds) per env and algo, the paper's SOM and strongest-
  baseline numbers beside them (docs/reference-results.md), and for bandits the raw-map mode coverage;
- the wall-clock (and env steps) to first reach a target return, per env and algo: --targets
  ENV=RETURN,...; by default 80% of the best final mean return among the runs of that env;
- report.json: the same numbers.
Directories without config.json and metrics.jsonl (e.g. a sweep's logs/) are skipped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import tyro

from mjx_som.report import parse_targets, write_report


@dataclass(frozen=True)
class ReportOptions:
    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """run directories"""
    out: str = "report"
    """output folder"""
    targets: str = ""
    """ENV=RETURN,... for the time-to-target column (default: 80% of the best final mean per env)"""


def main(argv: list[str] | None = None) -> dict:
    options = tyro.cli(ReportOptions, args=argv, description=__doc__)
    try:
        return write_report(list(options.run_dirs), options.out, parse_targets(options.targets))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()

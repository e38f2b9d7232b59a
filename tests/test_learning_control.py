"""Learning on a control task, on CPU, with the default preset (the README's command).

Wall clock and env steps of this run are recorded in docs/benchmarks.md.
"""

import json
import os

import mjx_som

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_reaches_950_on_inverted_pendulum(tmp_path):
    """SOM must reach an eval return of 950 (1000 is the maximum). Every run we measured reached
    1000 by 4k-8k env steps; some then destabilised before 12k (docs/benchmarks.md), so the
    criterion is the best greedy evaluation of the run, and the final one is only checked to
    have been made."""
    result = mjx_som.train("InvertedPendulum-v4", run_dir=str(tmp_path / "pendulum"), **QUIET)
    with open(os.path.join(result.run_dir, "metrics.jsonl")) as f:
        evals = [r["eval/episode_return"] for r in map(json.loads, f) if r.get("eval/episode_return") is not None]
    assert len(evals) == 3 and result.summary["eval/episode_return"] == evals[-1]
    assert max(evals) >= 950, evals

"""Learning on a control task, on CPU, with the default preset (the README's command).

Wall clock and env steps of this run are recorded in docs/benchmarks.md.
"""

import json
import os

import mjx_som

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_learns_and_keeps_inverted_pendulum(tmp_path):
    """SOM must balance the pendulum (1000 is the maximum return) and still balance it at the end of
    the run: the final greedy evaluation is at least 950 (docs/benchmarks.md has the seeds we ran)."""
    result = mjx_som.train("InvertedPendulum-v4", run_dir=str(tmp_path / "pendulum"), **QUIET)
    with open(os.path.join(result.run_dir, "metrics.jsonl")) as f:
        records = list(map(json.loads, f))
    evals = [r["eval/episode_return"] for r in records if r.get("eval/episode_return") is not None]
    assert len(evals) == 3 and result.summary["eval/episode_return"] == evals[-1]
    assert evals[-1] >= 950, evals
    assert 0 < records[-1]["train/score_ess"] <= 1, records[-1]

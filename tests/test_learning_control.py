"""Learning on a control task, on CPU, with the default preset (the README's command).

Wall clock and env steps of this run are recorded in docs/benchmarks.md.
"""

import mjx_som

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_balances_inverted_pendulum(tmp_path):
    summary = mjx_som.train("InvertedPendulum-v4", run_dir=str(tmp_path / "pendulum"), **QUIET).summary
    assert summary["eval/episode_return"] >= 950, summary

"""Learning on bandit/eight_gaussians, on CPU, with the default preset (the README's command).

Wall clock and env steps of these runs are recorded in docs/benchmarks.md.
"""

import pytest

import mjx_som

pytestmark = pytest.mark.usefixtures("full_optimization")  # trains to learn: conftest.py

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_raw_map_covers_all_eight_gaussian_modes(tmp_path):
    summary = mjx_som.train("bandit/eight_gaussians", run_dir=str(tmp_path / "som"), **QUIET).summary
    # the raw one-step map (noise -> action, no best-of-N) keeps every high-reward mode
    assert summary["modes_covered"] == 4, summary
    assert summary["high_reward_fraction"] >= 0.8, summary
    # and the acting policy is in the high modes
    assert summary["bon_high_reward_fraction"] >= 0.9, summary

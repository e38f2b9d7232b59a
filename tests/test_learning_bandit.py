"""Learning on bandit/eight_gaussians, on CPU, with the default preset (the README's command) at half its
budget: 192k of its 384k env steps (the warm-up, 65,536 steps, and every other setting as the preset has them).
The whole command took 739 s of one worker's 1,780 s in a 29:42 run of the suite (2026-12-04); at half the
budget seeds 0 / 1 / 2 ended with 4/4 modes, 0.926 / 0.925 / 0.904 of the raw map's samples and 0.999 / 1.000 /
1.000 of the best-of-N policy's in them (155 s a run alone on the 2-core CPU). The full budget's results, on the
held-out family too, are in docs/probes.md.

Wall clock and env steps of these runs are recorded in docs/benchmarks.md.
"""

import pytest

import mjx_som

pytestmark = pytest.mark.usefixtures("full_optimization")  # trains to learn: conftest.py

QUIET = dict(progress=False, wandb_mode="disabled")


def test_som_raw_map_covers_all_eight_gaussian_modes(tmp_path):
    result = mjx_som.train("bandit/eight_gaussians", total_steps=192_000, run_dir=str(tmp_path / "som"), **QUIET)
    summary = result.summary
    assert summary["env_steps"] == 192_000, summary
    # the raw one-step map (noise -> action, no best-of-N) keeps every high-reward mode
    assert summary["modes_covered"] == 4, summary
    assert summary["high_reward_fraction"] >= 0.8, summary
    # and the acting policy is in the high modes
    assert summary["bon_high_reward_fraction"] >= 0.9, summary

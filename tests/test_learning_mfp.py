"""MFP on bandit/eight_gaussians, on CPU, with the default preset: the contrast to SOM's coverage."""

import mjx_som

QUIET = dict(progress=False, wandb_mode="disabled")


def test_mfp_best_of_n_regression_loses_modes(tmp_path):
    """The same one-step actor regressed onto best-of-N targets (MFP) keeps fewer modes than SOM."""
    summary = mjx_som.train("bandit/eight_gaussians", algo="mfp", run_dir=str(tmp_path / "mfp"), **QUIET).summary
    assert summary["modes_covered"] <= 2, summary

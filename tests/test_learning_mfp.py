"""MFP on bandit/eight_gaussians, on CPU, with the default preset but a quarter of its steps: the
contrast to SOM's coverage. MFP collapses early (som.md §9: visible by about 2.5k steps); at 96k env
steps it covered 1 mode (measured 2026-11-27), and SOM's test shows 4."""

import mjx_som

QUIET = dict(progress=False, wandb_mode="disabled")


def test_mfp_best_of_n_regression_loses_modes(tmp_path):
    """The same one-step actor regressed onto best-of-N targets (MFP) keeps fewer modes than SOM."""
    result = mjx_som.train(
        "bandit/eight_gaussians", algo="mfp", run_dir=str(tmp_path / "mfp"), total_steps=96_000, **QUIET
    )
    assert result.summary["modes_covered"] <= 2, result.summary

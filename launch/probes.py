"""Mechanism probes: pictures and numbers that show what SOM's actor does on 2-D bandits.

    python launch/probes.py                       # everything; the learned probes take long on a CPU
    python launch/probes.py --probes score,ablation          # the estimator probes only (minutes on a CPU)
    python launch/probes.py --probes learned --methods som,mfp --seeds 0,1,2 --bandits bandit/eight_gaussians
    python launch/probes.py --probes noise,qdiag     # critic-noise robustness; Q diagnostics on HalfCheetah

Probes (each writes PNGs into --out and its numbers into --out/probes.json):
- score: SOM's estimated score (the denoising estimator, mjx_som/score.py) against the analytic noised
  score of a Gaussian-mixture target (the four high modes of eight_gaussians), at several t: cosine
  similarity near the modes and far from them, and a quiver picture.
- ablation: the transport performed by the estimated velocity field itself, integrated from noise with
  the TRUE reward as Q (no learning): mode coverage as a function of K (Monte-Carlo proposals) and
  alpha (inverse temperature), and the paper's literal estimator (idem, VP path) as a function of w.
- learned: training runs (the bandit preset and any of launch/run.py's flags) per bandit, method and seed: a coverage
  table (mean ± std over seeds) and per bandit one transport picture, every method side by side:
  where each raw map sends a grid of noise points (seed 0).
- noise: SOM trained with Gaussian noise of several scales on the observed rewards: coverage per
  scale, the learned Q field against the true reward, and the target velocity the learned Q induces
  against the one the true reward induces (cosine, several t), with a picture of both fields.
- qdiag: Q diagnostics on a locomotion task from checkpoints: SOM's and MFP's N candidates on shared
  states scored by each run's critic (box plots of the mean and std of Q per state), a PCA of the
  candidates, and each run's greedy headroom (what its own critic gains when the greedy action climbs
  its gradient); --qdiag-runs compares any runs (SAC's too) instead of training its own.

Training runs go to --runs (default OUT/runs); a finished run with the same config is reused. Any
flag not listed in --help is one of launch/run.py's, over each env's preset, for every run it fits
(--total-steps 96000; --som.alpha 10 reaches SOM's runs only). The probes live in
mjx_som_lab/probe_suite.py; this file is their CLI.
"""

from __future__ import annotations

from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som.cli import options_and_run_flags
from mjx_som_lab.probe_suite import ProbeOptions, run_probes


def main(argv: list[str] | None = None) -> dict:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    options, flags = options_and_run_flags(ProbeOptions, argv, __doc__)
    return run_probes(options, flags)


if __name__ == "__main__":
    main()

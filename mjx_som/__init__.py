"""mjx_som: one-step MeanFlow (SOM) policy optimisation on thousands of MJX environments.

result = mjx_som.train("bandit/eight_gaussians", algo="som", total_steps=100_000)
result.summary, result.run_dir, result.policy(obs, rng)
"""

import envs  # noqa: F401  (silences mujoco.mjx's optional-Warp message before anything imports it)
from mjx_som.api import RunConfig, TrainResult, train

__all__ = ["RunConfig", "TrainResult", "train"]

"""mjx_som: one-step MeanFlow (SOM) policy optimisation on thousands of MJX environments.

result = mjx_som.train("bandit/eight_gaussians", algo="som", total_steps=100_000)
result.summary, result.run_dir, result.policy(obs, rng)
mjx_som.resume(result.run_dir)   # continues a stopped run from its latest checkpoint
run = mjx_som.load(result.run_dir)  # the trained state, agent and policy, for analysis
"""

import envs  # noqa: F401  (silences mujoco.mjx's optional-Warp message before anything imports it)
from mjx_som.api import (
    CheckpointWriteFailed,
    LoadedRun,
    NonFiniteUpdates,
    RunConfig,
    TrainResult,
    load,
    resume,
    train,
)

__all__ = [
    "CheckpointWriteFailed",
    "LoadedRun",
    "NonFiniteUpdates",
    "RunConfig",
    "TrainResult",
    "load",
    "resume",
    "train",
]

"""Environments for mjx_som: MJX ports of Gymnasium's v4 MuJoCo tasks and 2-D bandits.

env = envs.make("HalfCheetah-v4")          # a brax Env: reset(rng), step(state, action)
vec = envs.wrappers.VecEnv(env, 4096)      # lockstep batch with time limit and auto-reset
"""

from __future__ import annotations

import contextlib
import io

# mujoco.mjx prints "Failed to import warp" on machines without NVIDIA Warp (it is optional).
with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # noqa: F401

from brax.envs.base import Env, State

from envs import bandits, playground, wrappers
from envs.bandits import Bandit
from envs.locomotion import (
    Ant,
    HalfCheetah,
    Hopper,
    Humanoid,
    InvertedDoublePendulum,
    InvertedPendulum,
    Reacher,
    Swimmer,
    Walker2d,
)
from envs.mujoco_env import MujocoTask, SolverSettings

MUJOCO_TASKS = {
    "Ant-v4": Ant,
    "HalfCheetah-v4": HalfCheetah,
    "Hopper-v4": Hopper,
    "Humanoid-v4": Humanoid,
    "Walker2d-v4": Walker2d,
    "InvertedPendulum-v4": InvertedPendulum,
    "InvertedDoublePendulum-v4": InvertedDoublePendulum,
    "Reacher-v4": Reacher,
    "Swimmer-v4": Swimmer,
}


def names() -> list[str]:
    """Every environment name that make() accepts: our tasks, the bandits, and Playground's DM Control suite
    (any other Playground task works too as playground/<Name>, e.g. its locomotion robots)."""
    return list(MUJOCO_TASKS) + list(bandits.BANDITS) + [playground.PREFIX + t for t in playground.DM_CONTROL_TASKS]


def known(name: str) -> bool:
    """Whether make() may accept name (a Playground task is checked when it is made)."""
    return name in names() or name.startswith(playground.PREFIX)


def make(name: str, **overrides) -> Env:
    """Builds an environment by name.

    MuJoCo tasks accept ``solver="newton"|"cg"``, ``iterations``, ``ls_iterations``, ``cone`` and
    any task attribute (e.g. ``ctrl_cost_weight=0.05``); bandits accept their builder's
    keyword arguments (``bandit/procedural``: ``landscape``, the seed of its landscape), ``reward_noise`` (std of
    Gaussian noise on observed rewards) and ``reward_multiplier`` (every reward times this); Playground tasks
    (``playground/<Name>``) ``physics``, ``observation_key``, ``num_envs`` and their config's entries.
    """
    if name.startswith(playground.PREFIX):
        return playground.PlaygroundTask(name[len(playground.PREFIX) :], **overrides)
    if name in MUJOCO_TASKS:
        solver_keys = {k: overrides.pop(k) for k in ("solver", "iterations", "ls_iterations", "cone") if k in overrides}
        return MUJOCO_TASKS[name](solver=SolverSettings(**solver_keys), **overrides)
    if name in bandits.BANDITS:
        reward_noise = overrides.pop("reward_noise", 0.0)
        reward_multiplier = overrides.pop("reward_multiplier", 1.0)
        bandit = bandits.BANDITS[name](**overrides).with_reward_multiplier(reward_multiplier)
        return bandit.with_reward_noise(reward_noise)
    raise ValueError(f"unknown env {name!r}; valid names: {', '.join(names())}")


__all__ = [
    "Bandit",
    "Env",
    "MujocoTask",
    "SolverSettings",
    "State",
    "bandits",
    "known",
    "make",
    "names",
    "playground",
    "wrappers",
]

"""Comparison of our MJX ports with Gymnasium's own v4 environments (C MuJoCo, float64).

Used by the tests and by ``launch/env_drift.py`` (the drift table in docs/envs.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import gymnasium as gym
import jax
import mujoco
import numpy as np

from envs.mujoco_env import MujocoTask


def make_reference(name: str, cone: str | None = None) -> gym.Env:
    """Gymnasium's unwrapped v4 task (no TimeLimit, no checker); cone="elliptic" overrides
    its friction cone (to compare contact-rich states independently of the cone's frame)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(name, disable_env_checker=True).unwrapped
    if cone == "elliptic":
        env.model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    return env


@dataclass
class OneStepDrift:
    """Worst one-step differences (ours - Gymnasium's) over the compared states."""

    obs_abs: float  # max |obs difference|
    obs_rel: float  # max |obs difference| / (1 + |obs|)
    reward_abs: float
    terminated_mismatches: int
    num_states: int


def reference_states(name: str, num_states: int, stride: int = 7, seed: int = 0):
    """(qpos [S, nq], qvel [S, nv], action [S, A] in [-1, 1]) visited by Gymnasium's own
    rollout under uniform random actions, restarting after termination: states with contacts."""
    ref = make_reference(name)
    rng = np.random.default_rng(seed)
    ref.reset(seed=seed)
    low, high = ref.action_space.low, ref.action_space.high
    qpos, qvel, actions = [], [], []
    while len(qpos) < num_states:
        for _ in range(stride):
            a = rng.uniform(-1, 1, size=low.shape)
            _, _, terminated, _, _ = ref.step(low + (a + 1) * 0.5 * (high - low))
            if terminated:
                ref.reset(seed=int(rng.integers(1 << 30)))
        qpos.append(ref.data.qpos.copy())
        qvel.append(ref.data.qvel.copy())
        actions.append(rng.uniform(-1, 1, size=low.shape))
    return np.array(qpos), np.array(qvel), np.array(actions, np.float32)


def one_step_drift(env: MujocoTask, name: str, qpos, qvel, actions) -> OneStepDrift:
    """Steps ours (batched, jitted) and Gymnasium's from each (qpos, qvel) with the same action."""
    ref = make_reference(name, cone=env.solver.cone)
    ref.reset(seed=0)
    step = jax.jit(jax.vmap(lambda p, v, a: env.step(env.reset_to(p, v), a)))
    ours = step(qpos.astype(np.float32), qvel.astype(np.float32), actions)
    ctrl = np.asarray(env.scale_action(actions), np.float64)
    ref_obs, ref_reward, ref_term = [], [], []
    for p, v, c in zip(qpos, qvel, ctrl, strict=True):
        ref.set_state(p, v)
        obs, reward, terminated, _, _ = ref.step(c)
        ref_obs.append(obs)
        ref_reward.append(reward)
        ref_term.append(terminated)
    ref_obs = np.array(ref_obs)
    obs_diff = np.abs(np.asarray(ours.obs, np.float64) - ref_obs)
    return OneStepDrift(
        obs_abs=float(obs_diff.max()),
        obs_rel=float((obs_diff / (1.0 + np.abs(ref_obs))).max()),
        reward_abs=float(np.abs(np.asarray(ours.reward) - np.array(ref_reward)).max()),
        terminated_mismatches=int(np.sum(np.asarray(ours.done).astype(bool) != np.array(ref_term))),
        num_states=len(qpos),
    )

"""Our MJX ports against Gymnasium's own v4 environments, plus the envs API."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.reference import make_reference, one_step_drift, reference_states

# One-step tolerance, measured (docs/envs.md): ours runs float32, Gymnasium float64, and
# MJX's Newton solver stops at 4 iterations. Observed worst relative errors are <= 3e-3
# (Humanoid's contact forces); 1e-2 leaves margin yet catches any wrong term, weight,
# index or frame-skip (each of those moves an entry by >> 1e-2 relative).
OBS_REL_TOL = 1e-2
REWARD_ABS_TOL = 1e-2

# Ant's pyramidal friction cone is oriented by the contact tangent frame, which MJX
# builds differently from C MuJoCo; with the rotation-invariant elliptic cone on both
# sides (solved to convergence) the ports agree in contact. docs/envs.md gives the
# default-cone drift.
OVERRIDES = {"Ant-v4": {"cone": "elliptic", "iterations": 100, "ls_iterations": 50}}


@pytest.mark.parametrize("name", list(envs.MUJOCO_TASKS))
def test_one_step_matches_gymnasium(name):
    env = envs.make(name, **OVERRIDES.get(name, {}))
    ref = make_reference(name)
    assert env.observation_size == ref.observation_space.shape[0]
    assert env.action_size == ref.action_space.shape[0]
    np.testing.assert_allclose(env.dt, ref.dt)
    qpos, qvel, actions = reference_states(name, num_states=24)
    drift = one_step_drift(env, name, qpos, qvel, actions)
    assert drift.obs_rel < OBS_REL_TOL, drift
    assert drift.reward_abs < REWARD_ABS_TOL, drift
    assert drift.terminated_mismatches == 0, drift


@pytest.mark.parametrize("name", list(envs.MUJOCO_TASKS))
def test_initial_state_distribution_matches(name):
    env = envs.make(name)
    n = 2000
    ours = np.asarray(jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), n)).obs)
    ref = make_reference(name)
    theirs = np.array([ref.reset(seed=i)[0] for i in range(n)])
    # means agree within 5 standard errors of a 2000-sample estimate, plus float32 round-off
    # (1e-4 relative) for entries that barely vary (Humanoid's com inertia)
    tol = 5 * theirs.std(axis=0) / np.sqrt(n) + 1e-5 + 1e-4 * np.abs(theirs.mean(0))
    np.testing.assert_array_less(np.abs(ours.mean(0) - theirs.mean(0)), tol)
    float32_noise = 1e-5 + 1e-4 * np.abs(theirs.mean(0))
    np.testing.assert_array_less(np.abs(ours.std(0) - theirs.std(0)), 0.1 * theirs.std(0) + float32_noise)


@pytest.mark.parametrize("name", list(envs.MUJOCO_TASKS))
def test_time_limit_is_gymnasiums(name):
    assert envs.wrappers.VecEnv(envs.make(name), 2).episode_length == gym.spec(name).max_episode_steps


def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="unknown env 'Nope-v4'.*HalfCheetah-v4.*bandit/eight_gaussians"):
        envs.make("Nope-v4")


def test_bad_solver_override_is_named():
    with pytest.raises(ValueError, match="solver='pgs'.*cg.*newton"):
        envs.make("Hopper-v4", solver="pgs")


def test_names_cover_the_interface():
    assert set(envs.names()) >= {
        "Ant-v4",
        "HalfCheetah-v4",
        "Hopper-v4",
        "Humanoid-v4",
        "Walker2d-v4",
        "InvertedPendulum-v4",
        "InvertedDoublePendulum-v4",
        "Reacher-v4",
        "Swimmer-v4",
        "bandit/eight_gaussians",
        "bandit/two_moons",
        "bandit/checkerboard",
    }


def test_actions_map_onto_control_range():
    env = envs.make("InvertedPendulum-v4")  # ctrlrange [-3, 3]
    np.testing.assert_allclose(env.scale_action(jnp.array([-1.0])), [-3.0])
    np.testing.assert_allclose(env.scale_action(jnp.array([0.5])), [1.5])
    np.testing.assert_allclose(env.scale_action(jnp.array([7.0])), [3.0])

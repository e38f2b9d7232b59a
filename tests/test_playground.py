"""MuJoCo Playground tasks through our Env contract (envs/playground.py): the DM Control suite as
Playground ships it, the adapter's rollout against Playground's own, truncation, clear errors."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.playground import DM_CONTROL_TASKS, PREFIX
from envs.wrappers import VecEnv


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("playground/CartpoleBalance")


def test_our_dm_control_names_are_playgrounds():
    from mujoco_playground._src import dm_control_suite

    assert tuple(sorted(dm_control_suite.ALL_ENVS)) == DM_CONTROL_TASKS
    assert [PREFIX + t for t in DM_CONTROL_TASKS] == [n for n in envs.names() if n.startswith(PREFIX)]


def test_the_adapter_rolls_out_what_playground_does(cartpole):
    from mujoco_playground import registry

    own = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
    actions = jax.random.uniform(jax.random.PRNGKey(1), (30, 1), minval=-1.0, maxval=1.0)

    def rollout(env, key):
        def body(state, action):
            state = env.step(state, action)
            return state, (state.obs, state.reward, state.done)

        return jax.lax.scan(body, env.reset(key), actions)[1]

    ours = jax.jit(lambda k: rollout(cartpole, k))(jax.random.PRNGKey(0))
    theirs = jax.jit(lambda k: rollout(own, k))(jax.random.PRNGKey(0))
    for a, b in zip(ours, theirs, strict=True):  # obs, reward, done
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(jnp.std(ours[1])) > 0  # the rewards respond to the actions


def test_truncation_keeps_the_final_observation(cartpole):
    vec = VecEnv(cartpole, 2, episode_length=3)

    def three_steps(key):
        state = vec.reset(key)
        for _ in range(3):
            state = vec.step(state, jnp.ones((2, 1)))
        return state

    state = jax.jit(three_steps)(jax.random.PRNGKey(2))
    assert np.all(np.asarray(state.info["truncated"]) == 1) and np.all(np.asarray(state.info["terminated"]) == 0)
    final, fresh = np.asarray(state.info["final_obs"]), np.asarray(state.obs)
    assert not np.allclose(final, fresh)  # the reset's observation is new; the last transition's is kept
    assert cartpole.episode_length == 1000 and float(cartpole.dt) == 0.01


# Every task is constructed and traced (reset and step, shapes and dtypes: jax.eval_shape, 100 s for the 25
# tasks); one task of three domains also compiles and runs (finite observations and rewards), chosen for what
# their models add: a tendon and contacts (BallInCup), contacts of a spinning body (FingerSpin) and fluid drag
# (FishSwim). Compiling one task of each of the 13 domains made this the suite's longest test (390 s of a cold
# 2-core run, 2026-12-03; with HumanoidWalk as a fourth 234 s, over the suite's 20 minutes); Cartpole also runs
# in test_learning_control.py and test_bench.py, MJX's humanoid in test_envs.py (Humanoid-v4 against Gymnasium).
STEPPED = ("BallInCup", "FingerSpin", "FishSwim")


def test_every_dm_control_task_resets_and_steps_under_vmap():
    assert set(STEPPED) <= set(DM_CONTROL_TASKS)
    for task in DM_CONTROL_TASKS:
        env = envs.make(PREFIX + task)
        vec = VecEnv(env, 2)
        low, high = env.scale_action(-jnp.ones(env.action_size)), env.scale_action(jnp.ones(env.action_size))
        ctrl = np.asarray(env.mj_model.actuator_ctrlrange)
        limited = np.asarray(env.mj_model.actuator_ctrllimited, bool)
        np.testing.assert_allclose(np.asarray(low)[limited], ctrl[limited, 0], err_msg=task)
        np.testing.assert_allclose(np.asarray(high)[limited], ctrl[limited, 1], err_msg=task)

        def reset_and_step(key, vec=vec, size=env.action_size):
            state = vec.reset(key)
            return vec.step(state, jax.random.uniform(key, (2, size), minval=-1.0, maxval=1.0))

        if task in STEPPED:
            state = jax.jit(reset_and_step)(jax.random.PRNGKey(0))
            assert bool(jnp.all(jnp.isfinite(state.obs))) and bool(jnp.all(jnp.isfinite(state.reward))), task
        else:
            state = jax.eval_shape(reset_and_step, jax.random.PRNGKey(0))
        assert state.obs.shape == (2, env.observation_size), task


def test_config_overrides_reach_the_task():
    from mjx_som.config import RunConfig

    config = RunConfig(env="playground/CartpoleBalance", env_override=("episode_length=250", "ctrl_dt=0.02"))
    task = config.make_env()
    assert (task.episode_length, task.task._config.ctrl_dt, task.dt) == (250, 0.02, 0.02)


def test_clear_errors_for_a_missing_extra_an_unknown_task_and_warp_on_a_cpu(monkeypatch):
    import mjx_som

    with pytest.raises(ValueError, match="unknown Playground task 'CartpoleBalnce'"):
        envs.make("playground/CartpoleBalnce")
    with pytest.raises(ValueError, match="--physics warp needs an NVIDIA GPU"):
        mjx_som.train("playground/CartpoleBalance", physics="warp", wandb_mode="disabled")
    with pytest.raises(ValueError, match="--env-override episode_lenght=9 for playground/CartpoleBalance: .* it has: "):
        mjx_som.train("playground/CartpoleBalance", env_override=("episode_lenght=9",), wandb_mode="disabled")
    monkeypatch.setitem(sys.modules, "mujoco_playground", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[playground\]"'):
        envs.make("playground/CartpoleBalance")

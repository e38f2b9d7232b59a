"""MuJoCo Playground tasks (`pip install -e ".[playground]"`) behind our Env contract: envs.make("playground/
CartpoleBalance"). Playground's own State(data, obs, reward, done, metrics, info) travels inside ours as
`pipeline_state`, so that VecEnv's auto-reset renews all of it (its info holds per-episode state);
actions in [-1, 1] map onto the actuators' control range; Playground's `done` (a task's termination,
or NaN physics) becomes `terminated`, and the time limit (the task config's episode_length) is VecEnv's
truncation, which keeps the true final observation. Dict observations: one entry, `observation_key`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from flax import struct

from envs.box import scale_to_box
from envs.mujoco_env import MujocoTask

PREFIX = "playground/"
# The DeepMind Control suite as Playground 0.2.0 ships it (they work offline; tests/test_playground.py
# checks this list against Playground's own)
DM_CONTROL_TASKS = (
    "AcrobotSwingup",
    "AcrobotSwingupSparse",
    "BallInCup",
    "CartpoleBalance",
    "CartpoleBalanceSparse",
    "CartpoleSwingup",
    "CartpoleSwingupSparse",
    "CheetahRun",
    "FingerSpin",
    "FingerTurnEasy",
    "FingerTurnHard",
    "FishSwim",
    "HopperHop",
    "HopperStand",
    "HumanoidRun",
    "HumanoidStand",
    "HumanoidWalk",
    "PendulumSwingup",
    "PointMass",
    "ReacherEasy",
    "ReacherHard",
    "SwimmerSwimmer6",
    "WalkerRun",
    "WalkerStand",
    "WalkerWalk",
)
PHYSICS = ("jax", "warp")


def registry():
    """mujoco_playground.registry, or an ImportError that names the extra to install."""
    try:
        from mujoco_playground import registry as playground_registry
    except ImportError as e:
        raise ImportError(f'the playground/ tasks need MuJoCo Playground: pip install -e ".[playground]" ({e})') from e
    return playground_registry


@struct.dataclass
class PlaygroundState:
    """Playground's own State, kept whole; qpos / qvel for the evaluation videos."""

    data: object
    obs: object
    metrics: dict
    info: dict

    @property
    def qpos(self):
        return self.data.qpos

    @property
    def qvel(self):
        return self.data.qvel


class PlaygroundTask(Env):
    """A Playground environment as an envs Env. physics: "jax" (MJX on any device) or "warp" (MuJoCo Warp,
    NVIDIA GPUs only); num_envs sizes Warp's contact buffers, which are totals over all worlds."""

    def __init__(self, task: str, physics: str = "jax", observation_key: str = "state", num_envs: int = 1, **overrides):
        if physics not in PHYSICS:
            raise ValueError(f"--physics {physics!r}; allowed: {', '.join(PHYSICS)}")
        playground = registry()
        if task not in playground.ALL_ENVS:
            raise ValueError(f"unknown Playground task {task!r}; Playground has: {', '.join(playground.ALL_ENVS)}")
        config = playground.get_default_config(task)
        unknown = [key for key in overrides if key not in config]
        if unknown:
            raise ValueError(f"{PREFIX}{task} has no config entry {unknown[0]!r}; it has: {', '.join(config.keys())}")
        overrides = {"impl": physics, **overrides}
        if physics == "warp":  # per-world buffer sizes times the worlds
            for key in ("naconmax", "njmax"):
                if key in config and key not in overrides and config[key]:
                    overrides[key] = int(config[key]) * max(num_envs, 1)
        try:
            self.task = playground.load(task, config_overrides=overrides)
        except Exception as e:  # noqa: BLE001 — Menagerie's download fails in many ways offline
            if "menagerie" in str(e).lower() or "git" in type(e).__name__.lower() or isinstance(e, OSError):
                raise ValueError(
                    f"playground/{task} loads its robot from MuJoCo Menagerie, which Playground clones from "
                    "https://github.com/google-deepmind/mujoco_menagerie on first use and could not here "
                    f"({type(e).__name__}: {e}); clone it by hand into "
                    "<site-packages>/mujoco_playground/external_deps/mujoco_menagerie (the DM Control tasks "
                    "need no download)"
                ) from e
            raise
        self.name = PREFIX + task
        self.physics, self.observation_key = physics, observation_key
        self.episode_length = int(self.task._config.episode_length)
        self.dt = float(self.task.dt)
        self.mj_model = self.task.mj_model
        ctrl = jnp.asarray(self.mj_model.actuator_ctrlrange, jnp.float32)
        limited = jnp.asarray(self.mj_model.actuator_ctrllimited, bool)
        self._low = jnp.where(limited, ctrl[:, 0], -1.0)
        self._high = jnp.where(limited, ctrl[:, 1], 1.0)
        sizes = self.task.observation_size
        if isinstance(sizes, dict):
            if observation_key not in sizes:
                raise ValueError(f"--observation-key {observation_key!r}: {self.name} observes {', '.join(sizes)}")
            sizes = sizes[observation_key]
        self._obs_size = int(sizes if isinstance(sizes, int) else sizes[-1])

    camera = MujocoTask.camera  # the videos' camera: a side view that follows the first body

    @property
    def observation_size(self) -> int:
        return self._obs_size

    @property
    def action_size(self) -> int:
        return int(self.task.action_size)

    @property
    def backend(self) -> str:
        return "mjx"

    def scale_action(self, action: jax.Array) -> jax.Array:
        """[-1, 1]^A onto the actuators' control range (unlimited actuators: [-1, 1])."""
        return scale_to_box(action, self._low, self._high)

    def _observation(self, obs) -> jax.Array:
        return obs[self.observation_key] if isinstance(obs, dict) else obs

    def _wrap(self, inner) -> State:
        obs = self._observation(inner.obs)
        terminated = jnp.asarray(inner.done, jnp.float32)
        info = {"terminated": terminated, "truncated": jnp.zeros_like(terminated), "final_obs": obs}
        pipeline = PlaygroundState(data=inner.data, obs=inner.obs, metrics=inner.metrics, info=inner.info)
        reward = jnp.asarray(inner.reward, jnp.float32)
        return State(pipeline_state=pipeline, obs=obs, reward=reward, done=terminated, metrics={}, info=info)

    def _inner(self, state: State):
        from mujoco_playground._src.mjx_env import State as InnerState

        p = state.pipeline_state
        return InnerState(data=p.data, obs=p.obs, reward=state.reward, done=state.done, metrics=p.metrics, info=p.info)

    def reset(self, rng: jax.Array) -> State:
        return self._wrap(self.task.reset(rng))

    def step(self, state: State, action: jax.Array) -> State:
        """One control step of the task with action [A] in [-1, 1]."""
        new = self._wrap(self.task.step(self._inner(state), self.scale_action(action)))
        # our info keys (kept across steps, as VecEnv adds its own) with this step's values
        return new.replace(info={**state.info, **new.info})

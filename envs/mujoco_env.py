"""A Gymnasium-v4-faithful MuJoCo task stepped with MJX.

Each task subclasses :class:`MujocoTask` and fills in three pure functions of
``mjx.Data``: the observation, the reward with its termination flag, and (when
Gymnasium's reset differs from the common one) the reset noise. Everything else
(model loading from the installed Gymnasium assets, solver overrides, frame skip,
action scaling, ``reset_to``) lives here once.

The task itself neither auto-resets nor truncates: like brax's environments it can
be handed to ``brax.training`` agents, and :class:`envs.wrappers.VecEnv` adds the
time limit and auto-reset for our trainer.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
from brax.envs.base import Env, State
from mujoco import mjx

from envs.box import scale_to_box

ASSETS_DIR = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")

_SOLVERS = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
_CONES = {"pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL, "elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC}


@dataclass(frozen=True)
class SolverSettings:
    """MJX constraint-solver settings, the main speed knob on an accelerator.

    solver: "newton" or "cg" (MJX has no PGS).
    iterations: maximum solver iterations per physics step.
    ls_iterations: maximum line-search iterations per solver iteration.
    cone: friction cone, "pyramidal" (what every v4 XML uses) or "elliptic".
    """

    solver: str = "newton"
    iterations: int = 4
    ls_iterations: int = 8
    cone: str = "pyramidal"


def load_model(xml_file: str, solver: SolverSettings) -> mujoco.MjModel:
    """Loads a Gymnasium asset and applies the MJX solver settings."""
    if solver.solver not in _SOLVERS:
        raise ValueError(f"solver={solver.solver!r} is not supported by MJX; choose one of {sorted(_SOLVERS)}")
    if solver.cone not in _CONES:
        raise ValueError(f"cone={solver.cone!r} is not supported; choose one of {sorted(_CONES)}")
    if solver.iterations < 1 or solver.ls_iterations < 1:
        raise ValueError(f"iterations and ls_iterations must be >= 1, got {solver.iterations}, {solver.ls_iterations}")
    model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS_DIR, xml_file))
    model.opt.solver = _SOLVERS[solver.solver]
    model.opt.iterations = solver.iterations
    model.opt.ls_iterations = solver.ls_iterations
    model.opt.cone = _CONES[solver.cone]
    return model


class MujocoTask(Env):
    """Base class of the MJX ports of Gymnasium's v4 MuJoCo tasks.

    Subclasses set the class attributes and implement :meth:`_observation` and
    :meth:`_reward_terminated`. Actions are in [-1, 1]^action_size and map linearly
    onto the actuators' control range (Gymnasium's action space).
    """

    xml_file: str
    frame_skip: int
    episode_length: int = 1000
    reset_noise_scale: float
    # Gymnasium samples qvel noise either uniformly (like qpos) or as scale * N(0, 1).
    qvel_noise_gaussian: bool = False
    # The evaluation videos' camera (mjx_som/video.py): a side view that follows body `track_body` (None: a
    # fixed view of `lookat`), `distance` metres away.
    camera = {"distance": 4.0, "elevation": -20.0, "azimuth": 90.0, "track_body": 1, "lookat": (0.0, 0.0, 0.0)}

    def __init__(self, solver: SolverSettings = SolverSettings(), **task_overrides):
        for key, value in task_overrides.items():
            if not hasattr(self, key) or key.startswith("_"):
                raise ValueError(f"{type(self).__name__} has no override {key!r}")
            setattr(self, key, value)
        self.solver = solver
        self.mj_model = load_model(self.xml_file, solver)
        self.mjx_model = mjx.put_model(self.mj_model)
        self._init_data = mjx.make_data(self.mjx_model)
        self._init_qpos = jnp.asarray(self.mj_model.qpos0, dtype=jnp.float32)
        self._init_qvel = jnp.zeros(self.mj_model.nv, dtype=jnp.float32)
        ctrl_range = jnp.asarray(self.mj_model.actuator_ctrlrange, dtype=jnp.float32)
        self._ctrl_low, self._ctrl_high = ctrl_range[:, 0], ctrl_range[:, 1]
        self.dt = float(self.mj_model.opt.timestep) * self.frame_skip
        obs = jax.eval_shape(lambda: self._observation(self._forward(self._init_qpos, self._init_qvel)))
        self._obs_size = int(obs.shape[-1])

    # ----- the brax Env interface -------------------------------------------------------
    @property
    def observation_size(self) -> int:
        return self._obs_size

    @property
    def action_size(self) -> int:
        return int(self.mj_model.nu)

    @property
    def backend(self) -> str:
        return "mjx"

    def reset(self, rng: jax.Array) -> State:
        """Samples Gymnasium's initial-state distribution; rng: PRNG key (unbatched)."""
        qpos, qvel = self._reset_qpos_qvel(rng)
        return self.reset_to(qpos, qvel)

    def reset_to(self, qpos: jax.Array, qvel: jax.Array) -> State:
        """A deterministic start from joint positions [nq] and velocities [nv]."""
        qpos = jnp.asarray(qpos, jnp.float32)
        # mjx.forward hands back free-joint quaternions normalised; C MuJoCo's mj_forward leaves
        # qpos as set (Gymnasium's first observation shows the noisy, unnormalised quaternion) and
        # normalises at the first integration, as MJX's step does.
        data = self._forward(qpos, jnp.asarray(qvel, jnp.float32)).replace(qpos=qpos)
        obs = self._observation(data)
        zero = jnp.zeros((), jnp.float32)
        info = {"terminated": zero, "truncated": zero, "final_obs": obs}
        return State(pipeline_state=data, obs=obs, reward=zero, done=zero, metrics={}, info=info)

    def step(self, state: State, action: jax.Array) -> State:
        """One control step: action [action_size] in [-1, 1], frame_skip physics steps."""
        ctrl = self.scale_action(action)
        before = state.pipeline_state
        after = jax.lax.fori_loop(
            0, self.frame_skip, lambda _, d: mjx.step(self.mjx_model, d), before.replace(ctrl=ctrl)
        )
        if self._needs_rne_post_constraint:
            after = mjx.rne_postconstraint(self.mjx_model, after)
        obs = self._observation(after)
        reward, terminated = self._reward_terminated(before, after, ctrl)
        terminated = terminated.astype(jnp.float32)
        info = {**state.info, "terminated": terminated, "truncated": jnp.zeros_like(terminated), "final_obs": obs}
        return state.replace(
            pipeline_state=after, obs=obs, reward=reward.astype(jnp.float32), done=terminated, info=info
        )

    # ----- shared helpers ----------------------------------------------------------------
    _needs_rne_post_constraint = False

    def scale_action(self, action: jax.Array) -> jax.Array:
        """Maps [-1, 1]^nu linearly onto the actuators' ctrlrange (actions are clipped)."""
        return scale_to_box(action, self._ctrl_low, self._ctrl_high)

    def _forward(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        data = self._init_data.replace(qpos=qpos, qvel=qvel, ctrl=jnp.zeros(self.mj_model.nu))
        data = mjx.forward(self.mjx_model, data)
        if self._needs_rne_post_constraint:
            data = mjx.rne_postconstraint(self.mjx_model, data)
        return data

    def _reset_qpos_qvel(self, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Gymnasium's common reset: qpos + U(-s, s); qvel + U(-s, s) or s * N(0, 1)."""
        key_pos, key_vel = jax.random.split(rng)
        s = self.reset_noise_scale
        qpos = self._init_qpos + jax.random.uniform(key_pos, (self.mj_model.nq,), minval=-s, maxval=s)
        if self.qvel_noise_gaussian:
            qvel_noise = s * jax.random.normal(key_vel, (self.mj_model.nv,))
        else:
            qvel_noise = jax.random.uniform(key_vel, (self.mj_model.nv,), minval=-s, maxval=s)
        return qpos, self._init_qvel + qvel_noise

    def body_id(self, name: str) -> int:
        return mujoco.mj_name2id(self.mj_model, mujoco.mjtObj.mjOBJ_BODY, name)

    # ----- what each task defines --------------------------------------------------------
    @abc.abstractmethod
    def _observation(self, data: mjx.Data) -> jax.Array:
        """The observation vector [observation_size] of a state."""

    @abc.abstractmethod
    def _reward_terminated(self, before: mjx.Data, after: mjx.Data, ctrl: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Reward and termination flag of the transition before -> after under ctrl."""

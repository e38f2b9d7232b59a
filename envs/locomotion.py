"""MJX ports of Gymnasium's v4 MuJoCo tasks (gymnasium/envs/mujoco/*_v4.py).

Each class restates its Gymnasium counterpart's observation, reward terms and
weights, healthy check and reset noise; docs/envs.md lists every deviation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from mujoco import mjx

from envs.mujoco_env import MujocoTask


def _forward_velocity(before: jax.Array, after: jax.Array, dt: float) -> jax.Array:
    return (after - before) / dt


def _ctrl_cost(weight: float, ctrl: jax.Array) -> jax.Array:
    return weight * jnp.sum(jnp.square(ctrl))


class HalfCheetah(MujocoTask):
    xml_file = "half_cheetah.xml"
    frame_skip = 5
    forward_reward_weight = 1.0
    ctrl_cost_weight = 0.1
    reset_noise_scale = 0.1
    qvel_noise_gaussian = True

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[1:], data.qvel])

    def _reward_terminated(self, before, after, ctrl):
        x_velocity = _forward_velocity(before.qpos[0], after.qpos[0], self.dt)
        reward = self.forward_reward_weight * x_velocity - _ctrl_cost(self.ctrl_cost_weight, ctrl)
        return reward, jnp.zeros((), bool)


class _PlanarWalker(MujocoTask):
    """Hopper and Walker2d: x-velocity + healthy bonus - control cost; planar healthy checks."""

    frame_skip = 4
    forward_reward_weight = 1.0
    ctrl_cost_weight = 1e-3
    healthy_reward = 1.0
    terminate_when_unhealthy = True
    reset_noise_scale = 5e-3
    healthy_z_range: tuple[float, float]
    healthy_angle_range: tuple[float, float]

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[1:], jnp.clip(data.qvel, -10.0, 10.0)])

    def _is_healthy(self, data: mjx.Data) -> jax.Array:
        z, angle = data.qpos[1], data.qpos[2]
        healthy_z = (self.healthy_z_range[0] < z) & (z < self.healthy_z_range[1])
        healthy_angle = (self.healthy_angle_range[0] < angle) & (angle < self.healthy_angle_range[1])
        return healthy_z & healthy_angle

    def _reward_terminated(self, before, after, ctrl):
        x_velocity = _forward_velocity(before.qpos[0], after.qpos[0], self.dt)
        healthy = self._is_healthy(after)
        # Gymnasium v4 pays the healthy reward on every step when terminate_when_unhealthy.
        healthy_reward = jnp.where(healthy | self.terminate_when_unhealthy, self.healthy_reward, 0.0)
        reward = self.forward_reward_weight * x_velocity + healthy_reward - _ctrl_cost(self.ctrl_cost_weight, ctrl)
        return reward, ~healthy & self.terminate_when_unhealthy


class Hopper(_PlanarWalker):
    xml_file = "hopper.xml"
    healthy_state_range = (-100.0, 100.0)
    healthy_z_range = (0.7, float("inf"))
    healthy_angle_range = (-0.2, 0.2)

    def _is_healthy(self, data: mjx.Data) -> jax.Array:
        state = jnp.concatenate([data.qpos, data.qvel])[2:]
        lo, hi = self.healthy_state_range
        return super()._is_healthy(data) & jnp.all((lo < state) & (state < hi))


class Walker2d(_PlanarWalker):
    xml_file = "walker2d.xml"
    healthy_z_range = (0.8, 2.0)
    healthy_angle_range = (-1.0, 1.0)


class Ant(MujocoTask):
    """Ant-v4 with its defaults: no contact forces in the observation or reward (27-d obs)."""

    camera = {**MujocoTask.camera, "distance": 6.0, "elevation": -30.0}

    xml_file = "ant.xml"
    frame_skip = 5
    ctrl_cost_weight = 0.5
    healthy_reward = 1.0
    terminate_when_unhealthy = True
    healthy_z_range = (0.2, 1.0)
    reset_noise_scale = 0.1
    qvel_noise_gaussian = True

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel])

    def _reward_terminated(self, before, after, ctrl):
        torso = self.body_id("torso")
        x_velocity = _forward_velocity(before.xpos[torso, 0], after.xpos[torso, 0], self.dt)
        state = jnp.concatenate([after.qpos, after.qvel])
        z = after.qpos[2]
        healthy = jnp.all(jnp.isfinite(state)) & (self.healthy_z_range[0] <= z) & (z <= self.healthy_z_range[1])
        healthy_reward = jnp.where(healthy | self.terminate_when_unhealthy, self.healthy_reward, 0.0)
        reward = x_velocity + healthy_reward - _ctrl_cost(self.ctrl_cost_weight, ctrl)
        return reward, ~healthy & self.terminate_when_unhealthy


class Humanoid(MujocoTask):
    """Humanoid-v4: 376-d observation with com inertia, com velocity, actuator and contact forces."""

    xml_file = "humanoid.xml"
    frame_skip = 5
    forward_reward_weight = 1.25
    ctrl_cost_weight = 0.1
    healthy_reward = 5.0
    terminate_when_unhealthy = True
    healthy_z_range = (1.0, 2.0)
    reset_noise_scale = 1e-2
    _needs_rne_post_constraint = True

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate(
            [
                data.qpos[2:],
                data.qvel,
                data._impl.cinert.ravel(),
                data.cvel.ravel(),
                data.qfrc_actuator,
                data._impl.cfrc_ext.ravel(),
            ]
        )

    def _mass_center_x(self, data: mjx.Data) -> jax.Array:
        mass = self.mjx_model.body_mass
        return jnp.sum(mass * data.xipos[:, 0]) / jnp.sum(mass)

    def _reward_terminated(self, before, after, ctrl):
        x_velocity = _forward_velocity(self._mass_center_x(before), self._mass_center_x(after), self.dt)
        z = after.qpos[2]
        healthy = (self.healthy_z_range[0] < z) & (z < self.healthy_z_range[1])
        healthy_reward = jnp.where(healthy | self.terminate_when_unhealthy, self.healthy_reward, 0.0)
        reward = self.forward_reward_weight * x_velocity + healthy_reward - _ctrl_cost(self.ctrl_cost_weight, ctrl)
        return reward, ~healthy & self.terminate_when_unhealthy


class Swimmer(MujocoTask):
    camera = {**MujocoTask.camera, "distance": 3.5, "elevation": -60.0}
    xml_file = "swimmer.xml"
    frame_skip = 4
    forward_reward_weight = 1.0
    ctrl_cost_weight = 1e-4
    reset_noise_scale = 0.1

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel])

    def _reward_terminated(self, before, after, ctrl):
        x_velocity = _forward_velocity(before.qpos[0], after.qpos[0], self.dt)
        reward = self.forward_reward_weight * x_velocity - _ctrl_cost(self.ctrl_cost_weight, ctrl)
        return reward, jnp.zeros((), bool)


class InvertedPendulum(MujocoTask):
    camera = {**MujocoTask.camera, "distance": 2.5, "track_body": None, "lookat": (0.0, 0.0, 0.3)}
    xml_file = "inverted_pendulum.xml"
    frame_skip = 2
    reset_noise_scale = 0.01

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos, data.qvel])

    def _reward_terminated(self, before, after, ctrl):
        obs = self._observation(after)
        terminated = ~jnp.all(jnp.isfinite(obs)) | (jnp.abs(obs[1]) > 0.2)
        return jnp.ones(()), terminated


class InvertedDoublePendulum(MujocoTask):
    camera = {**MujocoTask.camera, "distance": 3.5, "track_body": None, "lookat": (0.0, 0.0, 0.6)}
    xml_file = "inverted_double_pendulum.xml"
    frame_skip = 5
    reset_noise_scale = 0.1
    qvel_noise_gaussian = True

    def _observation(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate(
            [
                data.qpos[:1],
                jnp.sin(data.qpos[1:]),
                jnp.cos(data.qpos[1:]),
                jnp.clip(data.qvel, -10.0, 10.0),
                jnp.clip(data.qfrc_constraint, -10.0, 10.0),
            ]
        )

    def _reward_terminated(self, before, after, ctrl):
        x, _, y = after.site_xpos[0]
        dist_penalty = 0.01 * x**2 + (y - 2.0) ** 2
        v1, v2 = after.qvel[1], after.qvel[2]
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        return 10.0 - dist_penalty - vel_penalty, y <= 1.0


class Reacher(MujocoTask):
    """Reacher-v4: 50-step episodes; the reward is computed from the state BEFORE the step."""

    camera = {**MujocoTask.camera, "distance": 0.9, "elevation": -90.0, "track_body": None}

    xml_file = "reacher.xml"
    frame_skip = 2
    episode_length = 50
    reset_noise_scale = 0.1
    goal_radius = 0.2
    qvel_reset_scale = 0.005

    def _fingertip_to_target(self, data: mjx.Data) -> jax.Array:
        return data.xpos[self.body_id("fingertip")] - data.xpos[self.body_id("target")]

    def _observation(self, data: mjx.Data) -> jax.Array:
        theta = data.qpos[:2]
        return jnp.concatenate(
            [jnp.cos(theta), jnp.sin(theta), data.qpos[2:], data.qvel[:2], self._fingertip_to_target(data)]
        )

    def _reward_terminated(self, before, after, ctrl):
        reward = -jnp.linalg.norm(self._fingertip_to_target(before)) - jnp.sum(jnp.square(ctrl))
        return reward, jnp.zeros((), bool)

    def _reset_qpos_qvel(self, rng):
        """Arm qpos + U(-0.1, 0.1); goal uniform in the disc of radius 0.2 (what Gymnasium's
        rejection sampling yields); qvel + U(-0.005, 0.005) with the goal's velocity zero."""
        key_pos, key_r, key_angle, key_vel = jax.random.split(rng, 4)
        nq, nv = self.mj_model.nq, self.mj_model.nv
        s = self.reset_noise_scale
        qpos = self._init_qpos + jax.random.uniform(key_pos, (nq,), minval=-s, maxval=s)
        radius = self.goal_radius * jnp.sqrt(jax.random.uniform(key_r))
        angle = jax.random.uniform(key_angle, maxval=2 * jnp.pi)
        qpos = qpos.at[-2:].set(radius * jnp.array([jnp.cos(angle), jnp.sin(angle)]))
        v = self.qvel_reset_scale
        qvel = self._init_qvel + jax.random.uniform(key_vel, (nv,), minval=-v, maxval=v)
        return qpos, qvel.at[-2:].set(0.0)

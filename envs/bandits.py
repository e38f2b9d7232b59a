"""2-D bandits: one-step tasks whose reward is a known function of a 2-D action.

They probe whether a generative actor keeps several high-reward modes. An episode is
one step (``terminated`` is always 1); the observation is a constant zero vector.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State

from envs.box import scale_to_box

RewardFn = Callable[[jax.Array], jax.Array]
COVERED_SHARE = 0.05  # a mode counts as covered when it holds at least this share of the samples


class Bandit(Env):
    """A bandit over the box [low, high]^2 with a user-written JAX reward.

    reward_fn: maps an action [2] in env coordinates to a scalar reward.
    low, high: the action box; the agent's [-1, 1]^2 maps linearly onto it.
    modes: [M, 2] centres of the high-reward modes (for coverage metrics), or None.
    mode_radius: a sample within this distance of a centre is in that mode (one radius, or one per mode [M]).
    reward_noise: std of Gaussian noise added to every observed reward (reward_fn stays noise-free).
    name: how runs call it (config.json's env).
    reward_multiplier: every reward (and reward_fn) is multiplied by this, e.g. 100 or 0.01 to test that a
        learner does not depend on the reward's units.
    """

    episode_length = 1

    def __init__(
        self,
        reward_fn: RewardFn,
        low=-1.0,
        high=1.0,
        modes=None,
        mode_radius: float = 0.2,
        reward_noise: float = 0.0,
        name: str = "Bandit",
        reward_multiplier: float = 1.0,
    ):
        if reward_noise < 0:
            raise ValueError(f"reward_noise must be >= 0, got {reward_noise}")
        if not np.isfinite(reward_multiplier) or reward_multiplier <= 0:
            raise ValueError(f"reward_multiplier must be a finite number > 0, got {reward_multiplier}")
        self.base_reward_fn = reward_fn
        self.reward_multiplier = float(reward_multiplier)
        self.reward_fn = reward_fn if reward_multiplier == 1 else lambda a: self.reward_multiplier * reward_fn(a)
        self.reward_noise = float(reward_noise)
        self.name = name
        self.low = jnp.broadcast_to(jnp.asarray(low, jnp.float32), (2,))
        self.high = jnp.broadcast_to(jnp.asarray(high, jnp.float32), (2,))
        if not bool(jnp.all(self.high > self.low)):
            raise ValueError(f"Bandit needs high > low, got low={low}, high={high}")
        self.modes = None if modes is None else np.asarray(modes, np.float32).reshape(-1, 2)
        radii = np.asarray(mode_radius, np.float32)
        if radii.ndim > 1 or (radii.ndim == 1 and (self.modes is None or radii.shape[0] != self.modes.shape[0])):
            raise ValueError("mode_radius must be one number or one per mode (modes=[M, 2], mode_radius=[M])")
        self.mode_radius = float(radii) if radii.ndim == 0 else radii

    @property
    def mode_radii(self) -> np.ndarray:
        """The radius of each mode [M]."""
        return np.broadcast_to(np.asarray(self.mode_radius, np.float32), (len(self.modes),))

    @property
    def observation_size(self) -> int:
        return 1

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "none"

    def scale_action(self, action: jax.Array) -> jax.Array:
        """Maps [-1, 1]^2 (clipped) onto [low, high]^2."""
        return scale_to_box(action, self.low, self.high)

    def expected_reward(self, actions: jax.Array) -> jax.Array:
        """The noise-free reward of agent actions [..., 2] in [-1, 1]^2 -> [...]."""
        flat = actions.reshape(-1, 2)
        return jax.vmap(lambda a: self.reward_fn(self.scale_action(a)))(flat).reshape(actions.shape[:-1])

    def _copy(self, reward_noise: float, reward_multiplier: float) -> Bandit:
        base = self.name.split("+")[0]
        name = base + "".join(
            f"+{key}={value:g}"
            for key, value, neutral in (("reward_multiplier", reward_multiplier, 1), ("reward_noise", reward_noise, 0))
            if value != neutral
        )
        args = (self.base_reward_fn, self.low, self.high, self.modes, self.mode_radius, reward_noise, name)
        return Bandit(*args, reward_multiplier=reward_multiplier)

    def with_reward_noise(self, scale: float) -> Bandit:
        """A copy whose observed rewards carry N(0, scale^2) noise, named '<name>+reward_noise=<scale>'."""
        return self._copy(scale, self.reward_multiplier)

    def with_reward_multiplier(self, multiplier: float) -> Bandit:
        """A copy whose rewards are multiplied by `multiplier`, named '<name>+reward_multiplier=<multiplier>'."""
        return self._copy(self.reward_noise, multiplier)

    def reset(self, rng: jax.Array) -> State:
        obs = jnp.zeros((1,), jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        info = {"terminated": zero, "truncated": zero, "final_obs": obs}
        if self.reward_noise > 0:
            info["noise_rng"] = rng  # advanced on every step (a bandit's info survives its auto-resets)
        return State(pipeline_state=None, obs=obs, reward=zero, done=zero, metrics={}, info=info)

    def step(self, state: State, action: jax.Array) -> State:
        reward = jnp.asarray(self.expected_reward(action), jnp.float32)
        one = jnp.ones((), jnp.float32)
        info = {**state.info, "terminated": one, "truncated": jnp.zeros_like(one), "final_obs": state.obs}
        if self.reward_noise > 0:
            info["noise_rng"], key = jax.random.split(state.info["noise_rng"])
            reward = reward + self.reward_noise * jax.random.normal(key, ())
        return state.replace(reward=reward, done=one, info=info)

    def mode_stats(self, actions: jax.Array) -> dict[str, float]:
        """Coverage of agent actions [S, 2] in [-1, 1]^2 (mapped to env coordinates).

        modes_covered: modes holding >= 5% of the samples (COVERED_SHARE); high_reward_fraction: the share
        of samples inside any mode; mode_shares: each mode's share of the samples, in the order of `modes`.
        """
        if self.modes is None:
            raise ValueError("this Bandit was built without modes=...; coverage is undefined")
        points = np.asarray(self.scale_action(actions))
        dist = np.linalg.norm(points[:, None, :] - self.modes[None], axis=-1)
        in_mode = dist <= self.mode_radii
        share = in_mode.mean(axis=0)
        return {
            "num_high_modes": int(len(self.modes)),
            "modes_covered": int(np.sum(share >= COVERED_SHARE)),
            "high_reward_fraction": float(np.mean(in_mode.any(axis=1))),
            "mode_shares": [round(float(x), 4) for x in share],
        }


def eight_gaussians(radius: float = 0.7, width: float = 0.1, high: float = 1.0, low: float = 0.4) -> Bandit:
    """Eight Gaussian bumps on a circle, alternating high (reward `high`) and low reward."""
    angles = np.arange(8) * (2 * np.pi / 8)
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1).astype(np.float32)
    heights = jnp.asarray(np.where(np.arange(8) % 2 == 0, high, low), jnp.float32)

    def reward_fn(a):
        sq = jnp.sum(jnp.square(a[None, :] - centres), axis=-1)
        return jnp.max(heights * jnp.exp(-0.5 * sq / width**2))

    return Bandit(reward_fn, -1.0, 1.0, modes=centres[::2], mode_radius=2 * width, name="bandit/eight_gaussians")


def two_moons(width: float = 0.08) -> Bandit:
    """Two interleaved half-circle arcs of radius 0.5; reward 1 on the arcs, Gaussian fall-off.

    Each moon is covered by three mode centres (at 30, 90, 150 degrees along its arc).
    """
    arc_radius = 0.5
    centre_upper = np.array([-0.25, -0.1], np.float32)
    centre_lower = np.array([0.25, 0.1], np.float32)

    def arc_distance(a, centre, sign):
        rel = a - centre
        r = jnp.linalg.norm(rel)
        angle = jnp.arctan2(sign * rel[1], sign * rel[0])
        on_arc = jnp.abs(r - arc_radius)
        # off the half-circle's angular span, the distance is to the nearer end point
        ends = centre + sign * arc_radius * jnp.array([[1.0, 0.0], [-1.0, 0.0]])
        to_ends = jnp.min(jnp.linalg.norm(a - ends, axis=-1))
        return jnp.where((angle >= 0) & (angle <= jnp.pi), on_arc, to_ends)

    def reward_fn(a):
        d = jnp.minimum(arc_distance(a, centre_upper, 1.0), arc_distance(a, centre_lower, -1.0))
        return jnp.exp(-0.5 * d**2 / width**2)

    angles = np.deg2rad([30.0, 90.0, 150.0])
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    modes = np.concatenate([centre_upper + arc_radius * unit, centre_lower - arc_radius * unit])
    return Bandit(reward_fn, -1.0, 1.0, modes=modes, mode_radius=0.2, name="bandit/two_moons")


def checkerboard(cells: int = 4, sharpness: float = 10.0) -> Bandit:
    """A smooth cells x cells checkerboard on [-1, 1]^2: reward ~1 on half of the cells."""
    cell = 2.0 / cells
    freq = np.pi / cell

    def reward_fn(a):
        return jax.nn.sigmoid(sharpness * jnp.sin(freq * (a[0] + 1.0)) * jnp.sin(freq * (a[1] + 1.0)))

    centres = -1.0 + cell * (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1).reshape(-1, 2) + 0.5)
    high = (np.floor((centres[:, 0] + 1) / cell) + np.floor((centres[:, 1] + 1) / cell)) % 2 == 0
    return Bandit(reward_fn, -1.0, 1.0, modes=centres[high], mode_radius=cell / 2, name="bandit/checkerboard")


def _place_bumps(rng: np.random.Generator, widths: np.ndarray, extent: float, gap: float) -> np.ndarray | None:
    """Centres [M, 2] in [-extent, extent]^2, any two at least gap * (w_i + w_j) apart, or None if random
    placement fails."""
    centres = []
    for width in widths:
        for _ in range(200):
            point = rng.uniform(-extent, extent, 2)
            if all(np.linalg.norm(point - c) >= gap * (width + w) for c, w in zip(centres, widths, strict=False)):
                centres.append(point)
                break
        else:
            return None
    return np.asarray(centres, np.float32)


def procedural(landscape: int = 0) -> Bandit:
    """One landscape of a seeded procedural family, for testing on landscapes nobody tuned for.

    The landscape number seeds: 2-5 high bumps (heights 0.95-1, widths 0.06-0.12: the modes to cover, each with
    radius 2 x its width), 1-4 low bumps (heights 0.25-0.6, widths 0.06-0.15) and, in half of the landscapes, a
    broad decoy (height 0.5-0.75, width 0.3-0.5: a large area of moderate reward). Bump centres lie in
    [-0.8, 0.8]^2, any two at least 2.5 (w_i + w_j) apart, so the modes' circles do not touch. The reward is
    the largest of the Gaussian bumps h exp(-|a - c|^2 / (2 w^2)) at the action."""
    rng = np.random.default_rng([20261203, landscape])
    while True:
        num_high, num_low = int(rng.integers(2, 6)), int(rng.integers(1, 5))
        widths = np.concatenate([rng.uniform(0.06, 0.12, num_high), rng.uniform(0.06, 0.15, num_low)])
        heights = np.concatenate([rng.uniform(0.95, 1.0, num_high), rng.uniform(0.25, 0.6, num_low)])
        centres = _place_bumps(rng, widths, 0.8, 2.5)
        if centres is not None:
            break
    if rng.uniform() < 0.5:
        centres = np.concatenate([centres, rng.uniform(-0.8, 0.8, (1, 2)).astype(np.float32)])
        widths = np.append(widths, rng.uniform(0.3, 0.5))
        heights = np.append(heights, rng.uniform(0.5, 0.75))
    bump_centres = jnp.asarray(centres)
    bump_heights, bump_widths = jnp.asarray(heights, jnp.float32), jnp.asarray(widths, jnp.float32)

    def reward_fn(a):
        sq = jnp.sum(jnp.square(a[None, :] - bump_centres), axis=-1)
        return jnp.max(bump_heights * jnp.exp(-0.5 * sq / jnp.square(bump_widths)))

    modes, radii = centres[:num_high], 2.0 * widths[:num_high]
    return Bandit(reward_fn, -1.0, 1.0, modes=modes, mode_radius=radii, name=f"bandit/procedural-{landscape}")


BANDITS = {
    "bandit/eight_gaussians": eight_gaussians,
    "bandit/two_moons": two_moons,
    "bandit/checkerboard": checkerboard,
    "bandit/procedural": procedural,
}

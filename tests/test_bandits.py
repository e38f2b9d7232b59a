"""Bandit rewards at their mode centres, coverage metrics, user reward functions, reward noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.bandits import Bandit


@pytest.mark.parametrize("name", ["bandit/eight_gaussians", "bandit/two_moons", "bandit/checkerboard"])
def test_reward_is_high_at_mode_centres_and_low_between(name):
    env = envs.make(name)
    agent_coords = (env.modes - env.low) / (env.high - env.low) * 2 - 1
    state = env.reset(None)
    at_modes = [float(env.step(state, jnp.asarray(a)).reward) for a in agent_coords]
    assert min(at_modes) > 0.9
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41)), -1).reshape(-1, 2)
    rewards = np.array([float(env.reward_fn(jnp.asarray(a))) for a in grid])
    assert np.mean(rewards > 0.9) < 0.5  # high reward is concentrated, not everywhere


def test_eight_gaussians_alternates_high_and_low():
    env = envs.make("bandit/eight_gaussians")
    angles = np.arange(8) * np.pi / 4
    centres = 0.7 * np.stack([np.cos(angles), np.sin(angles)], -1)
    rewards = np.array([float(env.reward_fn(jnp.asarray(c))) for c in centres])
    np.testing.assert_allclose(rewards[::2], 1.0, atol=1e-5)
    np.testing.assert_allclose(rewards[1::2], 0.4, atol=1e-5)
    assert len(env.modes) == 4


def test_user_bandit_with_box_and_modes():
    env = Bandit(lambda a: -jnp.sum((a - 2.0) ** 2), low=0.0, high=4.0, modes=[[2.0, 2.0]], mode_radius=0.5)
    state = env.reset(None)
    assert float(env.step(state, jnp.zeros(2)).reward) == pytest.approx(0.0)  # [0,0] -> centre (2,2)
    assert float(env.step(state, -jnp.ones(2)).reward) == pytest.approx(-8.0)  # corner (0,0)
    stats = env.mode_stats(jnp.array([[0.0, 0.0], [0.1, 0.0], [-1.0, -1.0], [1.0, 1.0]]))
    assert stats == {"num_high_modes": 1, "modes_covered": 1, "high_reward_fraction": 0.5, "mode_shares": [0.5]}


def test_coverage_counts_modes_with_five_percent():
    env = envs.make("bandit/eight_gaussians")
    samples = np.repeat(env.modes[:2], [97, 3], axis=0)  # env coords == agent coords on [-1, 1]
    stats = env.mode_stats(jnp.asarray(samples))
    assert stats["modes_covered"] == 1 and stats["high_reward_fraction"] == 1.0
    assert stats["mode_shares"] == [0.97, 0.03, 0.0, 0.0]


def test_bandit_rejects_empty_box():
    with pytest.raises(ValueError, match="high > low"):
        Bandit(lambda a: a[0], low=1.0, high=1.0)


def test_reward_noise_has_the_asked_std_and_changes_every_step():
    env = envs.make("bandit/eight_gaussians", reward_noise=0.5)
    assert (
        env.name == "bandit/eight_gaussians+reward_noise=0.5"
        and env.with_reward_noise(0).name == "bandit/eight_gaussians"
    )
    vec = envs.wrappers.VecEnv(env, 4096)
    state = vec.reset(jax.random.PRNGKey(0))
    at_mode = jnp.broadcast_to(jnp.asarray(env.modes[0]), (4096, 2))  # env coords == agent coords here
    first = vec.step(state, at_mode)
    second = vec.step(first, at_mode)
    for rewards in (first.reward, second.reward):
        assert abs(float(jnp.mean(rewards)) - 1.0) < 0.05 and abs(float(jnp.std(rewards)) - 0.5) < 0.05
    assert float(jnp.mean(jnp.abs(first.reward - second.reward))) > 0.3  # fresh noise on every step
    assert float(env.reward_fn(jnp.asarray(env.modes[0]))) == pytest.approx(1.0)  # the reward function stays exact
    with pytest.raises(ValueError, match="reward_noise must be >= 0"):
        env.with_reward_noise(-0.1)


def test_procedural_landscapes_are_seeded_and_have_separated_high_modes():
    """The same landscape number builds the same bandit; high modes peak at 0.95-1 and lie apart (their circles
    do not touch); the reward outside the modes' circles stays below the lowest high peak."""
    first, again = envs.make("bandit/procedural", landscape=3), envs.make("bandit/procedural", landscape=3)
    np.testing.assert_array_equal(first.modes, again.modes)
    assert first.name == "bandit/procedural-3"
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 201), np.linspace(-1, 1, 201)), -1).reshape(-1, 2)
    counts = set()
    for landscape in range(12):
        env = envs.make("bandit/procedural", landscape=landscape)
        counts.add(len(env.modes))
        peaks = np.asarray(env.expected_reward(jnp.asarray(env.modes)))
        assert np.all((peaks >= 0.95) & (peaks <= 1.0)), peaks
        gaps = np.linalg.norm(env.modes[:, None] - env.modes[None], axis=-1)
        radii = env.mode_radii[:, None] + env.mode_radii[None]
        assert np.all((gaps > radii) | np.eye(len(env.modes), dtype=bool))
        rewards = np.asarray(env.expected_reward(jnp.asarray(grid)))
        inside = (np.linalg.norm(grid[:, None] - env.modes[None], axis=-1) <= env.mode_radii).any(axis=1)
        assert rewards[~inside].max() < peaks.min()
    assert len(counts) >= 3  # 2 to 5 high modes across the family
    assert not np.array_equal(envs.make("bandit/procedural", landscape=4).modes, first.modes)


def test_reward_multiplier_scales_rewards_and_keeps_the_modes():
    env = envs.make("bandit/eight_gaussians", reward_multiplier=100.0, reward_noise=0.5)
    assert env.name == "bandit/eight_gaussians+reward_multiplier=100+reward_noise=0.5"
    np.testing.assert_allclose(float(env.reward_fn(jnp.asarray(env.modes[0]))), 100.0, rtol=1e-6)
    np.testing.assert_array_equal(env.modes, envs.make("bandit/eight_gaussians").modes)
    with pytest.raises(ValueError, match="reward_multiplier must be a finite number > 0"):
        envs.make("bandit/eight_gaussians", reward_multiplier=0)


def test_per_mode_radii_count_each_mode_with_its_own_radius():
    env = Bandit(lambda a: a[0], modes=[[0.5, 0.0], [-0.5, 0.0]], mode_radius=[0.1, 0.3])
    stats = env.mode_stats(jnp.array([[0.5, 0.2], [-0.5, 0.2], [-0.5, 0.0], [0.55, 0.0]]))
    assert stats["high_reward_fraction"] == 0.75 and stats["modes_covered"] == 2
    assert stats["mode_shares"] == [0.25, 0.5]  # [0.5, 0.2] is outside the first mode's 0.1
    with pytest.raises(ValueError, match="one per mode"):
        Bandit(lambda a: a[0], modes=[[0.5, 0.0]], mode_radius=[0.1, 0.3])

"""DACER (Wang et al. 2024, "Diffusion Actor-Critic with Entropy Regulator"): a T-step diffusion actor
trained by back-propagating min(Q1, Q2)(s, a) through the whole reverse chain (a reparameterised
sample), N = 1, acting with the raw weights (the authors keep no averaged policy). Exploration noise
on the action is 0.15 * alpha; alpha is learned as in the authors' code (relax/algorithm/dacer.py in
happy-yan/DACER-Diffusion-with-Online-RL): every 10,000 updates the entropy H of the acting distribution
is estimated and log(alpha) takes one Adam step (lr 0.03) on -log(alpha) (H_target - H), H_target =
-0.9 A. The entropy is estimated on the device (a kernel estimate; the authors fit a Gaussian mixture
on the host).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import TemperatureConfig, make_diffusion_agent, temperature
from mjx_som.critic import min_q
from mjx_som.diffusion import kde_entropy


@dataclass(frozen=True)
class DACERConfig(TemperatureConfig):
    """DACER: the diffusion actor's settings and the entropy regulator's (the authors' values)."""

    num_candidates: int = 1
    """N: DACER acts with one sample"""
    ema: float = 0.0
    """DACER acts with the raw actor weights (its authors keep no averaged policy)"""
    explore_noise: float = 0.15
    """exploration noise std per unit of alpha (the authors' 0.15; 0.1 on some of their tasks)"""
    init_alpha: float = 3.3201169
    """initial temperature, e^1.2 as in the authors' code"""
    alpha_lr: float = 3e-2
    """Adam learning rate of log(alpha)"""
    alpha_update_every: int = 10_000
    """updates between two entropy estimates and steps of log(alpha)"""
    entropy_states: int = 256
    """states of the batch (at most) whose acting distribution's entropy is estimated"""
    entropy_samples: int = 200
    """actions sampled per such state for the entropy estimate"""


def make_dacer(config: DACERConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        action = policy.sample(params, batch.obs, key)  # gradients flow through the T steps
        q = min_q(config, critic_params, batch.obs, action)
        return -jnp.mean(q), {"policy_q": jnp.mean(q)}

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        key_sample, key_noise = jax.random.split(key)

        def entropy_gradient(log_alpha):
            """(d/d log(alpha) of -log(alpha) (H_target - H) = H - H_target, H): H of the acting draws."""
            states = batch.obs[: config.entropy_states]
            obs = jnp.repeat(states, config.entropy_samples, axis=0)
            actions = policy.sample(state.actor_params, obs, key_sample)
            noise = jax.random.normal(key_noise, actions.shape)
            actions = jnp.clip(actions + config.explore_noise * jnp.exp(log_alpha) * noise, -1.0, 1.0)
            entropy = jnp.mean(jax.vmap(kde_entropy)(actions.reshape(states.shape[0], config.entropy_samples, -1)))
            return entropy - config.target_entropy_per_dim * spec.action_size, entropy

        return config.temperature_step(state.extra, entropy_gradient, "entropy")

    return make_diffusion_agent(config, spec, actor_loss, config.temperature_init(), extra_update, temperature)

"""DACER (Wang et al. 2024, "Diffusion Actor-Critic with Entropy Regulator"): a T-step diffusion actor
trained by back-propagating min(Q1, Q2)(s, a) through the whole reverse chain (a reparameterised
sample), N = 1. Exploration noise on the action is scaled by a temperature alpha that is tuned so the
entropy of the acting distribution tracks a target; the entropy is estimated on the device from
samples (a kernel estimate; the authors fit a Gaussian mixture on the host).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import kde_entropy


@dataclass(frozen=True)
class DACERConfig(DiffusionConfig):
    """DACER: the diffusion actor's settings and the entropy regulator's."""

    num_candidates: int = 1
    """N: DACER acts with one sample"""
    init_alpha: float = 1.0
    """initial temperature: exploration noise std = explore_noise * alpha"""
    alpha_lr: float = 3e-3
    """step size of log(alpha) per update, times (entropy - target entropy)"""
    target_entropy_per_dim: float = -1.0
    """target entropy of the acting distribution, per action dimension (nats)"""
    entropy_states: int = 8
    """states per update whose acting distribution's entropy is estimated"""
    entropy_samples: int = 64
    """actions sampled per such state for the entropy estimate"""


def make_dacer(config: DACERConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        action = policy.sample(params, batch.obs, key)  # gradients flow through the T steps
        q = min_q(config, critic_params, batch.obs, action)
        return -jnp.mean(q), {"policy_q": jnp.mean(q)}

    def noise_std(state):
        return jnp.exp(state.extra["log_alpha"])

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        key_sample, key_noise = jax.random.split(key)
        obs = jnp.repeat(batch.obs[: config.entropy_states], config.entropy_samples, axis=0)
        actions = policy.sample(state.actor_params, obs, key_sample)
        actions = actions + config.explore_noise * noise_std(state) * jax.random.normal(key_noise, actions.shape)
        per_state = actions.reshape(-1, config.entropy_samples, spec.action_size)
        entropy = jnp.mean(jax.vmap(kde_entropy)(per_state))
        target = config.target_entropy_per_dim * spec.action_size
        log_alpha = state.extra["log_alpha"] - config.alpha_lr * (entropy - target)
        return {"log_alpha": log_alpha}, {"entropy": entropy, "alpha": jnp.exp(log_alpha)}

    return make_diffusion_agent(
        "dacer", config, spec, actor_loss, {"log_alpha": jnp.log(config.init_alpha)}, extra_update, noise_std
    )

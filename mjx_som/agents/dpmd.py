"""DPMD (diffusion policy mirror descent, from the SDAC authors' code): the current policy's best-of-N
actions are cloned with a denoising loss weighted by exp(clip(standardised Q, -3, 3) / temperature),
a mirror-descent step towards pi_old * exp(Q / lambda). Q is standardised by running estimates of its
mean and std (rate 0.001). Acting: T steps, best of N.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import denoising_loss
from mjx_som.score import ess_fraction

Q_STATS_RATE = 0.001


@dataclass(frozen=True)
class DPMDConfig(DiffusionConfig):
    """DPMD: the diffusion actor's settings and the mirror-descent temperature."""

    temperature: float = 1.0
    """lambda: weights exp(clip(standardised Q, -3, 3) / lambda)"""


def make_dpmd(config: DPMDConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        key_act, key_loss = jax.random.split(key)
        action = jax.lax.stop_gradient(policy.greedy(state, batch.obs, key_act))
        q = min_q(config, critic_params, batch.obs, action)
        z = (q - state.extra["q_mean"]) / state.extra["q_std"]
        weights = jax.lax.stop_gradient(jnp.exp(jnp.clip(z, -3.0, 3.0) / config.temperature))
        loss = denoising_loss(policy.eps_fn(params, batch.obs), policy.schedule, key_loss, action, weights)
        metrics = {"weight_mean": jnp.mean(weights), "batch_q_mean": jnp.mean(q), "batch_q_std": jnp.std(q)}
        # one weight per state: the effective sample size is over the batch
        return loss, metrics | {"score_ess": ess_fraction(weights)}

    def extra_update(state, critic_params, batch, key, policy, actor_metrics):
        """Running estimates of Q's mean and std over the cloned actions."""
        mean, std = state.extra["q_mean"], state.extra["q_std"]
        stats = {
            "q_mean": mean + Q_STATS_RATE * (jax.lax.stop_gradient(actor_metrics["batch_q_mean"]) - mean),
            "q_std": std + Q_STATS_RATE * (jax.lax.stop_gradient(actor_metrics["batch_q_std"]) + 1e-6 - std),
        }
        return stats, {}

    return make_diffusion_agent("dpmd", config, spec, actor_loss, {"q_mean": 0.0, "q_std": 1.0}, extra_update)

"""SDAC (Ma et al. 2025, "Efficient Online RL for Diffusion Policy"): reverse-sampling score matching.
A current-policy action a_0 is noised to a_k; M candidate clean actions are drawn back from a_k with
fresh noises eps_m, a_0^m = clip((a_k - sqrt(1 - alpha_bar_k) eps_m) / sqrt(alpha_bar_k)), and the
noise network regresses on each eps_m with weight softmax_m(alpha * Q(s, a_0^m)): a Q-weighted
denoising loss that needs no samples from the (unknown) target policy. Acting: T steps, best of N.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import predict_a0, q_sample
from mjx_som.score import ess_fraction, weight_metrics


@dataclass(frozen=True)
class SDACConfig(DiffusionConfig):
    """SDAC: the diffusion actor's settings and the reverse-sampling weights'."""

    alpha: float = 30.0
    """inverse temperature of the weights softmax(alpha * Q) (Q in scaled reward units)"""
    num_reverse_samples: int = 32
    """M: clean-action candidates drawn back from each noisy action"""


def make_sdac(config: SDACConfig, spec: EnvSpec) -> Agent:
    m = config.num_reverse_samples

    def actor_loss(params, state, critic_params, batch, key, policy):
        key_a0, key_k, key_eps, key_rev = jax.random.split(key, 4)
        schedule = policy.schedule
        b = batch.obs.shape[0]
        a0 = jax.lax.stop_gradient(policy.greedy(state, batch.obs, key_a0))
        k = jax.random.randint(key_k, (b,), 1, schedule.steps + 1)
        a_k = jnp.repeat(q_sample(schedule, k, a0, jax.random.normal(key_eps, a0.shape)), m, axis=0)
        k, obs = jnp.repeat(k, m), jnp.repeat(batch.obs, m, axis=0)
        eps = jax.random.normal(key_rev, a_k.shape)
        q = min_q(config, critic_params, obs, predict_a0(schedule, k, a_k, eps)).reshape(b, m)
        weights = jax.lax.stop_gradient(jax.nn.softmax(config.alpha * q, axis=1))  # [B, M]
        err = jnp.sum(jnp.square(policy.eps_fn(params, obs)(a_k, k / schedule.steps) - eps), axis=-1)
        metrics = {"weight_max": jnp.mean(jnp.max(weights, axis=1)), **weight_metrics(ess_fraction(weights))}
        return jnp.sum(weights.reshape(-1) * err) / b, metrics

    return make_diffusion_agent("sdac", config, spec, actor_loss)

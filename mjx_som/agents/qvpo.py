"""QVPO (Ding et al. 2024, "Diffusion-based Reinforcement Learning via Q-weighted Variational Policy
Optimization"): N candidates per state from the current policy are cloned with a denoising loss
weighted by their positive advantage, max(Q(s, a) - V(s), 0), V(s) the mean Q of the candidates
(weights normalised to mean 1 over the batch). Acting: T steps, best of N.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import denoising_loss
from mjx_som.score import ess_fraction, weight_metrics


@dataclass(frozen=True)
class QVPOConfig(DiffusionConfig):
    """QVPO: the diffusion actor's settings (the weights have no parameter)."""

    def validate(self) -> None:
        DiffusionConfig.validate(self)
        if self.num_candidates < 2:
            raise ValueError(
                f"num_candidates must be >= 2 (the advantage baseline is their mean Q), got {self.num_candidates}"
            )


def make_qvpo(config: QVPOConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        key_cand, key_loss = jax.random.split(key)
        cands = jax.lax.stop_gradient(policy.candidates(params, batch.obs, key_cand))  # [B, N, A]
        obs = jnp.broadcast_to(batch.obs[:, None], cands.shape[:2] + batch.obs.shape[-1:])
        q = min_q(config, critic_params, obs, cands)  # [B, N]
        adv = jnp.maximum(q - jnp.mean(q, axis=1, keepdims=True), 0.0)  # [B, N]
        weights = jax.lax.stop_gradient(adv / (jnp.mean(adv) + 1e-8)).reshape(-1)
        obs, cands = obs.reshape(-1, obs.shape[-1]), cands.reshape(-1, cands.shape[-1])
        loss = denoising_loss(policy.eps_fn(params, obs), policy.schedule, key_loss, cands, weights)
        # per state, the ESS of its candidates' weights (a state whose candidates tie has none: counted as 0)
        return loss, {"positive_advantage_fraction": jnp.mean(adv > 0), **weight_metrics(ess_fraction(adv))}

    return make_diffusion_agent("qvpo", config, spec, actor_loss)

"""DIPO (Yang et al. 2023, "Policy Representation via Diffusion Probability Model for RL"): replayed
actions are improved by a gradient step on the critic, a* = clip(a + eta * grad_a Q(s, a)), and the
diffusion actor clones a* with the plain denoising loss. The authors also write a* back into the
buffer; here the improved action is recomputed from the replayed one at each update (the buffer
belongs to the trainer). 100 steps, N = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import denoising_loss


@dataclass(frozen=True)
class DIPOConfig(DiffusionConfig):
    """DIPO: the diffusion actor's settings and the action-gradient step."""

    diffusion_steps: int = 100
    """T: DIPO samples with 100 steps"""
    num_candidates: int = 1
    """N: DIPO acts with one sample"""
    action_lr: float = 0.03
    """eta: step size of the action-gradient improvement"""


def make_dipo(config: DIPOConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        grad_q = jax.grad(lambda a: jnp.sum(min_q(config, critic_params, batch.obs, a)))(batch.action)
        improved = jax.lax.stop_gradient(jnp.clip(batch.action + config.action_lr * grad_q, -1.0, 1.0))
        loss = denoising_loss(policy.eps_fn(params, batch.obs), policy.schedule, key, improved)
        return loss, {"action_step": jnp.mean(jnp.linalg.norm(improved - batch.action, axis=-1))}

    return make_diffusion_agent("dipo", config, spec, actor_loss)

"""QSM (Psenka et al. 2024, "Learning a Diffusion Model Policy from Rewards via Q-Score Matching"):
the actor's score at noisy actions is matched to the action gradient of the critic,
score(a_k) = q_grad_scale * grad_a Q(s, a_k), i.e. the noise network regresses on
-sqrt(1 - alpha_bar_k) * q_grad_scale * grad_a min(Q1, Q2)(s, a_k), for replayed actions noised to a
random step k. Acting: T-step sampling, best of N.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec
from mjx_som.agents.iterative import DiffusionConfig, make_diffusion_agent
from mjx_som.critic import min_q
from mjx_som.diffusion import q_sample


@dataclass(frozen=True)
class QSMConfig(DiffusionConfig):
    """QSM: the diffusion actor's settings and the score scale."""

    q_grad_scale: float = 30.0
    """alpha: the actor's score is matched to alpha * grad_a Q (Q in scaled reward units)"""


def make_qsm(config: QSMConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        key_k, key_eps = jax.random.split(key)
        schedule = policy.schedule
        k = jax.random.randint(key_k, (batch.obs.shape[0],), 1, schedule.steps + 1)
        a_k = q_sample(schedule, k, batch.action, jax.random.normal(key_eps, batch.action.shape))
        grad_q = jax.grad(lambda a: jnp.sum(min_q(config, critic_params, batch.obs, a)))(a_k)
        target = -jnp.sqrt(1.0 - schedule.alpha_bar[k - 1])[:, None] * config.q_grad_scale * grad_q
        pred = policy.eps_fn(params, batch.obs)(a_k, k / schedule.steps)
        loss = jnp.mean(jnp.sum(jnp.square(pred - jax.lax.stop_gradient(target)), axis=-1))
        return loss, {"q_grad_norm": jnp.mean(jnp.linalg.norm(grad_q, axis=-1))}

    return make_diffusion_agent("qsm", config, spec, actor_loss)

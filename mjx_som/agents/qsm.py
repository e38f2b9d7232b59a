"""QSM (Psenka et al. 2024, "Learning a Diffusion Model Policy from Rewards via Q-Score Matching"), as
its authors run it (jaxrl5/agents/score_matching/score_matching_learner.py and
examples/states/configs/score_matching_config.py in Alescontrela/score_matching_rl): replayed actions
are noised to a random step k and the noise network regresses on -M_q * grad_a Q there, the action
gradient averaged over the twin critics, ||eps(a_k, k | s) + M_q mean(grad Q1, grad Q2)(s, a_k)||^2,
M_q = 50. T = 5 steps of a VP schedule with beta_max = 10, sampled as jaxrl5/networks/diffusion.py's
ddpm_sampler does (commit 62a2515: noise-form steps, the noisy action clipped after each); one chain acts
(N = 1) with the raw weights and the exploration noise 0.1; the critic target's next action is the same
noisy draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, make_diffusion_agent
from mjx_som.critic import CriticConfig, critic_network
from mjx_som.diffusion import q_sample


@dataclass(frozen=True)
class QSMConfig:
    """QSM: the critic and the diffusion actor (blocks, with the authors' values), and the score scale M_q."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # T = 5 (the authors'), their VP schedule ends at beta = 10, one chain acts (no best-of-N) with the raw
    # weights; the authors' sampler (jaxrl5/networks/diffusion.py ddpm_sampler, clip_sampler=True) clips the noisy
    # action after each noise-form step: clipping the predicted clean action instead saturates it at the box's
    # edge when eps ~ -M_q grad Q is large
    actor: DiffusionActorConfig = field(
        default_factory=lambda: DiffusionActorConfig(
            diffusion_steps=5, beta_max=10.0, num_candidates=1, ema=0.0, sampler_clip="sample"
        )
    )
    """the diffusion actor (the authors' values: 5 steps, beta_max 10, one raw chain acts, noisy samples clipped)"""
    score_scale: float = 50.0
    """M_q: the noise network regresses on -M_q * grad_a Q (Q in scaled reward units; the authors' 50 is
    for DeepMind Control rewards in [0, 1] per step, 120 for their hardest tasks)"""

    def validate(self) -> None:
        validate_blocks(self)


def action_gradient(config: QSMConfig, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """mean(grad_a Q1, grad_a Q2)(s, a) [B, A] for obs [B, O], action [B, A]."""
    q_sum = lambda a: jnp.sum(critic_network(config.critic).apply(critic_params, obs, a))  # noqa: E731
    return 0.5 * jax.grad(q_sum)(action)


def make_qsm(config: QSMConfig, spec: EnvSpec) -> Agent:
    def actor_loss(params, state, critic_params, batch, key, policy):
        key_k, key_eps = jax.random.split(key)
        schedule = policy.schedule
        k = jax.random.randint(key_k, (batch.obs.shape[0],), 1, schedule.steps + 1)
        a_k = q_sample(schedule, k, batch.action, jax.random.normal(key_eps, batch.action.shape))
        grad_q = action_gradient(config, critic_params, batch.obs, a_k)
        target = jax.lax.stop_gradient(-config.score_scale * grad_q)
        pred = policy.eps_fn(params, batch.obs)(a_k, k / schedule.steps)
        loss = jnp.mean(jnp.square(pred - target))
        return loss, {"q_grad_norm": jnp.mean(jnp.linalg.norm(grad_q, axis=-1))}

    return make_diffusion_agent(config, spec, actor_loss, noisy_next_actions=True)

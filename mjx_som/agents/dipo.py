"""DIPO (Yang et al. 2023, "Policy Representation via Diffusion Probability Model for RL"), as in the
authors' code (the DIPO of the relax library, run with scripts/train_mujoco.py's settings): the actions
in the replay are improved by gradient ascent on the critic, 30 Adam steps (lr 0.03, the batch's
action gradient clipped to global norm 0.16, the action clipped to the box after each step), the
improved actions are written back into the replay (so improvements add up over training), and the
diffusion actor clones them with the plain denoising loss. 100 steps, N = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax

from mjx_som.agents.base import Agent, EnvSpec, validate_blocks
from mjx_som.agents.iterative import DiffusionActorConfig, make_diffusion_agent
from mjx_som.critic import CriticConfig, ascend_actions, min_q
from mjx_som.diffusion import denoising_loss


@dataclass(frozen=True)
class DIPOConfig:
    """DIPO: the critic and the diffusion actor (blocks, with the authors' values), and the action-gradient
    improvement's settings."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    # T = 100 steps, one sample acts (N = 1); the authors' target policy: Polyak rate 0.005 every second update
    actor: DiffusionActorConfig = field(
        default_factory=lambda: DiffusionActorConfig(diffusion_steps=100, num_candidates=1, ema=0.9975)
    )
    """the diffusion actor (the authors' values: 100 steps, one sample acts, ema 0.9975)"""
    action_lr: float = 0.03
    """Adam learning rate of the action-gradient improvement"""
    action_gradient_steps: int = 30
    """Adam steps on the stored actions per update"""
    action_grad_norm: float = 0.16
    """the batch's action gradient is clipped to this global norm before each step"""

    def validate(self) -> None:
        validate_blocks(self)
        if self.action_gradient_steps < 1 or self.action_lr <= 0 or self.action_grad_norm <= 0:
            raise ValueError(
                f"need action_gradient_steps >= 1, action_lr > 0, action_grad_norm > 0; got "
                f"{self.action_gradient_steps}, {self.action_lr}, {self.action_grad_norm}"
            )


def improve_actions(config: DIPOConfig, q_fn, action: jax.Array) -> jax.Array:
    """action [B, A] after action_gradient_steps clipped-Adam steps up q_fn(action) -> [B] (the critics'
    min(Q1, Q2) at the batch's states), kept in the box."""
    optimizer = optax.chain(optax.clip_by_global_norm(config.action_grad_norm), optax.adam(config.action_lr))
    return ascend_actions(q_fn, action, optimizer, config.action_gradient_steps)


def make_dipo(config: DIPOConfig, spec: EnvSpec) -> Agent:
    """DIPO keeps the action it improves in its own replay column (starting as the taken action): each update
    improves the batch's (improve_actions, before the critic step), regresses the actor on them and returns
    them to be written back."""

    def actor_loss(params, state, critic_params, batch, key, policy):
        target = jax.lax.stop_gradient(batch.agent_column)
        loss = denoising_loss(policy.eps_fn(params, batch.obs), policy.schedule, key, target)
        return loss, {"action_step": jnp.mean(jnp.linalg.norm(target - batch.action, axis=-1))}

    diffusion = make_diffusion_agent(config, spec, actor_loss)

    def update(state, batch, key):
        key, _ = jax.random.split(key)  # the improvement draws nothing; the split keeps the update's key as before
        q_fn = lambda a: min_q(config.critic, state.critic.params, batch.obs, a)  # noqa: E731
        improved = improve_actions(config, q_fn, batch.agent_column)
        new_state, metrics, _ = diffusion.update(state, batch.replace(agent_column=improved), key)
        return new_state, metrics, improved

    return diffusion._replace(update=update, init_column=lambda action: action)

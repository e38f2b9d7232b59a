"""What every one-step MeanFlow agent shares (SOM, MFP): the actor u(a, r, t | s), its EMA, one-step
sampling, best-of-N acting, the critic update and the MeanFlow regression. An agent supplies only
its regression target: the noisy actions a_t at times (r, t) and the velocity v to regress on.

One update scores N candidates of the acting (EMA) actor at the batch's next states once, under the online
critic: their best is the critic target's next action, and a regression target may be built at the same
states from the same candidates and values (Selection: SOM's does), so the agent pays for them once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec, GenerativeActorConfig, validate_blocks
from mjx_som.critic import CriticConfig, CriticState, critic_init, critic_update, min_q
from mjx_som.meanflow import MeanFlowConfig, meanflow_loss, one_step_sample
from mjx_som.networks import VelocityNet
from mjx_som.replay import Transition


@dataclass(frozen=True)
class OneStepActorConfig(GenerativeActorConfig):
    """A one-step MeanFlow actor's block (`--<algo>.actor.*`): best-of-N acting (GenerativeActorConfig) and these."""

    actor_lr: float = 1e-3
    """peak actor Adam learning rate (cosine decay to actor_lr_final)"""
    actor_lr_final: float = 1e-4
    """actor learning rate at the end of the run"""
    target_candidates: int = 0
    """candidates per next state that the critic target picks its next action from (and SOM measures the state's
    best action with); 0 = num_candidates"""
    actor_batch_size: int = 0
    """states per update the actor regresses at: every (batch_size / actor_batch_size)-th row of the batch, so
    it must divide batch_size; 0 = the whole batch. The critic always learns on the whole batch"""

    def validate(self) -> None:
        GenerativeActorConfig.validate(self)
        if self.target_candidates < 0:
            raise ValueError(f"target_candidates must be >= 0 (0 = num_candidates), got {self.target_candidates}")
        if self.actor_batch_size < 0:
            raise ValueError(f"actor_batch_size must be >= 0 (0 = the whole batch), got {self.actor_batch_size}")


@dataclass(frozen=True)
class OneStepConfig:
    """A one-step MeanFlow agent with no setting of its own (MFP): its three blocks. SOM's config has these and
    its own (agents/som.py)."""

    critic: CriticConfig = field(default_factory=CriticConfig)
    """the twin critics"""
    actor: OneStepActorConfig = field(default_factory=OneStepActorConfig)
    """the one-step actor and its best-of-N acting"""
    meanflow: MeanFlowConfig = field(default_factory=MeanFlowConfig)
    """the MeanFlow loss the actor regresses with"""

    def validate(self) -> None:
        validate_blocks(self)


@struct.dataclass
class OneStepState:
    actor_params: dict
    actor_ema: dict
    actor_opt: optax.OptState
    critic: CriticState
    extra: Any = None  # the agent's own state (SOM: the running Q gap its acting selection is scaled by), or None


class Selection(NamedTuple):
    """The acting actor's candidates at the actor step's states: obs [B, O] (the batch's next states),
    candidates [B, N, A] and their min(Q1, Q2) [B, N] under the online critic before this update's critic step,
    and the best candidate [B, A]."""

    obs: jax.Array
    candidates: jax.Array
    q: jax.Array
    best: jax.Array


class Sampler(NamedTuple):
    """One-step sampling with given actor params: sample(params, obs [B, O], key, noise=None) -> [B, A];
    candidates(params, obs [B, O], key) -> [B, N, A]. Both clipped to the box."""

    sample: Callable
    candidates: Callable


# (state, critic params after this update's critic step, batch, selection: Selection, key, sampler) ->
#   (obs [B, O]: the states the actor regresses at, a_t [B, A], r [B], t [B], v [B, A], metrics, the new extra)
RegressionTarget = Callable[..., tuple]
# (extra, q [B, N] of the candidates, key) -> the index [B] of the candidate to act with
Choose = Callable[[Any, jax.Array, jax.Array], jax.Array]


def argmax_choice(extra, q: jax.Array, key: jax.Array) -> jax.Array:
    """Best-of-N: the candidate with the highest min(Q1, Q2). q [B, N] -> [B]."""
    return jnp.argmax(q, axis=1)


def make_one_step_agent(
    config,
    spec: EnvSpec,
    regression_target: RegressionTarget,
    choose: Choose = argmax_choice,
    init_extra: Callable[[], Any] = lambda: None,
) -> Agent:
    """The one-step agent with the given regression target; choose picks the acting candidate (the TD target's
    next action is always the argmax), init_extra() is the agent's own state at the start. config: a OneStepConfig
    or an algorithm config with its critic, actor and meanflow blocks (SOMConfig)."""
    config.validate()
    actor_config = config.actor
    actor_net = VelocityNet(actor_config.actor_hidden, spec.action_size, config.critic.activation)
    actor_optimizer = actor_config.actor_optimizer(spec.total_updates)

    def init(key) -> OneStepState:
        key_actor, key_critic = jax.random.split(key)
        zeros = jnp.zeros((1,))
        params = actor_net.init(
            key_actor, jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size)), zeros, zeros
        )
        return OneStepState(
            actor_params=params,
            actor_ema=params,
            actor_opt=actor_optimizer.init(params),
            critic=critic_init(key_critic, spec.obs_size, spec.action_size, config.critic),
            extra=init_extra(),
        )

    def u_fn(params, obs):
        """The actor as a function of (a, r, t) for fixed states obs [B, O]."""
        return lambda a, r, t: actor_net.apply(params, obs, a, r, t)

    def sample_with(params, obs, key, noise=None):
        if noise is None:
            noise = jax.random.normal(key, obs.shape[:-1] + (spec.action_size,))
        return jnp.clip(one_step_sample(u_fn(params, obs), noise), -1.0, 1.0)

    def candidates(params, obs, key, n=actor_config.num_candidates):
        obs_n = jnp.repeat(obs, n, axis=0)
        return sample_with(params, obs_n, key).reshape(obs.shape[0], n, -1)

    sampler = Sampler(sample_with, candidates)

    def scored(state: OneStepState, obs, key, n=actor_config.num_candidates) -> tuple[jax.Array, jax.Array]:
        """n candidates of the acting actor [B, n, A] and their min(Q1, Q2) [B, n]."""
        cands = candidates(state.actor_ema, obs, key, n)
        obs_n = jnp.broadcast_to(obs[:, None, :], cands.shape[:2] + obs.shape[-1:])
        return cands, min_q(config.critic, state.critic.params, obs_n, cands)

    def pick(cands, index):
        return jnp.take_along_axis(cands, index[:, None, None], axis=1)[:, 0]

    def select(state: OneStepState, obs, key) -> Selection:
        cands, q = scored(state, obs, key, actor_config.target_candidates or actor_config.num_candidates)
        return Selection(obs, cands, q, pick(cands, jnp.argmax(q, axis=1)))

    def act(state: OneStepState, obs, key, explore: bool):
        key_cand, key_choose, key_noise = jax.random.split(key, 3)
        cands, q = scored(state, obs, key_cand)
        action = pick(cands, choose(state.extra, q, key_choose))
        if explore:
            action = action + actor_config.explore_noise * jax.random.normal(key_noise, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def sample(state: OneStepState, obs, key, noise=None):
        return sample_with(state.actor_ema, obs, key, noise)

    def update(state: OneStepState, batch: Transition, key):
        key_next, key_target = jax.random.split(key)
        selection = select(state, batch.next_obs, key_next)
        critic, metrics = critic_update(config.critic, state.critic, batch, lambda _: (selection.best, 0.0))
        # the actor's rows: evenly strided, so a batch split over devices keeps an equal share on each
        stride = batch.reward.shape[0] // actor_config.actor_batch_size if actor_config.actor_batch_size else 1
        obs, a_t, r, t, v, target_metrics, extra = regression_target(
            state,
            critic.params,
            jax.tree.map(lambda x: x[::stride], batch),
            Selection(*(x[::stride] for x in selection)),
            key_target,
            sampler,
        )

        def loss_fn(params):
            return meanflow_loss(u_fn(params, obs), a_t, r, t, v, config.meanflow)

        (loss, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        updates, actor_opt = actor_optimizer.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        actor_ema = actor_config.ema_update(actor_params, state.actor_ema)
        metrics.update(target_metrics, actor_loss=loss, meanflow_mse=mse)
        return OneStepState(actor_params, actor_ema, actor_opt, critic, extra), metrics, None

    return Agent(config, init, act, update, sample)

"""What every iterative diffusion baseline shares (DACER, QSM, SDAC, DPMD, QVPO, DIPO): a noise-
prediction network eps(a_k, k | s) on the same VelocityNet as SOM's actor, its EMA (the acting rule of
every generative actor: the EMA acts and samples the critic target's next actions, GenerativeActorConfig.
ema), T-step DDPM sampling (mjx_som/diffusion.py), best-of-N acting under the twin critics, the critic
update, and one actor optimiser step. An algorithm supplies only its actor loss (and, optionally, state
of its own such as a temperature, updated without gradients through the actor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.agents.base import Agent, EnvSpec, GenerativeActorConfig
from mjx_som.critic import CriticState, best_of_n, critic_init, critic_update
from mjx_som.diffusion import Schedule, ddpm_schedule, reverse_sample
from mjx_som.networks import VelocityNet
from mjx_som.replay import Transition


@dataclass(frozen=True)
class DiffusionActorConfig(GenerativeActorConfig):
    """A diffusion actor's block (`--<algo>.actor.*`): best-of-N acting (GenerativeActorConfig) and the diffusion's
    settings. Each baseline's config gives its authors' values (agents/<name>.py)."""

    actor_lr: float = 3e-4
    """peak actor Adam learning rate (cosine decay to actor_lr_final)"""
    actor_lr_final: float = 3e-5
    """actor learning rate at the end of the run"""
    diffusion_steps: int = 20
    """T: denoising steps per sample"""
    beta_min: float = 0.1
    """VP schedule beta at t = 0 (as SOM's)"""
    beta_max: float = 20.0
    """VP schedule beta at t = 1"""
    eval_candidates: int = 0
    """candidates per state when acting without exploration (evaluation); 0 = num_candidates"""
    sampler_clip: str = "x0"
    """what each reverse step clips to the box: "x0" the predicted clean action (posterior steps) or "sample"
    the noisy action (noise-form steps, jaxrl5's ddpm_sampler): mjx_som.diffusion.reverse_sample"""

    def validate(self) -> None:
        GenerativeActorConfig.validate(self)
        if self.diffusion_steps < 1:
            raise ValueError(f"diffusion_steps must be >= 1, got {self.diffusion_steps}")
        if self.eval_candidates < 0:
            raise ValueError(f"eval_candidates must be >= 0 (0 = num_candidates), got {self.eval_candidates}")
        if self.sampler_clip not in ("x0", "sample"):
            raise ValueError(f"sampler_clip must be one of x0, sample; got {self.sampler_clip!r}")


@struct.dataclass
class DiffusionState:
    actor_params: dict
    actor_ema: dict  # the acting weights (GenerativeActorConfig.ema)
    actor_opt: optax.OptState
    critic: CriticState
    extra: dict  # the algorithm's own arrays (e.g. a temperature), {} when none


class DiffusionPolicy(NamedTuple):
    """What an actor loss may use. eps_fn(params, obs [B, O]) -> EpsFn; sample(params, obs, key,
    noise=None) -> [B, A] (one T-step chain each, from noise [B, A] when given); candidates(params,
    obs, key, n=N) -> [B, n, A]; best_of(params, critic_params, obs, key, n=N) -> [B, A] (the best of n
    chains of the given actor weights under the given critics; one chain when n = 1)."""

    schedule: Schedule
    eps_fn: Callable
    sample: Callable
    candidates: Callable
    best_of: Callable


# actor_loss(actor_params, state, critic_params, batch, key, policy) -> (loss, metrics); with
# clone_next_actions, batch.obs / batch.action are the critic target's states s' and next actions a'
ActorLoss = Callable[..., tuple]
# extra_update(state, critic_params, batch, key, policy, actor_metrics) -> (extra, metrics)
ExtraUpdate = Callable[..., tuple]


def make_diffusion_agent(
    config,
    spec: EnvSpec,
    actor_loss: ActorLoss,
    extra_init: dict | None = None,
    extra_update: ExtraUpdate | None = None,
    explore_scale: Callable[[DiffusionState], jax.Array] | None = None,
    noisy_next_actions: bool = False,
    clone_next_actions: bool = False,
    raw_next_actions: bool = False,
) -> Agent:
    """An Agent from an actor loss; config: an algorithm config with a critic block and a DiffusionActorConfig
    actor block; explore_scale(state) multiplies the actor's explore_noise. With
    noisy_next_actions the critic target's next actions are the acting draws at s' (best of N plus the
    exploration noise, as QSM's and DPMD's authors sample them); clone_next_actions (implies it) also
    hands them to the actor loss as its batch, so no second best-of-N chain is sampled for the actor;
    raw_next_actions (with noisy_next_actions) draws them with the raw actor weights instead of the EMA."""
    config.validate()
    actor_config, critic_config = config.actor, config.critic
    net = VelocityNet(actor_config.actor_hidden, spec.action_size, critic_config.activation)
    schedule = ddpm_schedule(actor_config.diffusion_steps, actor_config.beta_min, actor_config.beta_max)
    optimizer = actor_config.actor_optimizer(spec.total_updates)

    def init(key) -> DiffusionState:
        key_actor, key_critic = jax.random.split(key)
        zeros = jnp.zeros((1,))
        params = net.init(key_actor, jnp.zeros((1, spec.obs_size)), jnp.zeros((1, spec.action_size)), zeros, zeros)
        critic = critic_init(key_critic, spec.obs_size, spec.action_size, critic_config)
        extra = jax.tree.map(jnp.asarray, extra_init or {})
        return DiffusionState(params, params, optimizer.init(params), critic, extra)

    def eps_fn(params, obs):
        return lambda a_k, t: net.apply(params, obs, a_k, t, t)

    def sample(params, obs, key, noise=None):
        shape = (obs.shape[0], spec.action_size)
        return reverse_sample(eps_fn(params, obs), schedule, key, shape, noise, actor_config.sampler_clip)

    def candidates(params, obs, key, n=actor_config.num_candidates):
        obs_n = jnp.repeat(obs, n, axis=0)
        return sample(params, obs_n, key).reshape(obs.shape[0], n, -1)

    def best_of(params, critic_params, obs, key, n=actor_config.num_candidates):
        if n == 1:
            return sample(params, obs, key)
        return best_of_n(critic_config, critic_params, obs, candidates(params, obs, key, n))

    def greedy(state: DiffusionState, obs, key):
        return best_of(state.actor_ema, state.critic.params, obs, key)

    policy = DiffusionPolicy(schedule, eps_fn, sample, candidates, best_of)

    def draw(state: DiffusionState, params, obs, key, explore: bool):
        """The best of N chains of the given actor weights, plus the exploration noise when exploring."""
        key_cand, key_noise = jax.random.split(key)
        n = (
            actor_config.eval_candidates
            if actor_config.eval_candidates and not explore
            else actor_config.num_candidates
        )
        action = best_of(params, state.critic.params, obs, key_cand, n)
        if explore:
            scale = actor_config.explore_noise * (1.0 if explore_scale is None else explore_scale(state))
            action = action + scale * jax.random.normal(key_noise, action.shape)
        return jnp.clip(action, -1.0, 1.0)

    def act(state: DiffusionState, obs, key, explore: bool):
        return draw(state, state.actor_ema, obs, key, explore)

    def critic_step(state: DiffusionState, batch: Transition, key):
        """(critic, metrics, actor batch): the TD step, and the batch the actor loss sees."""
        if not clone_next_actions:

            def next_action(obs):
                weights = state.actor_params if raw_next_actions else state.actor_ema
                return draw(state, weights, obs, key, explore=True) if noisy_next_actions else greedy(state, obs, key)

            critic, metrics = critic_update(critic_config, state.critic, batch, lambda obs: (next_action(obs), 0.0))
            return critic, metrics, batch
        cloned = act(state, batch.next_obs, key, explore=True)
        critic, metrics = critic_update(critic_config, state.critic, batch, lambda obs: (cloned, 0.0))
        return critic, metrics, batch.replace(obs=batch.next_obs, action=cloned)

    def raw_sample(state: DiffusionState, obs, key, noise=None):
        return sample(state.actor_ema, obs, key, noise)

    def update(state: DiffusionState, batch: Transition, key):
        key_next, key_actor, key_extra = jax.random.split(key, 3)
        critic, metrics, actor_batch = critic_step(state, batch, key_next)
        state = state.replace(critic=critic)

        def loss_fn(params):
            return actor_loss(params, state, critic.params, actor_batch, key_actor, policy)

        (loss, actor_metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor_params)
        updates, actor_opt = optimizer.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        state = state.replace(
            actor_params=actor_params,
            actor_ema=actor_config.ema_update(actor_params, state.actor_ema),
            actor_opt=actor_opt,
        )
        metrics.update(actor_metrics, actor_loss=loss)
        if extra_update is not None:
            extra, extra_metrics = extra_update(state, critic.params, actor_batch, key_extra, policy, actor_metrics)
            state = state.replace(extra=extra)
            metrics.update(extra_metrics)
        return state, metrics, None

    return Agent(config, init, act, update, raw_sample)


@dataclass(frozen=True)
class TemperatureConfig:
    """The temperature block (`--<algo>.temperature.*`) of a diffusion actor whose temperature alpha =
    exp(log_alpha) is learned as the authors of SDAC, DPMD and DACER do: one Adam step on log_alpha every
    alpha_update_every-th update (counting from the first), exploration noise explore_noise * alpha."""

    init_alpha: float = 5.0
    """alpha at the start"""
    alpha_lr: float = 7e-3
    """Adam learning rate of log(alpha)"""
    alpha_update_every: int = 250
    """updates between two steps of log(alpha)"""
    target_entropy_per_dim: float = -0.9
    """target entropy per action dimension (nats) of the temperature's objective"""

    def validate(self) -> None:
        if self.init_alpha <= 0 or self.alpha_lr <= 0 or self.alpha_update_every < 1:
            raise ValueError(
                f"need init_alpha > 0, alpha_lr > 0, alpha_update_every >= 1; got {self.init_alpha}, "
                f"{self.alpha_lr}, {self.alpha_update_every}"
            )

    def temperature_init(self) -> dict:
        """The state of the temperature, to go in DiffusionState.extra ("measured": the last value of the
        quantity the temperature's objective measures, e.g. DACER's entropy)."""
        log_alpha = jnp.log(jnp.float32(self.init_alpha))
        opt_state = optax.adam(self.alpha_lr).init(log_alpha)
        return {"log_alpha": log_alpha, "alpha_opt": opt_state, "updates": 0, "measured": jnp.float32(0.0)}

    def temperature_step(self, extra: dict, grad_fn: Callable, measured_name: str) -> tuple[dict, dict]:
        """extra after this update: on every alpha_update_every-th update, one Adam step on log_alpha along
        grad_fn(log_alpha) -> (d loss / d log_alpha, measured), evaluated only then.
        -> (extra, metrics {alpha, measured_name})"""
        optimizer = optax.adam(self.alpha_lr)

        def step(log_alpha, opt_state, _):
            grad, measured = grad_fn(log_alpha)
            updates, opt_state = optimizer.update(grad, opt_state)
            return optax.apply_updates(log_alpha, updates), opt_state, jnp.asarray(measured, jnp.float32)

        due = extra["updates"] % self.alpha_update_every == 0
        log_alpha, opt_state, measured = jax.lax.cond(
            due, step, lambda *args: args, extra["log_alpha"], extra["alpha_opt"], extra["measured"]
        )
        extra = dict(extra, log_alpha=log_alpha, alpha_opt=opt_state, updates=extra["updates"] + 1, measured=measured)
        return extra, {"alpha": jnp.exp(log_alpha), measured_name: measured}


def temperature(state: DiffusionState) -> jax.Array:
    """alpha = exp(log_alpha) of an agent with a temperature block."""
    return jnp.exp(state.extra["log_alpha"])

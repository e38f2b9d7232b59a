"""Twin critics with Polyak-averaged targets, best-of-N selection, and the TD update
shared by every agent (docs/algorithm.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_som.networks import ACTIVATIONS, TwinCritic
from mjx_som.replay import Transition


@dataclass(frozen=True)
class CriticConfig:
    """An agent's critic block (`--<algo>.critic.*`, or the setting's own name): the twin critics, and the
    activation every network of the agent uses (the actor's too)."""

    critic_hidden: tuple[int, ...] = (256, 256, 256)
    """widths of each Q network's hidden layers"""
    critic_layer_norm: bool = True
    """LayerNorm between critic layers (stabilises large-batch parallel training)"""
    critic_lr: float = 3e-4
    """critic Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """Polyak rate of the target critics"""
    activation: str = "mish"
    """hidden activation of every network: mish, relu or silu"""

    def validate(self) -> None:
        """critic_lr finite and positive, gamma in [0, 1], tau in (0, 1], hidden widths >= 1, a known activation."""
        check_rate("critic_lr", self.critic_lr)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        check_widths("critic_hidden", self.critic_hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")


def check_rate(name: str, value: float) -> None:
    """A ValueError unless a learning rate is a finite number > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def check_widths(name: str, widths: tuple[int, ...]) -> None:
    """A ValueError unless a network has one or more hidden layers, each >= 1 wide."""
    if not widths or min(widths) < 1:
        raise ValueError(f"{name} must be one or more layer widths >= 1, got {tuple(widths)}")


# next_action_fn(next_obs [B, O]) -> (next_action [B, A], bonus [B] or scalar, e.g. SAC's -alpha log pi)
NextActionFn = Callable[[jax.Array], tuple[jax.Array, jax.Array | float]]


@struct.dataclass
class CriticState:
    params: dict
    target_params: dict
    opt_state: optax.OptState


def critic_network(config: CriticConfig) -> TwinCritic:
    return TwinCritic(config.critic_hidden, config.activation, config.critic_layer_norm)


def critic_init(key, obs_size: int, action_size: int, config: CriticConfig) -> CriticState:
    params = critic_network(config).init(key, jnp.zeros((1, obs_size)), jnp.zeros((1, action_size)))
    return CriticState(params, params, optax.adam(config.critic_lr).init(params))


def min_q(config: CriticConfig, params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """min(Q1, Q2) for obs [..., O] and action [..., A] -> [...]."""
    return jnp.min(critic_network(config).apply(params, obs, action), axis=0)


def best_of_n(config: CriticConfig, params, obs: jax.Array, candidates: jax.Array) -> jax.Array:
    """The candidate with the highest min(Q1, Q2): obs [B, O], candidates [B, N, A] -> [B, A]."""
    obs_n = jnp.broadcast_to(obs[:, None, :], candidates.shape[:2] + obs.shape[-1:])
    best = jnp.argmax(min_q(config, params, obs_n, candidates), axis=1)
    return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]


def ascend_actions(q_fn, actions: jax.Array, optimizer: optax.GradientTransformation, steps: int) -> jax.Array:
    """actions [B, A] moved up q_fn (actions [B, A] -> [B], one state per row) by `steps` steps of
    optimizer on each row's own Q, clipped to the action box [-1, 1] after each step. [B, A]"""

    def step(carry, _):
        a, opt_state = carry
        grads = jax.grad(lambda x: -jnp.sum(q_fn(x)))(a)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (jnp.clip(optax.apply_updates(a, updates), -1.0, 1.0), opt_state), None

    (ascended, _), _ = jax.lax.scan(step, (actions, optimizer.init(actions)), None, length=steps)
    return ascended


def td_target(config: CriticConfig, target_params, batch: Transition, next_action_fn: NextActionFn) -> jax.Array:
    """y = r + discount (1 - terminated) (min(Q1', Q2')(s', a') + bonus) with (a', bonus) = next_action_fn(s')
    and discount = batch.discount (gamma^m of an m-step return; gamma when not set): bootstraps through
    truncation. A terminated row's next value is masked, not multiplied by 0, so a non-finite final
    observation (Ant ends on one) cannot poison its target. When every transition of the batch terminated
    (a bandit's one-step episodes) the bootstrap is multiplied by zero everywhere, so a' is not
    sampled at all (lax.cond): an iterative actor's best-of-N chain costs nothing there. -> [B]"""

    def bootstrap():
        next_action, bonus = next_action_fn(batch.next_obs)
        return min_q(config, target_params, batch.next_obs, next_action) + bonus

    all_terminated = jnp.all(batch.terminated > 0)
    next_value = jax.lax.cond(all_terminated, lambda: jnp.zeros_like(batch.reward), bootstrap)
    discount = config.gamma if batch.discount is None else batch.discount
    return batch.reward + discount * jnp.where(batch.terminated > 0, 0.0, next_value)


def critic_update(
    config: CriticConfig, state: CriticState, batch: Transition, next_action_fn: NextActionFn
) -> tuple[CriticState, dict]:
    """One Adam step on the TD error of both critics (td_target), then the Polyak target update."""
    y = jax.lax.stop_gradient(td_target(config, state.target_params, batch, next_action_fn))

    def loss_fn(params):
        q = critic_network(config).apply(params, batch.obs, batch.action)  # [2, B]
        return jnp.mean(jnp.sum(jnp.square(q - y), axis=0)), q

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optax.adam(config.critic_lr).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    target = optax.incremental_update(params, state.target_params, config.tau)
    metrics = {"critic_loss": loss, "q_mean": jnp.mean(q), "td_target_mean": jnp.mean(y)}
    return CriticState(params, target, opt_state), metrics

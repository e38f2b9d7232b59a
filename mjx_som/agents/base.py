"""The interface every algorithm implements; the trainer calls only these.

    make_<algo>(config, spec: EnvSpec) -> Agent, whose functions are
    init(key) -> state
    act(state, obs [B, O], key, explore: bool) -> action [B, A] in [-1, 1]
    update(state, batch: Transition, key) -> (state, metrics: dict of scalars, column): column [B, E] the
        batch rows' new agent_column values, written back into the replay (None for an agent that keeps no
        column; see init_column)
    sample(state, obs [B, O], key, noise=None) -> action [B, A]: one draw of the raw generative
        map (no best-of-N, no exploration noise), for the mode-coverage metrics and the transport
        pictures; noise [B, A]: the starting noise (default: drawn from key).
    init_column(action [B, A]) -> [B, E], or None (the default): an agent that keeps a column of its own per
        replay row (DIPO: the action it improves over training) gives the column's first value at insertion;
        the trainer then stores it, hands it to update() as batch.agent_column and writes back what update()
        returns for the batch's rows (not where the update is skipped as non-finite).

Observations reaching an agent are already normalised by the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, NamedTuple

import jax
import optax

from mjx_som.critic import check_rate, check_widths


@dataclass(frozen=True)
class EnvSpec:
    obs_size: int
    action_size: int
    total_updates: int  # gradient updates the run will make (for learning-rate schedules)


class Agent(NamedTuple):
    """An algorithm's config (every algorithm's has a critic block: the trainer reads config.critic.gamma for the
    n-step returns) and functions: init(key)
    -> state; act(state, obs, key, explore) -> actions; update(state, batch, key) -> (state, metrics,
    column or None); sample(state, obs, key, noise=None) -> the raw generative map's actions; init_column
    (optional) -> the first value of the agent's own replay column (see the module docstring)."""

    config: Any
    init: Callable
    act: Callable
    update: Callable
    sample: Callable
    init_column: Callable | None = None


def column_size(agent: Agent, action_size: int) -> int:
    """E, the width of the agent's own replay column (0: it keeps none); traced abstractly, nothing runs."""
    if agent.init_column is None:
        return 0
    return jax.eval_shape(agent.init_column, jax.ShapeDtypeStruct((1, action_size), jax.numpy.float32)).shape[-1]


@dataclass(frozen=True)
class GenerativeActorConfig:
    """What every generative actor with best-of-N selection shares (SOM, MFP and the diffusion
    baselines). Each family's actor block adds its own actor_lr and actor_lr_final (one-step:
    agents/one_step.py, diffusion: agents/iterative.py), which actor_optimizer reads."""

    num_candidates: int = 32
    """N: sampled candidates per state, for acting and for the critic target (1 = no selection)"""
    explore_noise: float = 0.1
    """std of the Gaussian noise added to the selected action while training"""
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """widths of the actor network's hidden layers"""
    ema: float = 0.999
    """EMA rate of the actor weights that act (also in evaluation) and sample the critic target's next
    actions: after each actor step ema_params <- ema * ema_params + (1 - ema) * params; 0 = the raw weights"""

    def validate(self) -> None:
        for name in ("actor_lr", "actor_lr_final"):
            check_rate(name, getattr(self, name))
        check_widths("actor_hidden", self.actor_hidden)
        if not (math.isfinite(self.explore_noise) and self.explore_noise >= 0):
            raise ValueError(f"explore_noise must be a finite number >= 0, got {self.explore_noise}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}")

    def actor_optimizer(self, total_updates: int) -> optax.GradientTransformation:
        """Adam with the learning rate decaying from actor_lr to actor_lr_final over the run (cosine)."""
        schedule = optax.cosine_decay_schedule(
            self.actor_lr, max(total_updates, 1), alpha=self.actor_lr_final / self.actor_lr
        )
        return optax.adam(schedule)

    def ema_update(self, params, ema_params):
        """The acting weights after an actor step (see ema)."""
        return optax.incremental_update(params, ema_params, 1.0 - self.ema)


# An algorithm's config: its blocks (fields holding a settings dataclass: critic, actor, meanflow, score,
# temperature) and its own settings. Every setting's own name is unique within an algorithm (tests/test_api.py),
# so flags, presets, train() and sweeps may name a setting without its block: --som.gamma is --som.critic.gamma.


def blocks(config) -> dict[str, Any]:
    """An algorithm config's blocks by field name: {"critic": CriticConfig(...), ...}."""
    return {f.name: getattr(config, f.name) for f in fields(config) if is_dataclass(getattr(config, f.name))}


def setting_paths(config) -> dict[str, tuple[str, ...]]:
    """Every setting of an algorithm's config (or config class) by its own name -> where it is:
    {"gamma": ("critic", "gamma"), "selection": ("selection",), ...}."""
    config = config() if isinstance(config, type) else config
    paths: dict[str, tuple[str, ...]] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        names = [(g.name, (f.name, g.name)) for g in fields(value)] if is_dataclass(value) else [(f.name, (f.name,))]
        for name, path in names:
            if name in paths:
                raise TypeError(f"{type(config).__name__}: two settings are named {name!r} ({paths[name]}, {path})")
            paths[name] = path
    return paths


_NO_DEFAULT = object()


def setting(config, name: str, default=_NO_DEFAULT):
    """The value of a setting named by its own name ("gamma") or its block and name ("critic.gamma"); default
    (when given) for a setting this algorithm does not have."""
    try:
        path = setting_path(config, name)
    except ValueError:
        if default is _NO_DEFAULT:
            raise
        return default
    for part in path:
        config = getattr(config, part)
    return config


def setting_path(config, name: str) -> tuple[str, ...]:
    """Where a setting named by its own name or as block.name is; a ValueError listing the allowed names."""
    paths = setting_paths(config)
    dotted = tuple(name.split("."))
    path = paths.get(name) or (dotted if dotted in paths.values() else None)
    if path is None:
        raise ValueError(f"no setting {name!r}; allowed: {', '.join(sorted(paths))}")
    return path


def with_settings(config, settings: Mapping[str, Any]):
    """config with settings replaced; each named by its own name ("gamma"), as block.name ("critic.gamma"), or
    a whole block's as a dict ({"critic": {"gamma": 0.98}})."""
    flat: dict[tuple[str, ...], Any] = {}
    block_names = blocks(config)
    for key, value in settings.items():
        if key in block_names and isinstance(value, Mapping):
            flat |= {setting_path(config, f"{key}.{name}"): v for name, v in value.items()}
        else:
            flat[setting_path(config, key)] = value
    own = {path[0]: v for path, v in flat.items() if len(path) == 1}
    for block, current in block_names.items():
        changed = {path[1]: v for path, v in flat.items() if len(path) == 2 and path[0] == block}
        if changed:
            own[block] = replace(current, **changed)
    return replace(config, **own)


def nest_settings(values: Mapping[str, Any], config_class) -> dict:
    """A config dict whose settings are named by their own names ({"gamma": 0.99, "selection": "argmax"}, as
    config.json held them before the blocks) as the config's nested dict ({"critic": {"gamma": 0.99}, ...}).
    Names this config does not know stay at the top, for the caller to report."""
    paths = setting_paths(config_class)
    nested: dict[str, Any] = {}
    for key, value in values.items():
        path = paths.get(key, (key,))
        if len(path) == 2:
            nested.setdefault(path[0], {})[path[1]] = value
        else:
            nested[key] = value
    return nested


def flat_settings(values: Mapping[str, Any], config_class) -> dict:
    """The inverse of nest_settings: a config dict with its blocks' settings named by their own names."""
    block_names = blocks(config_class())
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in block_names and isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def validate_blocks(config) -> None:
    """Each block's own checks (a block's error names the block: critic.gamma must be ...)."""
    for name, block in blocks(config).items():
        try:
            block.validate()
        except ValueError as e:
            raise ValueError(f"{name}.{e}") from None

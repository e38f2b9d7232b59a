"""A run's config.json: written (config_to_dict), read back with type checks (config_from_dict, load_config),
files of earlier versions upgraded or refused (_upgrade), and the check that a resumed run keeps its config
(check_resume)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from mjx_som import agents
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.config import RunConfig, check_type
from mjx_som.logging import flatten_config


def config_to_dict(config: RunConfig) -> dict:
    """The config as config.json holds it (tuples as lists): the run's settings and its algorithm's block
    only (a config.json with every algorithm's block, as written before 2026-11-28, still loads)."""
    values = json.loads(json.dumps(dataclasses.asdict(config)))
    return {k: v for k, v in values.items() if k == config.algo or k not in agents.REGISTRY}


def config_from_dict(values: dict, defaults=None, block: str = ""):
    """A config dataclass from its config.json dict (nested algorithm configs and their blocks, lists as tuples)
    over defaults (RunConfig()): a setting the dict leaves out keeps its default there (a block's is its
    algorithm's: QSM's actor samples with sampler_clip "sample"); a ValueError naming the setting (som.score.alpha
    inside an algorithm's block) whose value has the wrong type."""
    defaults = RunConfig() if defaults is None else defaults
    fields = {f.name: f for f in dataclasses.fields(defaults)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"settings this version does not know: {sorted(block + n for n in unknown)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(value, default, f"{block}{name}.")
        elif isinstance(value, list):
            value = tuple(value)
        check_type(block + name, value, default, str(fields[name].type))
        kwargs[name] = value
    return dataclasses.replace(defaults, **kwargs)


# Generative baselines whose settings and training state changed on 2026-11-28 (docs/baselines.md: the
# authors' temperatures, one acting rule): a reworked baseline's config has this field; one without it was
# written before the rework.
_REWORKED_BASELINES = {
    "dacer": "ema",
    "sdac": "ema",
    "dpmd": "ema",
    "dipo": "ema",
    "qsm": "score_scale",
    "qvpo": "train_candidates",
}


def _upgrade(values: dict) -> dict:
    """A config.json dict written by an earlier version, in today's terms: an algorithm's settings were one flat
    block before 2026-12-04 (now nested: critic, actor, ...); SOM's temperature was the fixed alpha (standardize_q
    and a_t_source are gone); n_step did not exist (1). The reworked baselines' old settings are dropped where the
    run is another algorithm's; a run of one of them from before cannot be continued (its state or its method
    differs), which the error says. The checks below read each algorithm's settings by their own names."""
    values = _algo_blocks(values, agents.base.flat_settings)
    return _algo_blocks(_upgrade_flat(values), agents.base.nest_settings)


def _algo_blocks(values: dict, convert) -> dict:
    """values with each algorithm's block converted: convert(block, config_class) (flat_settings or nest_settings)."""
    algos = {k: v for k, v in values.items() if k in agents.REGISTRY and isinstance(v, dict)}
    return {**values, **{k: convert(v, agents.config_class(k)) for k, v in algos.items()}}


def _upgrade_flat(values: dict) -> dict:
    if "normalize_rewards" not in values:  # added 2026-12-03: runs before it scaled rewards by reward_scale alone
        values = {**values, "normalize_rewards": False, "reward_scale": values.get("reward_scale", 0.2)}
    som = values.get("som")
    if isinstance(som, dict) and "temperature" not in som:
        som = {k: v for k, v in som.items() if k != "standardize_q"}
        values = {**values, "som": {**som, "temperature": "fixed"}}
    som = values.get("som")
    if isinstance(som, dict) and "a_t_source" in som:  # removed 2026-11-28: "replay" changed nothing (probes §3)
        if som["a_t_source"] != "policy" and values.get("algo") == "som":
            raise ValueError(
                f"this run noised {som['a_t_source']!r} actions to a_t (a_t_source, removed on 2026-11-28); "
                "this version noises the policy's own: rerun it"
            )
        values = {**values, "som": {k: v for k, v in som.items() if k != "a_t_source"}}
    for algo, marker in _REWORKED_BASELINES.items():
        old = values.get(algo)
        if isinstance(old, dict) and marker not in old:
            if values.get("algo") == algo:
                raise ValueError(
                    f"this {algo} run was written before the baselines were reworked against their authors' "
                    f"code (2026-11-28); this version cannot continue it: rerun it"
                )
            values = {k: v for k, v in values.items() if k != algo}  # the defaults stand in
    return values


def load_config(run_dir: str, caller: str = "--resume") -> RunConfig:
    """The RunConfig saved in run_dir/config.json (written by this or an earlier version); errors name caller."""
    if not os.path.isdir(run_dir):
        raise ValueError(f"{caller} {run_dir!r}: no such directory")
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{caller} {run_dir!r}: no config.json there, so it is not a run directory")
    try:
        with open(path) as f:
            values = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{caller} {run_dir!r}: {path} is not valid JSON ({e})") from e
    if not isinstance(values, dict):
        raise ValueError(f"{caller} {run_dir!r}: {path} is not a run's config (a JSON object of settings)")
    try:
        return config_from_dict(_upgrade(values))
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{caller} {run_dir!r}: {path}: {e}") from e


# Settings a resumed run may change: they do not affect what is computed (run_dir becomes --resume).
RESUME_MAY_CHANGE = (
    "resume",
    "run_dir",
    "resume_step",
    "overwrite",
    "progress",
    "wandb_mode",
    "coordinator",
    "process_id",
    "video_every",
    "video_size",
    "compile_cache",
)


def settings_that_differ(saved: dict, given: dict) -> list[str]:
    """The flattened settings (flatten_config) whose values differ between two configs, leaving out those a
    resumed run may change (RESUME_MAY_CHANGE)."""
    names = sorted(saved.keys() | given.keys())
    return [k for k in names if k not in RESUME_MAY_CHANGE and saved.get(k) != given.get(k)]


def check_resume(config: RunConfig) -> RunConfig:
    """The config of a resumed run once it is shown to match the saved one; otherwise a ValueError naming the
    differing flags. A run without a checkpoint yet starts again from its beginning (resume="", its files
    replaced). The run continues in the resume directory
    (wherever config.json says it was first written: run directories may be moved)."""
    run_dir = config.resume
    saved = flatten_config(config_to_dict(load_config(run_dir)))
    given = flatten_config(config_to_dict(config))
    differ = settings_that_differ(saved, given)
    if differ:
        changes = "; ".join(f"--{k.replace('_', '-')} {given.get(k)!r} (the run has {saved.get(k)!r})" for k in differ)
        raise ValueError(
            f"--resume {run_dir!r}: the config differs from its config.json: {changes}. A resumed run keeps its "
            f"config; only {', '.join('--' + k.replace('_', '-') for k in RESUME_MAY_CHANGE[2:])} may change"
        )
    if not os.path.isdir(checkpoint_dir(run_dir)) or Checkpointer(run_dir, read_only=True).latest_step() is None:
        if config.resume_step:
            raise ValueError(f"--resume-step {config.resume_step}: {run_dir!r} has no checkpoint")
        # stopped before its first checkpoint (e.g. Ctrl-C while compiling): nothing was trained, so the run
        # starts again from its beginning, in its folder, with its config.json (its own files are replaced)
        print(f"{run_dir} has no checkpoint yet: starting it from the beginning with its config.json", file=sys.stderr)
        return dataclasses.replace(config, run_dir=run_dir, resume="", overwrite=True)
    return dataclasses.replace(config, run_dir=run_dir)

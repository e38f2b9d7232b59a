"""Flags into a RunConfig: launch/run.py's flags (tyro, one algorithm's block shown: cli_class), the flags the
launch scripts share with run.py (config_from_flags, options_and_run_flags), settings as flags (to_flags), and
the flags earlier scripts had (REPLACED_FLAGS); an algorithm's settings by their own names, without their block
(with_block_names: --som.gamma is --som.critic.gamma). The settings themselves and their presets:
mjx_som/config.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mjx_som import agents
from mjx_som.config import RunConfig, resolve_config


def to_flags(settings: dict) -> list[str]:
    """{"total_steps": 1000, "som.actor_hidden": [64, 64], "progress": False} -> launch/run.py's flags
    (["--total-steps", "1000", "--som.actor-hidden", "64", "64", "--no-progress"])."""
    flags = []
    for key, value in settings.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            head, _, tail = name.rpartition(".")
            flags.append(name if value else (f"{head}.no-{tail}" if head else f"--no-{name[2:]}"))
        elif isinstance(value, (list, tuple)):
            flags += [name, *map(str, value)]
        else:
            flags += [name, str(value)]
    return flags


def flags_for_algo(flags: list[str], algo: str) -> list[str]:
    """run.py flags without the other algorithms' (--dacer.* when algo is som), so that one list of flags
    can serve runs of several algorithms (launch/probes.py, launch/bench.py, launch/sweep.py)."""
    kept, keep = [], True
    for token in flags:
        if token.startswith("--"):
            block = token[2:].split(".")[0] if "." in token else None
            keep = block is None or block == algo or block not in agents.REGISTRY
        if keep:
            kept.append(token)
    return kept


@dataclass(frozen=True)
class Selection:
    """The flags launch/run.py reads before it can build its other flags (their defaults depend on them)."""

    env: str = ""
    algo: str = ""
    preset: str = ""
    protocol: str = ""
    resume: str = ""
    coordinator: str = ""
    num_processes: int = 1
    process_id: int = 0


def parse_selection(argv: list[str]) -> Selection:
    """--env, --algo, --preset, --protocol, --resume and the multi-host flags out of run.py's whole command line (the
    rest is left for the full parse; --help too, which needs the chosen algorithm's flags)."""
    import tyro

    args = [a for a in argv if a not in ("-h", "--help")]
    selection, _ = tyro.cli(Selection, args=args, return_unknown_args=True)
    return selection


# flags of earlier launch scripts and what replaced them (one override mechanism: run.py's flags)
REPLACED_FLAGS = {
    "--set": "run.py's own flags, e.g. --total-steps 96000 --som.alpha 10 (not --set total_steps=96000)",
    "--train-batch-size": "--batch-size (run.py's flag)",
}


def check_replaced_flags(flags: list[str]) -> None:
    """A ValueError naming the new form for flags earlier launch scripts had."""
    for token in flags:
        name = token.split("=")[0]
        if name in REPLACED_FLAGS:
            raise ValueError(f"{name} was replaced: use {REPLACED_FLAGS[name]}")


def options_and_run_flags(options_class, argv: list[str] | None, description: str):
    """A launch script's command line: (its own options, parsed by tyro into options_class, and the rest
    as launch/run.py's flags). options_class.check(flags) runs before anything compiles; its ValueError
    ends the script with the message and status 2, as tyro's own errors do."""
    import sys

    import tyro

    options, flags = tyro.cli(options_class, args=argv, description=description, return_unknown_args=True)
    try:
        options.check(flags)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    return options, flags


def parse_run_flags(default: RunConfig, flags: list[str], description: str | None = None) -> RunConfig:
    """launch/run.py's flags over `default` (a resolved RunConfig): tyro shows and parses only default.algo's
    block (cli_class). A bad flag exits with tyro's message (status 2)."""
    import tyro

    cli = cli_class(default.algo)
    flags = with_block_names(list(flags), default.algo, default.algo_config())
    return to_run_config(tyro.cli(cli, args=flags, default=cli(**vars(default)), description=description))


def with_block_names(flags: list[str], algo: str, algo_config) -> list[str]:
    """flags with the algorithm's settings named by their own names given their block's too, as tyro knows them:
    --som.gamma 0.98 -> --som.critic.gamma 0.98, --som.no-critic-layer-norm -> --som.critic.no-critic-layer-norm
    (agents.setting_paths; a flag already naming its block is left as it is)."""
    paths = agents.setting_paths(algo_config)
    prefix = f"--{algo}."
    named = []
    for token in flags:
        flag, eq, value = token.partition("=")
        leaf = flag[len(prefix) :].replace("-", "_") if flag.startswith(prefix) else ""
        negated = leaf.startswith("no_") and leaf not in paths
        path = paths.get(leaf[3:] if negated else leaf, ())
        if len(path) == 2:
            name = ("no-" if negated else "") + path[1].replace("_", "-")
            token = f"{prefix}{path[0]}.{name}{eq}{value}"
        named.append(token)
    return named


def config_from_flags(env, algo: str, flags: list[str] = (), preset: str = "auto") -> RunConfig:
    """The RunConfig that `launch/run.py --env ENV --algo ALGO FLAGS` runs: the env's preset (resolve_config:
    env may be a name or an environment object), then run.py's flags; other algorithms' flags are ignored
    (flags_for_algo)."""
    check_replaced_flags(list(flags))
    protocol = parse_selection(list(flags)).protocol or RunConfig.protocol
    config = resolve_config(env, algo, preset=preset, protocol=protocol)
    return parse_run_flags(config, flags_for_algo(list(flags), algo))


def cli_class(algo: str) -> type:
    """RunConfig as launch/run.py shows it for --algo algo: the other algorithms' blocks are hidden from
    --help and from the flags (tyro.conf.Suppress); to_run_config turns the parsed value back."""
    import typing

    import tyro

    hints = typing.get_type_hints(RunConfig)
    hidden = [
        (f.name, typing.Annotated[hints[f.name], tyro.conf.Suppress], field(default_factory=f.default_factory))
        for f in dataclasses.fields(RunConfig)
        if f.name in agents.REGISTRY and f.name != algo
    ]
    return dataclasses.make_dataclass("RunConfig", hidden, bases=(RunConfig,), frozen=True)


def to_run_config(config: RunConfig) -> RunConfig:
    """A RunConfig (or a cli_class instance) as a plain RunConfig."""
    return RunConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(RunConfig)})

"""A run's configuration: RunConfig (every flag of launch/run.py), the per-env presets and why,
overrides by name, the checks made before anything compiles, and config.json (written by this version
or an earlier one)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

import jax

import envs
from envs.bandits import Bandit
from mjx_som import agents, sharding
from mjx_som.agents import (
    DACERConfig,
    DIPOConfig,
    DPMDConfig,
    MFPConfig,
    QSMConfig,
    QVPOConfig,
    SACConfig,
    SDACConfig,
    SOMConfig,
)
from mjx_som.agents.base import EnvSpec, column_size
from mjx_som.checkpoint import Checkpointer, checkpoint_dir
from mjx_som.logging import flatten_config, resolve_wandb_mode
from mjx_som.replay import replay_bytes
from mjx_som.sharding import device_name
from mjx_som.trainer import TrainerConfig

MATMUL_PRECISIONS = ("highest", "high", "default")


@dataclass(frozen=True)
class RunConfig(TrainerConfig):
    """Everything a run needs; config.json holds it resolved."""

    env: str = "HalfCheetah-v4"
    """environment name (envs.names())"""
    algo: str = "som"
    """algorithm name"""
    seed: int = 0
    """PRNG seed of the whole run"""
    run_dir: str = ""
    """output folder (default: runs/<env>-<algo>-s<seed>-<time>)"""
    eval_every: int = 1_000_000
    """environment steps between evaluations (there is always one at the end)"""
    eval_episodes: int = 16
    """greedy evaluation episodes, run in parallel"""
    video_every: int = 10
    """MuJoCo tasks: a video (RUN_DIR/videos/<env_steps>.mp4, W&B eval/video) of an evaluation episode at the
    first and the last evaluation and every k-th (0 = none); bandits: the transport picture at each one"""
    video_size: tuple[int, int] = (320, 240)
    """width and height of the evaluation videos, pixels"""
    devices: int = 0
    """devices in the mesh (0 = every device of every process); num_envs and buffer_size must divide evenly"""
    wandb_mode: str = "auto"
    """auto (online when a W&B API key is configured, else offline), online, offline or disabled"""
    wandb_project: str = "mjx_som"
    """W&B project"""
    wandb_group: str = ""
    """W&B group (launch/sweep.py sets it to the sweep's name)"""
    coordinator: str = ""
    """multi-host: address host:port of process 0 (with --num-processes, --process-id); SLURM is detected"""
    num_processes: int = 1
    """multi-host: number of processes (one per host)"""
    process_id: int = 0
    """multi-host: this process's index, 0 .. num_processes - 1 (process 0 writes the run files)"""
    checkpoint_every: int = 1_000_000
    """environment steps between checkpoints (0 = only when the run ends or is stopped)"""
    keep_checkpoints: int = 3
    """how many of the latest checkpoints to keep"""
    resume: str = ""
    """a run directory to continue exactly from its latest intact checkpoint (its config.json must match)"""
    resume_step: int = 0
    """with --resume: the checkpoint's env step to continue from (0 = the latest intact one)"""
    overwrite: bool = False
    """replace the run files (config.json, metrics.jsonl, summary.json, returns.png, checkpoints/) of a non-empty
    --run-dir; other files there are left alone"""
    progress: bool = True
    """show the live progress bar"""
    compile_cache: str = "~/.cache/mjx_som/jax"
    """JAX's persistent compilation cache: a rerun or resume of the same program skips XLA's compile
    ("" = off; the environment's JAX_COMPILATION_CACHE_DIR, when set, wins)"""
    env_override: tuple[str, ...] = ()
    """task settings NAME=VALUE (values in YAML): our tasks' attributes (e.g. ctrl_cost_weight=0.5), a
    Playground task's config entries (e.g. episode_length=500)"""
    physics: str = "jax"
    """Playground tasks: jax (MJX, any device) or warp (MuJoCo Warp, NVIDIA GPUs only)"""
    observation_key: str = "state"
    """Playground tasks with dict observations: the entry the agent sees (e.g. state or privileged_state)"""
    preset: str = "auto"
    """which of the env's presets set the defaults: auto (accelerator if JAX sees one, else cpu), accelerator,
    cpu or none (the plain RunConfig defaults); the flags given override it"""
    protocol: str = "authors"
    """how the iterative baselines sample: authors (each as its authors' code acts: QSM 5 steps and one chain,
    DPMD and QVPO best of 4) or paper (as the SOM paper's comparison ran them: QSM, DPMD and QVPO with 20 steps
    and best of 32); applied over the preset, under the flags given (docs/baselines.md)"""
    som: SOMConfig = field(default_factory=SOMConfig)
    """SOM hyper-parameters"""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyper-parameters (Gaussian actor, tuned temperature)"""
    mfp: MFPConfig = field(default_factory=MFPConfig)
    """MFP hyper-parameters (one-step MeanFlow on best-of-N targets)"""
    dacer: DACERConfig = field(default_factory=DACERConfig)
    """DACER hyper-parameters (20-step diffusion through Q, entropy-regulated noise)"""
    qsm: QSMConfig = field(default_factory=QSMConfig)
    """QSM hyper-parameters (diffusion score matched to grad Q)"""
    sdac: SDACConfig = field(default_factory=SDACConfig)
    """SDAC hyper-parameters (reverse-sampling Q-weighted score matching)"""
    dpmd: DPMDConfig = field(default_factory=DPMDConfig)
    """DPMD hyper-parameters (mirror-descent weighted diffusion cloning)"""
    qvpo: QVPOConfig = field(default_factory=QVPOConfig)
    """QVPO hyper-parameters (advantage-weighted diffusion cloning)"""
    dipo: DIPOConfig = field(default_factory=DIPOConfig)
    """DIPO hyper-parameters (100-step diffusion cloning of gradient-improved actions)"""

    def algo_config(self):
        return getattr(self, self.algo)

    def make_env(self):
        """The environment of this run (envs.make), with the Playground settings for a playground/ task."""
        if self.physics not in envs.playground.PHYSICS:
            raise ValueError(f"--physics {self.physics!r}; allowed: {', '.join(envs.playground.PHYSICS)}")
        options = parse_overrides(self.env_override)
        if self.env.startswith(envs.playground.PREFIX):
            if self.physics == "warp" and jax.default_backend() != "gpu":
                raise ValueError("--physics warp needs an NVIDIA GPU (MuJoCo Warp); on this machine use --physics jax")
            options |= dict(physics=self.physics, observation_key=self.observation_key, num_envs=self.num_envs)
        try:
            return envs.make(self.env, **options)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            if not self.env_override:
                raise
            raise ValueError(f"--env-override {' '.join(self.env_override)} for {self.env}: {e}") from e


def parse_overrides(items: tuple[str, ...]) -> dict:
    """("ctrl_cost_weight=0.5",) -> {"ctrl_cost_weight": 0.5} (values in YAML syntax)."""
    import yaml

    overrides = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--env-override {item!r}: expected NAME=VALUE, e.g. ctrl_cost_weight=0.5")
        overrides[name] = yaml.safe_load(text)
    return overrides


# Per-environment starting points (then user overrides), per machine class: "accelerator" (a GPU/TPU) or
# "cpu". docs/algorithm.md gives the reasons for every value.
# Bandits: one-step episodes, so the critic only has to learn the reward landscape; many
# cheap updates per transition, small ReLU networks (Mish and LayerNorm cost 2-3x on CPU). The critic has
# three layers and a 1e-3 learning rate: fitted to the uniform warm-up data alone for 5,000 steps, the earlier
# 64x64 critic at 3e-4 reached 28-60% of the peaks' heights on procedural landscapes (so the modes the policy
# did not visit looked worse than they are, and SOM's target lost them), 64x64x64 at 1e-3 reaches 91-105%
# (docs/algorithm.md, "The bandits' critic").
_BANDIT_NETWORKS = dict(
    actor_hidden=(256, 256, 256), critic_hidden=(64, 64, 64), critic_lr=1e-3, activation="relu", critic_layer_norm=False
)
# The critic's data: 65,536 uniform warm-up transitions, kept all run (the 400k buffer holds all 384k
# steps) and half of every batch (warmup_share): the critic keeps fitting the modes the policy stops visiting.
# Drawn in proportion they were 17% of the batches by the end and the critic's 5,000 steps left a mode the
# policy had left at 0.61 of its height (a fresh critic on that replay: 0.43 after 5,000 steps, 0.95 after
# 20,000, 0.93 with half of each batch from the warm-up data; docs/algorithm.md, "The bandits' critic").
# SOM acts by Boltzmann selection among its candidates (selection_regret 0.2): the bandits ask the acting policy
# to keep every mode, which argmax gives up to whichever mode the critic rates highest (docs/algorithm.md,
# "Which candidate acts"). The update scores 8
# candidates per next state, not 32 (target_candidates): the bandits' critic target never bootstraps, the
# candidates only give the state's best Q to the temperature, and drawing 32 from the 256x3 actor was half the
# update's FLOPs (docs/algorithm.md, "Presets").
_BANDIT_PRESET = dict(
    num_envs=64,
    total_steps=384_000,
    batch_size=256,
    updates_per_step=1,
    buffer_size=400_000,
    learning_starts=65_536,
    warmup_share=0.5,
    normalize_obs=False,
    log_every=32_000,
    eval_every=128_000,
    eval_episodes=256,
    **{algo: _BANDIT_NETWORKS for algo in agents.algos()}
    | {"som": dict(_BANDIT_NETWORKS, selection="boltzmann", selection_regret=0.2, target_candidates=8)}
    # SDAC's authors start its temperature at 5 for MuJoCo Q values in the hundreds; rewards here are in
    # [0, 1], so it starts at 1/30 (the inverse of SOM's fixed alpha = 30 for these rewards)
    | {"sdac": dict(_BANDIT_NETWORKS, init_alpha=1 / 30)}
    # QSM's authors' M_q = 50 is for DeepMind Control Q values; on a bandit's it overshoots the 5-step
    # sampler to the box corners: of 50, 5, 1 and 0.2 on the learning check, 1 did best (docs/baselines.md)
    | {"qsm": dict(_BANDIT_NETWORKS, score_scale=1.0)},
)
# Cheap control tasks: a CPU-sized run. One gradient update per collected transition (4 envs x 4
# updates) and a faster critic (lr 1e-3, tau 0.01): at 0.25 updates per transition InvertedPendulum
# had not learned after 24k steps; with these settings it balances (return 1000) from 4k steps on.
# 3-step returns: with 1-step ones the balanced policy drifted into the end of the rail and lost the
# solution in 2 of 4 runs; the failure lies ~200 steps ahead, and n-step targets carry it back faster.
# SOM's critic target takes the best of 8 candidates (target_candidates), not of 32: 29% less time per update.
_CHEAP_NETWORKS = dict(actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu", critic_lr=1e-3, tau=0.01)
# SAC as brax's SAC runs here (brax.training.agents.sac's temperature from 1 and target entropy -A/2, no
# LayerNorm; one learning rate 1e-3, as launch/brax_sac.py gives it): with ours (from 0.1, -A, 3e-4,
# LayerNorm) seed 0 never balanced (69 at 12k; 4 of 5 seeds did), with these all 5 balance at 12k
# (docs/baselines.md)
_CHEAP_SAC = dict(
    _CHEAP_NETWORKS, init_alpha=1.0, target_entropy_per_dim=-0.5, actor_lr=1e-3, alpha_lr=1e-3, critic_layer_norm=False
)
_CHEAP_PRESET = dict(
    num_envs=4,
    total_steps=12_000,
    batch_size=128,
    updates_per_step=4,
    n_step=3,
    buffer_size=100_000,
    learning_starts=1_000,
    log_every=2_000,
    eval_every=4_000,
    eval_episodes=8,
    **{algo: _CHEAP_NETWORKS for algo in agents.algos()}
    | {"som": dict(_CHEAP_NETWORKS, num_samples=32, target_candidates=8), "sac": _CHEAP_SAC}
    # QSM's score scale M_q (Q's units): the authors' 50 (for DeepMind Control) ended InvertedPendulum at 36, 5 at
    # 802, 1 at 1000 (seed 0, 12k env steps; docs/baselines.md)
    | {"qsm": dict(_CHEAP_NETWORKS, score_scale=1.0)},
)
# SOM's update on locomotion: per state of the batch the critic scores target_candidates of the actor's
# candidates for the TD target (16 of the 32 it acts with), and per state of the actor's rows (actor_batch_size:
# half the batch) K = 32 posterior proposals and 8 uniform actions for the temperature. With the paper's
# 32 / 100 / 16 at every state the accelerator preset's update was 24x SAC's XLA FLOPs (2.82 against 0.118
# TFLOP at batch 8192), now 6.5x (0.764); on the CPU preset 13x -> 6.4x. Whether it learns as well is not yet
# shown: HalfCheetah 3,622 +- 326 against 3,961 +- 80 before (2 seeds), in 60% of the wall clock
# (docs/benchmarks.md, "A cheaper SOM update").
_SOM_LOCOMOTION = dict(num_samples=32, target_candidates=16, scale_samples=8)
# Locomotion on an accelerator: 4096 envs in lockstep, the recipe of the massively parallel off-policy
# methods (FastTD3/FastSAC, Parallel Q-Learning): large batches, several updates per vector step,
# 3-step returns, LayerNorm critics wider than the actor, observation normalisation.
_LOCOMOTION_ACCELERATOR = dict(
    num_envs=4096,
    total_steps=20_000_000,
    batch_size=8192,
    updates_per_step=4,
    n_step=3,
    buffer_size=2**21,
    learning_starts=4096 * 32,
    log_every=4096 * 50,
    eval_every=4096 * 500,  # one 64-episode evaluation took 6.7 s on the H200: 10-16% of the projected wall clock
    eval_episodes=64,
    **{algo: dict(critic_hidden=(512, 512, 512)) for algo in agents.algos()}
    | {"som": dict(_SOM_LOCOMOTION, critic_hidden=(512, 512, 512), actor_batch_size=4096)},
)
# Locomotion on a CPU (2 cores): 32 envs and small ReLU networks, so that HalfCheetah-v4 reaches a
# return of a few thousand in about 100k env steps (minutes); 8 updates of 256 per vector step of 32.
_LOCOMOTION_CPU_NETWORKS = dict(actor_hidden=(128, 128), critic_hidden=(128, 128), activation="relu")
_LOCOMOTION_CPU = dict(
    num_envs=32,
    total_steps=100_000,
    batch_size=256,
    updates_per_step=8,
    n_step=1,
    buffer_size=100_000,
    learning_starts=8_000,
    log_every=8_000,
    eval_every=16_000,
    eval_episodes=8,
    **{algo: _LOCOMOTION_CPU_NETWORKS for algo in agents.algos()}
    | {"som": dict(_LOCOMOTION_CPU_NETWORKS, **_SOM_LOCOMOTION, actor_batch_size=128)},
)
LOCOMOTION_TASKS = ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4")
MACHINES = ("accelerator", "cpu")
# MuJoCo Playground's DM Control suite: on an accelerator, Playground's own SAC settings
# (mujoco_playground/config/dm_control_suite_params.py: 128 envs, batch 512, 8 updates per step, gamma 0.99,
# lr 1e-3, 8,192 warm-up transitions, LayerNorm critics, normalised observations, 5M steps); on a CPU the
# same ratios at 16 envs and 48k steps (about 15 min for SOM on 2 cores; CartpoleBalance goes from ~180 to
# ~500 in it, 3 seeds beside SAC and brax's SAC in docs/benchmarks.md).
_PLAYGROUND_NETWORKS = dict(actor_hidden=(256, 256), critic_hidden=(256, 256), activation="relu", critic_lr=1e-3)
_PLAYGROUND_ACCELERATOR = dict(
    num_envs=128,
    total_steps=5_000_000,
    batch_size=512,
    updates_per_step=8,
    n_step=1,
    buffer_size=4_194_304,
    learning_starts=8_192,
    normalize_rewards=False,  # Playground's SAC settings: its rewards as they are
    log_every=128 * 500,
    eval_every=128 * 2_000,
    eval_episodes=16,
    **{algo: _PLAYGROUND_NETWORKS for algo in agents.algos()}
    | {"sac": dict(_PLAYGROUND_NETWORKS, actor_lr=1e-3, alpha_lr=1e-3)},  # Playground's one learning rate
)
_PLAYGROUND_CPU = dict(
    _PLAYGROUND_ACCELERATOR,
    num_envs=16,
    total_steps=48_000,
    batch_size=256,
    buffer_size=200_000,
    learning_starts=8_192,
    log_every=8_000,
    eval_every=8_000,
    eval_episodes=8,
    **{
        algo: dict(block, actor_hidden=(128, 128), critic_hidden=(128, 128))
        for algo, block in _PLAYGROUND_ACCELERATOR.items()
        if algo in agents.REGISTRY
    },
)
PRESETS: dict[str, dict[str, dict]] = {
    **{name: {m: _BANDIT_PRESET for m in MACHINES} for name in envs.bandits.BANDITS},
    **{
        envs.playground.PREFIX + name: {"accelerator": _PLAYGROUND_ACCELERATOR, "cpu": _PLAYGROUND_CPU}
        for name in envs.playground.DM_CONTROL_TASKS
    },
    "InvertedPendulum-v4": {m: _CHEAP_PRESET for m in MACHINES},
    "InvertedDoublePendulum-v4": {m: _CHEAP_PRESET for m in MACHINES},
    **{name: {"accelerator": _LOCOMOTION_ACCELERATOR, "cpu": _LOCOMOTION_CPU} for name in LOCOMOTION_TASKS},
}
PRESET_CHOICES = ("auto", *MACHINES, "none")
# --protocol: the settings that differ between the baselines' authors' code (the RunConfig defaults) and the SOM
# paper's comparison (its Table 2: QSM, DPMD and QVPO with 20 denoising steps and best of 32; DACER, SDAC and
# DIPO as their authors run them either way)
PROTOCOLS: dict[str, dict[str, dict]] = {
    "authors": {},
    "paper": {
        "qsm": dict(diffusion_steps=20, num_candidates=32),
        "dpmd": dict(num_candidates=32),
        "qvpo": dict(num_candidates=32),
    },
}


def _with_preset(config: RunConfig, preset: dict) -> RunConfig:
    """Applies a preset: its run fields, and its settings for config.algo if it has any."""
    algo_names = set(agents.algos())
    run_part = {k: v for k, v in preset.items() if k not in algo_names}
    config = dataclasses.replace(config, **run_part)
    algo_part = preset.get(config.algo, {})
    return dataclasses.replace(config, **{config.algo: dataclasses.replace(config.algo_config(), **algo_part)})


def preset_machine(preset: str = "auto") -> str | None:
    """The machine class whose preset applies: auto -> accelerator when JAX's default backend is not the
    CPU, else cpu; none -> None (the RunConfig defaults)."""
    if preset not in PRESET_CHOICES:
        raise ValueError(f"--preset {preset!r}; allowed: {', '.join(PRESET_CHOICES)}")
    if preset == "none":
        return None
    if preset == "auto":
        return "cpu" if jax.default_backend() == "cpu" else "accelerator"
    return preset


def default_config(env_name: str, algo: str = "som", preset: str = "auto", protocol: str = "authors") -> RunConfig:
    """RunConfig with the environment's preset for the machine (preset_machine) applied, then the protocol's
    settings for algo (PROTOCOLS)."""
    machine = preset_machine(preset)
    config = RunConfig(env=env_name, algo=algo, preset=preset)
    config = _with_preset(config, PRESETS.get(env_name, {}).get(machine, {})) if machine else config
    return with_protocol(config, protocol)


def check_protocol(protocol: str) -> None:
    """A ValueError naming --protocol and the allowed values for an unknown protocol."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")


def with_protocol(config: RunConfig, protocol: str) -> RunConfig:
    """config with protocol's settings for its algorithm (PROTOCOLS) and config.protocol set."""
    check_protocol(protocol)
    return _with_preset(dataclasses.replace(config, protocol=protocol), PROTOCOLS[protocol])


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Run/trainer fields by name; algorithm fields either by name (w=3) or as a dict (som={...})."""
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    algo_config = config.algo_config()
    algo_fields = {f.name for f in dataclasses.fields(algo_config)}
    run_updates, algo_updates = {}, {}
    for key, value in overrides.items():
        if key == config.algo and isinstance(value, dict):
            algo_updates.update(value)
        elif key in run_fields:
            run_updates[key] = value
        elif key in algo_fields:
            algo_updates[key] = value
        else:
            raise ValueError(
                f"unknown setting {key!r}; run settings: {', '.join(sorted(run_fields))}; "
                f"{config.algo} settings: {', '.join(sorted(algo_fields))}"
            )
    unknown = set(algo_updates) - algo_fields
    if unknown:
        raise ValueError(f"unknown {config.algo} settings {sorted(unknown)}; allowed: {', '.join(sorted(algo_fields))}")
    config = dataclasses.replace(config, **run_updates)
    return dataclasses.replace(config, **{config.algo: dataclasses.replace(algo_config, **algo_updates)})


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
    return to_run_config(tyro.cli(cli, args=flags, default=cli(**vars(default)), description=description))


def config_from_flags(env, algo: str, flags: list[str] = (), preset: str = "auto") -> RunConfig:
    """The RunConfig that `launch/run.py --env ENV --algo ALGO FLAGS` runs: the env's preset (resolve_config:
    env may be a name or an environment object), then run.py's flags; other algorithms' flags are ignored
    (flags_for_algo)."""
    check_replaced_flags(list(flags))
    protocol = parse_selection(list(flags)).protocol or RunConfig.protocol
    config = resolve_config(env, algo, preset=preset, protocol=protocol)
    return parse_run_flags(config, flags_for_algo(list(flags), algo))


MAX_N_STEP = 100  # replay_sample unrolls one gather per step of the return


def validate(config: RunConfig, env) -> None:
    """Every check that can fail before compiling, with the flag, the value and what is allowed."""
    agents.config_class(config.algo)
    preset_machine(config.preset)  # an unknown preset fails here, naming the allowed ones
    check_protocol(config.protocol)
    positive = (
        "num_envs",
        "total_steps",
        "batch_size",
        "updates_per_step",
        "buffer_size",
        "log_every",
        "eval_every",
        "eval_episodes",
        "n_step",
        "reward_horizon",
    )
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    if min(config.video_size) < 16 or len(config.video_size) != 2:
        raise ValueError(f"--video-size {config.video_size}: two sizes (width height), each >= 16 pixels")
    for name in ("learning_starts", "checkpoint_every", "max_consecutive_skips", "video_every"):
        if getattr(config, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)}")
    if config.num_processes < 1 or not 0 <= config.process_id < config.num_processes:
        raise ValueError(
            f"--process-id {config.process_id} / --num-processes {config.num_processes}: need num_processes >= 1 "
            "and 0 <= process_id < num_processes"
        )
    if config.keep_checkpoints < 1:
        raise ValueError(f"--keep-checkpoints must be >= 1, got {config.keep_checkpoints}")
    if config.matmul_precision not in MATMUL_PRECISIONS:
        raise ValueError(f"--matmul-precision {config.matmul_precision!r}; allowed: {', '.join(MATMUL_PRECISIONS)}")
    if config.network_precision not in ("", *MATMUL_PRECISIONS):
        raise ValueError(
            f"--network-precision {config.network_precision!r}; allowed: {', '.join(MATMUL_PRECISIONS)} or '' "
            "(the same as --matmul-precision)"
        )
    if config.resume_step < 0:
        raise ValueError(f"--resume-step must be >= 0 (0 = the latest checkpoint), got {config.resume_step}")
    multi_host = bool(config.coordinator) or config.num_processes > 1
    if multi_host and (config.num_processes != jax.process_count() or config.process_id != jax.process_index()):
        raise ValueError(
            f"--num-processes {config.num_processes} / --process-id {config.process_id}, but this process is "
            f"{jax.process_index()} of {jax.process_count()} JAX process(es): call "
            "mjx_som.sharding.init_distributed(coordinator, num_processes, process_id) before any JAX computation "
            "(launch/run.py does)"
        )
    if config.total_steps < config.num_envs:
        raise ValueError(
            f"--total-steps {config.total_steps} is less than one iteration of --num-envs {config.num_envs}"
        )
    if config.buffer_size < config.num_envs:
        raise ValueError(f"--buffer-size {config.buffer_size} must hold one vector step (--num-envs {config.num_envs})")
    if config.learning_starts > config.buffer_size:
        raise ValueError(
            f"--buffer-size {config.buffer_size} is smaller than --learning-starts {config.learning_starts}: the "
            "replay could never hold enough transitions for updates to start; raise --buffer-size or lower "
            "--learning-starts"
        )
    if config.n_step > MAX_N_STEP:
        raise ValueError(f"--n-step must be in [1, {MAX_N_STEP}], got {config.n_step}")
    if not 0.0 <= config.warmup_share < 1.0:
        raise ValueError(f"--warmup-share must be in [0, 1), got {config.warmup_share}")
    if config.warmup_share > 0 and config.learning_starts == 0:
        raise ValueError(f"--warmup-share {config.warmup_share} needs warm-up data: --learning-starts is 0")
    if config.warmup_share > 0 and config.buffer_size < config.run_steps:
        raise ValueError(
            f"--warmup-share {config.warmup_share} draws from the warm-up transitions all run, but --buffer-size "
            f"{config.buffer_size} holds fewer than the run's {config.run_steps} env steps "
            "and would overwrite them: raise --buffer-size or set --warmup-share 0"
        )
    if config.learning_starts >= config.total_steps:
        raise ValueError(
            f"--learning-starts {config.learning_starts} is not below --total-steps {config.total_steps}: no "
            "gradient update would be made; lower --learning-starts or raise --total-steps"
        )
    resolve_wandb_mode(config.wandb_mode)  # an unknown mode fails here, naming the allowed ones
    available = len(jax.devices())
    if config.devices < 0 or config.devices > available:
        raise ValueError(f"--devices {config.devices}: {available} device(s) are visible; use 0 (all) to {available}")
    num_devices = config.devices or available
    for name in ("num_envs", "buffer_size", "batch_size"):
        if getattr(config, name) % num_devices:
            raise ValueError(
                f"--{name.replace('_', '-')} {getattr(config, name)} is not divisible by the device count {num_devices}"
            )
    try:
        config.algo_config().validate()
    except ValueError as e:
        raise ValueError(f"--{config.algo} settings: {e}") from e
    actor_batch = getattr(config.algo_config(), "actor_batch_size", 0)
    if actor_batch and config.batch_size % actor_batch:
        raise ValueError(
            f"--{config.algo}.actor-batch-size {actor_batch} must divide --batch-size {config.batch_size} "
            "(the actor regresses at every (batch / actor batch)-th row; 0 = the whole batch)"
        )
    # building an agent compiles nothing; one with init_column keeps a column of its own in the replay
    agent = agents.make_agent(config.algo, config.algo_config(), EnvSpec(env.observation_size, env.action_size, 1))
    column = column_size(agent, env.action_size)
    buffer = replay_bytes(config.buffer_size, env.observation_size, env.action_size, column) // num_devices
    limit = sharding.memory_limit_bytes()
    if buffer > 0.8 * limit:
        raise ValueError(
            f"--buffer-size {config.buffer_size} needs {buffer / 2**30:.2f} GiB of replay per device, more than 80% "
            f"of the {limit / 2**30:.2f} GiB available on {device_name()}; lower --buffer-size"
        )


def config_to_dict(config: RunConfig) -> dict:
    """The config as config.json holds it (tuples as lists): the run's settings and its algorithm's block
    only (a config.json with every algorithm's block, as written before 2026-11-28, still loads)."""
    values = json.loads(json.dumps(dataclasses.asdict(config)))
    return {k: v for k, v in values.items() if k == config.algo or k not in agents.REGISTRY}


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


def config_from_dict(values: dict, cls=RunConfig, block: str = ""):
    """A config dataclass from its config.json dict (nested algorithm configs, lists as tuples); a ValueError
    naming the setting (block.name inside an algorithm's block) whose value has the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"settings this version does not know: {sorted(block + n for n in unknown)}")
    defaults = cls()
    kwargs = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(value, type(default), f"{name}.")
        elif isinstance(value, list):
            value = tuple(value)
        _check_type(block + name, value, default, str(fields[name].type))
        kwargs[name] = value
    return cls(**kwargs)


def _check_type(name: str, value, default, annotation: str) -> None:
    """A ValueError unless value has the type of the setting's default (a hand-edited config.json): ints for
    ints, numbers for floats, true/false for bools, text for text, a list of the tuple's items, a block for an
    algorithm's settings."""
    if dataclasses.is_dataclass(default):
        ok, expected = dataclasses.is_dataclass(value), "a block of settings {...}"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), "text"
    elif isinstance(default, tuple):
        item = str if "str" in annotation else int
        ok = isinstance(value, tuple) and all(isinstance(v, item) and not isinstance(v, bool) for v in value)
        expected = f"a list of {'text' if item is str else 'whole numbers'}"
    else:
        return
    if not ok:
        raise ValueError(f"setting {name!r} is {value!r}; expected {expected}")


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
    """A config.json dict written by an earlier version, in today's terms: SOM's temperature was the fixed
    alpha (standardize_q and a_t_source are gone); n_step did not exist (1). The reworked baselines' old
    settings are dropped where the run is another algorithm's; a run of one of them from before
    cannot be continued (its state or its method differs), which the error says."""
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


def _env_name(env) -> str:
    return getattr(env, "name", None) or type(env).__name__


def resolve_config(env="HalfCheetah-v4", algo: str = "som", **overrides) -> RunConfig:
    """The RunConfig that train(env, algo, **overrides) runs: the env's preset (bandit objects get the
    bandit preset), then the overrides."""
    agents.config_class(algo)  # an unknown algo fails here, naming the valid ones
    protocol = overrides.get("protocol", RunConfig.protocol)
    if isinstance(env, str):
        config = default_config(env, algo, overrides.get("preset", "auto"), protocol)
    else:
        preset = _BANDIT_PRESET if isinstance(env, Bandit) else {}
        config = with_protocol(_with_preset(RunConfig(env=_env_name(env), algo=algo), preset), protocol)
    return apply_overrides(config, overrides)

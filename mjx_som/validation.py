"""The checks made before anything compiles: every flag's value and the combinations (validate), each error
naming the flag, the value and what is allowed."""

from __future__ import annotations

import jax

from mjx_som import agents
from mjx_som.config import MATMUL_PRECISIONS, RunConfig, check_protocol, preset_machine
from mjx_som.logging import resolve_wandb_mode

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
    actor_batch = agents.setting(config.algo_config(), "actor_batch_size", 0)
    if actor_batch and config.batch_size % actor_batch:
        raise ValueError(
            f"--{config.algo}.actor.actor-batch-size {actor_batch} must divide --batch-size {config.batch_size} "
            "(the actor regresses at every (batch / actor batch)-th row; 0 = the whole batch)"
        )

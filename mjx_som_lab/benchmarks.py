"""Throughput measurements shared by launch/bench.py and the docs.

Every timing is taken after a warm-up call (compilation excluded) and blocked until
the device is done (``block_until_ready``).
"""

from __future__ import annotations

import faulthandler
import functools
import sys
import time
from collections.abc import Callable

import jax
import numpy as np

from envs.wrappers import VecEnv
from mjx_som.trainer import with_matmul_precision

WATCHDOG_S = 600  # a measurement call that takes longer dumps every thread's stack to stderr (a hang shows where)
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles = [0]  # XLA compilations in this process (jax.monitoring), to keep them out of timed calls


def _count_compile(event: str, duration: float, **kwargs) -> None:
    if event == COMPILE_EVENT:
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compile)


MAX_COMPILING_CALLS = 3  # warm-up calls that may compile before time_calls gives up


def time_calls(fn: Callable[[], object], repeats: int, label: str = "") -> np.ndarray:
    """Wall-clock seconds of `repeats` calls of fn that compiled nothing. Calls that compiled (the first;
    and the second where each call's output feeds the next, e.g. an env or train state: the first output
    is held differently from the freshly made input and compiles again, seen as 9 s among 0.03 s calls)
    are warm-ups, counted by jax.monitoring's compile events; more than MAX_COMPILING_CALLS of them is an
    error (the function recompiles every call). With a label, each call's progress goes to stderr; any
    call running past WATCHDOG_S dumps all threads' stacks (faulthandler)."""
    times, warmups = [], 0
    while len(times) < repeats:
        compiled = _compiles[0]
        faulthandler.dump_traceback_later(WATCHDOG_S, exit=False, file=sys.__stderr__)
        start = time.perf_counter()
        try:
            jax.block_until_ready(fn())
        finally:
            faulthandler.cancel_dump_traceback_later()
        seconds = time.perf_counter() - start
        if _compiles[0] == compiled:
            times.append(seconds)
            what = f"call {len(times)}/{repeats}"
        else:
            warmups += 1
            if warmups > MAX_COMPILING_CALLS:
                what = label or "the measured function"
                raise RuntimeError(f"{what} compiled in {warmups} calls: it recompiles on every call")
            what = "warm-up (compile)"
        if label:
            print(f"[bench] {label}: {what} {seconds:.2f} s", file=sys.stderr, flush=True)
    return np.asarray(times)


def call_keys(seed: int, repeats: int):
    """An iterator of PRNG keys, one for every call time_calls(fn, repeats) may make (the warm-ups that
    compile included), made before timing so that no key costs a timed call anything."""
    return iter(jax.random.split(jax.random.PRNGKey(seed), repeats + MAX_COMPILING_CALLS + 1))


def playground_vector_env(env, num_envs: int):
    """Playground's own training wrapper around a playground/<Name> task (brax's VmapWrapper, EpisodeWrapper
    and AutoResetWrapper, as Playground trains): the same physics without our adapter, for comparing the
    adapter's cost. Returns an object with reset(rng) and step(state, action [num_envs, A])."""
    from mujoco_playground import wrapper

    native = wrapper.wrap_for_brax_training(env.task, episode_length=env.episode_length)

    class Native:
        action_size = env.action_size

        def reset(self, rng):
            return native.reset(jax.random.split(rng, num_envs))

        def step(self, state, action):
            return native.step(state, action)

    return Native()


def env_throughput(
    env,
    num_envs: int,
    steps_per_call: int = 100,
    repeats: int = 3,
    seed: int = 0,
    wrapper: str = "mjx_som",
    matmul_precision: str = "highest",
) -> dict:
    """Env steps/s of `num_envs` lockstep envs (auto-reset on) under uniform random actions in [-1, 1].
    wrapper: "mjx_som" (our VecEnv) or, for a Playground task, "playground" (Playground's own wrapper);
    matmul_precision: the physics' float32 matmul precision, as the trainer's (--matmul-precision).

    Returns {"num_envs", "wrapper", "matmul_precision", "env_steps_per_s", "env_steps_per_s_std"}: the
    physical limit the trainer's throughput is measured against.
    """
    vec = playground_vector_env(env, num_envs) if wrapper == "playground" else VecEnv(env, num_envs)

    @jax.jit
    @functools.partial(with_matmul_precision, precision=matmul_precision)
    def rollout(state, key):
        def body(carry, _):
            state, key = carry
            key, key_action = jax.random.split(key)
            action = jax.random.uniform(key_action, (num_envs, vec.action_size), minval=-1.0, maxval=1.0)
            return (vec.step(state, action), key), None

        (state, key), _ = jax.lax.scan(body, (state, key), None, length=steps_per_call)
        return state, key

    carry = vec.reset(jax.random.PRNGKey(seed)), jax.random.PRNGKey(seed + 1)

    def call():
        nonlocal carry
        carry = rollout(*carry)
        return carry

    seconds = time_calls(call, repeats, f"env-only ({wrapper}), {num_envs} envs x {steps_per_call} steps")
    rates = num_envs * steps_per_call / seconds
    return {
        "num_envs": num_envs,
        "wrapper": wrapper,
        "matmul_precision": matmul_precision,
        "env_steps_per_s": float(rates.mean()),
        "env_steps_per_s_std": float(rates.std()),
    }


def xla_cost(jitted, *args) -> dict:
    """What XLA's cost analysis of the compiled jitted(*args) counts: {"gflops": floating-point operations / 1e9,
    "compile_s": the seconds lowering and compiling took}. The count is the compiler's, the same on any
    machine for the same program and shapes (a fused op counts its arithmetic, not its memory traffic). A
    loop's body (lax.scan, fori_loop: the iterative baselines' T denoising steps) is counted once, not once per
    step, so only loop-free programs (SOM's, MFP's and SAC's updates and acts) compare in full."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    seconds = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"gflops": float(cost.get("flops", 0.0)) / 1e9, "compile_s": seconds}


def synthetic_batch(agent, obs_size: int, action_size: int, batch_size: int):
    """A non-terminal batch of random transitions (the critic target's bootstrap is computed, as on locomotion)."""
    from mjx_som.replay import Transition

    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    action = jax.random.uniform(keys[1], (batch_size, action_size), minval=-1.0, maxval=1.0)
    return Transition(
        obs=jax.random.normal(keys[0], (batch_size, obs_size)),
        action=action,
        reward=jax.random.normal(keys[2], (batch_size,)),
        next_obs=jax.random.normal(keys[0], (batch_size, obs_size)),
        terminated=jax.numpy.zeros(batch_size),
        done=jax.numpy.zeros(batch_size),
        agent_column=None if agent.init_column is None else agent.init_column(action),
    )


def update_cost(agent, agent_state, obs_size: int, action_size: int, batch_size: int, matmul_precision="highest"):
    """xla_cost of one update (update_fn) on a batch of batch_size transitions."""
    batch = synthetic_batch(agent, obs_size, action_size, batch_size)
    return xla_cost(update_fn(agent, matmul_precision), agent_state, batch, jax.random.PRNGKey(3))


def inference_cost(agent, agent_state, obs_size: int, batch_size: int, matmul_precision="highest"):
    """xla_cost of one greedy act() call (inference_fn) on batch_size states."""
    obs = jax.numpy.zeros((batch_size, obs_size))
    return xla_cost(inference_fn(agent, matmul_precision), agent_state, obs, jax.random.PRNGKey(1))


def _ms(seconds: np.ndarray) -> tuple[float, float]:
    return float(seconds.mean() * 1e3), float(seconds.std() * 1e3)


def inference_fn(agent, matmul_precision: str = "highest"):
    """The jitted greedy act(state, obs [B, O], key) -> actions [B, A] that inference_ms times, traced under
    matmul_precision (as the trainer's acting and evaluation)."""
    return jax.jit(with_matmul_precision(lambda state, obs, key: agent.act(state, obs, key, False), matmul_precision))


def update_fn(agent, matmul_precision: str = "highest"):
    """The jitted update(state, batch, key) -> (state, metrics, column) that update_ms times, traced under
    matmul_precision."""
    return jax.jit(with_matmul_precision(agent.update, matmul_precision))


def inference_ms(
    agent, agent_state, obs_size: int, batch_size: int, repeats: int, matmul_precision: str = "highest"
) -> tuple[float, float]:
    """(mean, std) ms of one jitted greedy act() call on batch_size states (an algorithm's whole
    sampler: every denoising step, all N candidates and the critic's selection)."""
    act = inference_fn(agent, matmul_precision)
    obs = jax.random.normal(jax.random.PRNGKey(0), (batch_size, obs_size))
    keys = call_keys(1, repeats)
    return _ms(time_calls(lambda: act(agent_state, obs, next(keys)), repeats, f"inference, batch {batch_size}"))


def update_ms(
    agent,
    agent_state,
    obs_size: int,
    action_size: int,
    batch_size: int,
    repeats: int,
    matmul_precision: str = "highest",
):
    """(mean, std) ms of one jitted gradient update (critic + actor) on a batch of transitions; DIPO's includes
    the improvement of the batch's kept actions."""
    batch = synthetic_batch(agent, obs_size, action_size, batch_size)

    update = update_fn(agent, matmul_precision)
    state = agent_state
    update_keys = call_keys(3, repeats)

    def call():
        nonlocal state
        state, metrics, _ = update(state, batch, next(update_keys))
        return metrics

    return _ms(time_calls(call, repeats, f"update, batch {batch_size}"))


def loop_throughput(trainer, repeats: int, seed: int = 0) -> tuple[float, float]:
    """(mean, std) env steps/s of the whole training loop: trainer.chunk calls (act, step, insert,
    updates) with learning on from the first step (the trainer's config should set learning_starts=0)."""
    state = trainer.init(jax.random.PRNGKey(seed))
    steps = trainer.config.chunk_iterations * trainer.config.num_envs

    def call():
        nonlocal state
        state, metrics = trainer.chunk(state)
        return metrics

    rates = steps / time_calls(call, repeats, f"training loop, {trainer.config.num_envs} envs")
    return float(rates.mean()), float(rates.std())

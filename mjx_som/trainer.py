"""The algorithm-agnostic on-device training loop.

One jitted function runs a lax.scan over `chunk_iterations` iterations of

    act (uniform random until learning_starts) -> step num_envs envs -> insert into replay
    -> update observation statistics -> updates_per_step gradient updates

and returns the new state with the chunk's metrics. The host only logs, evaluates and
checkpoints between chunks. The trainer knows the Agent interface (mjx_som/agents/base.py),
never an algorithm.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from brax.training import acme
from brax.training.acme import running_statistics
from flax import struct

from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from envs.wrappers import VecEnv
from mjx_som.agents.base import Agent, column_size
from mjx_som.replay import ReplayState, Transition, replay_init, replay_insert, replay_sample, replay_write_column
from mjx_som.sharding import replicated, split_leading, state_shardings

OBS_CLIP = 10.0  # normalised observations are clipped to +-OBS_CLIP


@dataclass(frozen=True)
class TrainerConfig:
    """How the on-device loop runs (algorithm-agnostic)."""

    num_envs: int = 4096
    """environments stepped in lockstep (global count)"""
    total_steps: int = 20_000_000
    """environment transitions, all envs together (rounded up to whole chunks)"""
    batch_size: int = 4096
    """transitions per gradient update"""
    updates_per_step: int = 4
    """gradient updates per vector step of num_envs transitions"""
    buffer_size: int = 1_000_000
    """replay capacity in transitions"""
    learning_starts: int = 100_000
    """transitions collected with uniform random actions before updates begin"""
    warmup_share: float = 0.0
    """share of each batch drawn from those warm-up transitions (kept all run: needs buffer_size >= total_steps),
    the rest uniformly from the whole replay: the critic keeps fitting actions the policy has stopped taking
    (0 = every row alike)"""
    normalize_rewards: bool = True
    """divide rewards by the root-mean-square of the recently collected rewards before the critic sees them (and
    then multiply them by reward_scale): the current policy's rewards have a root-mean-square of reward_scale,
    whatever the task's units"""
    reward_horizon: int = 50_000
    """normalize_rewards: the time constant, in transitions, of the running mean of squared rewards (older
    rewards weigh exp(-age / reward_horizon))"""
    reward_scale: float = 0.2
    """rewards are multiplied by this before the critic sees them (after normalize_rewards): with it, the
    critic's rewards have this root-mean-square (SDAC's and DACER's 0.2 on MuJoCo's: Q of tens)"""
    n_step: int = 1
    """critic targets sum the rewards of up to n_step consecutive transitions of one env before bootstrapping"""
    normalize_obs: bool = True
    """running mean/std observation normalisation (brax's running statistics)"""
    log_every: int = 200_000
    """environment steps between log points (one jitted chunk per log point)"""
    max_consecutive_skips: int = 100
    """stop the run after this many consecutive non-finite gradient updates (0 = never stop)"""
    matmul_precision: str = "highest"
    """float32 matmul precision of the physics (and of the networks unless network_precision says otherwise):
    highest (true float32), high or default (on Ampere/Hopper GPUs: TF32, which breaks MJX physics)"""
    network_precision: str = ""
    """float32 matmul precision of the networks alone (every act, sample, update of the agent): highest, high or
    default (TF32 on Ampere/Hopper GPUs: tensor cores, ~2x faster updates on an H200), "" = matmul_precision;
    the physics keep matmul_precision"""

    @property
    def chunk_iterations(self) -> int:
        return max(1, math.ceil(self.log_every / self.num_envs))

    @property
    def num_chunks(self) -> int:
        return max(1, math.ceil(self.total_steps / (self.num_envs * self.chunk_iterations)))

    @property
    def run_steps(self) -> int:
        """env steps the run makes: total_steps rounded up to whole chunks"""
        return self.num_chunks * self.chunk_iterations * self.num_envs

    @property
    def total_updates(self) -> int:
        return self.num_chunks * self.chunk_iterations * self.updates_per_step


@struct.dataclass
class RewardStats:
    """The running mean of squared rewards: an exponential average over transitions, kept unnormalised with its
    weight (sum of the decayed weights, < 1 early on) so that the first rewards are not shrunk towards 0."""

    mean_square: jax.Array  # float32 scalar, decayed weighted sum of squared rewards
    weight: jax.Array  # float32 scalar, the decayed sum of the weights

    def update(self, rewards: jax.Array, horizon: float) -> RewardStats:
        """After one vector step of rewards [N] (non-finite ones left out)."""
        finite = jnp.isfinite(rewards)
        count = jnp.sum(finite)
        decay = jnp.exp(-count / horizon)
        batch_mean_square = jnp.sum(jnp.where(finite, jnp.square(rewards), 0.0)) / jnp.maximum(count, 1)
        return RewardStats(decay * self.mean_square + (1 - decay) * batch_mean_square, decay * self.weight + 1 - decay)

    def rms(self) -> jax.Array:
        """The running root-mean-square reward; 1 before any reward or while every reward was 0."""
        rms = jnp.sqrt(self.mean_square / jnp.where(self.weight > 0, self.weight, 1.0))
        return jnp.where(rms > 0, rms, 1.0)


@struct.dataclass
class TrainState:
    agent: object
    env_state: object
    replay: ReplayState
    normalizer: running_statistics.RunningStatisticsState
    reward_stats: RewardStats | None  # of the rewards collected (normalize_rewards)
    key: jax.Array
    env_steps: jax.Array  # int32 scalar, transitions so far (all envs)
    skipped_updates: jax.Array  # int32 scalar, non-finite updates skipped so far
    consecutive_skips: jax.Array  # int32 scalar, non-finite updates skipped since the last finite one


def with_matmul_precision(fn, precision: str):
    """fn traced under a float32 matmul precision (highest, high or default): jax.default_matmul_precision
    is read when jit traces, so the context must be entered inside the traced function."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with jax.default_matmul_precision(precision):
            return fn(*args, **kwargs)

    return traced


def networks_at_precision(agent: Agent, precision: str) -> Agent:
    """The agent with act, sample and update traced under their own float32 matmul precision (an
    inner jax.default_matmul_precision wins over the chunk's, so the physics around them keep theirs)."""
    wrap = functools.partial(with_matmul_precision, precision=precision)
    return agent._replace(
        act=wrap(agent.act),
        sample=wrap(agent.sample),
        update=wrap(agent.update),
    )


def all_finite(tree) -> jax.Array:
    """True when every floating-point leaf of tree is finite (bool scalar)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class Trainer:
    """Builds the jitted chunk and evaluation functions for one (env, agent, config).

    mesh: a device mesh (mjx_som.sharding.make_mesh); the environments and the replay buffer are
    split across its `data` axis and everything else is replicated. None: one device, no annotations.
    """

    def __init__(self, env, agent: Agent, config: TrainerConfig, eval_episodes: int = 16, mesh=None):
        lower_cpu_linalg_without_lapack()  # jaxlib 0.10's CPU LAPACK kernels deadlock MJX (envs/cpu_runtime.py)
        network_precision = config.network_precision or config.matmul_precision
        if network_precision != config.matmul_precision:  # the networks' own precision inside the chunk
            agent = networks_at_precision(agent, network_precision)
        self.env, self.agent, self.config, self.mesh = env, agent, config, mesh
        self.vec = VecEnv(env, config.num_envs)
        self.eval_vec = VecEnv(env, eval_episodes)
        self.evaluate = jax.jit(self.precise(self._evaluate))
        if mesh is None:
            self.shardings = None
            self.init = jax.jit(self.precise(self._init))
            self.chunk = jax.jit(self.precise(self._chunk), donate_argnums=0)
        else:
            self.shardings = state_shardings(self.abstract_state, mesh, config.num_envs, config.buffer_size)
            self.init = jax.jit(self.precise(self._init), out_shardings=self.shardings)
            self.chunk = jax.jit(
                self.precise(self._chunk),
                in_shardings=(self.shardings,),
                out_shardings=(self.shardings, replicated(mesh)),
                donate_argnums=0,
            )

    def precise(self, fn):
        """fn traced under the run's float32 matmul precision (config.matmul_precision)."""
        return with_matmul_precision(fn, self.config.matmul_precision)

    @functools.cached_property
    def abstract_state(self) -> TrainState:
        """The TrainState's shapes and dtypes (traced once; they do not depend on the key)."""
        return jax.eval_shape(self._init, jax.random.PRNGKey(0))

    def place(self, state: TrainState) -> TrainState:
        """state laid out on the mesh (e.g. after restoring a checkpoint)."""
        return state if self.shardings is None else jax.device_put(state, self.shardings)

    def _constrain(self, state: TrainState) -> TrainState:
        """Pins the mesh layout inside the scan (env states and replay rows split, the rest replicated)."""
        if self.shardings is None:
            return state
        return jax.lax.with_sharding_constraint(state, self.shardings)

    # ----- state ------------------------------------------------------------------------------
    def _init(self, key: jax.Array) -> TrainState:
        key_agent, key_env, key_loop = jax.random.split(key, 3)
        obs_size, action_size = self.vec.observation_size, self.vec.action_size
        normalizer = running_statistics.init_state(acme.specs.Array((obs_size,), jnp.float32))
        reward_stats = RewardStats(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
        state = TrainState(
            agent=self.agent.init(key_agent),
            env_state=self.vec.reset(key_env),
            replay=replay_init(self.config.buffer_size, obs_size, action_size, column_size(self.agent, action_size)),
            normalizer=normalizer,
            reward_stats=reward_stats if self.config.normalize_rewards else None,
            key=key_loop,
            env_steps=jnp.zeros((), jnp.int32),
            skipped_updates=jnp.zeros((), jnp.int32),
            consecutive_skips=jnp.zeros((), jnp.int32),
        )
        # chunk() donates its input: every leaf must own its buffer (EMA/target params and
        # final_obs start out aliasing other leaves).
        return jax.tree.map(lambda x: jnp.array(x, copy=True), state)

    def normalize(self, normalizer, obs: jax.Array) -> jax.Array:
        if not self.config.normalize_obs:
            return obs
        return running_statistics.normalize(obs, normalizer, max_abs_value=OBS_CLIP)

    def reward_factor(self, reward_stats: RewardStats | None) -> jax.Array:
        """What rewards are multiplied by before the critic sees them: reward_scale, divided (normalize_rewards)
        by the running root-mean-square of the recent rewards. -> scalar"""
        if reward_stats is None:
            return jnp.asarray(self.config.reward_scale, jnp.float32)
        return self.config.reward_scale / reward_stats.rms()

    # ----- the training loop --------------------------------------------------------------------
    @property
    def keeps_column(self) -> bool:
        """Whether the agent keeps a column of its own in the replay (Agent.init_column): only then does the
        replay ride in the updates' carry and get the rows' new values written back."""
        return self.agent.init_column is not None

    @property
    def warmup_draw(self) -> tuple[int, int]:
        """(rows of each batch drawn from the warm-up transitions, how many warm-up rows there are): the
        warm-up is whole vector steps, the first rows of a replay that never wraps (config validation)."""
        cfg = self.config
        warmup_rows = math.ceil(cfg.learning_starts / cfg.num_envs) * cfg.num_envs
        return round(cfg.warmup_share * cfg.batch_size), warmup_rows

    def sample_batch(self, replay: ReplayState, normalizer, reward_factor, key) -> Transition:
        """One training batch as the agent sees it: n-step transitions (replay_sample) split along the
        mesh's data axis (each device computes its share of the update; the gradient mean becomes an
        all-reduce), observations normalised, rewards times reward_factor (scalar)."""
        cfg = self.config
        batch = replay_sample(
            replay, key, cfg.batch_size, self.agent.config.critic.gamma, cfg.n_step, cfg.num_envs, *self.warmup_draw
        )
        if self.mesh is not None:
            batch = jax.lax.with_sharding_constraint(batch, jax.tree.map(lambda _: split_leading(self.mesh), batch))
        return batch.replace(
            obs=self.normalize(normalizer, batch.obs),
            next_obs=self.normalize(normalizer, batch.next_obs),
            reward=batch.reward * reward_factor,
        )

    def _updates(self, agent_state, replay: ReplayState, normalizer, reward_factor, consecutive_skips, key):
        """updates_per_step agent updates; an update whose loss, metrics or new state is not finite
        is skipped (the agent state stays as it was, nothing is written back). Returns (agent state,
        written, consecutive skips, (metrics [U], finite [U])): written is the replay with the agent's column
        values written in (an agent with init_column), None for every other agent (whose replay then stays
        out of the loop's carry: nothing on the hot path changes for them)."""
        cfg = self.config

        def one_update(carry, key):
            agent_state, written, consecutive = carry
            key_sample, key_update = jax.random.split(key)
            batch = self.sample_batch(replay if written is None else written, normalizer, reward_factor, key_sample)
            new_state, metrics, column = self.agent.update(agent_state, batch, key_update)
            finite = all_finite((new_state, metrics, column))
            agent_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, agent_state)
            if self.keeps_column:
                kept = jnp.where(finite, column, written.data.agent_column[batch.row])
                written = replay_write_column(written, batch.row, kept)
            consecutive = jnp.where(finite, 0, consecutive + 1)
            return (agent_state, written, consecutive), (metrics, finite)

        keys = jax.random.split(key, cfg.updates_per_step)
        written = replay if self.keeps_column else None
        (agent_state, written, consecutive_skips), out = jax.lax.scan(
            one_update, (agent_state, written, consecutive_skips), keys
        )
        return agent_state, written, consecutive_skips, out

    def _iteration(self, state: TrainState, _):
        cfg = self.config
        key, key_act, key_update = jax.random.split(state.key, 3)
        obs = state.env_state.obs
        warming_up = state.env_steps < cfg.learning_starts
        action = jax.lax.cond(
            warming_up,
            lambda: jax.random.uniform(key_act, (cfg.num_envs, self.vec.action_size), minval=-1.0, maxval=1.0),
            lambda: self.agent.act(state.agent, self.normalize(state.normalizer, obs), key_act, True),
        )
        env_state = self.vec.step(state.env_state, action)
        info = env_state.info
        # a non-finite final observation (Ant terminates on one) is stored as zeros: it is never bootstrapped from
        final_obs = jnp.where(jnp.isfinite(info["final_obs"]), info["final_obs"], 0.0)
        column = self.agent.init_column(action) if self.keeps_column else None
        transition = Transition(
            obs, action, env_state.reward, final_obs, info["terminated"], env_state.done, agent_column=column
        )
        replay = replay_insert(state.replay, transition)
        if cfg.normalize_obs:  # rows with a non-finite observation are left out of the statistics
            finite_rows = jnp.all(jnp.isfinite(obs), axis=-1).astype(jnp.float32)
            normalizer = running_statistics.update(state.normalizer, jnp.nan_to_num(obs), weights=finite_rows)
        else:
            normalizer = state.normalizer
        reward_stats = state.reward_stats
        if reward_stats is not None:
            reward_stats = reward_stats.update(env_state.reward, cfg.reward_horizon)
        reward_factor = self.reward_factor(reward_stats)

        learn = replay.size >= cfg.learning_starts
        update_args = (state.agent, replay, normalizer, reward_factor, state.consecutive_skips, key_update)
        metric_shapes = jax.eval_shape(self._updates, *update_args)[3][0]
        agent_state, written, consecutive_skips, (metrics, finite) = jax.lax.cond(
            learn,
            lambda: self._updates(*update_args),
            lambda: (
                state.agent,
                replay if self.keeps_column else None,
                state.consecutive_skips,
                (
                    jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes),
                    jnp.zeros(cfg.updates_per_step, bool),
                ),
            ),
        )
        replay = replay if written is None else written
        ended = env_state.done > 0
        stats = {
            "updates": finite.astype(jnp.float32),  # [U] 1 where an update was made and kept
            "skipped": (learn & ~finite).astype(jnp.float32),  # [U]
            "episodes": jnp.sum(ended.astype(jnp.float32)),
            "return_sum": jnp.sum(info["completed_return"]),
            "reward_factor": reward_factor,
        }
        skipped = state.skipped_updates + jnp.sum(stats["skipped"]).astype(jnp.int32)
        new_state = TrainState(
            agent_state,
            env_state,
            replay,
            normalizer,
            reward_stats,
            key,
            state.env_steps + cfg.num_envs,
            skipped,
            consecutive_skips,
        )
        return self._constrain(new_state), (metrics, stats)

    def _chunk(self, state: TrainState):
        """chunk_iterations iterations; returns (state, metrics dict of scalars). Training metrics
        are means over the kept (finite) updates of the chunk."""
        state, (metrics, stats) = jax.lax.scan(self._iteration, state, None, length=self.config.chunk_iterations)
        kept = stats["updates"]  # [I, U]
        denom = jnp.maximum(jnp.sum(kept), 1.0)
        out = {f"train/{k}": jnp.sum(jnp.where(kept > 0, v, 0.0)) / denom for k, v in metrics.items()}
        out["train/skipped_updates"] = jnp.sum(stats["skipped"])
        out["train/updates"] = jnp.sum(kept)  # gradient updates made (and kept) in this chunk
        episodes = jnp.sum(stats["episodes"])
        out["train/episodes"] = episodes
        out["train/episode_return"] = jnp.where(episodes > 0, jnp.sum(stats["return_sum"]) / episodes, jnp.nan)
        out["train/reward_factor"] = stats["reward_factor"][-1]  # what rewards are multiplied by, at the chunk's end
        return state, out

    # ----- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, agent_state, normalizer, key):
        """eval_episodes greedy episodes (no exploration noise), one per env -> (metrics, episode): the mean
        and std of their returns and their mean length; episode: the first env's episode as qpos [T, nq] and
        qvel [T, nv] before each of its steps and its length (frames past it belong to the next episode),
        for a video (mjx_som/video.py); {} for an env without MuJoCo state (the bandits)."""
        key_reset, key_loop = jax.random.split(key)
        env_state = self.eval_vec.reset(key_reset)
        n = self.eval_vec.num_envs
        recorded = hasattr(env_state.pipeline_state, "qpos")

        def body(carry, _):
            env_state, key, finished, returns, lengths = carry
            frame = (env_state.pipeline_state.qpos[0], env_state.pipeline_state.qvel[0]) if recorded else ()
            key, key_act = jax.random.split(key)
            obs = self.normalize(normalizer, env_state.obs)
            env_state = self.eval_vec.step(env_state, self.agent.act(agent_state, obs, key_act, False))
            lengths = jnp.where(finished, lengths, lengths + 1)
            first_end = (env_state.done > 0) & ~finished
            returns = jnp.where(first_end, env_state.info["completed_return"], returns)
            return (env_state, key, finished | first_end, returns, lengths), frame

        init = (env_state, key_loop, jnp.zeros(n, bool), jnp.zeros(n), jnp.zeros(n, jnp.int32))
        (_, _, _, returns, lengths), frames = jax.lax.scan(body, init, None, length=self.eval_vec.episode_length)
        metrics = {
            "eval/episode_return": jnp.mean(returns),
            "eval/episode_return_std": jnp.std(returns),
            "eval/episode_length": jnp.mean(lengths.astype(jnp.float32)),
        }
        episode = {"qpos": frames[0], "qvel": frames[1], "length": lengths[0]} if recorded else {}
        return metrics, episode

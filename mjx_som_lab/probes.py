"""Mechanism probes (launch/probes.py): the estimated score against a closed form, and the transport
the estimated velocity field performs on its own, with the TRUE reward as Q (no learning). Both go
through mjx_som/score.py, the code the SOM agent trains with.

The probes of trained runs (transport maps, learned Q and velocity fields, candidate values) take a
run restored by mjx_som.load and call its agent's own functions.

Gaussian-mixture targets: p_0 = sum_i w_i N(mu_i, s^2 I). Under a path a_t = c_t a_0 + n_t eps the
noised density is sum_i w_i N(c_t mu_i, (c_t^2 s^2 + n_t^2) I), so its score is analytic. With
Q(a) = log p_0(a) / alpha the Boltzmann target exp(alpha Q) is p_0 itself (restricted to the action
box, where the estimator's uniform prior lives: keep the modes well inside it).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.wrappers import VecEnv
from mjx_som.critic import ascend_actions, min_q
from mjx_som.networks import VelocityNet
from mjx_som.score import (
    ScoreConfig,
    estimate_velocity,
    log_truncated_normal,
    path_coefficients,
    posterior_mean,
    state_alpha,
    target_velocity,
    truncated_normal_samples,
)


def gmm_log_density(a, means, std, weights) -> jax.Array:
    """log p(a) for a [A] under sum_i weights_i N(means_i [M, A], std_i^2 I) (std [M])."""
    dim = a.shape[-1]
    sq = jnp.sum(jnp.square(a - means), axis=-1)
    log_n = -0.5 * sq / std**2 - dim * jnp.log(std) - 0.5 * dim * jnp.log(2 * jnp.pi)
    return jax.nn.logsumexp(log_n + jnp.log(weights))


def gmm_noised_score(a_t, t, means, std0, weights, config: ScoreConfig) -> jax.Array:
    """The analytic score grad log p_t(a_t) [A] of the noised mixture at time t (scalar); std0 [M]."""
    signal, noise = path_coefficients(t, config)
    var = signal**2 * std0**2 + noise**2
    diff = a_t - signal * means  # [M, A]
    log_n = -0.5 * jnp.sum(jnp.square(diff), -1) / var - 0.5 * a_t.shape[-1] * jnp.log(var)
    resp = jax.nn.softmax(log_n + jnp.log(weights))
    return -jnp.sum(resp[:, None] * diff / var[:, None], axis=0)


def estimated_score(key, q_fn, a_t, t, config: ScoreConfig) -> jax.Array:
    """The score implied by SOM's denoising estimator: (c_t D - a_t) / n_t^2, D = E[a_0 | a_t]. [A]"""
    signal, noise = path_coefficients(t, config)
    return (signal * posterior_mean(key, q_fn, a_t, t, config) - a_t) / noise**2


def cosine(u: jax.Array, v: jax.Array) -> jax.Array:
    """Row-wise cosine similarity of [P, A] arrays."""
    return jnp.sum(u * v, -1) / (jnp.linalg.norm(u, axis=-1) * jnp.linalg.norm(v, axis=-1) + 1e-12)


FIELD_ALPHA_SAMPLES = 4096  # uniform actions that set a field's temperature (one state: measured once)


def integrate_field(
    key, q_fn, num_samples: int, action_size: int, config: ScoreConfig, steps: int = 100, noise=None, anchor_fn=None
):
    """Euler-integrates the estimated target velocity from noise at t = 1 down to t = 0 (the flow the
    actor is trained to reproduce in one step); returns [num_samples, A] (unclipped). noise
    [num_samples, A]: the starting points (default: drawn from key). The temperature is measured once, on
    FIELD_ALPHA_SAMPLES uniform actions (state_alpha; temperature=ess solves its own per point). anchor_fn(a
    [P, A], t) -> [P, A]: each point's anchor (config.anchor_share), or None."""
    key_init, key_steps, key_alpha = jax.random.split(key, 3)
    a = jax.random.normal(key_init, (num_samples, action_size)) if noise is None else noise
    dt = 1.0 / steps
    times = 1.0 - dt * jnp.arange(steps)
    alpha = (
        None if config.temperature == "ess" else state_alpha(key_alpha, q_fn, action_size, config, FIELD_ALPHA_SAMPLES)
    )

    def step(a, inputs):
        t, key = inputs
        keys = jax.random.split(key, num_samples)
        anchors = None if anchor_fn is None else anchor_fn(a, t)
        v = jax.vmap(lambda k, x, anchor: estimate_velocity(k, q_fn, x, t, config, alpha, anchor)[0])(keys, a, anchors)
        return a - dt * v, None

    a, _ = jax.lax.scan(step, a, (times, jax.random.split(key_steps, steps)))
    return a


BUDGET_STAGES = ("target", "field", "flow", "one_step")


def mode_budget(bandit, q_fn, config: ScoreConfig, u_fn, key, samples: int = 4096, steps: int = 40) -> dict:
    """Where a bandit's high modes gain or lose their mass on the way from SOM's target to its one-step map: each
    mode's share of the samples (Bandit.mode_stats) at four stages, {stage: mode_stats}:
    - target: the Boltzmann target exp(alpha Q) itself, on a 256 x 256 grid of the box, at the field's rule for
      the temperature (state_alpha over FIELD_ALPHA_SAMPLES uniform actions; integrate_field draws its own);
    - field: SOM's estimated target velocity from q_fn integrated from noise (integrate_field, `steps` steps):
      what an actor that regressed the estimates perfectly would sample;
    - flow: the actor's own instantaneous velocity u(a, t, t) integrated from t = 1 to 0 in `steps` Euler steps;
    - one_step: the actor's one-step map a = z - u(z, 0, 1), which SOM samples.
    q_fn: actions [K, 2] -> [K]; u_fn(a [P, 2], r [P], t [P]) -> [P, 2] (the linear path's convention, t = 1 noise).
    The flow and one-step stages start from the same noise."""
    key_alpha, key_field, key_noise = jax.random.split(key, 3)
    grid = square_grid(256, 1.0 - 1.0 / 256)
    alpha = state_alpha(key_alpha, q_fn, 2, config, FIELD_ALPHA_SAMPLES)
    q = q_fn(grid)
    weights = np.asarray(jax.nn.softmax(alpha * (q - jnp.max(q))))
    draws = np.random.default_rng(0).choice(grid.shape[0], size=samples, p=weights / weights.sum())
    noise = jax.random.normal(key_noise, (samples, 2))
    field = integrate_field(key_field, q_fn, samples, 2, config, steps, noise)
    flow, one_step = actor_flow_and_map(u_fn, noise, steps)
    stages = (grid[draws], field, flow, one_step)
    return {name: bandit.mode_stats(jnp.clip(a, -1.0, 1.0)) for name, a in zip(BUDGET_STAGES, stages, strict=True)}


def actor_flow_and_map(u_fn, noise: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """(the actor's instantaneous velocity u(a, t, t) integrated from t = 1 to 0 in `steps` Euler steps, its
    one-step map z - u(z, 0, 1)), both from noise [P, A] (unclipped). u_fn(a [P, A], r [P], t [P]) -> [P, A]."""
    times = 1.0 - jnp.arange(steps) / steps  # each Euler step runs from times[i] down by 1 / steps

    def flow_step(a, t):
        rows = jnp.full(a.shape[:1], t)
        return a - u_fn(a, rows, rows) / steps, None

    flow, _ = jax.lax.scan(flow_step, noise, times)
    return flow, noise - u_fn(noise, jnp.zeros(noise.shape[:1]), jnp.ones(noise.shape[:1]))


def spread(actions: jax.Array) -> jax.Array:
    """The mean distance of actions [..., P, A] to their mean (box units): the candidate spread. -> [...]"""
    return jnp.mean(jnp.linalg.norm(actions - jnp.mean(actions, axis=-2, keepdims=True), axis=-1), axis=-1)


TARGET_RESAMPLE_ACTIONS = 65_536  # actions resampled by exp(alpha Q) to draw from a state's target
TARGET_ANCHOR_STD = 0.25  # the std of the resampled actions drawn around an anchor


def target_draws(key, q_fn, alpha, action_size: int, samples: int, anchor=None) -> tuple[jax.Array, float]:
    """(samples [samples, A] of the Boltzmann target exp(alpha Q) on the box, the effective sample size of the
    resample): TARGET_RESAMPLE_ACTIONS proposals, uniform on the box or, given an anchor [A], half of them from
    N(anchor, TARGET_ANCHOR_STD^2 I) truncated to the box, resampled with weights exp(alpha Q) / their density
    (in 6-D a sharp target holds too little of the box for uniform proposals alone: ESS of a few actions)."""
    key_uniform, key_anchor, key_draw = jax.random.split(key, 3)
    count = TARGET_RESAMPLE_ACTIONS // (1 if anchor is None else 2)
    proposals = jax.random.uniform(key_uniform, (count, action_size), minval=-1.0, maxval=1.0)
    log_density = jnp.zeros(count)  # uniform alone: a constant
    if anchor is not None:
        near = truncated_normal_samples(key_anchor, anchor, TARGET_ANCHOR_STD, TARGET_RESAMPLE_ACTIONS - count)
        proposals = jnp.concatenate([proposals, near])
        log_near = log_truncated_normal(proposals, anchor, TARGET_ANCHOR_STD)
        log_density = jnp.logaddexp(jnp.log(0.5) - action_size * jnp.log(2.0), jnp.log(0.5) + log_near)
    q = q_fn(proposals)
    logits = alpha * (q - jnp.max(q)) - log_density
    weights = jax.nn.softmax(logits)
    draws = proposals[jax.random.categorical(key_draw, logits, shape=(samples,))]
    return draws, float(1.0 / jnp.sum(jnp.square(weights)))


def spread_budget(
    q_fn,
    config: ScoreConfig,
    u_fn,
    alpha,
    action_size: int,
    key,
    proposals=(16, 128, 512),
    samples: int = 128,
    steps: int = 40,
    anchor_shares=(0.0,),
    anchor=None,
) -> dict:
    """Where one state's samples widen on the way from SOM's target to its one-step map (any action size): the
    spread (mean distance to the mean, box units) and the mean Q of the samples at each stage,
    {stage: {"spread", "q"}}:
    - target: the Boltzmann target exp(alpha Q) on the box (target_draws, around `anchor` when given; its "ess":
      the resample's effective sample size, in actions);
    - field_K: SOM's estimated target velocity with K proposals, integrated from noise (integrate_field), for each
      K in `proposals`: what an actor that regressed the estimates at that K perfectly would sample;
      field_K_anchorS for each share S > 0 of `anchor_shares`: the same with that share of the proposals drawn
      around `anchor` [A] (ScoreConfig.anchor_share; SOM's best candidate at the state);
    - flow, one_step: the actor's own (actor_flow_and_map), from the same noise as the fields.
    q_fn: actions [K, A] -> [K] (one state); alpha: the inverse temperature of the target and of every field;
    u_fn(a [P, A], r [P], t [P]) -> [P, A] (the linear path's convention, t = 1 noise). Samples are clipped to
    the box, as the agent clips its actions."""
    key_target, key_noise, key_draw, key_field = jax.random.split(key, 4)
    noise = jax.random.normal(key_noise, (samples, action_size))
    target, target_ess = target_draws(key_target, q_fn, alpha, action_size, samples, anchor)

    def stats(a):
        a = jnp.clip(a, -1.0, 1.0)
        return {"spread": float(spread(a)), "q": float(jnp.mean(q_fn(a)))}

    def scaled_q(a):  # alpha folded into Q: each field then runs at the fixed inverse temperature 1
        return alpha * q_fn(a)

    def anchor_fn(a, t):  # every point's anchor: the state's best candidate
        return jnp.broadcast_to(anchor, a.shape)

    out = {"target": {**stats(target), "ess": target_ess}}
    for k in proposals:
        for share in anchor_shares:
            field_config = dataclasses.replace(
                config, num_samples=k, temperature="fixed", alpha=1.0, anchor_share=share
            )
            field = integrate_field(
                jax.random.fold_in(key_field, k),
                scaled_q,
                samples,
                action_size,
                field_config,
                steps,
                noise,
                anchor_fn if share > 0 else None,
            )
            out[f"field_{k}" + (f"_anchor{share:g}" if share > 0 else "")] = stats(field)
    flow, one_step = actor_flow_and_map(u_fn, noise, steps)
    out["flow"], out["one_step"] = stats(flow), stats(one_step)
    return out


# ----- probes of trained runs (mjx_som.load) ----------------------------------------------------
def square_grid(side: int, half_width: float) -> jax.Array:
    """A side x side grid of 2-D points over [-half_width, half_width]^2, [side^2, 2] (x varies fastest)."""
    axis = jnp.linspace(-half_width, half_width, side)
    return jnp.stack(jnp.meshgrid(axis, axis), -1).reshape(-1, 2)


def transport(run, noise: jax.Array, key: jax.Array, obs: jax.Array | None = None) -> jax.Array:
    """Where the run's raw generative map sends each noise point [P, A] (for the states obs [P, O],
    raw; default the zero observation of a bandit): agent.sample with that starting noise. [P, A]"""
    obs = jnp.zeros((noise.shape[0], run.env.observation_size)) if obs is None else obs
    return run.agent.sample(run.state.agent, run.normalize(obs), key, noise)


def critic_params(run):
    """The online twin critics' parameters of any generative or SAC agent."""
    return run.state.agent.critic.params


def q_values(run, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """min(Q1, Q2) of the run's critics: raw obs [..., O], actions [..., A] -> [...]."""
    obs = run.normalize(obs.reshape(-1, obs.shape[-1])).reshape(obs.shape)
    obs = jnp.broadcast_to(obs, actions.shape[:-1] + obs.shape[-1:])
    return min_q(run.config.algo_config().critic, critic_params(run), obs, actions)


def velocity_field(run, points: jax.Array, t: float, key: jax.Array, obs=None, q_fn=None) -> jax.Array:
    """SOM's target velocity v(a_t, t | s) [P, A] at points a_t [P, A]: the field its actor regresses
    on, from the run's learned critic, or from q_fn (actions [K, A] -> [K]) when given (e.g. the true
    Q). obs [O]: the raw state, default the bandit's zero observation."""
    config = run.config.algo_config()
    obs = jnp.zeros(run.env.observation_size) if obs is None else obs
    q_fn = functools.partial(q_values, run, obs[None]) if q_fn is None else q_fn
    keys = jax.random.split(key, points.shape[0])
    return jax.vmap(lambda k, a: target_velocity(k, q_fn, a, jnp.asarray(t), config.score))(keys, points)


def run_mode_budget(run, key, samples: int = 4096, steps: int = 40) -> dict:
    """mode_budget of a SOM bandit run: its learned critic as Q (min of the twins, in the critic's units), its
    score settings, and its actor's acting weights (the EMA that agent.sample uses) as u."""
    config = run.config.algo_config()
    net = VelocityNet(config.actor.actor_hidden, run.env.action_size, config.critic.activation)
    obs = jnp.zeros((1, run.env.observation_size))
    state_row = run.normalize(obs)  # the bandit's one state as the actor sees it

    def u_fn(a, r, t):
        state_rows = jnp.broadcast_to(state_row, (a.shape[0], state_row.shape[-1]))
        return net.apply(run.state.agent.actor_ema, state_rows, a, r, t)

    q_fn = functools.partial(q_values, run, obs)
    return mode_budget(run.env, q_fn, config.score, u_fn, key, samples, steps)


def run_spread_budget(
    run, states: jax.Array, key, proposals=(16, 128, 512), samples: int = 128, steps: int = 40, anchor_shares=(0.0,)
):
    """spread_budget of a SOM run on each raw state of states [S, O] -> {stage: {"spread", "q"}} averaged over the
    states (and the target's "ess"), plus "alpha" (mean log10). The critic is the run's (min of the twins), u its
    acting (EMA) actor, and alpha its rule (state_alpha over FIELD_ALPHA_SAMPLES uniform actions, where the trainer
    takes scale_samples; regret's best action is the best of the actor's num_candidates candidates); the anchored
    fields' anchor is that best candidate, whose Q is reported as stage "best_candidate"."""
    config = run.config.algo_config()
    score_config = config.score
    net = VelocityNet(config.actor.actor_hidden, run.env.action_size, config.critic.activation)
    action_size = run.env.action_size
    per_state, log_alphas = [], []
    for i, obs in enumerate(states):
        key_i = jax.random.fold_in(key, i)
        key_cand, key_uniform, key_budget = jax.random.split(key_i, 3)
        state_row = run.normalize(obs[None])
        q_fn = functools.partial(q_values, run, obs[None])

        def u_fn(a, r, t, state_row=state_row):
            rows = jnp.broadcast_to(state_row, (a.shape[0], state_row.shape[-1]))
            return net.apply(run.state.agent.actor_ema, rows, a, r, t)

        cands = candidates(run, obs[None], config.actor.num_candidates, key_cand)[0]
        q_cands = q_fn(cands)
        alpha = state_alpha(key_uniform, q_fn, action_size, score_config, FIELD_ALPHA_SAMPLES, jnp.max(q_cands))
        log_alphas.append(float(jnp.log10(alpha)))
        best = cands[jnp.argmax(q_cands)]
        budget = spread_budget(
            q_fn, score_config, u_fn, alpha, action_size, key_budget, proposals, samples, steps, anchor_shares, best
        )
        per_state.append(budget | {"best_candidate": {"q": float(jnp.max(q_cands))}})
    out = {
        stage: {k: float(np.mean([b[stage][k] for b in per_state])) for k in per_state[0][stage]}
        for stage in per_state[0]
    }
    return out | {"log10_alpha": float(np.mean(log_alphas)), "states": len(per_state)}


def candidates(run, obs: jax.Array, num: int, key: jax.Array) -> jax.Array:
    """num raw samples of the run's generative map per state: raw obs [S, O] -> [S, num, A]."""
    obs_n = jnp.repeat(run.normalize(obs), num, axis=0)
    return run.agent.sample(run.state.agent, obs_n, key).reshape(obs.shape[0], num, -1)


def ascend_q(q_fn, actions: jax.Array, steps: int = 200, learning_rate: float = 0.01) -> jax.Array:
    """actions [B, A] moved up q_fn (actions [B, A] -> [B], one state per row) by `steps` Adam steps of
    size learning_rate, kept in the box (mjx_som.critic.ascend_actions, DIPO's improvement loop). [B, A]"""
    return ascend_actions(q_fn, actions, optax.adam(learning_rate), steps)


def greedy_rollout(run, episodes: int, key: jax.Array) -> dict:
    """`episodes` episodes of the run's greedy (evaluation) policy from fresh starts, step by step: obs [T, E, O]
    (raw), actions [T, E, A], rewards [T, E] (the task's), alive [T, E] (1 while the first episode runs: each
    env's later episodes are left out), T the task's episode length."""
    vec = VecEnv(run.env, episodes)
    key_reset, key_loop = jax.random.split(key)

    def body(carry, _):
        state, key, alive = carry
        key, key_act = jax.random.split(key)
        action = run.policy(state.obs, key_act)
        next_state = vec.step(state, action)
        return (next_state, key, alive * (1.0 - next_state.done)), (state.obs, action, next_state.reward, alive)

    @jax.jit
    def rollout(key_reset, key_loop):
        init = (vec.reset(key_reset), key_loop, jnp.ones(episodes))
        return jax.lax.scan(body, init, None, length=vec.episode_length)[1]

    obs, actions, rewards, alive = rollout(key_reset, key_loop)
    return {"obs": obs, "actions": actions, "rewards": rewards, "alive": alive}


def discounted_returns(rewards: np.ndarray, alive: np.ndarray, gamma: float) -> np.ndarray:
    """The discounted return from every step of the first episodes, rewards and alive [T, E] (greedy_rollout)
    -> [T, E]; 0 once an episode has ended."""
    returns = np.zeros(rewards.shape, np.float64)
    running = np.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = alive[t] * (rewards[t] + gamma * running)
        returns[t] = running
    return returns


def known_returns(alive: np.ndarray, gamma: float, discount_horizon: float = 0.01) -> np.ndarray:
    """[T, E] bool: the steps of the first episodes whose discounted return the rollout knows to within
    discount_horizon of its weight: the episode ended inside the rollout, or the step lies at least
    log(discount_horizon) / log(gamma) steps before the rollout's end."""
    steps = alive.shape[0]
    horizon = int(np.ceil(np.log(discount_horizon) / np.log(gamma)))
    ended = alive[-1] == 0
    return (alive > 0) & (ended[None, :] | (np.arange(steps)[:, None] + horizon < steps))


def rollout_diagnostics(run, rollout: dict) -> dict:
    """What a greedy rollout (greedy_rollout) says of the run's critic and actor, over the first episodes:
    - q_mean / return_mean: the critic's min(Q1, Q2)(s_t, a_t) and the discounted Monte-Carlo return from s_t
      (the run's gamma), both in the task's reward units (Q divided by what the trainer multiplied rewards by at
      the checkpoint), over the steps whose return is known (known_returns); q_bias = q_mean - return_mean and
      q_bias_relative = q_bias / mean |return| (> 0: the critic overestimates the greedy policy's value; SAC's
      soft Q also holds its entropy bonus);
    - action_change: the mean distance |a_t - a_(t-1)| between consecutive greedy actions (box units; the box's
      diagonal is 2 sqrt(A)), and action_change_per_dim, the root-mean-square per action dimension;
    - episode_length, episode_return and discounted_return_from_start: the first episodes' mean length (steps),
      undiscounted return and discounted return from their first state (the run's gamma; the objective the
      critic is trained for, from the start): a policy can lead on the last and trail on the second where its
      episodes end later than the discount reaches (gamma ** 300 = 0.05 at 0.99)."""
    gamma = run.config.algo_config().critic.gamma
    factor = float(run.trainer.reward_factor(run.state.reward_stats))
    rewards, alive = np.asarray(rollout["rewards"]), np.asarray(rollout["alive"])
    returns = discounted_returns(rewards, alive, gamma)
    known = known_returns(alive, gamma)
    q = np.asarray(q_values(run, rollout["obs"], rollout["actions"])) / factor
    actions = np.asarray(rollout["actions"])
    both_alive = (alive[1:] > 0) & (alive[:-1] > 0)
    change = actions[1:] - actions[:-1]
    return {
        "q_mean": float(q[known].mean()),
        "return_mean": float(returns[known].mean()),
        "q_bias": float((q - returns)[known].mean()),
        "q_bias_relative": float((q - returns)[known].mean() / max(np.abs(returns[known]).mean(), 1e-8)),
        "steps_compared": int(known.sum()),
        "action_change": float(np.linalg.norm(change, axis=-1)[both_alive].mean()),
        "action_change_per_dim": float(np.sqrt(np.mean(np.square(change[both_alive])))),
        "episode_length": float(alive.sum(axis=0).mean()),
        "episode_return": float((rewards * alive).sum(axis=0).mean()),
        "discounted_return_from_start": float(returns[0].mean()),
    }


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, float]:
    """x [M, D] projected on its first two principal axes [M, 2], and their share of the variance."""
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    share = float(np.sum(singular[:2] ** 2) / max(np.sum(singular**2), 1e-12))
    return centred @ vt[:2].T, share

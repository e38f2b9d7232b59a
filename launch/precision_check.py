"""What TF32 networks would change in a trained SOM run, measured on any machine by emulation.

    python launch/precision_check.py runs/<run> [--states 1024]

Every Dense layer's matmul inputs are rounded to TF32 (8-bit exponent, 10-bit mantissa, to nearest) and
accumulated in float32, as NVIDIA's tensor cores do for float32 matmuls at `--network-precision high`;
the run's own states (1,024 from its replay) then get 32 candidates each (the same noise) and one SOM
estimator call at a noised best candidate, in float32 and in TF32. Printed: how far the candidates and
their Q move, how often the acting argmax changes and what it costs in Q, and the estimator's ESS and
posterior mean (docs/benchmarks.md, "A cheaper SOM update").
"""

import dataclasses
import json

import flax.linen.linear
import jax
import jax.numpy as jnp
import tyro

import mjx_som
from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from mjx_som.critic import min_q
from mjx_som.score import noise_action, posterior_mean_and_stats, q_gap, regret_alpha


@dataclasses.dataclass(frozen=True)
class Options:
    run_dir: tyro.conf.Positional[str]
    """a finished SOM run"""
    states: int = 1024
    """states drawn from the run's replay"""


class _TF32Lax:
    """jax.lax with dot_general's inputs rounded to TF32 (what flax's Dense calls)."""

    def __getattr__(self, name):
        return getattr(jax.lax, name)

    @staticmethod
    def dot_general(x, y, *args, **kwargs):
        tf32 = lambda v: jax.lax.reduce_precision(v, exponent_bits=8, mantissa_bits=10)  # noqa: E731
        return jax.lax.dot_general(tf32(x), tf32(y), *args, **kwargs)


def measure(run, obs, key):
    """(candidates [S, 32, A], their min Q [S, 32], the estimator's posterior mean [S, A] and ESS [S])."""
    config, agent_state = run.config.algo_config(), run.state.agent
    score_config, (s, a) = config.score, (obs.shape[0], run.env.action_size)
    keys = jax.random.split(key, 5)

    def q_of(actions):  # [S, n, A] -> [S, n]
        return min_q(
            config.critic,
            agent_state.critic.params,
            jnp.broadcast_to(obs[:, None], actions.shape[:2] + obs.shape[-1:]),
            actions,
        )

    noise = jax.random.normal(keys[0], (s * 32, a))
    cands = run.agent.sample(agent_state, jnp.repeat(obs, 32, axis=0), keys[1], noise).reshape(s, 32, a)
    q = q_of(cands)
    t = jax.random.uniform(keys[2], (s,), minval=0.05, maxval=0.95)
    a_t = noise_action(cands[jnp.arange(s), jnp.argmax(q, 1)], jax.random.normal(keys[3], (s, a)), t, score_config)
    uniform = jax.random.uniform(keys[4], (s, score_config.scale_samples, a), minval=-1.0, maxval=1.0)
    alpha = regret_alpha(q_gap(jnp.max(q, 1), q_of(uniform)), a, score_config.target_regret)

    def estimate(k, state, a_ti, t_i, alpha_i):
        q_fn = lambda x: min_q(
            config.critic, agent_state.critic.params, jnp.broadcast_to(state, (x.shape[0], state.shape[-1])), x
        )  # noqa: E731
        mean, stats = posterior_mean_and_stats(k, q_fn, a_ti, t_i, score_config, alpha_i)
        return mean, stats["ess"]

    mean, ess = jax.vmap(estimate)(jax.random.split(key, s), obs, a_t, t, alpha)
    return cands, q, mean, ess


def main(argv: list[str] | None = None) -> dict:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    options = tyro.cli(Options, args=argv, description=__doc__)
    run = mjx_som.load(options.run_dir)
    if run.config.algo != "som":
        raise SystemExit(f"error: {options.run_dir} is a {run.config.algo} run; this check reads SOM's estimator")
    data, size = run.state.replay.data, int(run.state.replay.size)
    rows = jax.random.choice(jax.random.PRNGKey(0), size, (options.states,), replace=False)
    obs = run.normalize(data.obs.reshape(-1, data.obs.shape[-1])[rows])
    key = jax.random.PRNGKey(7)
    c32, q32, m32, e32 = jax.jit(lambda o, k: measure(run, o, k))(obs, key)
    flax.linen.linear.lax = _TF32Lax()
    jax.clear_caches()  # jit caches by function: trace again with the TF32 matmuls
    try:
        c19, q19, m19, e19 = jax.jit(lambda o, k: measure(run, o, k))(obs, key)
    finally:
        flax.linen.linear.lax = jax.lax
        jax.clear_caches()
    spread = jnp.std(q32, axis=1) + 1e-8
    best32, best19 = jnp.argmax(q32, 1), jnp.argmax(q19, 1)
    lost = jnp.max(q32, 1) - q32[jnp.arange(options.states), best19]
    result = {
        "run": options.run_dir,
        "states": options.states,
        "candidate_max_abs_change": float(jnp.max(jnp.abs(c19 - c32))),
        "q_change_median_over_candidate_q_std": float(jnp.median(jnp.abs(q19 - q32) / spread[:, None])),
        "argmax_agreement": float(jnp.mean(best32 == best19)),
        "q_lost_by_the_tf32_argmax_over_candidate_q_std": float(jnp.mean(lost / spread)),
        "ess_float32": float(jnp.mean(e32)),
        "ess_tf32": float(jnp.mean(e19)),
        "posterior_mean_change_median": float(jnp.median(jnp.linalg.norm(m19 - m32, axis=-1))),
        "posterior_mean_norm_median": float(jnp.median(jnp.linalg.norm(m32, axis=-1))),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

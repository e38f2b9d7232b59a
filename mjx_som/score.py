"""Noise paths and the critic-derived target velocity of SOM (docs/algorithm.md).

Time runs from t = 0 (clean action a_0) to t = 1 (noise). Two paths:

    vp:     a_t = mu_t a_0 + sigma_t eps,  mu_t = exp(-B(t)/2), sigma_t = sqrt(1 - mu_t^2)
    linear: a_t = (1 - t) a_0 + t eps

and two estimators of the velocity field that transports N(0, I) onto the Boltzmann
policy p_0(a|s) ∝ exp(alpha Q(s, a)) on the action box [-1, 1]^A (alpha: see `temperature`):

    "denoise": the posterior mean D = E[a_0 | a_t] by self-normalised importance sampling
               over K proposals from the kernel's Gaussian posterior truncated to the box
               (the exact posterior under a uniform prior on the box); forward passes only.
               vp: score = (mu_t D - a_t) / sigma_t^2, v = -beta_t/2 (a_t + score)
               linear: v = (a_t - D) / t
    "idem":    the paper's estimator as publicly described: g = grad_{a_t} logsumexp_k
               alpha Q(a_t/mu_t + sigma_t/mu_t eps_k) and v = -beta_t/2 (a_t + w g/(|g|+eps)).
               vp only. This field diverges (docs/algorithm.md); tests show it.

Every function works on one (state, noisy action) pair; callers vmap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

QFn = Callable[[jax.Array], jax.Array]  # actions [K, A] -> Q values [K] for one fixed state

PATHS = ("vp", "linear")
ESTIMATORS = ("denoise", "idem")


TEMPERATURES = ("regret", "scaled", "fixed", "ess")


@dataclass(frozen=True)
class ScoreConfig:
    """How the target velocity is estimated from the critic."""

    path: str = "linear"
    """noise path: linear (a_t = (1-t) a_0 + t eps) or vp"""
    estimator: str = "denoise"
    """target velocity: denoise (posterior-mean form) or idem (the paper's literal form; diverges, docs/algorithm.md)"""
    temperature: str = "regret"
    """inverse temperature of the Boltzmann target exp(alpha Q): regret (per state, alpha = A / (2 target_regret R)
    with R the gap between the state's best known action and a uniform one: scale- and landscape-free), scaled
    (alpha_scaled / the std of Q over the box, pooled over the batch), fixed (alpha as given) or ess (per state and
    noisy action, solved so the weights' effective sample size is target_ess K)"""
    target_regret: float = 0.05
    """temperature=regret: the share of the gap R = Q(s, best) - mean Q(s, uniform) that the Boltzmann target
    gives up on average (exactly so for a quadratic Q): smaller is sharper"""
    alpha: float = 30.0
    """temperature=fixed: the inverse temperature, Q in the critic's units"""
    alpha_scaled: float = 5.0
    """temperature=scaled: the inverse temperature in units of 1 / std(Q(s, .)) over the action box"""
    scale_samples: int = 16
    """temperature=regret and scaled: uniform actions per state that measure Q over the box"""
    target_ess: float = 0.1
    """temperature=ess: the effective sample size of the weights, as a fraction of num_samples"""
    num_samples: int = 100
    """K: Monte-Carlo proposals per (state, noisy action); also the uniform actions that measure Q's scale"""
    w: float = 5.0
    """score rescaling coefficient (idem estimator only)"""
    clip_proposals: bool = False
    """idem only: clip proposals a_{0|t} to the box (the SDAC repository's variant)"""
    beta_min: float = 0.1
    """VP schedule beta at t = 0"""
    beta_max: float = 20.0
    """VP schedule beta at t = 1"""
    t_max: float = 0.999
    """linear path: t is capped here (the posterior blows up at t = 1)"""
    anchor_share: float = 0.0
    """denoise only: the share of the K proposals drawn around an anchor, SOM's best candidate at the state (the
    critic target's next action), instead of from the kernel's posterior; every proposal's weight carries the
    two-part proposal's density (the balance heuristic), so the estimate stays consistent: the anchor only moves
    where the proposals look. 0 = the kernel's posterior alone"""
    anchor_std: float = 0.1
    """anchor_share > 0: the std of the proposals around the anchor (at most the kernel's noise / signal)"""

    def validate(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"path={self.path!r}; allowed: {', '.join(PATHS)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator={self.estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        if self.temperature not in TEMPERATURES:
            raise ValueError(f"temperature={self.temperature!r}; allowed: {', '.join(TEMPERATURES)}")
        if self.estimator == "idem" and self.path != "vp":
            raise ValueError("estimator='idem' is defined for path='vp' only")
        if self.estimator == "idem" and self.temperature == "ess":
            raise ValueError("estimator='idem' takes temperature='fixed' or 'scaled' (it has no importance weights)")
        for name in ("num_samples", "scale_samples"):
            if getattr(self, name) < (2 if name == "scale_samples" else 1):
                raise ValueError(f"{name} must be >= {2 if name == 'scale_samples' else 1}, got {getattr(self, name)}")
        for name in ("alpha", "alpha_scaled"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.target_regret < 1:
            raise ValueError(
                f"target_regret must be in (0, 1) (a share of the best-to-uniform gap), got {self.target_regret}"
            )
        if self.estimator == "idem" and self.temperature == "regret":
            raise ValueError("estimator='idem' takes temperature='fixed' or 'scaled'")
        if not 0 < self.target_ess < 1:
            raise ValueError(f"target_ess must be in (0, 1) (a fraction of num_samples), got {self.target_ess}")
        if not 0 <= self.anchor_share < 1:
            raise ValueError(f"anchor_share must be in [0, 1) (a share of num_samples), got {self.anchor_share}")
        if self.anchor_share > 0 and self.estimator != "denoise":
            raise ValueError(
                "anchor_share > 0 needs estimator='denoise' (the idem estimator has no proposals; the locomotion"
                " presets anchor: set anchor_share 0 and anchor_from 0 with idem)"
            )
        if not self.anchor_std > 0:
            raise ValueError(f"anchor_std must be > 0, got {self.anchor_std}")


# ----- VP schedule -----------------------------------------------------------
def vp_beta(t, beta_min=0.1, beta_max=20.0):
    return beta_min + t * (beta_max - beta_min)


def vp_integral(t, beta_min=0.1, beta_max=20.0):
    """B(t) = int_0^t beta(s) ds."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t**2


def vp_mu_sigma(t, beta_min=0.1, beta_max=20.0):
    mu_t = jnp.exp(-0.5 * vp_integral(t, beta_min, beta_max))
    return mu_t, jnp.sqrt(1.0 - mu_t**2)


def path_coefficients(t: jax.Array, config: ScoreConfig) -> tuple[jax.Array, jax.Array]:
    """(signal, noise) coefficients: a_t = signal * a_0 + noise * eps."""
    if config.path == "vp":
        return vp_mu_sigma(t, config.beta_min, config.beta_max)
    t = jnp.minimum(t, config.t_max)
    return 1.0 - t, t


def noise_action(a0: jax.Array, eps: jax.Array, t: jax.Array, config: ScoreConfig) -> jax.Array:
    """a_t for clean actions a0 [..., A], noise eps [..., A], times t [...]."""
    signal, noise = path_coefficients(t, config)
    return signal[..., None] * a0 + noise[..., None] * eps


# ----- importance weights and their temperature ---------------------------------------------
ESS_BISECTION_STEPS = 30
ESS_LOG_RANGE = (-7.0, 12.0)  # natural-log bounds of alpha * std(Q) searched by temperature=ess


def ess_fraction(weights: jax.Array, axis: int = -1) -> jax.Array:
    """Effective sample size (sum w)^2 / sum w^2 of non-negative weights, as a fraction of their count:
    1 for equal weights, 1/n for a single non-zero one. weights [..., n] -> [...]."""
    total = jnp.sum(weights, axis=axis)
    return jnp.square(total) / jnp.maximum(jnp.sum(jnp.square(weights), axis=axis), 1e-30) / weights.shape[axis]


def weight_metrics(ess: jax.Array, t: jax.Array | None = None) -> dict:
    """The training metrics of per-state effective sample sizes ess [B] (fractions): their mean and 10th
    percentile over the batch (train/score_ess, train/score_ess_p10) and, given the noise levels t [B], the mean
    over the rows with t < 0.5 and with t >= 0.5 (train/score_ess_low_t, train/score_ess_high_t)."""
    metrics = {"score_ess": jnp.mean(ess), "score_ess_p10": jnp.quantile(ess, 0.1)}
    if t is not None:
        for name, rows in (("low_t", t < 0.5), ("high_t", t >= 0.5)):
            metrics[f"score_ess_{name}"] = jnp.sum(jnp.where(rows, ess, 0.0)) / jnp.maximum(jnp.sum(rows), 1)
    return metrics


def inverse_scale(scale: jax.Array, numerator) -> jax.Array:
    """numerator / scale where scale > 0, else 0 (a critic that ignores the action: equal weights)."""
    positive = scale > 0
    return jnp.where(positive, numerator / jnp.where(positive, scale, 1.0), 0.0)


def ess_temperature(q: jax.Array, target: float) -> jax.Array:
    """The inverse temperature alpha >= 0 at which softmax(alpha q) over q [K] has an effective sample size of
    target * K, by bisection on log alpha (the ESS falls monotonically as alpha grows). Scale-free: multiplying
    q by c divides alpha by c. Where even the largest alpha searched keeps the ESS above the target (q nearly
    constant), that largest alpha; where q is constant, 0. -> scalar."""
    scale = jnp.sqrt(jnp.var(q))
    z = inverse_scale(scale, q - jnp.max(q))

    def ess_at(log_beta):
        return ess_fraction(jnp.exp(jnp.exp(log_beta) * z))

    def step(_, bounds):
        low, high = bounds
        mid = 0.5 * (low + high)
        above = ess_at(mid) > target  # still too flat: the temperature must fall (alpha rise)
        return jnp.where(above, mid, low), jnp.where(above, high, mid)

    low, high = jax.lax.fori_loop(0, ESS_BISECTION_STEPS, step, ESS_LOG_RANGE)
    return inverse_scale(scale, jnp.exp(0.5 * (low + high)))


def scaled_alpha(q_uniform: jax.Array, config: ScoreConfig) -> jax.Array:
    """temperature=scaled: alpha_scaled / the std of Q over uniform actions of the box, the variance pooled over
    states: q_uniform [..., S] (S uniform actions per state) -> scalar (0 where Q is constant)."""
    return inverse_scale(jnp.sqrt(jnp.mean(jnp.var(q_uniform, axis=-1))), config.alpha_scaled)


# Q differences below this share of |Q| are float32 round-off, not preferences
REGRET_RELATIVE_FLOOR = 1e-5


def q_gap(q_best: jax.Array, q_uniform: jax.Array) -> jax.Array:
    """R = max(q_best, max q_uniform) - mean q_uniform per state: the gap between the best action known at the
    state (e.g. the best of the policy's candidates) and a uniform action of the box, >= 0 (differences below
    REGRET_RELATIVE_FLOOR |Q| are raised to it). q_best [...], q_uniform [..., S] -> [...]."""
    q_mean = jnp.mean(q_uniform, axis=-1)
    gap = jnp.maximum(q_best, jnp.max(q_uniform, axis=-1)) - q_mean
    return jnp.where(gap > 0, jnp.maximum(gap, REGRET_RELATIVE_FLOOR * jnp.abs(q_mean)), 0.0)


def regret_alpha(gap: jax.Array, action_size: int, regret: float) -> jax.Array:
    """alpha = A / (2 regret R) for the gap R (q_gap): for Q(a) = Q* - (a - a*)' H (a - a*) / 2 the Boltzmann
    distribution exp(alpha Q) then gives up E[Q* - Q] = A / (2 alpha) = regret R on average, in any units of Q
    and any dimension (temperature=regret uses target_regret). A critic flat in the action (R = 0) gives
    alpha = 0: equal weights. gap [...] -> [...]."""
    return inverse_scale(gap, action_size / (2.0 * regret))


def state_alpha(
    key, q_fn: QFn, action_size: int, config: ScoreConfig, samples: int | None = None, q_best=None
) -> jax.Array:
    """The inverse temperature of one state's Boltzmann target: alpha (fixed), or scaled_alpha / regret_alpha over
    `samples` (default num_samples) uniform actions of the box. regret's best action is q_best (e.g. the best of
    the policy's candidates, as SOM's update takes it) or, without it, the best of those uniform actions (q_gap
    takes the larger of the two). A batch of SOM's pools scaled over its states. Not used by temperature=ess.
    -> scalar."""
    if config.temperature not in ("scaled", "regret"):
        return jnp.asarray(config.alpha, jnp.float32)
    uniform = jax.random.uniform(key, (samples or config.num_samples, action_size), minval=-1.0, maxval=1.0)
    q = q_fn(uniform)
    if config.temperature == "regret":
        return regret_alpha(q_gap(jnp.max(q) if q_best is None else q_best, q), action_size, config.target_regret)
    return scaled_alpha(q, config)


# ----- the estimators (docs/algorithm.md) ------------------------------------------------------
def truncated_standard_normal(key, lower: jax.Array, upper: jax.Array, shape) -> jax.Array:
    """Standard normal samples truncated to [lower, upper] (broadcast to shape), accurate far in either tail.

    jax.random.truncated_normal inverts erf, which rounds to +-1 beyond ~5.5 std: both bounds deep in one tail
    then put every sample at the far bound. Here the interval is mirrored into the lower tail and inverted
    through log_ndtr / ndtri; beyond float32's reach (~13 std) the samples sit at the near bound, where the
    truncated density is concentrated."""
    mirror = lower > 0
    low, high = jnp.where(mirror, -upper, lower), jnp.where(mirror, -lower, upper)
    log_low, log_high = jax.scipy.special.log_ndtr(low), jax.scipy.special.log_ndtr(high)
    ratio = jnp.exp(log_low - log_high)  # P(Z < low) / P(Z < high), in [0, 1]
    u = jax.random.uniform(key, shape)
    x = jax.scipy.special.ndtri(jnp.exp(log_high + jnp.log(ratio + u * (1.0 - ratio))))
    x = jnp.where(jnp.isfinite(x), jnp.clip(x, low, high), high)
    return jnp.where(mirror, -x, x)


def truncated_normal_samples(key, mean: jax.Array, std, num: int) -> jax.Array:
    """num samples [num, A] of N(mean [A], std^2 I) truncated to the box [-1, 1]^A."""
    z = truncated_standard_normal(key, (-1.0 - mean) / std, (1.0 - mean) / std, (num,) + mean.shape)
    return jnp.clip(mean + std * z, -1.0, 1.0)  # the clip only guards float round-off


def log_box_mass(mean: jax.Array, std) -> jax.Array:
    """log P(X in [-1, 1]^A) for X ~ N(mean [A], std^2 I), accurate far in either tail (the interval is mirrored
    into the lower tail, as truncated_standard_normal does). -> scalar"""
    lower, upper = (-1.0 - mean) / std, (1.0 - mean) / std
    mirror = lower > 0
    low, high = jnp.where(mirror, -upper, lower), jnp.where(mirror, -lower, upper)
    log_low, log_high = jax.scipy.special.log_ndtr(low), jax.scipy.special.log_ndtr(high)
    return jnp.sum(log_high + jnp.log1p(-jnp.exp(log_low - log_high)))


def log_truncated_normal(x: jax.Array, mean: jax.Array, std) -> jax.Array:
    """log density of N(mean [A], std^2 I) truncated to the box [-1, 1]^A at points x [..., A] inside it. -> [...]"""
    log_normal = -0.5 * jnp.sum(jnp.square((x - mean) / std), -1) - x.shape[-1] * jnp.log(std * jnp.sqrt(2 * jnp.pi))
    return log_normal - log_box_mass(mean, std)


def kernel_posterior(a_t, t, config: ScoreConfig) -> tuple[jax.Array, jax.Array]:
    """(mean [A], std): the Gaussian N(mean, std^2 I) that a_0 | a_t follows under a flat prior (the kernel's
    posterior; SOM's proposals are it truncated to the box)."""
    signal, noise = path_coefficients(t, config)
    return a_t / signal, noise / signal


def posterior_proposals(key, a_t, t, config: ScoreConfig, anchor: jax.Array | None = None):
    """K proposals [K, A] of a_0 | a_t and their log importance correction [K] (the log of the kernel's posterior
    density over the proposals' density, up to a constant). Without an anchor (or anchor_share 0): the kernel's
    posterior truncated to the box, correction 0. With an anchor [A] (a guess of a_0): round(anchor_share
    K) of them from N(anchor, s^2 I) truncated to the box, s = min(anchor_std, the kernel's std), the rest from
    the kernel; the correction is the balance heuristic's, so the weighted mean stays consistent."""
    mean, std = kernel_posterior(a_t, t, config)
    num_anchored = round(config.anchor_share * config.num_samples) if anchor is not None else 0
    if num_anchored == 0:
        return truncated_normal_samples(key, mean, std, config.num_samples), jnp.zeros(config.num_samples)
    key_kernel, key_anchor = jax.random.split(key)
    anchor_std = jnp.minimum(config.anchor_std, std)
    proposals = jnp.concatenate(
        [
            truncated_normal_samples(key_kernel, mean, std, config.num_samples - num_anchored),
            truncated_normal_samples(key_anchor, anchor, anchor_std, num_anchored),
        ]
    )
    share = num_anchored / config.num_samples
    log_kernel = log_truncated_normal(proposals, mean, std)
    log_anchor = log_truncated_normal(proposals, anchor, anchor_std)
    return proposals, log_kernel - jnp.logaddexp(jnp.log1p(-share) + log_kernel, jnp.log(share) + log_anchor)


def importance_weights(
    key, q_fn: QFn, proposals: jax.Array, config: ScoreConfig, alpha: jax.Array | None = None, log_correction=0.0
) -> tuple[jax.Array, jax.Array]:
    """Self-normalised weights [K] of proposals [K, A] under exp(alpha Q) (times exp(log_correction) [K], the
    proposals' importance correction), and the alpha used (scalar). alpha: given by the caller (e.g. pooled over
    a batch), else solved (ess) or from state_alpha."""
    q = q_fn(proposals)
    if config.temperature == "ess":
        alpha = ess_temperature(q, config.target_ess)
    elif alpha is None:
        alpha = state_alpha(key, q_fn, proposals.shape[-1], config)
    return jax.nn.softmax(alpha * (q - jnp.max(q)) + log_correction), alpha  # alpha * q alone can lose precision


def posterior_mean(key, q_fn: QFn, a_t, t, config: ScoreConfig) -> jax.Array:
    """D = E[a_0 | a_t] under p_0 ∝ exp(alpha Q) on the box, by self-normalised IS. [A]"""
    return posterior_mean_and_stats(key, q_fn, a_t, t, config)[0]


def posterior_mean_and_stats(
    key, q_fn: QFn, a_t, t, config: ScoreConfig, alpha=None, anchor=None
) -> tuple[jax.Array, dict]:
    """posterior_mean [A] and {"ess": the weights' effective sample size / K, "alpha": the inverse temperature}.
    anchor [A]: a guess of a_0, around which anchor_share of the proposals are drawn."""
    key_proposals, key_alpha = jax.random.split(key)
    proposals, log_correction = posterior_proposals(key_proposals, a_t, t, config, anchor)
    weights, alpha = importance_weights(key_alpha, q_fn, proposals, config, alpha, log_correction)
    return jnp.sum(weights[:, None] * proposals, axis=0), {"ess": ess_fraction(weights), "alpha": alpha}


def idem_score(key, q_fn: QFn, a_t, t, config: ScoreConfig, alpha=None) -> jax.Array:
    """g = grad_{a_t} logsumexp_k alpha Q(a_{0|t}^(k)), a_{0|t} = a_t/mu_t + sigma_t/mu_t eps_k. [A]"""
    key_eps, key_alpha = jax.random.split(key)
    mu_t, sigma_t = vp_mu_sigma(t, config.beta_min, config.beta_max)
    eps = jax.random.normal(key_eps, (config.num_samples,) + a_t.shape)
    alpha = state_alpha(key_alpha, q_fn, a_t.shape[-1], config) if alpha is None else alpha

    def logsumexp_q(a):
        proposals = a / mu_t + (sigma_t / mu_t) * eps
        if config.clip_proposals:
            proposals = jnp.clip(proposals, -1.0, 1.0)
        return jax.nn.logsumexp(alpha * q_fn(proposals))

    return jax.grad(logsumexp_q)(a_t)


def estimate_velocity(
    key, q_fn: QFn, a_t: jax.Array, t: jax.Array, config: ScoreConfig, alpha: jax.Array | None = None, anchor=None
) -> tuple[jax.Array, dict]:
    """The regression target v(a_t, t | s) [A] (gradient stopped) for one state, and the estimator's
    {"ess", "alpha"} (posterior_mean_and_stats; NaN for the idem estimator, which has no weights). alpha: the
    inverse temperature when the caller has it (SOM pools temperature=scaled over its batch); anchor [A]: a guess
    of a_0 (config.anchor_share; SOM's best candidate)."""
    if config.estimator == "idem":
        g = idem_score(key, q_fn, a_t, t, config, alpha)
        v = -0.5 * vp_beta(t, config.beta_min, config.beta_max) * (a_t + config.w * g / (jnp.linalg.norm(g) + 1e-6))
        stats = {"ess": jnp.nan, "alpha": jnp.nan}
    else:
        d, stats = posterior_mean_and_stats(key, q_fn, a_t, t, config, alpha, anchor)
        if config.path == "vp":
            mu_t, sigma_t = vp_mu_sigma(t, config.beta_min, config.beta_max)
            score = (mu_t * d - a_t) / sigma_t**2
            v = -0.5 * vp_beta(t, config.beta_min, config.beta_max) * (a_t + score)
        else:
            v = (a_t - d) / jnp.minimum(t, config.t_max)
    return jax.lax.stop_gradient(v), stats


def target_velocity(key, q_fn: QFn, a_t: jax.Array, t: jax.Array, config: ScoreConfig) -> jax.Array:
    """The regression target v(a_t, t | s) [A] (gradient stopped) for one state (estimate_velocity)."""
    return estimate_velocity(key, q_fn, a_t, t, config)[0]

"""SOM's update (mjx_som/agents/som.py): the acting selection, the per-state temperature's independence of Q's
units, and the times the actor network is trained at."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_som.agents import EnvSpec, make_agent, with_settings
from mjx_som.agents import one_step as one_step_module
from mjx_som.agents.som import SOMConfig, boltzmann_choice
from mjx_som.replay import Transition

OBS, ACT, BATCH = 3, 2, 16
TINY_SOM = with_settings(
    SOMConfig(), dict(actor_hidden=(16,), critic_hidden=(16,), num_samples=8, num_candidates=6, scale_samples=8)
)


def test_boltzmann_choice_keeps_candidates_of_equal_value_and_drops_clearly_worse_ones():
    """Two candidates of equal value share the draws; one worse by the whole gap is never drawn; before any
    update (weight 0) every candidate is equally likely."""
    q = jnp.broadcast_to(jnp.array([1.0, 1.0, 0.0, 0.5]), (4000, 4))
    picks = np.asarray(boltzmann_choice((jnp.asarray(1.0), jnp.asarray(1.0)), q, jax.random.PRNGKey(0), 2, 0.05))
    share = np.bincount(picks, minlength=4) / picks.size
    assert abs(share[0] - 0.5) < 0.04 and abs(share[1] - 0.5) < 0.04 and share[2] == 0 and share[3] == 0, share
    before = np.asarray(boltzmann_choice((jnp.asarray(0.0), jnp.asarray(0.0)), q, jax.random.PRNGKey(1), 2, 0.05))
    assert np.all(np.abs(np.bincount(before, minlength=4) / before.size - 0.25) < 0.04)
    # the same relative preferences in other units of Q: Q x 100 with a gap x 100
    big = np.asarray(boltzmann_choice((jnp.asarray(100.0), jnp.asarray(1.0)), 100 * q, jax.random.PRNGKey(0), 2, 0.05))
    np.testing.assert_array_equal(big, picks)


def batch(key, reward_scale: float = 1.0) -> Transition:
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return Transition(
        obs=jax.random.normal(k1, (BATCH, OBS)),
        action=jax.random.uniform(k2, (BATCH, ACT), minval=-1, maxval=1),
        reward=reward_scale * jax.random.normal(k3, (BATCH,)),
        next_obs=jax.random.normal(k4, (BATCH, OBS)),
        terminated=jnp.zeros(BATCH),
        done=jnp.zeros(BATCH),
    )


def scale_critic_output(params, factor: float):
    """The critic params with each Q network's output layer (kernel and bias) times factor: Q x factor."""

    def scale(tree):
        last = max((k for k in tree if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
        return {**tree, last: jax.tree.map(lambda x: factor * x, tree[last])}

    return {"params": {name: scale(mlp) for name, mlp in params["params"].items()}}


def largest_difference(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize("temperature,same", [("regret", True), ("fixed", False)])
def test_the_actor_step_does_not_depend_on_the_units_of_q(temperature, same):
    """The same update on a critic whose Q is 100x larger (and rewards 100x larger): with the regret temperature
    the actor takes the same step (to float precision); with a fixed alpha it does not."""
    config = with_settings(TINY_SOM, dict(temperature=temperature, alpha=3.0, selection="argmax"))
    agent = make_agent("som", config, EnvSpec(OBS, ACT, 100))
    state = agent.init(jax.random.PRNGKey(0))
    critic = state.critic
    big_params = scale_critic_output(critic.params, 100.0)
    big = state.replace(critic=critic.replace(params=big_params, target_params=big_params))
    key = jax.random.PRNGKey(3)
    small_next, _, _ = jax.jit(agent.update)(state, batch(jax.random.PRNGKey(1)), key)
    big_next, _, _ = jax.jit(agent.update)(big, batch(jax.random.PRNGKey(1), 100.0), key)
    moved = largest_difference(small_next.actor_params, state.actor_params)
    differ = largest_difference(small_next.actor_params, big_next.actor_params)
    assert moved > 1e-4  # the step itself is not negligible
    if same:
        assert differ < 1e-2 * moved, (differ, moved)
    else:
        assert differ > 0.1 * moved, (differ, moved)


def test_the_actor_network_is_trained_at_the_capped_times_the_linear_path_uses(monkeypatch):
    """On the linear path t is capped at t_max for the noising and the velocity; the network must see that t
    (and r <= t), not the uncapped one."""
    seen = {}
    original = one_step_module.meanflow_loss

    def recording(u_fn, a_t, r, t, v, config):
        jax.debug.callback(lambda t, r: seen.update(t=np.asarray(t), r=np.asarray(r)), t, r)
        return original(u_fn, a_t, r, t, v, config)

    monkeypatch.setattr(one_step_module, "meanflow_loss", recording)
    config = with_settings(TINY_SOM, dict(t_max=0.6))
    agent = make_agent("som", config, EnvSpec(OBS, ACT, 100))
    jax.block_until_ready(
        jax.jit(agent.update)(agent.init(jax.random.PRNGKey(0)), batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    )
    assert seen["t"].max() == pytest.approx(0.6) and np.all(seen["r"] <= seen["t"])
    assert np.sum(seen["t"] == np.float32(0.6)) >= 2  # the draws above the cap sit at it


def test_the_anchored_proposals_start_after_anchor_from_of_the_runs_updates():
    """anchor_from=0.5 of 4 updates: updates 0-1 are those of SOM without anchored proposals, updates 2-3 those
    of SOM with them from the start (same state, batch and key), and score_anchored says which."""
    spec = EnvSpec(OBS, ACT, 4)
    anchored = with_settings(TINY_SOM, dict(anchor_share=0.25))
    late, always, never = (
        jax.jit(make_agent("som", c, spec).update)
        for c in (dataclasses.replace(anchored, anchor_from=0.5), anchored, TINY_SOM)
    )
    state = make_agent("som", TINY_SOM, spec).init(jax.random.PRNGKey(0))
    started = []
    for i in range(4):
        data, key = batch(jax.random.PRNGKey(10 + i)), jax.random.PRNGKey(20 + i)
        next_state, metrics, _ = late(state, data, key)
        reference = (never if i < 2 else always)(state, data, key)[0]
        other = (always if i < 2 else never)(state, data, key)[0]
        near, far = (largest_difference(next_state.actor_params, s.actor_params) for s in (reference, other))
        assert near < 1e-6 < far, (i, near, far)
        started.append(float(metrics["score_anchored"]))
        state = next_state
    assert started == [0.0, 0.0, 1.0, 1.0]

"""A trained policy as a file that runs with jax alone: the greedy policy (observation normalisation, the
actor and, for best-of-N agents, the critic that selects) serialized with jax.export, for CPU and CUDA,
with a symbolic batch size, and a JSON of its shapes. Loading it (docs/eval.md):

    exported = jax.export.deserialize(open("policy/policy.jax", "rb").read())
    actions = exported.call(obs, jax.random.PRNGKey(0))   # obs float32 [B, obs_size] -> actions [B, action_size]
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp

POLICY_FILE, SPEC_FILE = "policy.jax", "policy.json"
PLATFORMS = ("cpu", "cuda")


def policy_function(run):
    """(obs [B, O] raw float32, key uint32[2]) -> actions [B, A] in the env's action space (its actuators'
    control range: what Gymnasium's task takes), greedy: the function export_policy serializes."""

    def policy(obs, key):
        return run.env.scale_action(run.policy(obs, key))

    return policy


def export_policy(run, folder: str) -> dict:
    """Writes folder/policy.jax (jax.export, serialized) and folder/policy.json (its shapes and origin) for
    a LoadedRun; returns the JSON's content. The folder may exist; these two files are replaced."""
    env = run.env
    (batch,) = jax.export.symbolic_shape("batch")
    args = (jax.ShapeDtypeStruct((batch, env.observation_size), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.uint32))
    exported = jax.export.export(jax.jit(policy_function(run)), platforms=PLATFORMS)(*args)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, POLICY_FILE), "wb") as f:
        f.write(exported.serialize())
    low, high = (env.scale_action(jnp.full(env.action_size, x)) for x in (-1.0, 1.0))
    spec = {
        "env": run.config.env,
        "algo": run.config.algo,
        "env_steps": run.env_steps,
        "observation_size": env.observation_size,
        "action_size": env.action_size,
        "inputs": ["obs: float32 [batch, observation_size], raw (the policy normalises)", "key: uint32 [2]"],
        "output": "actions: float32 [batch, action_size] in the env's action space",
        "action_low": [float(x) for x in low],
        "action_high": [float(x) for x in high],
        "platforms": list(PLATFORMS),
        "load": "jax.export.deserialize(open('policy.jax', 'rb').read()).call(obs, jax.random.PRNGKey(0))",
    }
    with open(os.path.join(folder, SPEC_FILE), "w") as f:
        json.dump(spec, f, indent=2)
    return spec

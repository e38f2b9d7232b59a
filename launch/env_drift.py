"""Measures how far our MJX ports drift from Gymnasium's v4 tasks (C MuJoCo, float64).

From states that Gymnasium's own random-action rollout visits (contacts included), one
step of ours and of Gymnasium's with the same action; prints a markdown table.

    python launch/env_drift.py --envs Ant-v4,Hopper-v4 --states 64
"""

from __future__ import annotations

from dataclasses import dataclass

import tyro

import envs
from envs.cpu_runtime import lower_cpu_linalg_without_lapack
from envs.reference import one_step_drift, reference_states

SETTINGS = {
    "default (newton, 4/8 iters)": {},
    "newton, 100/50 iters": {"iterations": 100, "ls_iterations": 50},
    "newton, 100/50 iters, elliptic cone": {"iterations": 100, "ls_iterations": 50, "cone": "elliptic"},
}


@dataclass(frozen=True)
class DriftOptions:
    envs: str = ",".join(envs.MUJOCO_TASKS)
    """comma-separated MuJoCo task names"""
    states: int = 64
    """states compared per task"""


def main(argv: list[str] | None = None) -> None:
    lower_cpu_linalg_without_lapack()  # before anything compiles (envs/cpu_runtime.py)
    args = tyro.cli(DriftOptions, args=argv, description=__doc__)
    print("| task | solver settings | max abs obs err | max rel obs err | max abs reward err | terminated mismatches |")
    print("|---|---|---|---|---|---|")
    for name in args.envs.split(","):
        qpos, qvel, actions = reference_states(name, args.states)
        for label, overrides in SETTINGS.items():
            try:
                d = one_step_drift(envs.make(name, **overrides), name, qpos, qvel, actions)
            except Exception as e:  # noqa: BLE001 — e.g. MJX: condim=1 with an elliptic cone
                print(f"| {name} | {label} | MJX fails: {type(e).__name__}: {e} | | | |", flush=True)
                continue
            print(
                f"| {name} | {label} | {d.obs_abs:.1e} | {d.obs_rel:.1e} | {d.reward_abs:.1e} | "
                f"{d.terminated_mismatches}/{d.num_states} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

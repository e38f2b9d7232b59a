#!/usr/bin/env bash
# One prepared accelerator session (docs/benchmarks.md, "On a GPU"): the README's main job for a few
# minutes and the benchmarks, each stage under its own time limit so that one slow stage cannot eat the
# others. Results go to $OUT (default gpu_check_out/): at most 11 files.
#
#   bash launch/gpu_check.sh                 # on a machine with a GPU and the project installed
#   TRAIN_S=600 bash launch/gpu_check.sh     # a longer training stage
#
# Stages, in order of importance:
#   1. SOM on HalfCheetah-v4 with the accelerator preset (4096 envs, batch 8192, 4 updates per vector
#      step), the physics at `highest` and the networks at NET_PRECISION (default high: TF32), stopped by
#      SIGINT after TRAIN_S seconds (the run then finishes its chunk and writes summary.json): the return
#      curve and the training loop's env steps/s (docs/benchmarks.md projects 56k at TF32, 35k at highest);
#   2. env-only env steps/s at 4096 and 16384 envs at `highest` (the physical limit; 20 steps per call: on
#      the H200, 2026-11-28, 4096 envs x 100 steps x 4 calls plus compiling did not fit 90 s);
#   3. SOM's and SAC's ms per update at `highest` and at NET_PRECISION (the projection's inputs);
#   4. inference ms (batch 1 and 4096) and ms per update (the preset's batch 8192) of every algorithm.
set -u
OUT=${OUT:-gpu_check_out}
TRAIN_S=${TRAIN_S:-230}
ENV_S=${ENV_S:-120}
ALGO_S=${ALGO_S:-140}
ALGOS=${ALGOS:-som,sdac,dacer,qsm,sac,dpmd,qvpo,dipo,mfp}
NET_PRECISION=${NET_PRECISION:-high}
RUN_DIR=${RUN_DIR:-/tmp/gpu_check_run}
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
stage() { echo "=== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

stage "machine"
{ nvidia-smi -L; python3 -c "import jax, flax, optax, mujoco, mujoco.mjx, brax; print('jax', jax.__version__, jax.devices()); print('flax', flax.__version__, 'optax', optax.__version__, 'mujoco', mujoco.__version__, 'brax', brax.__version__)"; } 2>&1 | tee -a "$LOG"

stage "1. SOM, HalfCheetah-v4, accelerator preset, networks at $NET_PRECISION, SIGINT after ${TRAIN_S}s"
timeout -s INT -k 90 "$TRAIN_S" python3 launch/run.py --env HalfCheetah-v4 --preset accelerator \
  --network-precision "$NET_PRECISION" --eval-every 409600 --video-every 0 --checkpoint-every 0 \
  --wandb-mode disabled --no-progress --run-dir "$RUN_DIR" 2>&1 | tee -a "$LOG"
for f in config.json metrics.jsonl summary.json returns.png; do cp "$RUN_DIR/$f" "$OUT/" 2>/dev/null; done

stage "2. env-only, HalfCheetah-v4, 4096 and 16384 envs"
timeout -k 10 "$ENV_S" python3 launch/bench.py --env HalfCheetah-v4 --env-only --num-envs 4096,16384 --steps-per-call 20 \
  --json "$OUT/env_only.json" 2>&1 | tee -a "$LOG"

stage "3. SOM's and SAC's update at highest and at $NET_PRECISION"
for precision in highest "$NET_PRECISION"; do
  timeout -k 10 60 python3 launch/bench.py --env HalfCheetah-v4 --preset accelerator --algos som,sac \
    --batch-sizes 4096 --repeats 10 --skip-loop --network-precision "$precision" \
    --json "$OUT/update_$precision.json" --out-dir /tmp 2>&1 | tee -a "$LOG"
done

stage "4. inference and update, $ALGOS"
timeout -k 10 "$ALGO_S" python3 launch/bench.py --env HalfCheetah-v4 --preset accelerator --algos "$ALGOS" \
  --batch-sizes 1,4096 --repeats 10 --skip-loop --json "$OUT/algos.json" --out-dir "$OUT" 2>&1 | tee -a "$LOG"
stage "done"

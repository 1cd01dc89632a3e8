#!/usr/bin/env bash
# MiniGrid variants on validation runs: training seeds 10-14, 100 deterministic validation episodes each
# (seeds 1,000,000-1,000,099), never the test seeds or test episodes of the proof table. One JSON line per
# run in $OUT/results.jsonl. JOBS runs at a time (one torch thread each).
#
#   JOBS=16 OUT=runs/minigrid_validation bash benchmarks/minigrid_validation.sh
#   PRESET_SEEDS="$(seq -s ' ' 20 35)" JOBS=16 bash benchmarks/minigrid_validation.sh   # the DoorKey preset alone
#   STOP_SEEDS="$(seq -s ' ' 20 35)" EVAL_SEED=2000000 JOBS=16 bash benchmarks/minigrid_validation.sh
#       # stopping at the target: judged on a third block of episodes (2,000,000+), because the stop itself
#       # was confirmed on the validation block
#   KC_SEEDS="$(seq -s ' ' 20 27)" EVAL_SEED=2000000 bash benchmarks/minigrid_validation.sh
#       # KeyCorridor with its stop: 4 epochs x 256 against 10 x 64 (the config's now)
#
# Each job is TAG|ENV|CONFIG (or -)|SETTINGS (comma-separated key=value, or -)|SEED, trained with
# `ppolearn train` on the preset (plus the config and settings) and judged by `ppolearn eval`.
set -u
OUT=${OUT:-runs/minigrid_validation}
JOBS=${JOBS:-2}
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then  # xargs -P 0 would start every run at once
  echo "minigrid_validation.sh: JOBS must be a positive integer, got '$JOBS'" >&2
  exit 2
fi
EVAL_SEED=${EVAL_SEED:-1000000}
if ! [[ "$EVAL_SEED" =~ ^[0-9]+$ ]]; then
  echo "minigrid_validation.sh: EVAL_SEED must be an integer >= 0, got '$EVAL_SEED'" >&2
  exit 2
fi
for s in ${PRESET_SEEDS:-} ${STOP_SEEDS:-} ${KC_SEEDS:-}; do
  if ! [[ "$s" =~ ^[0-9]+$ ]]; then
    echo "minigrid_validation.sh: PRESET_SEEDS, STOP_SEEDS and KC_SEEDS must be integers >= 0, got '$s'" >&2
    exit 2
  fi
done
mkdir -p "$OUT"
export OUT EVAL_SEED OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=${PYTHON:-python3}
export PY

one() {
  IFS='|' read -r tag env cfg sets seed <<< "$1"
  local d="$OUT/$tag/s$seed"
  mkdir -p "$OUT/$tag"
  local args=(--env "$env" --seed "$seed" --run-dir "$d" --quiet --overwrite --device cpu --set torch_threads=1)
  [ "$cfg" != "-" ] && args+=(--config "$cfg")
  if [ "$sets" != "-" ]; then
    IFS=',' read -ra kv <<< "$sets"
    for x in "${kv[@]}"; do args+=(--set "$x"); done
  fi
  local start=$SECONDS
  if ! "$PY" -m ppolearn train "${args[@]}" > "$d.log" 2>&1; then
    echo "{\"tag\": \"$tag\", \"seed\": $seed, \"error\": \"training failed, see $d.log\"}" >> "$OUT/results.jsonl"
    return 0
  fi
  local secs=$((SECONDS - start))
  "$PY" -m ppolearn eval "$d" --seed "$EVAL_SEED" --episodes 100 --json 2>/dev/null | "$PY" -c "
import json, sys
d = json.load(sys.stdin)
trained = json.load(open('$d/eval.json'))
stop = trained.get('target_reached') or {}
print(json.dumps({'tag': '$tag', 'seed': $seed, 'success': d['success_rate'], 'ret': round(d['mean_return'], 4),
                  'loop': d.get('looping_episodes'), 'steps': trained['num_timesteps'], 'stopped_at': stop.get('step'),
                  'confirmed': stop.get('mean_return'), 'train_s': $secs}))" >> "$OUT/results.jsonl"
}
export -f one

KC=-  # KeyCorridor's settings: its preset (a config file in benchmarks/configs/ until 2026-11-26)
jobs=()
if [ -n "${PRESET_SEEDS:-}" ]; then  # how often the DoorKey preset itself passes, over many training seeds
  for s in $PRESET_SEEDS; do jobs+=("dk_preset|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false|$s"); done
  printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}
  exit 0
fi
# the rounds before the stop at target (the configs then: 200k steps, no stop)
KC200="total_timesteps=200000,stop_at_target=false,n_epochs=4,batch_size=256"
KC500="total_timesteps=500000,stop_at_target=true,eval_every=20480,n_epochs=4,batch_size=256"
if [ -n "${KC_SEEDS:-}" ]; then  # the config's stop at 0.95, with its earlier minibatches and its current ones
  for s in $KC_SEEDS; do
    jobs+=("kc_stop500_950_here|MiniGrid-KeyCorridorS3R1-v0|$KC|n_epochs=4,batch_size=256|$s"
           "kc_stop500_950_10x64|MiniGrid-KeyCorridorS3R1-v0|$KC|n_epochs=10,batch_size=64|$s")
  done
  printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}
  exit 0
fi
if [ -n "${STOP_SEEDS:-}" ]; then  # stop once 100 validation episodes confirm the zoo's figure (or a margin above it)
  for s in $STOP_SEEDS; do
    jobs+=("dk_stop|MiniGrid-DoorKey-5x5-v0|-|target=mean_return>=0.964,stop_at_target=true|$s"
           "dk_stop300|MiniGrid-DoorKey-5x5-v0|-|target=mean_return>=0.964,stop_at_target=true,eval_episodes=300|$s"
           "dk_stop_ent03|MiniGrid-DoorKey-5x5-v0|-|target=mean_return>=0.964,stop_at_target=true,ent_coef=0.03|$s"
           "kc_stop500|MiniGrid-KeyCorridorS3R1-v0|$KC|$KC500,target=mean_return>=0.949|$s"
           "kc_stop500_950|MiniGrid-KeyCorridorS3R1-v0|$KC|$KC500,target=mean_return>=0.95|$s")
  done
  printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}
  exit 0
fi
for s in 10 11 12 13 14; do
  jobs+=("kc_base|MiniGrid-KeyCorridorS3R1-v0|$KC|$KC200,ent_coef=0.03|$s"
         "kc_ent05|MiniGrid-KeyCorridorS3R1-v0|$KC|$KC200,ent_coef=0.05|$s"
         "kc_env32|MiniGrid-KeyCorridorS3R1-v0|$KC|$KC200,ent_coef=0.03,num_envs=32,n_steps=64|$s")
done
for s in 10 11 12 13 14; do
  jobs+=("dk_base|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false,learning_rate=0.001|$s"
         "dk_ent005|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false,learning_rate=0.001,ent_coef=0.005|$s"
         "dk_env8|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false,learning_rate=0.001,num_envs=8|$s"
         "dk_lr5e4|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false,learning_rate=0.0005|$s"
         "dk_env32|MiniGrid-DoorKey-5x5-v0|-|stop_at_target=false,learning_rate=0.001,num_envs=32,n_steps=64|$s")
done
printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}

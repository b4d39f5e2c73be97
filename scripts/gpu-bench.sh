#!/usr/bin/env bash
# One prepared run on a GPU machine (it needs no Rust): the CUDA build's parity against the CPU, then thorax and
# PyTorch side by side on the same card (inference in f32, TF32 and bf16; GAN and DenseNet training steps).
#
#   scripts/gpu-bench.sh [OUT_DIR]        # default: $OUT, else gpu-bench-out
#
# Needs: dist/cuda/ from scripts/build-cuda.sh; python3 with torch and torchvision (the GPU machine's own); for the
# training steps DATA (a folder of radiographs) and LABELS (its labels CSV), e.g. ../shared/data/cxr-train and
# training/gan-train.csv; with GROW_FROM (a GAN checkpoint) also the steps of a run grown from it (--grow-from). Every step has its own time limit and failures are logged, not fatal, so one broken
# workload still leaves the others' numbers. Results: OUT_DIR/*.jsonl (one JSON document per line) and the logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu-bench-out}}
mkdir -p "$OUT_DIR"
THORAX=${THORAX:-dist/cuda/run.sh}
ITERS=${ITERS:-10}
TRAIN_STEPS=${TRAIN_STEPS:-16}
GAN_RESOLUTION=${GAN_RESOLUTION:-128}
GAN_FMAP_MAX=${GAN_FMAP_MAX:-256}
GAN_BATCH=${GAN_BATCH:-32}
section() { echo "== $* ($(date +%T))"; }
# Runs a command with a time limit; a failure is reported with its name and the run goes on.
try() { local limit=$1; shift; timeout "$limit" "$@" || echo "FAILED ($?): $*" >&2; }

section card
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$OUT_DIR/gpu.csv"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
try 60 "$THORAX" info --json > "$OUT_DIR/info.json"

section "parity against the CPU (f32, then TF32)"
for workload in generator classifier cyclegan inception; do
  try 120 "$THORAX" bench "$workload" --device cuda --parity --iters 3 --json
  try 120 "$THORAX" --tf32 bench "$workload" --device cuda --parity --iters 3 --json
done | tee "$OUT_DIR/parity.jsonl"

if [ -n "${GROW_FROM:-}" ] && [ -n "${DATA:-}" ] && [ -n "${LABELS:-}" ]; then
  section "growing $GROW_FROM to twice its resolution: ${TRAIN_STEPS} steps, batch ${GROW_BATCH:-16}"
  start=$(python3 -c 'import json, struct, sys
raw = open(sys.argv[1], "rb").read(); size = struct.unpack("<Q", raw[:8])[0]
print(json.loads(json.loads(raw[8:8 + size])["__metadata__"]["thorax.train_state"])["step"])' "$GROW_FROM")
  for precision in f32 tf32; do
    flag=""; [ "$precision" = tf32 ] && flag="--tf32"
    rm -f "$OUT_DIR/grow-steps-$precision.csv"
    # shellcheck disable=SC2086
    try 240 "$THORAX" $flag train gan --grow-from "$GROW_FROM" --resolution "${GROW_RESOLUTION:-128}" \
      --fade-steps 1000 --images "$DATA" --labels "$LABELS" --device cuda --batch "${GROW_BATCH:-16}" \
      --steps $((start + TRAIN_STEPS)) --checkpoint /tmp/grow-bench.ckpt.safetensors --checkpoint-every 100000 \
      --log "$OUT_DIR/grow-steps-$precision.csv" --out /tmp/grow-bench.safetensors --json
    rm -f /tmp/grow-bench.ckpt.safetensors /tmp/grow-bench.safetensors
  done | tee "$OUT_DIR/grow-train-thorax.jsonl"
fi

section "inference, thorax and PyTorch interleaved"
for precision in f32 tf32; do
  for spec in "generator 1" "generator 8" "generator 64" "classifier 1" "classifier 32" "cyclegan 1"; do
    read -r workload batch <<<"$spec"
    try 180 python3 tools/bench_pytorch.py "$workload" --batch "$batch" --device cuda --precision "$precision" \
      --thorax "$THORAX" --iters "$ITERS" --json
  done
done | tee "$OUT_DIR/inference.jsonl"
for batch in 1 8 64; do
  try 120 python3 tools/bench_pytorch.py generator classifier --batch "$batch" --device cuda --precision bf16 \
    --iters "$ITERS" --json
done | tee "$OUT_DIR/inference-torch-bf16.jsonl"

if [ -n "${DATA:-}" ] && [ -n "${LABELS:-}" ]; then
  section "GAN training steps: ${GAN_RESOLUTION} px, fmap_max ${GAN_FMAP_MAX}, batch ${GAN_BATCH}"
  for precision in f32 tf32; do
    flag=""; [ "$precision" = tf32 ] && flag="--tf32"
    # A fresh run each time: thorax refuses to replace an earlier run's checkpoint (and, without --overwrite, model).
    rm -f "$OUT_DIR/gan-steps-$precision.csv" /tmp/gan-bench.ckpt.safetensors /tmp/gan-bench.safetensors
    # SM utilisation once a second during the run: low utilisation means the host (launches, allocations, syncs)
    # bounds the step, not the GPU's arithmetic.
    nvidia-smi dmon -s u -d 1 > "$OUT_DIR/gan-utilisation-$precision.txt" 2>&1 &
    dmon=$!
    # shellcheck disable=SC2086
    try 240 "$THORAX" $flag train gan --images "$DATA" --labels "$LABELS" --device cuda \
      --resolution "$GAN_RESOLUTION" --fmap-max "$GAN_FMAP_MAX" --batch "$GAN_BATCH" --steps "$TRAIN_STEPS" \
      --checkpoint-every 100000 --log "$OUT_DIR/gan-steps-$precision.csv" --out /tmp/gan-bench.safetensors --json
    kill "$dmon" 2>/dev/null
  done | tee "$OUT_DIR/gan-train-thorax.jsonl"
  for precision in f32 tf32 bf16; do
    try 180 python3 tools/bench_pytorch_train.py gan --resolution "$GAN_RESOLUTION" --fmap-max "$GAN_FMAP_MAX" \
      --batch "$GAN_BATCH" --steps "$TRAIN_STEPS" --warmup 3 --device cuda --precision "$precision" --json
  done | tee "$OUT_DIR/gan-train-torch.jsonl"

  section "DenseNet-121 training steps: 224 px, batch 32"
  for precision in f32 tf32; do
    flag=""; [ "$precision" = tf32 ] && flag="--tf32"
    rm -f "$OUT_DIR/classifier-steps-$precision.csv" /tmp/classifier-bench.ckpt.safetensors \
      /tmp/classifier-bench.safetensors
    # shellcheck disable=SC2086
    try 150 "$THORAX" $flag train classifier --images "$DATA" --labels "$LABELS" --val-fold 3 --device cuda \
      --resolution 224 --batch 32 --steps "$TRAIN_STEPS" --checkpoint-every 100000 \
      --log "$OUT_DIR/classifier-steps-$precision.csv" --out /tmp/classifier-bench.safetensors --json
  done | tee "$OUT_DIR/classifier-train-thorax.jsonl"
  for precision in f32 tf32 bf16; do
    try 120 python3 tools/bench_pytorch_train.py classifier --resolution 224 --batch 32 --steps "$TRAIN_STEPS" \
      --device cuda --precision "$precision" --json
  done | tee "$OUT_DIR/classifier-train-torch.jsonl"
fi
section done

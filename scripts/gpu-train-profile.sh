#!/usr/bin/env bash
# One prepared run on a GPU machine: where a training step's time goes, and what each CUDA-side change buys.
#
#   DATA=dir LABELS=csv scripts/gpu-train-profile.sh [OUT_DIR]
#
# For the GAN step (GAN_RESOLUTION px, fmap_max GAN_FMAP_MAX, batch GAN_BATCH; TF32 unless said) it runs, each for
# TRAIN_STEPS steps with `--profile` (phase times, device synchronised between phases; the first step not counted):
#   im2col-release  the lowering and allocator before this change (im2col from candle ops, CUDA's pool trimmed);
#   im2col          the same with freed GPU memory kept in the pool;
#   shifted         every convolution product as cuBLAS GEMMs on shifted views (models::shifted_conv), the fused
#                   training ops as composed candle ops (--no-fused-cuda-ops);
#   shifted-f32     the same without TF32;
#   fused           shifted plus the fused training ops' CUDA kernels (bias + leaky ReLU + pixel norm, phase
#                   interleave; src/train/fused_training.cu, checked on an H200 on 2026-11-27): the default before
#                   cuDNN;
#   cudnn           the default: the fused kernels and cuDNN's convolutions (models::cudnn_conv);
#   cudnn-f32       the same without TF32;
# (every variant but the cudnn ones runs with --no-cudnn)
# (always first, a parity check: 3 small GAN steps on the GPU, on the GPU with --no-fused-cuda-ops, and on the CPU
# must log the same losses up to rounding), then
# PyTorch's step on the same card (tools/bench_pytorch_train.py), DenseNet-121 training steps (im2col, shifted,
# shifted with the fused BatchNorm + ReLU kernels, whose losses are printed beside the composed ops'), per-kernel
# GPU times of one default GAN step under Nsight Compute where `ncu` exists, inference parity
# against the CPU, inference with and without the upload cache (PyTorch beside it with TORCH_INFERENCE=1), and
# inference time by kind of operation (`thorax bench --profile`). Every part has its own time limit; a failure is
# logged and the run goes on.
# VARIANTS (space-separated, default all) picks the parts: train-parity kernels im2col-release im2col shifted
# shifted-f32 fused cudnn cudnn-f32 torch classifier ncu parity inference inference-profile. PARITY_EXTRA_FLAGS (e.g. --no-cudnn) adds
# parity runs with those flags. DEVICE=cpu (with small GAN_* settings) runs the same commands on a machine without
# a GPU, to check the script.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-gpu-train-profile-out}}
mkdir -p "$OUT_DIR"
THORAX=${THORAX:-dist/cuda/run.sh}
DEVICE=${DEVICE:-cuda}
TRAIN_STEPS=${TRAIN_STEPS:-6}
GAN_RESOLUTION=${GAN_RESOLUTION:-128}
GAN_FMAP_MAX=${GAN_FMAP_MAX:-256}
GAN_BATCH=${GAN_BATCH:-32}
CLASSIFIER_RESOLUTION=${CLASSIFIER_RESOLUTION:-224}
CLASSIFIER_BATCH=${CLASSIFIER_BATCH:-32}
: "${DATA:?set DATA to a folder of radiographs}" "${LABELS:?set LABELS to its labels CSV}"
section() { echo "== $* ($(date +%T))"; }
try() { local limit=$1; shift; timeout "$limit" "$@" || echo "FAILED ($?): $*" >&2; }
wanted() {
  [[ " ${VARIANTS:-train-parity kernels im2col-release im2col shifted shifted-f32 fused cudnn cudnn-f32 torch classifier ncu parity inference inference-profile} " == *" $1 "* ]]
}

section card
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1 | tee "$OUT_DIR/gpu.csv"

if [ "$DEVICE" = cuda ] && wanted train-parity; then
  section "training parity: 3 GAN steps (64 px, fmap_max 32, batch 8, f32) on the GPU (composed ops, fused kernels) and on the CPU"
  for run in cuda:cuda:--no-fused-cuda-ops cuda-fused:cuda cpu:cpu; do
    IFS=: read -r name d flag <<< "$run"
    # shellcheck disable=SC2086
    try 120 "$THORAX" $flag train gan --images "$DATA" --labels "$LABELS" --device "$d" --resolution 64 --fmap-max 32 \
      --batch 8 --steps 3 --checkpoint-every 100000 --log "$OUT_DIR/parity-$name.csv" \
      --out "/tmp/parity-$name.safetensors" 2> "$OUT_DIR/parity-$name.log"
  done
  for gpu_run in cuda cuda-fused; do
    python3 - "$OUT_DIR/parity-$gpu_run.csv" "$OUT_DIR/parity-cpu.csv" "$gpu_run" <<'PY'
import csv, sys
gpu, cpu = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
for g, c in zip(gpu, cpu):
    worst = max(abs(float(g[k]) - float(c[k])) / max(abs(float(c[k])), 1e-6) for k in ("d_loss", "g_loss", "real_score", "fake_score"))
    print(f"{sys.argv[3]} step {g['step']}: D {g['d_loss']} vs {c['d_loss']}, G {g['g_loss']} vs {c['g_loss']}; largest relative difference {worst:.2e}")
PY
  done
fi

section "GAN step variants: ${GAN_RESOLUTION} px, fmap_max ${GAN_FMAP_MAX}, batch ${GAN_BATCH}, ${TRAIN_STEPS} steps"
gan_variant() { # name flags...
  local name=$1; shift
  # shellcheck disable=SC2068
  try 150 "$THORAX" $@ train gan --images "$DATA" --labels "$LABELS" --device "$DEVICE" \
    --resolution "$GAN_RESOLUTION" --fmap-max "$GAN_FMAP_MAX" --batch "$GAN_BATCH" --steps "$TRAIN_STEPS" \
    --checkpoint-every 100000 --log "$OUT_DIR/gan-$name.csv" --out "/tmp/gan-$name.safetensors" --profile --json \
    > "$OUT_DIR/gan-$name.json" 2> "$OUT_DIR/gan-$name.log"
  tail -n 16 "$OUT_DIR/gan-$name.log"
  rm -f "/tmp/gan-$name.safetensors" "/tmp/gan-$name.ckpt.safetensors"
}
# The fused-op kernels one by one against the CPU (value and gradients; tests/integration/fused_cuda_parity.rs), when
# build-cuda.sh was run with WITH_TESTS=1.
if [ "$DEVICE" = cuda ] && wanted kernels && [ -x dist/cuda/thorax-integration-tests ]; then
  section "fused-op kernels against the CPU"
  THORAX_EXE=thorax-integration-tests try 300 dist/cuda/run.sh fused_cuda --ignored --test-threads 1 --nocapture 2>&1 \
    | tee "$OUT_DIR/kernels.log"
  section "cuDNN convolutions against the CPU"
  THORAX_EXE=thorax-integration-tests try 120 dist/cuda/run.sh cudnn --ignored --test-threads 1 --nocapture 2>&1 \
    | tee "$OUT_DIR/cudnn.log"
fi
! wanted im2col-release || gan_variant im2col-release --tf32 --train-conv im2col --cuda-release-memory --no-fused-cuda-ops --no-cudnn
! wanted im2col || gan_variant im2col --tf32 --train-conv im2col --no-fused-cuda-ops --no-cudnn
! wanted shifted || gan_variant shifted --tf32 --no-fused-cuda-ops --no-cudnn
! wanted shifted-f32 || gan_variant shifted-f32 --no-fused-cuda-ops --no-cudnn
! wanted fused || gan_variant fused --tf32 --no-cudnn
! wanted cudnn || gan_variant cudnn --tf32
! wanted cudnn-f32 || gan_variant cudnn-f32

if [ "$DEVICE" = cuda ] && wanted torch; then
  section "PyTorch GAN step, same configuration"
  for precision in tf32 f32; do
    try 120 python3 tools/bench_pytorch_train.py gan --resolution "$GAN_RESOLUTION" --fmap-max "$GAN_FMAP_MAX" \
      --batch "$GAN_BATCH" --steps "$TRAIN_STEPS" --warmup 2 --device cuda --precision "$precision" --json
  done | tee "$OUT_DIR/gan-torch.jsonl"
fi

section "DenseNet-121 training steps: ${CLASSIFIER_RESOLUTION} px, batch ${CLASSIFIER_BATCH}"
for run in shifted-fused:shifted:--no-cudnn cudnn:shifted:; do
  wanted classifier || break
  IFS=: read -r name lowering flag <<< "$run"
  # shellcheck disable=SC2086
  try 150 "$THORAX" --tf32 --train-conv "$lowering" $flag train classifier --images "$DATA" --labels "$LABELS" \
    --val-fold 3 --device "$DEVICE" --resolution "$CLASSIFIER_RESOLUTION" --batch "$CLASSIFIER_BATCH" \
    --steps "$TRAIN_STEPS" --checkpoint-every 100000 --log "$OUT_DIR/classifier-$name.csv" \
    --out "/tmp/classifier-$name.safetensors" --json > "$OUT_DIR/classifier-$name.json" \
    2> "$OUT_DIR/classifier-$name.log"
done
if wanted classifier; then
  # cuDNN's convolutions against the shifted-view products, same device and data order.
  python3 - "$OUT_DIR/classifier-cudnn.csv" "$OUT_DIR/classifier-shifted-fused.csv" <<'PY' || true
import csv, sys
cudnn, shifted = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
for a, b in zip(cudnn, shifted):
    print(f"classifier step {a['step']}: loss {a['train_loss']} (cuDNN) vs {b['train_loss']} (shifted products)")
PY
fi

NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
if [ "$DEVICE" = cuda ] && [ -n "$NCU" ] && wanted ncu; then
  section "per-kernel GPU time of a default GAN step (Nsight Compute, clocks untouched)"
  # One step (the first): per-kernel device time does not depend on warm-up, and ncu serialises every launch.
  try 120 "$NCU" --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel --csv \
    "$THORAX" --tf32 train gan --images "$DATA" --labels "$LABELS" --device cuda --resolution "$GAN_RESOLUTION" \
    --fmap-max "$GAN_FMAP_MAX" --batch "$GAN_BATCH" --steps 1 --checkpoint-every 100000 \
    --out /tmp/gan-ncu.safetensors > "$OUT_DIR/ncu-gan.csv" 2> "$OUT_DIR/ncu-gan.log"
fi

if [ "$DEVICE" = cuda ] && wanted parity; then
  section "inference parity against the CPU (f32, then TF32; the default, then each of PARITY_EXTRA_FLAGS)"
  for workload in generator classifier cyclegan inception; do
    for flags in "" ${PARITY_EXTRA_FLAGS:-}; do
      # shellcheck disable=SC2086
      try 120 "$THORAX" $flags bench "$workload" --device cuda --parity --iters 3 --json | sed "s/^{/{\"flags\":\"${flags:-default}\",/"
      # shellcheck disable=SC2086
      try 120 "$THORAX" --tf32 $flags bench "$workload" --device cuda --parity --iters 3 --json | sed "s/^{/{\"flags\":\"${flags:-default}\",/"
    done
  done | tee "$OUT_DIR/parity.jsonl"
fi

section "inference (TF32): default (cuDNN), without cuDNN; and PyTorch"
for spec in "generator 1" "generator 8" "generator 64" "classifier 1" "classifier 32" "cyclegan 1"; do
  wanted inference || break
  read -r workload batch <<<"$spec"
  for flags in "" --no-cudnn; do
    # shellcheck disable=SC2086
    try 90 "$THORAX" --tf32 $flags bench "$workload" --batch "$batch" --device "$DEVICE" --iters 20 --json \
      | sed "s/^{/{\"flags\":\"${flags:-default}\",/"
  done
  if [ "$DEVICE" = cuda ] && [ -n "${TORCH_INFERENCE:-}" ]; then
    try 120 python3 tools/bench_pytorch.py "$workload" --batch "$batch" --device cuda --precision tf32 --iters 20 --json
  fi
done | tee "$OUT_DIR/inference.jsonl"

if wanted inference-profile; then
  section "inference (TF32) by kind of operation: thorax bench --profile (device synchronised after each kind)"
  for spec in "generator 1" "generator 8" "classifier 1" "classifier 32" "cyclegan 1"; do
    read -r workload batch <<<"$spec"
    echo "-- $workload, batch $batch"
    try 90 "$THORAX" --tf32 bench "$workload" --batch "$batch" --device "$DEVICE" --iters 10 --profile
  done | tee "$OUT_DIR/inference-profile.txt"
fi

section summary
python3 - "$OUT_DIR" <<'PY'
import csv, glob, json, os, statistics, sys
out = sys.argv[1]
for path in sorted(glob.glob(os.path.join(out, "*.csv"))):
    name = os.path.basename(path)
    if not (name.startswith("gan-") or name.startswith("classifier-")):
        continue
    seconds = [float(row["train_seconds"]) for row in csv.DictReader(open(path))]
    steps = [b - a for a, b in zip(seconds, seconds[1:])]
    if steps:
        print(f"{name:<28} median step {1e3 * statistics.median(steps):9.1f} ms over {len(steps)} steps")
PY
section done

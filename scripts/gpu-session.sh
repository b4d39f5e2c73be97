#!/usr/bin/env bash
# One call on a GPU machine that uses a whole device session: a short profile of the current code, then training of
# the embedded defaults for the rest of the time, checkpoints and logs left in OUT_DIR to bring back.
#
#   DATA=dir BUDGET_S=540 scripts/gpu-session.sh [OUT_DIR]
#
# DATA: the cxr-train folder (images and labels.csv; the 128 px generator also reads training/gan-train-128.csv).
# BUDGET_S: seconds for the whole call (default 540); the training gets what the profile leaves, in whole minutes.
# PROFILE_S: the most the profile may take (default a third of BUDGET_S).
# PROFILE_VARIANTS: parts of gpu-train-profile.sh to run first (default "kernels fused cudnn parity inference"; "" skips
# it; "fused" and "cudnn" time the GAN step without and with cuDNN, and the parity part checks the GPU's inference
# against the CPU).
# MODELS: what train-defaults.sh trains (default "gan classifier cyclegan", all three at once on the one GPU). The
# generator continues from training/; the classifier and the CycleGAN start at 128 px at the shipped defaults' widths
# (DenseNet-121 growth 12, batch 32; ResnetGenerator ngf 16, 6 blocks), or resume from training/ once a session has
# left checkpoints there. Wider networks would not come back: a checkpoint with its optimiser state of the study's
# DenseNet-121 (growth 32) is about 56 MB and of resnet_9blocks with ngf 64 about 340 MB, against 64 MiB per device
# transfer (and 80 MB for all of assets/). CLASSIFIER_START / CYCLEGAN_START override the fresh-run flags.
# Needs dist/cuda from scripts/build-cuda.sh. DEVICE=cpu runs the same on a machine without a GPU (to check it).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
OUT_DIR=${1:-${OUT:-gpu-session-out}}
mkdir -p "$OUT_DIR"
: "${DATA:?set DATA to the cxr-train folder}"
BUDGET_S=${BUDGET_S:-540}
DEVICE=${DEVICE:-cuda}
export THORAX=${THORAX:-dist/cuda/run.sh}
PROFILE_VARIANTS=${PROFILE_VARIANTS-kernels fused cudnn parity inference}
PROFILE_S=${PROFILE_S:-$((BUDGET_S / 3))}

if [ -n "$PROFILE_VARIANTS" ]; then
  VARIANTS="$PROFILE_VARIANTS" DEVICE="$DEVICE" DATA="$DATA" LABELS=training/gan-train-128.csv \
    timeout "$PROFILE_S" scripts/gpu-train-profile.sh "$OUT_DIR/profile" > "$OUT_DIR/profile.log" 2>&1
  grep -v '^{' "$OUT_DIR/profile.log" | grep -v '^step [0-9]*/' | tail -n 60
  # A kernel that disagreed with the CPU must not train the defaults: compose candle ops instead.
  if [ -f "$OUT_DIR/profile/kernels.log" ]; then
    flag=""
    if ! grep -q '^test result: ok' "$OUT_DIR/profile/kernels.log"; then
      flag=--no-fused-cuda-ops
      echo "fused-op kernel test failed or did not finish: training with $flag" >&2
    fi
    # Likewise cuDNN's convolutions: without their test passing, the training takes the cuBLAS products.
    if ! grep -q '^test result: ok' "$OUT_DIR/profile/cudnn.log" 2>/dev/null; then
      flag="$flag --no-cudnn"
      echo "cuDNN convolution test failed or did not run: training with --no-cudnn" >&2
    fi
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$(realpath "$THORAX")" "$flag" > "$OUT_DIR/thorax-flagged"
    chmod +x "$OUT_DIR/thorax-flagged"
    export THORAX="$OUT_DIR/thorax-flagged"
  fi
fi

# Whole minutes left, keeping a minute for writing checkpoints and the copy.
minutes=$(( (BUDGET_S - ($(date +%s) - started) - 60) / 60 ))
if [ "$minutes" -lt 1 ]; then
  echo "no time left for training" >&2
  exit 0
fi
echo "training for $minutes min: ${MODELS:-gan classifier cyclegan}"
export WORK="$OUT_DIR/train"
export CLASSIFIER_START=${CLASSIFIER_START:---resolution 128 --growth-rate 12 --batch 32 --lr 0.05}
export CYCLEGAN_START=${CYCLEGAN_START:---resolution 128 --ngf 16 --ndf 16 --blocks 6 --batch 1 --domain-a-name NIH --domain-b-name Guangzhou}
CLASSIFIER_RESOLUTION=128 CYCLEGAN_RESOLUTION=128 RUN_MINUTES="$minutes" DATA="$DATA" \
  scripts/train-defaults.sh "$minutes" "$DEVICE" > "$OUT_DIR/train.log" 2>&1
grep -v '^step [0-9]*/' "$OUT_DIR/train.log" | tail -n 40
# The training CSVs copied in by train-defaults.sh are in git already; the rest comes back.
rm -f "$WORK"/gan-train*.csv "$WORK"/gan-heldout*.csv
ls -la "$WORK"

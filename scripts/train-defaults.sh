#!/usr/bin/env bash
# Trains the embedded default models from the real radiographs of ../shared/data/cxr-train, in resumable runs of at
# most 10 minutes, then writes their cards, measures the generator (FD-DenseNet, memorisation audit) and copies the
# results to assets/models/. This is how the defaults of 2026-11-27 were made (on a 2-core CPU, all three at once).
#
#   scripts/train-defaults.sh [MINUTES] [DEVICE]     # wall-clock minutes per model (default 90), cpu or cuda
#
# The generator resumes from training/progan-nih-64px.ckpt.safetensors when that file is there, so a GPU session
# continues where the CPU stopped. Needs: a built thorax (target/release or target/debug) and, for the evaluation,
# Python 3 with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-90}"
RUN_MINUTES="${RUN_MINUTES:-10}"   # length of one resumable run
DEVICE="${2:-cpu}"
THORAX="${THORAX:-$(ls target/release/thorax target/debug/thorax 2>/dev/null | head -1)}"
DATA=../shared/data/cxr-train
WORK="${WORK:-/tmp/thorax-train-defaults}"
mkdir -p "$WORK"
# NIH rows only for the generator (folds 0-3 train, fold 4 held out: patient-disjoint folds).
[ -f "$WORK/gan-train.csv" ] || cp training/gan-train.csv training/gan-heldout.csv "$WORK/"
GAN_CKPT="$WORK/progan-nih-64px.ckpt.safetensors"
[ -f "$GAN_CKPT" ] || [ ! -f training/progan-nih-64px.ckpt.safetensors ] || cp training/progan-nih-64px.ckpt.safetensors "$GAN_CKPT"

resume_or() { if [ -f "$1" ]; then echo "--resume $1"; else echo "$2"; fi; }
rounds=$(( (MINUTES + RUN_MINUTES - 1) / RUN_MINUTES ))
for _ in $(seq 1 "$rounds"); do
  "$THORAX" train gan --images "$DATA" --labels "$WORK/gan-train.csv" --steps 100000 --device "$DEVICE" --max-minutes "$RUN_MINUTES" \
    --checkpoint "$GAN_CKPT" --checkpoint-every 200 --log "$WORK/gan-losses.csv" \
    $(resume_or "$GAN_CKPT" "--resolution 64 --fmap-max 32 --batch 16") --out "$WORK/progan-nih-64px.safetensors" &
  CLF_CKPT="$WORK/densenet-cxr-64px.ckpt.safetensors"
  "$THORAX" train classifier --images "$DATA" --labels "$DATA/labels.csv" --val-fold 4 --epochs 30 --device "$DEVICE" \
    --max-minutes "$RUN_MINUTES" --checkpoint "$CLF_CKPT" --checkpoint-every 100 --log "$WORK/classifier-losses.csv" \
    $(resume_or "$CLF_CKPT" "--resolution 64 --growth-rate 12 --batch 16 --lr 0.05") \
    --out "$WORK/densenet-cxr-64px.safetensors" &
  CG_CKPT="$WORK/cyclegan-nih-guangzhou-64px.ckpt.safetensors"
  "$THORAX" train cyclegan --domain-a "$DATA" --domain-a-prefix nih_ --domain-b "$DATA" --domain-b-prefix ker_ \
    --steps 100000 --device "$DEVICE" --max-minutes "$RUN_MINUTES" --checkpoint "$CG_CKPT" --checkpoint-every 250 \
    --log "$WORK/cyclegan-losses.csv" \
    $(resume_or "$CG_CKPT" "--resolution 64 --ngf 16 --ndf 16 --blocks 6 --batch 1 --domain-a-name NIH --domain-b-name Guangzhou") \
    --out "$WORK/cyclegan-nih-guangzhou-64px.safetensors" &
  wait
done
echo "trained; write the final cards with the licences and descriptions of assets/models/SOURCES.md (see its table),"
echo "then: python3 tools/evaluate_generator.py --thorax $THORAX --generator G --classifier C --images $DATA \\"
echo "  --train-csv $WORK/gan-train.csv --heldout-csv $WORK/gan-heldout.csv --work $WORK/eval"

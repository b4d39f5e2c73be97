#!/usr/bin/env bash
# Trains the embedded default models from the real radiographs of ../shared/data/cxr-train, in resumable runs of at
# most 10 minutes, then writes their cards, measures the generator (FD-DenseNet, memorisation audit) and copies the
# results to assets/models/. This is how the defaults of 2026-11-27 were made (on a 2-core CPU, all three at once).
#
#   scripts/train-defaults.sh [MINUTES] [DEVICE]     # wall-clock minutes per model (default 90), cpu or cuda
#   GAN_RESOLUTION=64 scripts/train-defaults.sh ...  # the generator at 64 px (the first default's resolution)
#   MODELS="classifier cyclegan" CLASSIFIER_RESOLUTION=128 CYCLEGAN_RESOLUTION=128 DATA=dir \
#     scripts/train-defaults.sh 5 cuda               # on a GPU machine: those two at 128 px, 5 minutes each
#
# The generator resumes from training/progan-nih-${GAN_RESOLUTION}px.ckpt.safetensors when that file is there, so a
# GPU session continues where the last run stopped. At 128 px with no 128 px checkpoint but a 64 px one in $WORK,
# the run grows (ProGAN progressive growing, `--grow-from`) from it, fading the new resolution in over FADE_STEPS
# steps; this is how the 128 px default was made from the 64 px run (whose checkpoint is in git history, 4ac6d40).
# At 128 px the generator sees only the images stored at 128 px (training/gan-train-128.csv): the 64 px ones would
# teach it blur.
# Needs: a built thorax (target/release or target/debug) and, for the evaluation, Python 3 with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-90}"
RUN_MINUTES="${RUN_MINUTES:-10}"   # length of one resumable run
DEVICE="${2:-cpu}"
THORAX="${THORAX:-$(ls target/release/thorax target/debug/thorax 2>/dev/null | head -1 || true)}"
[ -n "$THORAX" ] || { echo "no thorax binary: run cargo build --release (or set THORAX)" >&2; exit 2; }
DATA="${DATA:-../shared/data/cxr-train}"
MODELS="${MODELS:-gan classifier cyclegan}"   # which models to train
# Classifier: 128 px (the shipped default; 22 min on one CPU thread); CycleGAN: 64 px (the shipped default) or e.g. 128
# on a GPU. A fresh run starts with
# *_START; an existing checkpoint of that resolution in $WORK (or training/) is resumed instead.
CLASSIFIER_RESOLUTION="${CLASSIFIER_RESOLUTION:-128}"
CLASSIFIER_START="${CLASSIFIER_START:---resolution $CLASSIFIER_RESOLUTION --growth-rate 12 --batch 16 --lr 0.05}"
CYCLEGAN_RESOLUTION="${CYCLEGAN_RESOLUTION:-64}"
CYCLEGAN_START="${CYCLEGAN_START:---resolution $CYCLEGAN_RESOLUTION --ngf 16 --ndf 16 --blocks 6 --batch 1 --val-count 100 --domain-a-name NIH --domain-b-name Guangzhou}"
# At 64 px the NIH images stored at 64 px (data/cxr-train/64, prefix nih64_) join those stored at 128 px.
CYCLEGAN_EXTRA_A=""
[ "$CYCLEGAN_RESOLUTION" = 64 ] && [ -d "$DATA/64" ] && CYCLEGAN_EXTRA_A="--domain-a $DATA/64"
WORK="${WORK:-/tmp/thorax-train-defaults}"
mkdir -p "$WORK"
# NIH rows only for the generator (folds 0-3 train, fold 4 held out: patient-disjoint folds).
[ -f "$WORK/gan-train.csv" ] || cp training/gan-train*.csv training/gan-heldout*.csv "$WORK/"
GAN_RESOLUTION="${GAN_RESOLUTION:-128}"  # 128 (the shipped default) or 64
FADE_STEPS="${FADE_STEPS:-1500}"         # 128 px grown from 64 px only: steps over which the new resolution fades in
GAN_NAME="progan-nih-${GAN_RESOLUTION}px"
GAN_CKPT="$WORK/$GAN_NAME.ckpt.safetensors"
wanted() { [[ " $MODELS " == *" $1 "* ]]; }
! wanted gan || [ -f "$GAN_CKPT" ] || [ ! -f "training/$GAN_NAME.ckpt.safetensors" ] \
  || cp "training/$GAN_NAME.ckpt.safetensors" "$GAN_CKPT"
case "$GAN_RESOLUTION" in
  64) GAN_START="--resolution 64 --fmap-max 32 --batch 16"; GAN_LOG="$WORK/gan-losses.csv"
    GAN_LABELS="$WORK/gan-train.csv" ;;
  128)
    GROW_FROM="$WORK/progan-nih-64px.ckpt.safetensors"
    if [ -f "$GROW_FROM" ]; then
      GAN_START="--grow-from $GROW_FROM --resolution 128 --fade-steps $FADE_STEPS"
    else
      GAN_START="--resolution 128 --fmap-max 32 --batch 16"
    fi
    GAN_LOG="$WORK/gan-losses-128px.csv"
    GAN_LABELS="$WORK/gan-train-128.csv" ;;
  *) echo "GAN_RESOLUTION must be 64 or 128, not $GAN_RESOLUTION" >&2; exit 2 ;;
esac

resume_or() { if [ -f "$1" ]; then echo "--resume $1"; else echo "$2"; fi; }
CLF_NAME="densenet-cxr-${CLASSIFIER_RESOLUTION}px"
CLF_CKPT="$WORK/$CLF_NAME.ckpt.safetensors"
CG_NAME="cyclegan-nih-guangzhou-${CYCLEGAN_RESOLUTION}px"
CG_CKPT="$WORK/$CG_NAME.ckpt.safetensors"
for name in "$CLF_NAME" "$CG_NAME"; do
  [ -f "$WORK/$name.ckpt.safetensors" ] || [ ! -f "training/$name.ckpt.safetensors" ] \
    || cp "training/$name.ckpt.safetensors" "$WORK/$name.ckpt.safetensors"
done
rounds=$(( (MINUTES + RUN_MINUTES - 1) / RUN_MINUTES ))
for _ in $(seq 1 "$rounds"); do
  wanted gan && "$THORAX" train gan --images "$DATA" --labels "$GAN_LABELS" --steps 100000 --device "$DEVICE" --max-minutes "$RUN_MINUTES" \
    --checkpoint "$GAN_CKPT" --checkpoint-every 200 --log "$GAN_LOG" \
    $(resume_or "$GAN_CKPT" "$GAN_START") --out "$WORK/$GAN_NAME.safetensors" &
  wanted classifier && "$THORAX" train classifier --images "$DATA" --labels "$DATA/labels.csv" --val-fold 4 \
    --epochs 30 --device "$DEVICE" --max-minutes "$RUN_MINUTES" --checkpoint "$CLF_CKPT" --checkpoint-every 100 \
    --log "$WORK/$CLF_NAME-losses.csv" $(resume_or "$CLF_CKPT" "$CLASSIFIER_START") \
    --out "$WORK/$CLF_NAME.safetensors" &
  wanted cyclegan && "$THORAX" train cyclegan --domain-a "$DATA" $CYCLEGAN_EXTRA_A --domain-a-prefix nih --domain-b "$DATA" \
    --domain-b-prefix ker_ --steps 20000 --decay-steps 10000 --device "$DEVICE" --max-minutes "$RUN_MINUTES" \
    --checkpoint "$CG_CKPT" --checkpoint-every 250 --held-out-list "$WORK/$CG_NAME-held-out.csv" \
    --log "$WORK/$CG_NAME-losses.csv" $(resume_or "$CG_CKPT" "$CYCLEGAN_START") \
    --out "$WORK/$CG_NAME.safetensors" &
  wait
done
echo "trained; write the final cards with the licences and descriptions of assets/models/SOURCES.md (see its table),"
echo "then: python3 tools/evaluate_generator.py --thorax $THORAX --generator G --classifier C --images $DATA \\"
echo "  --train-csv $WORK/gan-train-128.csv --heldout-csv $WORK/gan-heldout-128.csv --work $WORK/eval   (64 px: gan-train.csv, gan-heldout.csv)"
echo "and: python3 tools/evaluate_cyclegan.py --thorax $THORAX --a2b $WORK/$CG_NAME.safetensors \\"
echo "  --b2a $WORK/${CG_NAME}_b2a.safetensors --held-out $WORK/$CG_NAME-held-out.csv --domain-a $DATA ${CYCLEGAN_EXTRA_A#--domain-a } \\"
echo "  --domain-a-prefix nih --domain-b $DATA --domain-b-prefix ker_ --work $WORK/eval-cyclegan --add-to-cards"

#!/usr/bin/env bash
# This session's one device call: check the fused kernels, time the steps, then continue the default generator.
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" dist
tar -xJf gpu/thorax-cuda.tar.xz -C dist
export THORAX=dist/cuda/run.sh DATA=gpu/data
elapsed() { echo $(( $(date +%s) - start )); }
echo "unpacked at $(elapsed) s"

VARIANTS="kernels shifted fused torch classifier" LABELS=training/gan-train-128.csv TRAIN_STEPS=6 \
  timeout 270 scripts/gpu-train-profile.sh "$OUT/profile" > "$OUT/profile.log" 2>&1
echo "profile done at $(elapsed) s"
grep -v '^{' "$OUT/profile.log" | grep -v '^step [0-9]*/' | tail -n 80

FUSED=""
if grep -q "test result: ok" "$OUT/profile/kernels.log" 2>/dev/null; then FUSED=--fused-cuda-ops; fi
echo "fused flag for the runs below: '${FUSED}'"

# Training speed of the shipped default configurations (steps/s go to #5's note).
timeout 60 "$THORAX" --tf32 $FUSED train cyclegan --domain-a "$DATA" --domain-a-prefix nih_0001 --domain-b "$DATA" \
  --domain-b-prefix nih_0000 --resolution 64 --ngf 16 --ndf 16 --blocks 6 --batch 1 --val-count 16 --steps 100000 \
  --max-minutes 0.5 --device cuda --checkpoint /tmp/cg.ckpt.safetensors --checkpoint-every 100000 \
  --log "$OUT/cyclegan-64px-gpu.csv" --out /tmp/cg.safetensors > "$OUT/cyclegan.log" 2>&1
tail -n 5 "$OUT/cyclegan.log"
echo "cyclegan done at $(elapsed) s"

# The rest of the call: the default 128 px generator continues from its checkpoint.
left=$(( 540 - $(elapsed) ))
minutes=$(python3 -c "print(max(0.5, round(($left - 45) / 60, 1)))")
echo "generator for $minutes min"
cp training/progan-nih-128px.ckpt.safetensors "$OUT/progan-nih-128px.ckpt.safetensors"
timeout $(( left + 30 )) "$THORAX" --tf32 $FUSED train gan --resume "$OUT/progan-nih-128px.ckpt.safetensors" \
  --images "$DATA" --labels training/gan-train-128.csv --steps 100000 --device cuda --max-minutes "$minutes" \
  --checkpoint "$OUT/progan-nih-128px.ckpt.safetensors" --checkpoint-every 500 --log "$OUT/gan-losses-128px-gpu.csv" \
  --out "$OUT/progan-nih-128px.safetensors" > "$OUT/gan.log" 2>&1
grep -v '^step [0-9]*/' "$OUT/gan.log" | tail -n 8
tail -n 2 "$OUT/gan-losses-128px-gpu.csv"
echo "all done at $(elapsed) s"

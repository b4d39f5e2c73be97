#!/usr/bin/env bash
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
mkdir -p "$OUT" dist
tar -xJf gpu/thorax-cuda.tar.xz -C dist
export THORAX=dist/cuda/run.sh DATA=gpu/data
elapsed() { echo $(( $(date +%s) - start )); }
THORAX_EXE=thorax-integration-tests timeout 120 dist/cuda/run.sh fused_cuda --ignored --test-threads 1 --nocapture 2>&1 | tee "$OUT/kernels.log" | grep -v '^$'
echo "kernels done at $(elapsed) s"
FUSED=""
grep -q "test result: ok" "$OUT/kernels.log" && FUSED=--fused-cuda-ops
echo "fused flag: '$FUSED'"
cp gpu/gan-ckpt-18759.safetensors "$OUT/progan-nih-128px.ckpt.safetensors"
timeout 120 "$THORAX" --tf32 $FUSED train gan --resume "$OUT/progan-nih-128px.ckpt.safetensors" \
  --images "$DATA" --labels training/gan-train-128.csv --steps 100000 --device cuda --max-minutes 1.5 \
  --checkpoint "$OUT/progan-nih-128px.ckpt.safetensors" --checkpoint-every 500 --log "$OUT/gan-losses-128px-gpu.csv" \
  --out "$OUT/progan-nih-128px.safetensors" > "$OUT/gan.log" 2>&1
grep -v '^step [0-9]*/' "$OUT/gan.log" | tail -n 4
echo "gan done at $(elapsed) s"
timeout 50 "$THORAX" --tf32 $FUSED train cyclegan --domain-a "$DATA" --domain-a-prefix nih_0001 --domain-b "$DATA" \
  --domain-b-prefix nih_0000 --resolution 64 --ngf 16 --ndf 16 --blocks 6 --batch 1 --val-count 16 --steps 100000 \
  --max-minutes 0.5 --device cuda --checkpoint /tmp/cg.ckpt.safetensors --checkpoint-every 100000 \
  --log "$OUT/cyclegan-64px-gpu.csv" --out /tmp/cg.safetensors > "$OUT/cyclegan.log" 2>&1
tail -n 3 "$OUT/cyclegan.log"
echo "cyclegan done at $(elapsed) s"
for b in 1 8; do
  [ $(elapsed) -lt 200 ] || break
  timeout 40 "$THORAX" --tf32 bench generator --batch $b --device cuda --iters 20 --json
  timeout 40 python3 tools/bench_pytorch.py generator --batch $b --device cuda --precision tf32 --iters 20 --json
done 2>&1 | grep '^{' | tee "$OUT/inference.jsonl" | cut -c1-300
echo "all done at $(elapsed) s"

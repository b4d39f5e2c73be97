#!/usr/bin/env bash
# Second device call (eighth session): PyTorch's DenseNet-121 training step on this card, and the default CycleGAN's
# training speed with the fused kernels, with and without cuDNN, beside PyTorch's step.
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
mkdir -p "$OUT" dist
tar -xJf gpu/thorax-cuda.tar.xz -C dist
export THORAX=dist/cuda/run.sh DATA=gpu/data
echo "unpacked at $(elapsed) s"
timeout 60 python3 tools/bench_pytorch_train.py classifier --resolution 224 --batch 32 --steps 6 --warmup 2 \
  --device cuda --precision tf32 --json 2>&1 | tee "$OUT/torch-classifier.jsonl" | cut -c1-200
python3 -c "import json; d=json.load(open('$OUT/torch-classifier.jsonl')); print('torch classifier tf32 step_ms', d['step_ms'], 'median', d['median_ms'])"
echo "torch classifier done at $(elapsed) s"
for flags in "" --no-cudnn; do
  name=cyclegan-64px${flags:+-no-cudnn}
  # shellcheck disable=SC2086
  timeout 45 "$THORAX" --tf32 $flags train cyclegan --domain-a "$DATA" --domain-a-prefix nih_0001 --domain-b "$DATA" \
    --domain-b-prefix nih_0000 --resolution 64 --ngf 16 --ndf 16 --blocks 6 --batch 1 --val-count 16 --steps 100000 \
    --max-minutes 0.4 --device cuda --checkpoint /tmp/cg.ckpt.safetensors --checkpoint-every 100000 \
    --log "$OUT/$name.csv" --out /tmp/cg.safetensors > "$OUT/$name.log" 2>&1
  echo "$name: $(grep -v '^step [0-9]*/' "$OUT/$name.log" | tail -n 1)"
done
echo "cyclegan done at $(elapsed) s"
timeout 50 python3 tools/bench_pytorch_train.py cyclegan --resolution 64 --ngf 16 --ndf 16 --blocks 6 --batch 1 \
  --steps 30 --warmup 5 --device cuda --precision tf32 --json > "$OUT/torch-cyclegan.jsonl" 2>&1
python3 -c "import json; d=json.load(open('$OUT/torch-cyclegan.jsonl')); print('torch cyclegan tf32 median', d['median_ms'])" || tail -5 "$OUT/torch-cyclegan.jsonl"
echo "all done at $(elapsed) s"

#!/usr/bin/env bash
# One device call (eighth session): cuDNN convolutions checked and timed, the unchecked CUDA kernels tested, then the
# default generator continued for whatever time is left. Parts run in order of importance, each with its own limit.
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
mkdir -p "$OUT" dist
tar -xJf gpu/thorax-cuda.tar.xz -C dist
export THORAX=dist/cuda/run.sh DATA=gpu/data LABELS=training/gan-train-128.csv DEVICE=cuda
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
  python3 -c 'import nvidia, os, glob; print(glob.glob(os.path.join(nvidia.__path__[0], "*", "lib", "libcudnn.so*")))'
} 2>&1 | tee "$OUT/machine.log"
echo "unpacked at $(elapsed) s"

# 1. Kernel tests (fused ops, cuDNN) and 3 GAN steps on GPU and CPU.
VARIANTS="kernels train-parity" timeout 150 scripts/gpu-train-profile.sh "$OUT/p1" > "$OUT/p1.log" 2>&1
grep -E "^test |test result|differs|FAILED|panicked|largest relative|cuDNN" "$OUT/p1.log" | head -n 40
echo "part 1 done at $(elapsed) s"

# 2. Inference: parity against the CPU, then times with and without cuDNN beside PyTorch.
TORCH_INFERENCE=1 VARIANTS="parity inference" timeout 200 scripts/gpu-train-profile.sh "$OUT/p2" > "$OUT/p2.log" 2>&1
grep '^{' "$OUT/p2.log" | cut -c1-260
echo "part 2 done at $(elapsed) s"

# 3. Training steps: GAN with cuDNN (TF32, f32) and without, PyTorch's, DenseNet-121 with and without cuDNN.
VARIANTS="cudnn fused cudnn-f32 torch classifier" timeout 170 scripts/gpu-train-profile.sh "$OUT/p3" > "$OUT/p3.log" 2>&1
grep -v '^{' "$OUT/p3.log" | grep -v '^step [0-9]*/' | tail -n 45
echo "part 3 done at $(elapsed) s"

# 4. The default generator continued, with the kernels that passed.
left=$(( 525 - $(elapsed) ))
if [ "$left" -gt 45 ]; then
  flags=--tf32
  grep -q '^test result: ok' "$OUT/p1/kernels.log" && flags="$flags --unchecked-cuda-kernels"
  grep -q '^test result: ok' "$OUT/p1/cudnn.log" || flags="$flags --no-cudnn"
  echo "training for $((left - 25)) s with $flags"
  cp training/progan-nih-128px.ckpt.safetensors "$OUT/"
  minutes=$(python3 -c "print(round(($left - 25) / 60, 2))")
  # shellcheck disable=SC2086
  timeout "$left" "$THORAX" $flags train gan --resume "$OUT/progan-nih-128px.ckpt.safetensors" --images "$DATA" \
    --labels training/gan-train-128.csv --steps 100000 --device cuda --max-minutes "$minutes" \
    --checkpoint "$OUT/progan-nih-128px.ckpt.safetensors" --checkpoint-every 500 --log "$OUT/gan-losses-128px-gpu.csv" \
    --out "$OUT/progan-nih-128px.safetensors" > "$OUT/gan.log" 2>&1
  grep -v '^step [0-9]*/' "$OUT/gan.log" | tail -n 4
fi
echo "all done at $(elapsed) s"

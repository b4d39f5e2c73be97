#!/usr/bin/env bash
# Builds `thorax` with candle's CUDA kernels on a machine without a GPU (the recipe of research/rust-stack.md §5):
# nvcc 13.0.88 and the CUDA 13.0 libraries from PyPI wheels, a generated libcuda link stub, sm_90 (H100/H200).
# Output: dist/cuda/thorax plus lib/libcudart.so.13 and run.sh. On the GPU machine, run.sh puts the CUDA 13 libraries of
# its Python wheels (nvidia/cu13/lib) on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CUDA_VENV:-$HOME/.cache/thorax-cuda-venv}
COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

if [ ! -x "$VENV/bin/pip" ]; then python3 -m venv "$VENV"; fi
# Pin nvvm and crt: unpinned, nvcc 13.0.88 pulls 13.5 whose PTX driver 580 (CUDA 13.0) cannot load.
"$VENV/bin/pip" install -q "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-nvrtc==13.0.*" \
  "nvidia-cublas==13.0.*" "nvidia-curand==10.4.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.88" \
  "nvidia-cuda-crt==13.0.88"
N=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')

# Unversioned names for the linker, and a libcuda stub (the driver library comes from the GPU machine at run time).
( cd "$N/lib" && for l in cublas cublasLt nvrtc cudart; do ln -sf "lib$l.so.13" "lib$l.so"; done && ln -sf libcurand.so.10 libcurand.so )
mkdir -p "$N/lib/stubs"
cargo fetch -q
CUDARC_SYS=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | head -n 1)
grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$CUDARC_SYS" | awk '{print $4}' | sort -u | awk '{print "int "$1"(void){return 100;}"}' > "$N/lib/stubs/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$N/lib/stubs/libcuda.so" "$N/lib/stubs/libcuda_stub.c"

export CUDA_ROOT=$N CUDA_PATH=$N PATH=$N/bin:$PATH CUDA_COMPUTE_CAP=$COMPUTE_CAP LIBRARY_PATH=$N/lib:$N/lib/stubs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,\$ORIGIN/lib" cargo build --release --features cuda --bin thorax

mkdir -p dist/cuda/lib
cp "$CARGO_TARGET_DIR/release/thorax" dist/cuda/thorax
strip dist/cuda/thorax || true
cp "$N/lib/libcudart.so.13" dist/cuda/lib/
cat > dist/cuda/run.sh <<'RUN'
#!/usr/bin/env bash
# Runs the CUDA build, finding the CUDA 13 libraries of any Python with NVIDIA wheels (e.g. PyTorch's).
here=$(cd "$(dirname "$0")" && pwd)
extra=""
for py in python3 python; do
  d=$($py -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null) || continue
  [ -d "$d" ] && extra="$d:$extra"
done
for d in /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu; do [ -e "$d/libcublas.so.13" ] && extra="$d:$extra"; done
export LD_LIBRARY_PATH="$here/lib:$extra${LD_LIBRARY_PATH:-}"
exec "$here/thorax" "$@"
RUN
chmod +x dist/cuda/run.sh
du -sh dist/cuda

#!/usr/bin/env bash
# Builds `thorax` with candle's CUDA kernels and cuDNN's convolutions on a machine without a GPU (the recipe of research/rust-stack.md §5):
# nvcc 13.0.88 and the CUDA 13.0 libraries from PyPI wheels, a generated libcuda link stub, sm_90 (H100/H200).
# CUDA_FEATURES (default cuda,cudnn) picks the cargo features; cuda alone builds without cuDNN.
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
# The same for cuDNN (feature `cudnn`): a link stub named like cuDNN 9's library; at run time PyTorch's wheel
# (nvidia/cudnn/lib) or a CUDA install provides the real one, which the PyPI wheel would add 800 MB here to link.
CUDNN_SYS=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/cudnn/sys/mod.rs | head -n 1)
grep -oE '^pub unsafe fn cudnn[A-Za-z0-9_]+' "$CUDNN_SYS" | awk '{print $4}' | sort -u | awk '{print "int "$1"(void){return 1001;}"}' > "$N/lib/stubs/libcudnn_stub.c"
gcc -shared -fPIC -Wl,-soname,libcudnn.so.9 -o "$N/lib/stubs/libcudnn.so" "$N/lib/stubs/libcudnn_stub.c"
FEATURES=${CUDA_FEATURES:-cuda,cudnn}

export CUDA_ROOT=$N CUDA_PATH=$N PATH=$N/bin:$PATH CUDA_COMPUTE_CAP=$COMPUTE_CAP LIBRARY_PATH=$N/lib:$N/lib/stubs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,\$ORIGIN/lib" cargo build --release --features "$FEATURES" --bin thorax

mkdir -p dist/cuda/lib
cp "$CARGO_TARGET_DIR/release/thorax" dist/cuda/thorax
strip dist/cuda/thorax || true
cp "$N/lib/libcudart.so.13" dist/cuda/lib/

# No-GPU stand-ins for the CUDA libraries the binary links (driver, cuBLAS, cuRAND): every function fails with the
# library's "no device / not initialised" status, so on a machine without CUDA the binary still starts, opening a
# CUDA device fails with a clear error and `--device auto` falls back to the CPU. run.sh adds one only where the real
# library is missing. Symbols (and their version nodes) are read from what the binary imports.
# The binary's dynamic imports, read once: `objdump | grep -q` in a condition fails at random under pipefail (grep
# exits at its first match, objdump dies of SIGPIPE).
IMPORTS=$(mktemp)
objdump -T dist/cuda/thorax > "$IMPORTS"
make_stand_in() { # soname status [file listing an unversioned library's symbols as `pub unsafe fn NAME`]
  local soname=$1 status=$2 symbols=${3:-$CUDARC_SYS} dir="dist/cuda/lib/no-gpu/${1%%.so*}"
  mkdir -p "$dir"
  awk -v lib="($soname)" '$3 == "*UND*" && $5 == lib { print $6 }' "$IMPORTS" | sort -u \
    | awk -v status="$status" '{ print "int " $1 "(void) { return " status "; }" }' > "$dir/stand_in.c"
  # Unversioned imports (the driver's) need no version node; versioned ones (cuBLAS, cuRAND) need theirs.
  if grep -qF "($soname)" "$IMPORTS"; then
    echo "$soname { global: *; };" > "$dir/version.map"
    gcc -shared -fPIC -Wl,-soname,"$soname" -Wl,--version-script,"$dir/version.map" -o "$dir/$soname" "$dir/stand_in.c"
  else
    grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$symbols" | awk '{print $4}' | sort -u \
      | awk -v status="$status" '{ print "int " $1 "(void) { return " status "; }" }' > "$dir/stand_in.c"
    gcc -shared -fPIC -Wl,-soname,"$soname" -o "$dir/$soname" "$dir/stand_in.c"
  fi
  rm -f "$dir/stand_in.c" "$dir/version.map"
}
make_stand_in libcuda.so.1 100      # CUDA_ERROR_NO_DEVICE
make_stand_in libcublas.so.13 1     # CUBLAS_STATUS_NOT_INITIALIZED
make_stand_in libcurand.so.10 203   # CURAND_STATUS_INITIALIZATION_FAILED
if [[ ",$FEATURES," == *,cudnn,* ]]; then
  make_stand_in libcudnn.so.9 1001 "$CUDNN_SYS"  # CUDNN_STATUS_NOT_INITIALIZED
fi
rm -f "$IMPORTS"

cat > dist/cuda/run.sh <<'RUN'
#!/usr/bin/env bash
# Runs the CUDA build of thorax. It finds the CUDA 13 libraries of any Python with NVIDIA wheels (e.g. PyTorch's) or
# of a CUDA install; where one is missing (a machine without CUDA) a stand-in from lib/no-gpu lets the program start
# and run on the CPU.
here=$(cd "$(dirname "$0")" && pwd)
extra=""
for py in python3 python; do
  # cu13/lib holds the CUDA 13 wheels' libraries, cudnn/lib cuDNN 9's (nvidia-cudnn-cu13).
  dirs=$($py -c 'import nvidia, os
for sub in ("cu13", "cudnn"):
    d = os.path.join(nvidia.__path__[0], sub, "lib")
    if os.path.isdir(d): print(d)' 2>/dev/null) || continue
  for d in $dirs; do extra="$d:$extra"; done
done
for d in /usr/local/cuda*/lib64 /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
  { [ -e "$d/libcublas.so.13" ] || [ -e "$d/libcudnn.so.9" ]; } && extra="$d:$extra"
done
path="$here/lib:$extra${LD_LIBRARY_PATH:-}"
found() { # soname: in a folder of $path, or known to the dynamic loader
  local d
  IFS=: read -ra dirs <<<"$path"
  for d in "${dirs[@]}"; do [ -n "$d" ] && [ -e "$d/$1" ] && return 0; done
  /sbin/ldconfig -p 2>/dev/null | grep -q " $1 "
}
for soname in libcuda.so.1 libcublas.so.13 libcurand.so.10 libcudnn.so.9; do
  [ -d "$here/lib/no-gpu/${soname%%.so*}" ] || continue
  found "$soname" || path="$path:$here/lib/no-gpu/${soname%%.so*}"
done
export LD_LIBRARY_PATH="$path"
# THORAX_EXE runs another program of this folder with the same libraries (the integration-test binary).
exec "$here/${THORAX_EXE:-thorax}" "$@"
RUN
chmod +x dist/cuda/run.sh

# WITH_TESTS=1: also the integration-test binary, for the GPU-only kernel tests (`fused_cuda --ignored`, run by
# scripts/gpu-train-profile.sh's `kernels` part).
if [ "${WITH_TESTS:-0}" = 1 ]; then
  tests=$(RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath,\$ORIGIN/lib" cargo test --release --features "$FEATURES" \
    --test integration --no-run --message-format=json \
    | "$VENV/bin/python" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration":
        print(m["executable"])' | tail -n 1)
  cp "$tests" dist/cuda/thorax-integration-tests
  strip dist/cuda/thorax-integration-tests || true
fi
du -sh dist/cuda

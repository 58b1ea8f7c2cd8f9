#!/usr/bin/env bash
# On the Jetson: make `import tvm` load a CUDA runtime that matches the board's CUDA.
# The apache-tvm 0.27 aarch64 wheel's libtvm_runtime_cuda.so is linked against libcudart.so.13 (CUDA 13): it loads
# on a CUDA 13 board (JetPack 7) as is, but not on JetPack 6 (CUDA 12.6), where this script rebuilds that one
# library from TVM's v0.27.0 sources against the board's CUDA (LLVM off, ~10-20 min on an Orin) and puts it into
# the installed wheel. Usage: ./build_tvm_runtime.sh [--cuda /usr/local/cuda] [--src DIR] [--check]
set -euo pipefail
CUDA=/usr/local/cuda
SRC=$HOME/tvm-src
TAG=v0.27.0
CHECK_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --cuda) CUDA=$2; shift 2;;
    --src) SRC=$2; shift 2;;
    --check) CHECK_ONLY=1; shift;;
    *) echo "usage: $0 [--cuda DIR] [--src DIR] [--check]" >&2; exit 2;;
  esac
done
PY=${PYTHON:-python3}
TVM_LIB=$($PY -c "import os, tvm; print(os.path.join(os.path.dirname(tvm.__file__), 'lib'))") || {
  echo "error: TVM is not importable; first: pip3 install apache-tvm==0.27.0.post1" >&2; exit 1; }
[ -x "$CUDA/bin/nvcc" ] || { echo "error: $CUDA/bin/nvcc not found (JetPack's CUDA; give --cuda DIR)" >&2; exit 1; }
CUDA_MAJOR=$("$CUDA/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
echo "board CUDA: $("$CUDA/bin/nvcc" --version | grep release); TVM libraries: $TVM_LIB"

loads() { $PY - <<'PY'
import sys, tvm
sys.exit(0 if "tvm_runtime_cuda" in tvm.base._LOADED_LIBS and tvm.cuda(0).exist else 1)
PY
}
if loads; then echo "TVM's CUDA runtime loads and sees the GPU: nothing to do"; exit 0; fi
[ "$CHECK_ONLY" = 1 ] && { echo "TVM's CUDA runtime does not load (or sees no GPU)"; exit 1; }
if [ "$CUDA_MAJOR" -ge 13 ]; then
  echo "error: CUDA $CUDA_MAJOR board but the wheel's CUDA runtime does not load: check nvidia-smi / the driver" >&2
  exit 1
fi

# JetPack 6 (CUDA 12.x): build libtvm_runtime_cuda.so from the same TVM release against this CUDA.
sudo apt-get install -y git cmake ninja-build build-essential patchelf
[ -d "$SRC/.git" ] || git clone --recursive --depth 1 --branch "$TAG" https://github.com/apache/tvm "$SRC"
cmake -S "$SRC" -B "$SRC/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DTVM_BUILD_PYTHON_MODULE=ON -DUSE_CUDA="$CUDA" -DUSE_LLVM=OFF -DUSE_CUBLAS=OFF -DUSE_CUDNN=OFF \
  -DUSE_CUTLASS=OFF -DUSE_NCCL=OFF -DUSE_NVTX=OFF -DCMAKE_CUDA_COMPILER="$CUDA/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES=87
cmake --build "$SRC/build-cuda" --target tvm_runtime_cuda --parallel "$(nproc)"
NEW=$SRC/build-cuda/lib/libtvm_runtime_cuda.so
patchelf --set-rpath '$ORIGIN' "$NEW"
[ -f "$TVM_LIB/libtvm_runtime_cuda.so.cuda13" ] || cp "$TVM_LIB/libtvm_runtime_cuda.so" "$TVM_LIB/libtvm_runtime_cuda.so.cuda13"
cp "$NEW" "$TVM_LIB/libtvm_runtime_cuda.so"
if loads; then echo "done: TVM's CUDA runtime now built against CUDA $CUDA_MAJOR and sees the GPU"; else
  echo "error: the rebuilt runtime still does not load; see $SRC/build-cuda" >&2; exit 1; fi

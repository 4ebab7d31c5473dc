#!/usr/bin/env bash
# Compiles (never links) the ggml CUDA sources our patches touch, with nvcc for sm_90, against the
# patched fork tree. The local toolkit has no cuBLAS: include/cublas_v2.h declares what the sources
# use, defines nothing. usage: native/cuda-check/compile-check.sh [BUILD_DIR]   (default build/native)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/native}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "no nvcc: CUDA compile check skipped" >&2; exit 0; }
SRC=$BUILD/_deps/llama.cpp-fork/ggml
OUT=$BUILD/cuda-check
mkdir -p "$OUT"
# The files patched by native/patches (0004) for skip ids.
FILES="mmvq.cu mmvf.cu mmid.cu mmq.cu mmf.cu ggml-cuda.cu"
for f in $FILES; do
    echo "nvcc sm_90: ggml/src/ggml-cuda/$f"
    "$NVCC" -std=c++17 -O1 -arch=sm_90 -c "$SRC/src/ggml-cuda/$f" -o "$OUT/${f%.cu}.o" \
        -I native/cuda-check/include -I "$SRC/include" -I "$SRC/src" -I "$SRC/src/ggml-cuda" \
        -DGGML_USE_CUDA -DGGML_CUDA_PEER_MAX_BATCH_SIZE=128 -DGGML_SCHED_MAX_COPIES=4 -DNDEBUG \
        --extended-lambda -Xcompiler -fPIC -w
done
echo "CUDA compile check passed: $FILES"

#!/usr/bin/env bash
# Compiles (never links) the ggml CUDA sources our patches touch, with nvcc for sm_90, against the
# patched fork tree. The local toolkit has no cuBLAS: include/cublas_v2.h declares what the sources
# use, defines nothing. usage: native/cuda-check/compile-check.sh [BUILD_DIR]   (default build/native)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/native}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
# exit 77: skipped (CTest SKIP_RETURN_CODE); under CI=true, where nvcc is provided, missing it fails
if [ ! -x "$NVCC" ]; then
    [ "${CI:-}" = true ] && { echo "CI=true but no nvcc at $NVCC: the CUDA compile check cannot run" >&2; exit 1; }
    echo "no nvcc: CUDA compile check skipped" >&2; exit 77
fi
SRC=$BUILD/_deps/llama.cpp-fork/ggml
OUT=$BUILD/cuda-check
mkdir -p "$OUT"
# What ggml's CMake defines for FlashAttention's default K-V type combinations (cmake/common.cmake).
FA_DEFS=(-DGGML_CUDA_FA_QUANTS=\"q4_0-q4_0,q8_0-q8_0,f16-f16,bf16-bf16\")
for k in f16 q4_0 q4_1 q5_0 q5_1 q8_0 bf16; do
    for v in f16 q4_0 q4_1 q5_0 q5_1 q8_0 bf16; do
        case "$k-$v" in q4_0-q4_0|q8_0-q8_0|f16-f16|bf16-bf16) on=1 ;; *) on=0 ;; esac
        FA_DEFS+=("-DGGML_CUDA_FA_${k^^}_${v^^}=$on")
    done
done
# The files patched by native/patches (0004) for skip ids.
FILES="mmvq.cu mmvf.cu mmid.cu mmq.cu mmf.cu fattn.cu template-instances/fattn-vec-instance-f16-f16.cu ggml-cuda.cu"
for f in $FILES; do
    echo "nvcc sm_90: ggml/src/ggml-cuda/$f"
    "$NVCC" -std=c++17 -O1 -arch=sm_90 -c "$SRC/src/ggml-cuda/$f" -o "$OUT/$(basename "${f%.cu}").o" \
        -I native/cuda-check/include -I "$SRC/include" -I "$SRC/src" -I "$SRC/src/ggml-cuda" \
        -DGGML_USE_CUDA -DGGML_CUDA_PEER_MAX_BATCH_SIZE=128 -DGGML_SCHED_MAX_COPIES=4 -DNDEBUG \
        "${FA_DEFS[@]}" --extended-lambda -Xcompiler -fPIC -w
done
echo "CUDA compile check passed: $FILES"

#!/usr/bin/env bash
# The fork's FlexiDepth changes on an NVIDIA GPU, in one run meant to fit in 8 minutes on one
# H100/H200 machine with 16 cores:
#   1. builds the fork with CUDA (one CPU backend for the machine, the CUDA backend linked in);
#   2. test-mul-mat-id-skip: ggml_mul_mat_id with skip ids on the CUDA backend (MMVQ, MMVF, MMQ, MMF,
#      at 1, 6, 7, 32 and 512 tokens) equals its dense product, skipped rows exact zeros, as on the CPU;
#   3. writes a random 1B-shape model (native/tools/gpu-random-model.py; no JVM there) and its Q4_0;
#   4. trains a plug-in for it on the GPU (llama-flexidepth-train): tokens/s, and that L_lm falls
#      from the first epoch to the last;
#   5. the reference comparison with every layer offloaded: flexidepth-eval's DENSE run on the CPU,
#      which the CPU tests check against the independent reference model, against the GPU's DENSE,
#      MASKED, MASKED with flash attention and AUTO runs (gpu-compare-eval.py);
#   6. the speed benchmark: llama-flexidepth-bench, prefill and decode at forced skip 0, 0.5, 1.
# The pinned llama.cpp comes from build/native/_deps/download/node-llama-cpp-3.22.1.tgz when that is
# there (carry it to a machine without network), else npm fetches it.
#
# usage: native/tools/gpu-check.sh [--out DIR] [--build-dir DIR] [--no-build] [--shape 1b|small]
#   --no-build with --build-dir build/native and --shape small runs steps 2-6 on a CPU build (a dry
#   run of the script; no GPU device is then required).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/gpu-check
BUILD=build/gpu
BUILD_IT=1
SHAPE=1b
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --build-dir) BUILD=$2; shift 2 ;;
        --no-build) BUILD_IT=0; shift ;;
        --shape) SHAPE=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
START=$(date +%s)
step() { echo; echo "== $* (at $(( $(date +%s) - START )) s)"; }
fail() { echo "GPU CHECK FAILED: $*" >&2; exit 1; }

if [ "$BUILD_IT" = 1 ]; then
    step "build with CUDA"
    command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || fail "no NVIDIA GPU"
    tgz=build/native/_deps/download/node-llama-cpp-3.22.1.tgz
    if [ -f "$tgz" ]; then
        mkdir -p "$BUILD/_deps/download"
        cp -n "$tgz" "$BUILD/_deps/download/"
    fi
    cmake -S . -B "$BUILD" -G Ninja -DFLEXI_CUDA=ON -DFLEXI_NATIVE_CPU=ON -DFLEXI_BUILD_PRISTINE=OFF \
        -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" > "$OUT/configure.log" || { cat "$OUT/configure.log"; fail "configure"; }
    cmake --build "$BUILD" -j "$(nproc)" --target test-mul-mat-id-skip flexidepth-eval llama-flexidepth-bench \
        llama-flexidepth-train llama-quantize > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; fail "build"; }
fi
BIN=$BUILD/bin
GGUF_PY=$BUILD/_deps/llama.cpp-fork/gguf-py

step "skip-id matrix products against dense ones"
"$BIN/test-mul-mat-id-skip" | tee "$OUT/mul-mat-id-skip.log" | grep -v "^FAIL" | tail -20
grep -q "0 failures" "$OUT/mul-mat-id-skip.log" || { grep "^FAIL" "$OUT/mul-mat-id-skip.log" | head; fail "test-mul-mat-id-skip"; }
if [ "$BUILD_IT" = 1 ]; then
    grep -q "^CUDA" "$OUT/mul-mat-id-skip.log" || fail "no case ran on a CUDA device"
fi

step "random $SHAPE-shape model"
case "$SHAPE" in
    1b)    shape=(--layers 16 --embd 2048 --heads 32 --kv-heads 8 --ff 8192 --vocab 128256) ;;
    small) shape=(--layers 4 --embd 256 --heads 8 --kv-heads 4 --ff 512 --vocab 1024) ;;
    *) fail "unknown shape $SHAPE" ;;
esac
MODEL=$OUT/model-f16.gguf
MODEL_Q=$OUT/model-q4_0.gguf
python3 native/tools/gpu-random-model.py "$GGUF_PY" "$MODEL" "${shape[@]}"
"$BIN/llama-quantize" "$MODEL" "$MODEL_Q" q4_0 "$(nproc)" > "$OUT/quantize.log" 2>&1 || { tail "$OUT/quantize.log"; fail "quantize"; }
ls -la "$MODEL" "$MODEL_Q"

step "train a plug-in on the GPU"
PLUGIN=$OUT/plugin.gguf
# a short text seen for several epochs: the loss over the last epoch is below the first's (the
# random model's vocabulary reads it as byte pieces)
head -c 3000 README.md > "$OUT/train.txt"
EPOCHS=6
"$BIN/llama-flexidepth-train" -m "$MODEL_Q" -o "$PLUGIN" --text "$OUT/train.txt" --epochs $EPOCHS --ctx 256 \
    --lr 1e-3 --warmup 2 --checkpoint-every 100000 2> "$OUT/train.log" || { tail "$OUT/train.log"; fail "training"; }
grep "^step" "$OUT/train.log" | sed -n '1p;$p'
python3 - "$OUT/train.log" $EPOCHS <<'PY' || fail "the training loss did not fall"
import re, sys
loss = [float(m.group(1)) for m in re.finditer(r"^step .* L_lm ([0-9.]+)", open(sys.argv[1]).read(), re.M)]
n = len(loss) // int(sys.argv[2])
first, last = sum(loss[:n]) / n, sum(loss[-n:]) / n
print(f"mean L_lm over the first epoch {first:.4f}, over the last {last:.4f} ({n} steps each)")
sys.exit(0 if last < first else 1)
PY

step "every layer offloaded against the CPU's DENSE oracle"
TAU=0.5
script=$OUT/eval.script
vocab=${shape[11]}
tok() { echo $(( 259 + (RANDOM * 32768 + RANDOM) % (vocab - 259) )); }
seq_tokens() { local n=$1 s=$2 out=""; for _ in $(seq "$n"); do out+="$(tok),"; done; echo "$s:${out%,}"; }
{
    echo "batch $(seq_tokens 48 0)"              # a prefill
    for _ in 1 2 3 4 5 6; do echo "batch 0:$(tok)"; done
    echo "batch $(seq_tokens 20 1) 0:$(tok)"    # a second sequence's prefill beside a decode
    for _ in 1 2 3 4; do echo "batch 0:$(tok) 1:$(tok)"; done
} > "$script"
"$BIN/flexidepth-eval" "$MODEL" "$PLUGIN" $TAU "$script" "$OUT/oracle.bin" dense --cpu 2> "$OUT/eval-oracle.log" \
    || { cat "$OUT/eval-oracle.log"; fail "the CPU oracle run"; }
for mode in dense masked masked-fa auto; do
    "$BIN/flexidepth-eval" "$MODEL" "$PLUGIN" $TAU "$script" "$OUT/$mode.bin" $mode 2> "$OUT/eval-$mode.log" \
        || { cat "$OUT/eval-$mode.log"; fail "the $mode run"; }
    printf '%-10s ' "$mode:"
    python3 native/tools/gpu-compare-eval.py "$OUT/oracle.bin" "$OUT/$mode.bin" $TAU || fail "$mode differs from the oracle"
    rm -f "$OUT/$mode.bin"
done
rm -f "$OUT/oracle.bin"

step "speed: llama-flexidepth-bench (AUTO against no plug-in, forced skips)"
"$BIN/llama-flexidepth-bench" -m "$MODEL_Q" --flexidepth "$PLUGIN" --mode auto --skip-ratios 0,0.5,1.0 \
    -p "${BENCH_PROMPT:-512}" -n "${BENCH_GEN:-64}" -r 3 | tee "$OUT/bench.log"

step "GPU check passed"
rm -f "$MODEL"

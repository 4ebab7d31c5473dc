#!/usr/bin/env bash
# The cost of run-time CPU dispatch, measured side by side in one run: the fork's llama-bench with
# the CPU backend variant the registry picks for this machine (the jar's default) against the same
# program with a CPU backend built for this machine alone (-march=native, build/native-march), on
# random-weight models with Llama-3.2-1B's shape, interleaved. Prints prefill and decode ratios and
# keeps the output in docs/benchmarks/cpu-dispatch.txt.
#
# usage: native/tools/bench-cpu-dispatch.sh [--types Q4_0,Q8_0] [--reps 5] [-p 64] [-n 32]
set -euo pipefail
cd "$(dirname "$0")/../.."
TYPES=Q4_0,Q8_0; REPS=5; P=64; N=32; THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --types) TYPES=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        -p) P=$2; shift 2 ;;
        -n) N=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=build/native/bin; OUT=build/bench
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
JAR=tools/target/flexillama-tools.jar
for f in "$BIN/llama-bench" "$BIN/llama-quantize" "$JAR"; do
    [ -e "$f" ] || { echo "missing $f: run ./dev build first" >&2; exit 1; }
done
mkdir -p "$OUT" docs/benchmarks

# the fork with its CPU backend built for this machine and linked in (-DFLEXI_NATIVE_CPU=ON)
if [ ! -f build/native-march/build.ninja ]; then
    cmake -S . -B build/native-march -G Ninja -DFLEXI_NATIVE_CPU=ON -DFLEXI_BUILD_PRISTINE=OFF \
        -DLLAMA_CPP_SOURCE_DIR="$PWD/build/native/_deps/llama.cpp-pristine" > "$OUT/native-march-configure.log"
fi
cmake --build build/native-march --target llama-bench > "$OUT/native-march-build.log"
declare -A BENCH=([dispatch]="$BIN/llama-bench" [march]=build/native-march/bin/llama-bench)

report=docs/benchmarks/cpu-dispatch.txt
{
    echo "# native/tools/bench-cpu-dispatch.sh --types $TYPES --reps $REPS -p $P -n $N   ($(date -u +%F), $(nproc) threads)"
    echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "# run-time dispatch: $BIN/llama-bench with $(cd "$BIN" && ls libggml-cpu-*.so | wc -l) variants beside it (the registry loads the best; Llama.cpuBackend() names it)"
    echo "# -march=native:     build/native-march/bin/llama-bench (-DFLEXI_NATIVE_CPU=ON)"
} > "$report"
base="$OUT/llama-1b-shape"
[ -f "$base-f16.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures model "$base-f16.gguf" \
    --layers 16 --embd 2048 --heads 32 --kv-heads 8 --ff 8192 --vocab 128256 --ctx 4096 --seed 1 --type f16
for type in ${TYPES//,/ }; do
    model="$base-$type.gguf"
    [ -f "$model" ] || "$BIN/llama-quantize" "$base-f16.gguf" "$model" "$type" "$THREADS" > "$OUT/quantize.log" 2>&1
    log="$OUT/cpu-dispatch-$type.jsonl"
    : > "$log"
    for rep in $(seq "$REPS"); do
        for kind in dispatch march; do
            "${BENCH[$kind]}" -m "$model" -p "$P" -n "$N" -r 1 -t "$THREADS" -o jsonl 2>/dev/null \
                | sed "s/^{/{\"kind\":\"$kind\",/" >> "$log"
        done
    done
    python3 - "$log" "$type" <<'PY' | tee -a "$report"
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ts(kind, prefill):
    return [r["avg_ts"] for r in rows if r["kind"] == kind and (r["n_prompt"] > 0) == prefill]
for prefill, name in ((True, "prefill"), (False, "decode")):
    d, m = ts("dispatch", prefill), ts("march", prefill)
    print(f"1B shape {sys.argv[2]} {name}: run-time dispatch {st.mean(d):.2f} t/s, -march=native {st.mean(m):.2f} t/s "
          f"= {st.mean(d) / st.mean(m):.3f}x ({len(d)} interleaved runs each; per-run ratios "
          + ", ".join(f"{a / b:.3f}" for a, b in zip(d, m)) + ")")
PY
done

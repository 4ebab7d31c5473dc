#!/usr/bin/env bash
# FlexiDepth speed, measured side by side in one run: for each model, repeated and interleaved,
#   1. pristine upstream llama-bench, 2. the fork's llama-bench (no plug-in), 3. llama-flexidepth-bench
#   (the fork without plug-in, with the plug-in's routers, and forced skip ratios of the routed layers).
# Models: random-weight models with the shapes of Llama-3.2-1B and Llama-3.2-3B (latter half of the
# layers routed), made by the project's fixture tool and quantized by the fork's llama-quantize,
# cached under build/bench. Prints each decode speedup next to its ideal from the bytes of weights read.
#
# Keeps the output in docs/benchmarks/flexidepth-bench.txt.
# usage: native/tools/bench-flexidepth.sh [--shapes 1b,3b] [--types Q8_0,Q4_0,Q4_K_M] [--reps 3] [-p 64] [-n 32]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPES=1b,3b; TYPES=Q8_0,Q4_0,Q4_K_M; REPS=3; P=64; N=32; THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --shapes) SHAPES=$2; shift 2 ;;
        --types) TYPES=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        -p) P=$2; shift 2 ;;
        -n) N=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=build/native/bin; PRISTINE=build/native/pristine/bin; OUT=build/bench
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
JAR=tools/target/flexillama-tools.jar
for f in "$BIN/llama-bench" "$BIN/llama-flexidepth-bench" "$BIN/llama-quantize" "$PRISTINE/llama-bench" "$JAR"; do
    [ -e "$f" ] || { echo "missing $f: run ./dev build first" >&2; exit 1; }
done
mkdir -p "$OUT" docs/benchmarks
# the output of the last run is kept in the repository, next to the README figures it backs
REPORT=docs/benchmarks/flexidepth-bench.txt
echo "# native/tools/bench-flexidepth.sh --shapes $SHAPES --types $TYPES --reps $REPS -p $P -n $N   ($(date -u +%F), $THREADS threads, CPU backend: the variant the registry picks)" > "$REPORT"

shape_args() {
    case "$1" in
        1b) echo "--layers 16 --embd 2048 --heads 32 --kv-heads 8 --ff 8192 --vocab 128256 --ctx 4096" ;;
        3b) echo "--layers 28 --embd 3072 --heads 24 --kv-heads 8 --ff 8192 --vocab 128256 --ctx 4096" ;;
        *) echo "unknown shape $1" >&2; exit 2 ;;
    esac
}

for shape in ${SHAPES//,/ }; do
    base="$OUT/llama-$shape-shape"
    [ -f "$base-f16.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures model "$base-f16.gguf" $(shape_args "$shape") --seed 1 --type f16
    [ -f "$base-plugin.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures plugin "$base-plugin.gguf" $(shape_args "$shape") --seed 2 --type f16
    for type in ${TYPES//,/ }; do
        model="$base-$type.gguf"
        [ -f "$model" ] || "$BIN/llama-quantize" "$base-f16.gguf" "$model" "$type" "$THREADS" > "$OUT/quantize.log" 2>&1
        log="$OUT/bench-$shape-$type.jsonl"
        : > "$log"
        for rep in $(seq "$REPS"); do
            "$PRISTINE/llama-bench" -m "$model" -p "$P" -n "$N" -r 1 -t "$THREADS" -o jsonl 2>/dev/null | sed 's/^{/{"harness":"pristine llama-bench",/' >> "$log"
            "$BIN/llama-bench" -m "$model" -p "$P" -n "$N" -r 1 -t "$THREADS" -o jsonl 2>/dev/null | sed 's/^{/{"harness":"fork llama-bench",/' >> "$log"
            "$BIN/llama-flexidepth-bench" -m "$model" --flexidepth "$base-plugin.gguf" -p "$P" -n "$N" -r 1 -t "$THREADS" --json \
                | sed 's/^{/{"harness":"flexidepth-bench",/' >> "$log"
        done
        echo "== Llama-3.2-$shape shape, $type, $THREADS threads, prefill $P, decode $N, $REPS interleaved reps" | tee -a "$REPORT"
        python3 - "$log" <<'PY' | tee -a "$REPORT"
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ms(v): return (st.mean(v), st.stdev(v) if len(v) > 1 else 0.0)
ub = {}
for r in rows:
    if r["harness"] != "flexidepth-bench":
        key = (r["harness"], "prefill" if r["n_prompt"] > 0 else "decode")
        ub.setdefault(key, []).append(r["avg_ts"])
for h in ("pristine llama-bench", "fork llama-bench"):
    p, d = ms(ub[(h, "prefill")]), ms(ub[(h, "decode")])
    print(f"{h:24s} prefill {p[0]:8.1f} ±{p[1]:5.1f} t/s   decode {d[0]:7.2f} ±{d[1]:4.2f} t/s")
fp, fd = st.mean(ub[("fork llama-bench", "prefill")]), st.mean(ub[("fork llama-bench", "decode")])
pp, pd = st.mean(ub[("pristine llama-bench", "prefill")]), st.mean(ub[("pristine llama-bench", "decode")])
print(f"fork / pristine: prefill {fp/pp:.3f}x, decode {fd/pd:.3f}x")
fb = {}
for r in rows:
    if r["harness"] == "flexidepth-bench":
        fb.setdefault(r["config"], []).append(r)
base_d = st.mean(r["decode_tps"] for r in fb["no plug-in"])
base_p = st.mean(r["prefill_tps"] for r in fb["no plug-in"])
print(f"{'flexidepth-bench config':24s} {'prefill t/s':>11s} {'vs none':>8s} {'decode t/s':>11s} {'layers':>7s} {'speedup':>8s} {'ideal':>7s} {'/ideal':>7s}")
for name, rs in fb.items():
    p = st.mean(r["prefill_tps"] for r in rs); d = st.mean(r["decode_tps"] for r in rs)
    ideal = rs[0]["ideal_speedup"]; lay = st.mean(r["layers_per_token"] for r in rs)
    print(f"{name:24s} {p:11.1f} {p/base_p:7.3f}x {d:11.2f} {lay:7.2f} {d/base_d:7.3f}x {ideal:6.3f}x {d/base_d/ideal:6.1%}")
PY
    done
done

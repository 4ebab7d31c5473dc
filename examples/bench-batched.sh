#!/usr/bin/env bash
# Aggregate decode throughput with 1, 2, 4, 8 and 16 concurrent streams: the Java BatchEngine
# (BatchThroughput, from the all-in-one examples jar) against pristine upstream's
# llama-batched-bench (S_TG, its generation phase) at the same batch sizes, side by side in one run:
# ROUNDS interleaved rounds, each running both with REPS repetitions. Prints the medians, the ratio
# to batched-bench at each size and to our own single stream, and keeps the output in
# docs/benchmarks/batched-MODEL.txt.
# usage: examples/bench-batched.sh MODEL.gguf [THREADS] [ROUNDS] [PP] [TG] [REPS] [STREAMS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: $0 MODEL.gguf [THREADS] [ROUNDS] [PP] [TG] [REPS] [STREAMS]}
THREADS=${2:-$(nproc)}; ROUNDS=${3:-2}; PP=${4:-16}; TG=${5:-32}; REPS=${6:-3}; STREAMS=${7:-1,2,4,8,16}
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA=$JAVA_HOME/bin/java
PRISTINE=build/native/pristine/bin/llama-batched-bench
JAR=examples/target/flexillama-examples.jar
for f in "$PRISTINE" "$JAR"; do
    [ -e "$f" ] || { echo "missing $f: run ./dev build first" >&2; exit 1; }
done
mkdir -p build/bench docs/benchmarks
log=build/bench/batched.tsv
: > "$log"
max=$(echo "$STREAMS" | tr ',' '\n' | sort -n | tail -1)
for round in $(seq "$ROUNDS"); do
    for rep in $(seq "$REPS"); do
        # a KV stream per sequence, as the engine's slots (kv-unified off, the default)
        "$PRISTINE" -m "$MODEL" -c $(( max * (PP + TG + 8) )) -b 2048 -ub 512 -npp "$PP" -ntg "$TG" -npl "$STREAMS" \
            -t "$THREADS" --output-format jsonl 2>/dev/null \
            | python3 -c 'import json,sys; [print("%d\t%f" % (r["pl"], r["speed_tg"])) for r in map(json.loads, (l for l in sys.stdin if l.startswith("{")))]' \
            | sed "s/^/$round\tllama-batched-bench\t/" >> "$log"
    done
    "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$JAR" org.flexidepth.examples.bench.BatchThroughput \
        "$MODEL" "$THREADS" "$PP" "$TG" "$STREAMS" "$REPS" 2>/dev/null | grep -E '^[0-9]+	[0-9.]+$' \
        | sed "s/^/$round\tJava BatchEngine\t/" >> "$log"
done

report=docs/benchmarks/batched-$(basename "$MODEL" .gguf).txt
{
    echo "# examples/bench-batched.sh $*   ($(date -u +%F), $THREADS threads, PP $PP, TG $TG, $ROUNDS rounds x $REPS reps)"
    echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    python3 - "$log" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for _, kind, pl, v in rows:
    by.setdefault((kind, int(pl)), []).append(float(v))
pls = sorted({pl for _, pl in by})
one = st.median(by[("Java BatchEngine", pls[0])])
print("| streams | llama-batched-bench S_TG t/s | Java BatchEngine t/s | Java / batched-bench | Java / Java at %d |" % pls[0])
print("|---|---|---|---|---|")
for pl in pls:
    n = st.median(by[("llama-batched-bench", pl)])
    j = st.median(by[("Java BatchEngine", pl)])
    print("| %d | %.2f | %.2f | %.3fx | %.2fx |" % (pl, n, j, j / n, j / one))
PY
} | tee "$report"

#!/usr/bin/env bash
# Decode tokens/s through the Java API (JMH, GenerationBenchmark) against the native llama-bench on the same
# model, native before and after the JMH run, plus Java allocation per token from JMH's gc profiler.
# Keeps the output in docs/benchmarks/java-vs-native-MODEL.txt.
# usage: examples/bench-java-vs-native.sh MODEL.gguf [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: $0 MODEL.gguf [THREADS]}; THREADS=${2:-$(nproc)}
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
native() { build/native/bin/llama-bench -m "$MODEL" -p 0 -n 64 -r 3 -t "$THREADS" -o jsonl 2>/dev/null | sed -n 's/.*"avg_ts": \([0-9.]*\).*/\1/p'; }
n1=$(native)
"$JAVA" --enable-native-access=ALL-UNNAMED -cp examples/target/flexillama-examples.jar org.openjdk.jmh.Main GenerationBenchmark \
    -p model="$MODEL" -p threads="$THREADS" -f 1 -wi 3 -w 3s -i 5 -r 3s -prof gc -rf json -rff build/bench/jmh.json > build/bench/jmh.log 2>&1
n2=$(native)
mkdir -p docs/benchmarks
report=docs/benchmarks/java-vs-native-$(basename "$MODEL" .gguf).txt
echo "# examples/bench-java-vs-native.sh $MODEL $THREADS   ($(date -u +%F), CPU backend: the variant the registry picks)" > "$report"
python3 - "$n1" "$n2" <<'PY' | tee -a "$report"
import json, sys
n = (float(sys.argv[1]) + float(sys.argv[2])) / 2
r = json.load(open("build/bench/jmh.json"))[0]
j = r["primaryMetric"]["score"]; err = r["primaryMetric"]["scoreError"]
alloc = r["secondaryMetrics"]["gc.alloc.rate.norm"]["score"]
print(f"native llama-bench decode: {float(sys.argv[1]):.2f} / {float(sys.argv[2]):.2f} t/s (before / after)")
print(f"Java API decode (JMH):     {j:.2f} ± {err:.2f} t/s  = {j / n:.3f}x native")
print(f"Java allocation per token: {alloc:.0f} bytes (gc.alloc.rate.norm)")
PY

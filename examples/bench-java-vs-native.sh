#!/usr/bin/env bash
# Greedy decode tokens/s of the Java API against native llama.cpp and against java-llama.cpp
# (de.kherud:llama:4.2.0), side by side in one run: ROUNDS interleaved rounds, each running pristine
# upstream's llama-bench (-p 0 -n TOKENS), the Java API (DecodeSpeed, from the all-in-one examples
# jar) and java-llama.cpp (examples/java-llama-cpp-bench), each with one warm-up and REPS timed
# repetitions of TOKENS decode steps from an empty cache. Then Java allocation per token from JMH's
# gc profiler (GenerationBenchmark). Keeps the output in docs/benchmarks/java-vs-native-MODEL.txt.
# usage: examples/bench-java-vs-native.sh MODEL.gguf [THREADS] [ROUNDS] [TOKENS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: $0 MODEL.gguf [THREADS] [ROUNDS] [TOKENS] [REPS]}
THREADS=${2:-$(nproc)}; ROUNDS=${3:-4}; TOKENS=${4:-64}; REPS=${5:-3}
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA=$JAVA_HOME/bin/java
PRISTINE=build/native/pristine/bin/llama-bench
JAR=examples/target/flexillama-examples.jar
for f in "$PRISTINE" "$JAR"; do
    [ -e "$f" ] || { echo "missing $f: run ./dev build first" >&2; exit 1; }
done
(cd examples/java-llama-cpp-bench && mvn -q -B package dependency:build-classpath -Dmdep.outputFile=target/classpath.txt)
KHERUD_CP="examples/java-llama-cpp-bench/target/classes:$(cat examples/java-llama-cpp-bench/target/classpath.txt)"
mkdir -p build/bench docs/benchmarks
log=build/bench/java-vs-native.tsv
: > "$log"

for round in $(seq "$ROUNDS"); do
    "$PRISTINE" -m "$MODEL" -p 0 -n "$TOKENS" -r "$REPS" -t "$THREADS" -o jsonl 2>/dev/null \
        | python3 -c 'import json,sys; [print(v) for l in sys.stdin if l.strip() for v in json.loads(l)["samples_ts"]]' \
        | sed "s/^/$round\tnative llama-bench\t/" >> "$log"
    "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$JAR" org.flexidepth.examples.bench.DecodeSpeed \
        "$MODEL" "$THREADS" "$TOKENS" "$REPS" 2>/dev/null | grep -E '^[0-9.]+$' | sed "s/^/$round\tJava API\t/" >> "$log"
    "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$KHERUD_CP" bench.JavaLlamaCppDecodeSpeed \
        "$MODEL" "$THREADS" "$TOKENS" "$REPS" 2>/dev/null | grep -E '^[0-9.]+$' | sed "s/^/$round\tjava-llama.cpp 4.2.0\t/" >> "$log"
done

"$JAVA" --enable-native-access=ALL-UNNAMED -cp "$JAR" org.openjdk.jmh.Main GenerationBenchmark \
    -p model="$MODEL" -p threads="$THREADS" -f 1 -wi 2 -w 3s -i 3 -r 3s -prof gc -rf json -rff build/bench/jmh.json > build/bench/jmh.log 2>&1

report=docs/benchmarks/java-vs-native-$(basename "$MODEL" .gguf).txt
{
    echo "# examples/bench-java-vs-native.sh $MODEL $THREADS $ROUNDS $TOKENS $REPS   ($(date -u +%F))"
    echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads; greedy, $TOKENS decode steps from an empty cache"
    echo "# $ROUNDS interleaved rounds of: pristine llama-bench (-march=native), the Java API (all-in-one jar,"
    echo "# run-time dispatched CPU backend), java-llama.cpp 4.2.0 (its own natives); $REPS timed repetitions each"
} > "$report"
python3 - "$log" <<'PY' | tee -a "$report"
import json, sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
names = ["native llama-bench", "Java API", "java-llama.cpp 4.2.0"]
rounds = sorted({int(r[0]) for r in rows})
def mean(name, rnd=None):
    v = [float(r[2]) for r in rows if r[1] == name and (rnd is None or int(r[0]) == rnd)]
    return st.mean(v) if v else float("nan")
print("round  " + "  ".join(f"{n:>22}" for n in names) + "   Java/native")
for rnd in rounds:
    print(f"{rnd:>5}  " + "  ".join(f"{mean(n, rnd):>18.2f} t/s" for n in names) + f"   {mean(names[1], rnd) / mean(names[0], rnd):.3f}x")
n, j, k = (mean(x) for x in names)
print(f"mean   " + "  ".join(f"{m:>18.2f} t/s" for m in (n, j, k)))
print(f"Java API / native llama-bench:   {j / n:.3f}x (per-round ratios above)")
print(f"Java API / java-llama.cpp 4.2.0: {j / k:.3f}x")
r = json.load(open("build/bench/jmh.json"))[0]
print(f"Java allocation per token: {r['secondaryMetrics']['gc.alloc.rate.norm']['score']:.0f} bytes (JMH gc.alloc.rate.norm, GenerationBenchmark)")
PY

#!/usr/bin/env bash
# Decode speed of the routed-skip families and of direct multi-token decoding, each measured side by
# side with the same model without them in one llama-flexidepth-bench run, next to its ideal from the
# bytes of weights read: the Llama-3.2-1B-shaped random model of bench-flexidepth.sh (cached under
# build/bench; Q4_0, and Q8_0 for DMTD), one random plug-in per skip family at forced skip 0.5 of
# the routed layers, DMTD at tau 2, 3 and 4 (with and without refill) with 12 thinking and 4
# decoding layers; DMTD on the Llama-3.2-3B shape (24 + 4, Q4_0 and Q8_0) when --shapes names it;
# and dmtd-demo-12L (8 + 4).
# Keeps the output in docs/benchmarks/skip-families-and-dmtd.txt.
# usage: native/tools/bench-families-dmtd.sh [--shapes 1b,3b] [--reps 3] [-p 64] [-n 64]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPES=1b,3b; REPS=3; P=64; N=64; THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --shapes) SHAPES=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        -p) P=$2; shift 2 ;;
        -n) N=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=build/native/bin; OUT=build/bench
JAVA=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java
JAR=tools/target/flexillama-tools.jar
SHAPE="--layers 16 --embd 2048 --heads 32 --kv-heads 8 --ff 8192 --vocab 128256 --ctx 4096"
mkdir -p "$OUT" docs/benchmarks
REPORT=docs/benchmarks/skip-families-and-dmtd.txt
echo "# native/tools/bench-families-dmtd.sh --shapes $SHAPES --reps $REPS -p $P -n $N   ($(date -u +%F), $THREADS threads)" > "$REPORT"
base="$OUT/llama-1b-shape"
[ -f "$base-f16.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures model "$base-f16.gguf" $SHAPE --seed 1 --type f16
for family in layer layer_no_kv attention ffn; do
    [ -f "$base-plugin-$family.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures plugin "$base-plugin-$family.gguf" $SHAPE \
        --seed 2 --type f16 --skip "$family"
done
if [[ ",$SHAPES," == *,1b,* ]]; then
    for type in q4_0 q8_0; do
        [ -f "$base-$type.gguf" ] || "$BIN/llama-quantize" "$base-f16.gguf" "$base-$type.gguf" "$type" "$THREADS" > "$OUT/quantize.log" 2>&1
        # the families read the same products at either type: Q4_0 only
        [ "$type" = q4_0 ] && for family in layer layer_no_kv attention ffn; do
            echo "== 1B shape $type, skip family $family" | tee -a "$REPORT"
            "$BIN/llama-flexidepth-bench" -m "$base-$type.gguf" --flexidepth "$base-plugin-$family.gguf" --skip-ratios 0.5 \
                -p "$P" -n "$N" -r "$REPS" -t "$THREADS" 2>/dev/null | tee -a "$REPORT"
        done
        echo "== 1B shape $type, DMTD (12 thinking + 4 decoding layers)" | tee -a "$REPORT"
        "$BIN/llama-flexidepth-bench" -m "$base-$type.gguf" --dmtd 12 --cycles 2,3,4 --dmtd-no-refill -p "$P" -n "$N" -r "$REPS" -t "$THREADS" 2>/dev/null | tee -a "$REPORT"
    done
fi
if [[ ",$SHAPES," == *,3b,* ]]; then
    base3="$OUT/llama-3b-shape"
    [ -f "$base3-f16.gguf" ] || "$JAVA" -cp "$JAR" org.flexidepth.tools.RandomFixtures model "$base3-f16.gguf" \
        --layers 28 --embd 3072 --heads 24 --kv-heads 8 --ff 8192 --vocab 128256 --ctx 4096 --seed 1 --type f16
    for type in q4_0 q8_0; do
        [ -f "$base3-$type.gguf" ] || "$BIN/llama-quantize" "$base3-f16.gguf" "$base3-$type.gguf" "$type" "$THREADS" > "$OUT/quantize.log" 2>&1
        echo "== 3B shape $type, DMTD (24 thinking + 4 decoding layers)" | tee -a "$REPORT"
        "$BIN/llama-flexidepth-bench" -m "$base3-$type.gguf" --dmtd 24 --cycles 2,3,4 --dmtd-no-refill -p "$P" -n "$N" -r "$REPS" -t "$THREADS" 2>/dev/null | tee -a "$REPORT"
    done
fi
demo=build/models/dmtd-demo-12L.gguf
if [ -f "$demo" ]; then
    echo "== dmtd-demo-12L (F32, 8 thinking + 4 decoding layers, trained at tau 4)" | tee -a "$REPORT"
    "$BIN/llama-flexidepth-bench" -m "$demo" --dmtd 8 --cycles 2,3,4 --dmtd-no-refill -p "$P" -n 128 -r "$REPS" -t "$THREADS" 2>/dev/null | tee -a "$REPORT"
fi

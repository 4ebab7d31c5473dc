#!/usr/bin/env bash
# Builds the libFuzzer harness (clang, AddressSanitizer) and fuzzes one target for a bounded time.
# The plug-in loader (ours) and GGUF parsing (upstream's gguf.cpp) are compiled into the harness
# with coverage instrumentation and ASan, so the fuzzer is guided by them; the rest of llama.cpp
# comes uninstrumented from the fork's libllama. The base model is stories260K from ../shared.
# usage: native/fuzz/run-fuzzer.sh BUILD_DIR plugin|state SECONDS     exit 77: skipped
set -euo pipefail
# a skip (77) under CI=true, which installs clang and provides ../shared, is a failure
skip() { echo "$1"; if [ "${CI:-}" = true ]; then echo "CI=true: this check must run"; exit 1; fi; exit 77; }
cd "$(dirname "$0")/../.."
BUILD=$(cd "$1" && pwd); TARGET=$2; SECONDS_TO_RUN=$3
CXX=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$CXX" ] || skip "no clang++: fuzzing skipped (apt install clang-14)"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }' \
    | "$CXX" -fsanitize=fuzzer,address -x c++ - -o /dev/null 2>/dev/null \
    || skip "$CXX has no libFuzzer runtime: fuzzing skipped (apt install libclang-rt-14-dev)"
SHARED=${FLEXI_SHARED_DIR:-../shared}
[ -f "$SHARED/models/stories260K.bin" ] || skip "../shared is absent: fuzzing skipped"
OUT=$BUILD/fuzz; mkdir -p "$OUT"
FORK=$BUILD/_deps/llama.cpp-fork
MODEL=$OUT/stories260K.gguf
if [ ! -f "$MODEL" ]; then
    "$BUILD/bin/llama-convert-llama2c-to-ggml" --copy-vocab-from-model "$SHARED/models/tok512.bin" \
        --llama2c-model "$SHARED/models/stories260K.bin" --llama2c-output-model "$MODEL" > "$OUT/convert.log" 2>&1
fi
EXE=$OUT/fuzz-flexidepth
SRCS=(native/fuzz/fuzz-flexidepth.cpp native/src/flexidepth-plugin.cpp "$FORK/ggml/src/gguf.cpp")
if [ ! -x "$EXE" ] || [ -n "$(find "${SRCS[@]}" native/src/*.h -newer "$EXE")" ]; then
    echo "building $EXE"
    "$CXX" -std=c++17 -O1 -g -fsanitize=fuzzer,address -fno-omit-frame-pointer "${SRCS[@]}" -o "$EXE" \
        -I native/include -I native/src -I "$FORK/include" -I "$FORK/ggml/include" -I "$FORK/src" -I "$FORK/ggml/src" \
        -L "$BUILD/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$BUILD/bin" -w
fi
CORPUS=$OUT/corpus-$TARGET; SEEDS=$OUT/seeds; mkdir -p "$CORPUS" "$SEEDS"
export FLEXI_FUZZ_MODEL=$MODEL FLEXI_FUZZ_TARGET=$TARGET FLEXI_BACKEND_DIR=$BUILD/bin
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
"$EXE" --write-seeds "$SEEDS"
cp -n "$SEEDS/$([ "$TARGET" = plugin ] && echo plugin.gguf || echo state.bin)" "$CORPUS/" 2>/dev/null || true
# -rss_limit_mb: a malformed size may ask for a lot; the loaders must refuse it, not take it
"$EXE" "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$OUT/crash-$TARGET-" 2>&1 | tail -n 25

#!/usr/bin/env bash
# Builds this project against the installed org.flexidepth:flexillama (mvn install first), runs it
# as a named module on the module path with only the library's jars and logback in its default
# configuration, and compares its greedy tokens on MODEL with the pristine library's
# (native/tests/reference-greedy.c). The load and the generation may log a handful of lines and no
# warning: logback's default level is DEBUG, and its console is stdout, beside the tokens.
#   usage: consumer-check/run.sh MODEL.gguf
set -euo pipefail
MODEL=$(realpath "$1")
cd "$(dirname "$0")"
JAVA=${JAVA_HOME:?set JAVA_HOME}/bin/java
mvn -q -B package dependency:build-classpath -Dmdep.outputFile=target/modules.txt
PROMPT="Once upon a time"
out=$("$JAVA" --enable-native-access=org.flexidepth.llama,org.flexidepth.llama.bindings \
    --module-path "target/classes:$(cat target/modules.txt)" -m org.flexidepth.consumer/org.flexidepth.consumer.Greedy \
    "$MODEL" 32 "$PROMPT")
got=$(printf '%s\n' "$out" | grep -E '^[0-9]+( [0-9]+)*$' | tail -1)
logged=$(printf '%s\n' "$out" | grep -vE '^[0-9]+( [0-9]+)*$' || true)
echo "consumer-check: what the library logged in logback's default configuration:"
printf '%s\n' "$logged" | sed 's/^/    /'
if [ "$(printf '%s' "$logged" | grep -c .)" -gt 5 ]; then
    echo "consumer-check: more than 5 log lines for one model load and one generation" >&2
    exit 1
fi
if printf '%s\n' "$logged" | grep -qE ' (WARN|ERROR) '; then
    echo "consumer-check: the default model loads with a warning" >&2
    exit 1
fi
want=$(../build/native/pristine-tools/reference-greedy "$MODEL" 32 "$PROMPT" 2>/dev/null)
if [ "$got" != "$want" ]; then
    echo "consumer-check: the installed library generated [$got], pristine upstream [$want]" >&2
    exit 1
fi
echo "consumer-check: the installed artifact, used as a module by its coordinates, generates pristine's tokens"

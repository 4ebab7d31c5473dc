#!/usr/bin/env bash
# Builds this project against the installed org.flexidepth:flexillama (mvn install first), runs it
# as a named module on the module path with only the library's jars, and compares its greedy tokens
# on MODEL with the pristine library's (native/tests/reference-greedy.c).
#   usage: consumer-check/run.sh MODEL.gguf
set -euo pipefail
MODEL=$(realpath "$1")
cd "$(dirname "$0")"
JAVA=${JAVA_HOME:?set JAVA_HOME}/bin/java
mvn -q -B package dependency:build-classpath -Dmdep.outputFile=target/modules.txt
PROMPT="Once upon a time"
got=$("$JAVA" --enable-native-access=org.flexidepth.llama,org.flexidepth.llama.bindings \
    --module-path "target/classes:$(cat target/modules.txt)" -m org.flexidepth.consumer/org.flexidepth.consumer.Greedy \
    "$MODEL" 32 "$PROMPT")
want=$(../build/native/pristine-tools/reference-greedy "$MODEL" 32 "$PROMPT" 2>/dev/null)
if [ "$got" != "$want" ]; then
    echo "consumer-check: the installed library generated [$got], pristine upstream [$want]" >&2
    exit 1
fi
echo "consumer-check: the installed artifact, used as a module by its coordinates, generates pristine's tokens"

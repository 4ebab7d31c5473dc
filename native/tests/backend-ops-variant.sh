#!/usr/bin/env bash
# Upstream's test-backend-ops on one CPU backend variant: every case of the given ops computed by
# the variant's kernels against the CPU backend's reference implementation (use_ref), so each
# instruction-set level the jar ships (and patch 0004 in it) is checked, not only the host's best.
# The variant is alone in a folder with a copy of the program, which is where ggml's registry looks.
# Each OP comes with a regular expression over its cases' parameters (all of MUL_MAT_ID's 943 cases
# took 14 minutes per variant here; the selection keeps the types and shapes the models use).
#   usage: backend-ops-variant.sh BIN_DIR VARIANT OP PARAMS [OP PARAMS]...   exit 77: this CPU cannot run VARIANT
set -euo pipefail
BIN=$1 VARIANT=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$BIN/test-backend-ops" "$BIN/libggml-cpu-$VARIANT.so" "$dir/"
cd "$dir"
status=0
while [ $# -ge 2 ]; do
    op=$1 params=$2
    shift 2
    out=$(./test-backend-ops test -b CPU -o "$op" -p "$params" 2>&1) || status=$?
    # ggml's registry scores a variant 0 on a CPU without its instructions and loads no device
    if grep -qE "Failed to initialize CPU backend|Testing 0 devices" <<<"$out"; then
        echo "this CPU cannot run the $VARIANT variant: skipped"
        exit 77
    fi
    # the summary lines: "N/M tests passed" and the backend's verdict
    grep -E "tests passed|Backend .*: (OK|FAIL)|FAIL" <<<"$out" | sed "s/^/$op: /" | head -n 40
    grep -q "tests passed" <<<"$out" || { echo "$op: no summary"; status=1; }
    if grep -q " 0/0 tests passed" <<<"$out"; then echo "$op: no case matched $params"; status=1; fi
done
exit $status

#!/usr/bin/env python3
"""Compares two dumps of native/tests/flexidepth-eval (the CPU's DENSE oracle and a GPU run), for
native/tools/gpu-check.sh: same tokens, logits within a relative bound, and the same routing
decisions except where a gate lies within EPS of tau (there, rounding may flip a decision; after a
flip the later logits of that sequence legitimately differ, so they are not compared).

usage: gpu-compare-eval.py ORACLE.bin OTHER.bin TAU [--rel 2e-2] [--eps 1e-3]
Exit status 0 when they agree; prints one summary line either way.
"""
import argparse
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    n_vocab, n_routed = struct.unpack_from("<ii", data, 0)
    off, tokens = 8, []
    while off < len(data):
        (n,) = struct.unpack_from("<i", data, off)
        off += 4
        for _ in range(n):
            seq, pos = struct.unpack_from("<ii", data, off)
            off += 8
            logits = np.frombuffer(data, np.float32, n_vocab, off)
            off += 4 * n_vocab
            gates = np.frombuffer(data, np.float32, n_routed, off)
            off += 4 * n_routed
            run = np.frombuffer(data, np.uint8, n_routed, off)
            off += n_routed
            tokens.append((seq, pos, logits, gates, run))
    return n_vocab, n_routed, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oracle")
    ap.add_argument("other")
    ap.add_argument("tau", type=float)
    ap.add_argument("--rel", type=float, default=2e-2)
    ap.add_argument("--eps", type=float, default=1e-3)
    a = ap.parse_args()
    va, ra, ta = read(a.oracle)
    vb, rb, tb = read(a.other)
    if (va, ra, len(ta)) != (vb, rb, len(tb)):
        print(f"shapes differ: {va}x{ra}x{len(ta)} vs {vb}x{rb}x{len(tb)}")
        return 1
    flipped, worst, worst_gate, skips, compared, bad = set(), 0.0, 0.0, 0, 0, []
    for (sa, pa, la, ga, xa), (sb, pb, lb, gb, xb) in zip(ta, tb):
        if (sa, pa) != (sb, pb):
            print(f"token order differs: seq {sa} pos {pa} vs seq {sb} pos {pb}")
            return 1
        if sa in flipped:
            continue
        worst_gate = max(worst_gate, float(np.max(np.abs(ga - gb))) if ra else 0.0)
        differ = xa != xb
        if np.any(differ):
            if np.all(np.abs(ga[differ] - a.tau) < a.eps):
                flipped.add(sa)  # a borderline gate: the rest of this sequence may take another path
                continue
            bad.append(f"seq {sa} pos {pa}: decisions {xa.tolist()} vs {xb.tolist()}")
            continue
        skips += int(ra - np.sum(xa))
        rel = float(np.max(np.abs(la - lb)) / max(1e-6, float(np.max(np.abs(la)))))
        worst = max(worst, rel)
        compared += 1
        if rel > a.rel:
            bad.append(f"seq {sa} pos {pa}: max |logit diff| {rel:.3e} of max |logit|")
    print(f"{compared} of {len(ta)} tokens compared, worst |logit diff| / max|logit| {worst:.2e}, "
          f"worst |gate diff| {worst_gate:.2e}, {skips} skips, {len(flipped)} sequences with a borderline flip, "
          f"{len(bad)} mismatches")
    for b in bad[:10]:
        print("  " + b)
    return 0 if not bad and compared > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

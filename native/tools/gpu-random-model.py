#!/usr/bin/env python3
"""A llama model of a given shape with random weights, for native/tools/gpu-check.sh.

The GPU machine has no JVM, so the Java fixture writer (tools/.../RandomFixtures.java) cannot run
there; this writes the same kind of model (its metadata, a byte-fallback SPM vocabulary, Gaussian
weights scaled by 1/sqrt(fan-in)) with upstream's gguf-py from the pinned tree and numpy.

usage: gpu-random-model.py GGUF_PY_DIR OUT.gguf --layers 16 --embd 2048 --heads 32 --kv-heads 8
                           --ff 8192 --vocab 128256 [--ctx 4096] [--seed 1]
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf_py")
    ap.add_argument("out")
    for name in ("layers", "embd", "heads", "kv_heads", "ff", "vocab"):
        ap.add_argument("--" + name.replace("_", "-"), type=int, required=True)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, a.gguf_py)
    import gguf

    d, head_dim = a.embd, a.embd // a.heads
    kv = head_dim * a.kv_heads
    rng = np.random.default_rng(a.seed)

    def gaussian(shape, mean, std, dtype):
        return (rng.standard_normal(shape, dtype=np.float32) * std + mean).astype(dtype)

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(f"random-llama-{a.layers}L-{d}d-seed{a.seed}")
    w.add_file_type(1)  # mostly F16
    w.add_context_length(a.ctx)
    w.add_embedding_length(d)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ff)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(a.vocab)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    tokens += ["\u2581w" + str(i) for i in range(len(tokens), a.vocab)]
    types += [1] * (a.vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(a.vocab)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)

    # numpy shapes are (rows, columns): ggml's [ne0 = columns, ne1 = rows]
    f16, f32 = np.float16, np.float32
    w.add_tensor("token_embd.weight", gaussian((a.vocab, d), 0, 1, f16))
    w.add_tensor("output_norm.weight", gaussian((d,), 1, 0.1, f32))
    w.add_tensor("output.weight", gaussian((a.vocab, d), 0, d ** -0.5, f16))
    for l in range(a.layers):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", gaussian((d,), 1, 0.1, f32))
        w.add_tensor(p + "attn_q.weight", gaussian((d, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "attn_k.weight", gaussian((kv, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "attn_v.weight", gaussian((kv, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "attn_output.weight", gaussian((d, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "ffn_norm.weight", gaussian((d,), 1, 0.1, f32))
        w.add_tensor(p + "ffn_gate.weight", gaussian((a.ff, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "ffn_up.weight", gaussian((a.ff, d), 0, d ** -0.5, f16))
        w.add_tensor(p + "ffn_down.weight", gaussian((d, a.ff), 0, a.ff ** -0.5, f16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()

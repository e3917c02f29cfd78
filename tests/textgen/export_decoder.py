#!/usr/bin/python3
"""Exports the decoder the text-generation test deploys: scripts/models'
GPT-2-architecture model (Hugging Face's ONNX layout with a KV cache) at a
tiny size with bytes as tokens, plus the greedy continuation of a fixed
prompt that PyTorch computes step by step (prefill, then one token at a
time with the cache), which the test compares with rouse's.

    export_decoder.py OUT.onnx [--vocab V] [--ctx C]

Writes OUT.onnx and OUT.onnx.json (the shape and the reference). The
position embeddings are scaled up so that random weights do not simply
repeat the last token (tied embeddings favour it), which would make the
reference a poor test. Needs only Debian's python3-torch.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts", "models"))
import gpt2  # noqa: E402


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    cfg = dict(vocab=256, d=64, heads=4, layers=2, ctx=4096)
    for i in range(1, len(args) - 1, 2):
        cfg[args[i].lstrip("-")] = int(args[i + 1])
    torch.manual_seed(0)
    m = gpt2.GPT2(**cfg).eval()
    with torch.no_grad():
        m.wpe.weight.mul_(40.0)
    gpt2.export_onnx(m, out)
    prompt = list(b"Hello")
    with torch.no_grad():
        past = m.empty_past()
        ids = torch.tensor([prompt])
        pos, got = 0, []
        for _ in range(16):
            t = ids.shape[1]
            outs = m(ids, torch.ones(1, pos + t, dtype=torch.long),
                     torch.arange(pos, pos + t).unsqueeze(0), *past)
            past = list(outs[1:])
            pos += t
            nxt = int(outs[0][0, -1].argmax())
            got.append(nxt)
            ids = torch.tensor([[nxt]])
    with open(out + ".json", "w") as f:
        json.dump(dict(cfg, greedy_prompt=prompt, greedy_tokens=got), f)


if __name__ == "__main__":
    main()

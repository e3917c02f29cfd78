#!/usr/bin/python3
"""Exports a GPT-2-architecture decoder with random weights (a fixed seed) to
ONNX with a KV cache in Hugging Face's layout (see gpt2.py).

    export_gpt2.py OUTDIR [--size tiny|small] [--vocab N] [--layers N]
                   [--heads N] [--d N] [--ctx N] [--seed N] [--no-test-data]

--size small is GPT-2 small (vocab 50257, 12 layers, 12 heads, d 768,
context 1024: 124M parameters, ~500 MB of float32: generated, never
committed); tiny (the default) is vocab 512, 2 layers, 4 heads, d 64,
context 128. The other flags override the size's values. Writes
OUTDIR/model.onnx and, unless --no-test-data, test_data_set_0 (a prefill of 7
tokens, batch 2) and test_data_set_1 (one decode step with that past) for
`rouse run OUTDIR`.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2  # noqa: E402

SIZES = {
    "tiny": dict(vocab=512, layers=2, heads=4, d=64, ctx=128),
    "small": dict(vocab=50257, layers=12, heads=12, d=768, ctx=1024),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    for k in ("vocab", "layers", "heads", "d", "ctx"):
        ap.add_argument("--" + k, type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-test-data", action="store_true")
    a = ap.parse_args()
    cfg = dict(SIZES[a.size])
    for k in cfg:
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    if cfg["d"] % cfg["heads"]:
        sys.exit("export_gpt2: --d must be a multiple of --heads")
    torch.manual_seed(a.seed)
    model = gpt2.GPT2(**cfg).eval()
    os.makedirs(a.outdir, exist_ok=True)
    gpt2.export_onnx(model, os.path.join(a.outdir, "model.onnx"))
    if not a.no_test_data:
        prompt = torch.randint(0, cfg["vocab"], (2, 7))
        gpt2.write_test_data(model, a.outdir, prompt)
    n = sum(p.numel() for p in model.parameters())
    print("export_gpt2: %s: %d layers, %d heads, d %d, vocab %d, context %d: %.1fM parameters"
          % (a.outdir, cfg["layers"], cfg["heads"], cfg["d"], cfg["vocab"], cfg["ctx"], n / 1e6))


if __name__ == "__main__":
    main()

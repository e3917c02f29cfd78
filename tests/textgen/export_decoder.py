#!/usr/bin/python3
"""Exports a GPT-2-architecture decoder with a KV cache, random weights, in
the layout Hugging Face's ONNX exports use:

  inputs   input_ids [batch, seq] int64, attention_mask [batch, past+seq]
           int64, position_ids [batch, seq] int64,
           past_key_values.N.key / .value [batch, heads, past, head_dim]
  outputs  logits [batch, seq, vocab], present.N.key / .value
           [batch, heads, past+seq, head_dim]

    export_decoder.py OUT.onnx [--size tiny|small] [--vocab V] [--ctx C]

tiny: 2 layers, 4 heads, d 64, vocab 256 (bytes as tokens), 4096 positions;
small: GPT-2 small's shape (12 layers, 12 heads, d 768, vocab 50257, 1024
positions). Also writes OUT.onnx.json with the shape, and (tiny) a greedy
reference continuation of a fixed prompt that tests compare with.
Needs only Debian's python3-torch.
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x, bias, past_k, past_v):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = torch.cat([past_k, k.view(b, t, h, d // h).transpose(1, 2)], dim=2)
        v = torch.cat([past_v, v.view(b, t, h, d // h).transpose(1, 2)], dim=2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h)) + bias
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, k, v


class Decoder(nn.Module):
    def __init__(self, vocab, d, heads, layers, ctx):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        t = input_ids.shape[1]
        total = attention_mask.shape[1]
        x = self.wte(input_ids) + self.wpe(position_ids)
        # causal over the new tokens (query i sees keys up to total - t + i),
        # and the attention mask over every key
        qi = torch.arange(t).unsqueeze(1) + (total - t)
        kj = torch.arange(total).unsqueeze(0)
        allowed = (kj <= qi).unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] > 0)
        bias = (~allowed).float() * -1e9
        presents = []
        for i, blk in enumerate(self.h):
            x, k, v = blk(x, bias, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        logits = self.lm_head(self.ln_f(x))
        return (logits, *presents)


SIZES = {
    "tiny": dict(vocab=256, d=64, heads=4, layers=2, ctx=4096),
    "small": dict(vocab=50257, d=768, heads=12, layers=12, ctx=1024),
}


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    size = "tiny"
    over = {}
    i = 1
    while i < len(args):
        if args[i] == "--size":
            size = args[i + 1]
        elif args[i] == "--vocab":
            over["vocab"] = int(args[i + 1])
        elif args[i] == "--ctx":
            over["ctx"] = int(args[i + 1])
        else:
            sys.exit("unknown argument " + args[i])
        i += 2
    cfg = dict(SIZES[size], **over)
    torch.manual_seed(0)
    m = Decoder(**cfg).eval()
    if size == "tiny":
        # Sharper logits than random init gives, so that sampling and greedy
        # decoding differ visibly and ties never decide a test.
        with torch.no_grad():
            m.lm_head.weight.mul_(8.0)
    L, H, hd = cfg["layers"], cfg["heads"], cfg["d"] // cfg["heads"]
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in range(L):
        for kv in ("key", "value"):
            in_names.append("past_key_values.%d.%s" % (n, kv))
            out_names.append("present.%d.%s" % (n, kv))
            dyn[in_names[-1]] = {0: "batch_size", 2: "past_sequence_length"}
            dyn[out_names[-1]] = {0: "batch_size", 2: "total_sequence_length"}
    ids = torch.randint(0, cfg["vocab"], (1, 4))
    past = [torch.rand(1, H, 3, hd) for _ in range(2 * L)]
    torch.onnx.export(m, (ids, torch.ones(1, 7, dtype=torch.long),
                          torch.arange(3, 7).unsqueeze(0), *past),
                      out, opset_version=17, input_names=in_names, output_names=out_names,
                      dynamic_axes=dyn, do_constant_folding=True)
    meta = dict(cfg, size=size)
    if size == "tiny":
        # Greedy continuation of a fixed prompt, prefill then step by step.
        prompt = list(b"Hello")
        with torch.no_grad():
            past = [torch.zeros(1, H, 0, hd) for _ in range(2 * L)]
            ids = torch.tensor([prompt])
            pos = 0
            got = []
            for _ in range(16):
                t = ids.shape[1]
                outs = m(ids, torch.ones(1, pos + t, dtype=torch.long),
                         torch.arange(pos, pos + t).unsqueeze(0), *past)
                past = list(outs[1:])
                pos += t
                nxt = int(outs[0][0, -1].argmax())
                got.append(nxt)
                ids = torch.tensor([[nxt]])
        meta["greedy_prompt"] = prompt
        meta["greedy_tokens"] = got
    with open(out + ".json", "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()

"""A GPT-2-architecture decoder in PyTorch and its ONNX export with a KV cache
in the layout Hugging Face's ONNX exports use.

The model is GPT-2's (token and learned position embeddings, pre-LayerNorm
blocks of causal self-attention and a GELU (tanh) MLP, a final LayerNorm, the
output projection tied to the token embedding), written out so that only
PyTorch (Debian's python3-torch) is needed.

The exported graph:
  inputs   input_ids [batch, sequence] int64
           attention_mask [batch, past_sequence + sequence] int64 (1 = attend)
           position_ids [batch, sequence] int64
           past_key_values.N.key / .value [batch, heads, past_sequence, head_dim] float
  outputs  logits [batch, sequence, vocab] float
           present.N.key / .value [batch, heads, past_sequence + sequence, head_dim]
A prefill runs with an empty past (past_sequence 0); each decode step feeds
the presents back as the next past.

Test data in the ONNX backend-test layout (test_data_set_K/input_N.pb,
output_N.pb: serialized TensorProto, written here by hand) for
`rouse run DIR`: a prefill with an empty past, then one decode step with that
past.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17  # the newest opset this PyTorch exports


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
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


class GPT2(nn.Module):
    def __init__(self, vocab=50257, d=768, heads=12, layers=12, ctx=1024):
        super().__init__()
        self.config = dict(vocab=vocab, d=d, heads=heads, layers=layers, ctx=ctx)
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases.
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        """One run over `sequence` new tokens after `past_sequence` cached
        ones; returns (logits, present.0.key, present.0.value, ...)."""
        t = input_ids.shape[1]
        p = past[0].shape[2]
        x = self.wte(input_ids) + self.wpe(position_ids)
        # Causal within the new tokens, all of the past, and attention_mask
        # over both. A large negative number rather than -inf, so a row that
        # attends to nothing (padding) gives no NaN.
        causal = torch.tril(torch.ones(t, p + t, dtype=torch.bool), diagonal=p)
        allowed = causal[None, None, :, :] & (attention_mask[:, None, None, :] != 0)
        bias = torch.where(allowed, torch.zeros((), dtype=x.dtype),
                           torch.full((), torch.finfo(x.dtype).min, dtype=x.dtype))
        presents = []
        for i, blk in enumerate(self.h):
            x, k, v = blk(x, bias, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        logits = self.ln_f(x) @ self.wte.weight.t()
        return (logits, *presents)

    def empty_past(self, batch=1):
        c = self.config
        hd = c["d"] // c["heads"]
        return [torch.zeros(batch, c["heads"], 0, hd) for _ in range(2 * c["layers"])]


def io_names(layers):
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch", 1: "sequence"},
           "attention_mask": {0: "batch", 1: "total_sequence"},
           "position_ids": {0: "batch", 1: "sequence"},
           "logits": {0: "batch", 1: "sequence"}}
    for i in range(layers):
        for kv in ("key", "value"):
            in_names.append("past_key_values.%d.%s" % (i, kv))
            out_names.append("present.%d.%s" % (i, kv))
            dyn[in_names[-1]] = {0: "batch", 2: "past_sequence"}
            dyn[out_names[-1]] = {0: "batch", 2: "total_sequence"}
    return in_names, out_names, dyn


def export_onnx(model, path):
    """Writes model.onnx at path. Traced with a non-empty past so that the
    graph keeps the concatenation with the cache."""
    model.eval()
    c = model.config
    hd = c["d"] // c["heads"]
    in_names, out_names, dyn = io_names(c["layers"])
    ids = torch.zeros(1, 2, dtype=torch.long)
    past = [torch.zeros(1, c["heads"], 3, hd) for _ in range(2 * c["layers"])]
    args = (ids, torch.ones(1, 5, dtype=torch.long), torch.tensor([[3, 4]]), *past)
    torch.onnx.export(model, args, path, opset_version=OPSET, input_names=in_names,
                      output_names=out_names, dynamic_axes=dyn, do_constant_folding=True)


# --- test data (TensorProto written by hand) -----------------------------------

_DTYPES = {torch.float32: 1, torch.int64: 7}


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)


def _key(field, wire):
    return _varint((field << 3) | wire)


def tensor_proto(t, name):
    """onnx.TensorProto: dims (1), data_type (2), name (8), raw_data (9)."""
    t = t.detach().contiguous().cpu()
    out = bytearray()
    for d in t.shape:
        out += _key(1, 0) + _varint(int(d))
    out += _key(2, 0) + _varint(_DTYPES[t.dtype])
    nb = name.encode()
    out += _key(8, 2) + _varint(len(nb)) + nb
    raw = t.numpy().tobytes()
    out += _key(9, 2) + _varint(len(raw)) + raw
    return bytes(out)


def write_set(folder, k, names, tensors, prefix):
    d = os.path.join(folder, "test_data_set_%d" % k)
    os.makedirs(d, exist_ok=True)
    for i, (n, t) in enumerate(zip(names, tensors)):
        with open(os.path.join(d, "%s_%d.pb" % (prefix, i)), "wb") as f:
            f.write(tensor_proto(t, n))


def write_test_data(model, folder, prompt):
    """test_data_set_0: prefill of prompt [batch, n] with an empty past;
    test_data_set_1: one decode step (each row's greedy next token) with the
    past from set 0."""
    c = model.config
    in_names, out_names, _ = io_names(c["layers"])
    b, n = prompt.shape
    with torch.no_grad():
        mask = torch.ones(b, n, dtype=torch.long)
        pos = torch.arange(n).unsqueeze(0).expand(b, n).contiguous()
        past = model.empty_past(b)
        outs = model(prompt, mask, pos, *past)
        write_set(folder, 0, in_names, [prompt, mask, pos, *past], "input")
        write_set(folder, 0, out_names, outs, "output")
        nxt = outs[0][:, -1, :].argmax(-1, keepdim=True)
        mask = torch.ones(b, n + 1, dtype=torch.long)
        pos = torch.full((b, 1), n, dtype=torch.long)
        past = list(outs[1:])
        outs = model(nxt, mask, pos, *past)
        write_set(folder, 1, in_names, [nxt, mask, pos, *past], "input")
        write_set(folder, 1, out_names, outs, "output")

#!/usr/bin/python3
"""Exports the model families rouse is tested on from PyTorch.

    export_torch.py OUTDIR [--list] [--long] [NAME...]

For each model: random weights (a fixed seed), exported to ONNX with
torch.onnx.export, in the ONNX backend-test layout that `rouse run DIR`
checks: OUTDIR/NAME/model.onnx and OUTDIR/NAME/test_data_set_K/{input,output}_N.pb
(serialized onnx.TensorProto) holding inputs and PyTorch's outputs.
A model whose export fails is reported as `NAME: export failed: <reason>`
and skipped; the exit status is 0 unless nothing could be exported.

Models:
  - the smallest variant of each torchvision classification family that
    exports (the normal suite), larger variants with --long;
  - fcn_resnet50 / lraspp_mobilenet_v3_large segmentation (Resize);
  - gpt_tiny: a GPT-style decoder with a causal mask over the whole
    sequence, and gpt_tiny_kv: the same weights exported with a KV cache in
    the layout Hugging Face's ONNX exports use (inputs input_ids,
    attention_mask, past_key_values.N.key/.value [batch, heads, past,
    head_dim]; outputs logits, present.N.key/.value), with one test set per
    generated token, each set's past taken from the previous step;
  - encoder_tiny: a BERT-style encoder with dynamic batch and sequence,
    test sets at several (batch, sequence) shapes.

Only PyTorch (Debian's python3-torch, python3-torchvision) is needed: the
TensorProto files are written by hand (a dozen lines of protobuf).
"""
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17  # the newest opset this PyTorch exports and rouse implements

# --- TensorProto writer -------------------------------------------------------

_DTYPES = {
    torch.float32: 1,
    torch.uint8: 2,
    torch.int8: 3,
    torch.int32: 6,
    torch.int64: 7,
    torch.bool: 9,
    torch.float64: 11,
}


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint((field << 3) | wire)


def tensor_proto(t, name=""):
    """onnx.TensorProto: dims (1), data_type (2), name (8), raw_data (9)."""
    t = t.detach().contiguous().cpu()
    out = bytearray()
    for d in t.shape:
        out += _key(1, 0) + _varint(int(d))
    out += _key(2, 0) + _varint(_DTYPES[t.dtype])
    if name:
        nb = name.encode()
        out += _key(8, 2) + _varint(len(nb)) + nb
    raw = t.numpy().tobytes()
    out += _key(9, 2) + _varint(len(raw)) + raw
    return bytes(out)


def write_set(folder, k, inputs, outputs, in_names=None, out_names=None):
    d = os.path.join(folder, "test_data_set_%d" % k)
    os.makedirs(d, exist_ok=True)
    for i, t in enumerate(inputs):
        with open(os.path.join(d, "input_%d.pb" % i), "wb") as f:
            f.write(tensor_proto(t, in_names[i] if in_names else ""))
    for i, t in enumerate(outputs):
        with open(os.path.join(d, "output_%d.pb" % i), "wb") as f:
            f.write(tensor_proto(t, out_names[i] if out_names else ""))


def export(model, args, path, in_names, out_names, dynamic_axes=None):
    # Not under no_grad: with gradients enabled, nn.MultiheadAttention does not
    # take its fused inference path (aten::_native_multi_head_attention), which
    # has no ONNX export; the traced graph is the same arithmetic.
    model.eval()
    torch.onnx.export(model, args, path, opset_version=OPSET, input_names=in_names,
                      output_names=out_names, dynamic_axes=dynamic_axes,
                      do_constant_folding=True)


def flat_outputs(y):
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        return list(y.values())
    out = []
    for v in y:
        out += flat_outputs(v)
    return out


# --- torchvision ----------------------------------------------------------------

# (name, constructor, input size, long?)
def vision_models():
    import torchvision.models as tvm
    import torchvision.models.segmentation as seg

    m = [
        ("resnet18", tvm.resnet18, 224, False),
        ("densenet121", tvm.densenet121, 224, False),
        ("shufflenet_v2_x0_5", tvm.shufflenet_v2_x0_5, 224, False),
        ("mnasnet0_5", tvm.mnasnet0_5, 224, False),
        ("mobilenet_v3_small", tvm.mobilenet_v3_small, 224, False),
        ("efficientnet_b0", tvm.efficientnet_b0, 224, False),
        ("regnet_y_400mf", tvm.regnet_y_400mf, 224, False),
        ("convnext_tiny", tvm.convnext_tiny, 224, False),
        ("vit_b_16", tvm.vit_b_16, 224, False),
        ("swin_t", tvm.swin_t, 224, False),
        ("googlenet", lambda: tvm.googlenet(aux_logits=False, init_weights=True), 224, False),
        ("squeezenet1_0", tvm.squeezenet1_0, 224, False),
        ("alexnet", tvm.alexnet, 224, True),
        ("vgg11", tvm.vgg11, 224, True),
        ("lraspp_mobilenet_v3_large",
         lambda: seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None), 224, False),
        ("fcn_resnet50",
         lambda: seg.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False), 224, True),
        ("resnet50", tvm.resnet50, 224, True),
        ("densenet201", tvm.densenet201, 224, True),
        ("efficientnet_b3", tvm.efficientnet_b3, 300, True),
        ("mobilenet_v3_large", tvm.mobilenet_v3_large, 224, True),
        ("regnet_y_3_2gf", tvm.regnet_y_3_2gf, 224, True),
        ("convnext_small", tvm.convnext_small, 224, True),
        ("swin_s", tvm.swin_s, 224, True),
        ("inception_v3", lambda: tvm.inception_v3(aux_logits=False, init_weights=True), 299, True),
        ("deeplabv3_mobilenet_v3_large",
         lambda: seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                  aux_loss=False), 224, True),
    ]
    return m


class _SegOut(nn.Module):
    """Segmentation models return a dict; export its 'out' tensor."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


def calibrate_batchnorm(m, size):
    """Random weights with BatchNorm's initial statistics (mean 0, variance
    1) make activations shrink or grow layer after layer (efficientnet_b0's
    logits came out near 1e-20, which any tolerance accepts). Running a few
    random batches in training mode sets each BatchNorm's statistics to what
    it actually sees, as a trained network's are: outputs of order 1."""
    bns = [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    m.train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.rand(4, 3, size, size))
    m.eval()


def randomize_zero_weights(m):
    """Some families start layers at zero (ViT's classification head, the
    last BatchNorm of residual branches with zero_init_residual): their
    outputs would then be constants that any engine reproduces. Such weights
    get random values instead."""
    with torch.no_grad():
        for mod in m.modules():
            w = getattr(mod, "weight", None)
            if isinstance(w, torch.Tensor) and w.numel() > 1 and not w.any():
                w.normal_(0.0, 0.05)


def check_outputs(name, ys):
    """A check against outputs that barely vary would pass whatever rouse
    computed: refuse to write such a test."""
    for i, y in enumerate(ys):
        if y.is_floating_point() and y.numel() > 1 and float(y.std()) < 1e-3:
            raise RuntimeError("%s output %d is degenerate (std %.3g)" % (name, i, float(y.std())))


def export_vision(out, name, ctor, size):
    torch.manual_seed(0)
    m = ctor()
    randomize_zero_weights(m)
    if isinstance(m, nn.Module) and "segmentation" in type(m).__module__:
        m = _SegOut(m)
    calibrate_batchnorm(m, size)
    m.eval()
    x = torch.rand(1, 3, size, size)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    export(m, (x,), os.path.join(folder, "model.onnx"), ["input"], ["output"])
    # The reference is computed in double precision: deep networks (FCN's
    # ResNet-50, Inception v3) drift by a few 1e-4 between float32 engines
    # (PyTorch's own float32 outputs against ONNX Runtime's as much as
    # rouse's), so a float32 reference would measure PyTorch's rounding too.
    with torch.no_grad():
        y = [t.float() for t in flat_outputs(m.double()(x.double()))]
    check_outputs(name, y)
    write_set(folder, 0, [x], y)
    return y


# --- GPT-style decoder -------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x, mask, past_k=None, past_v=None):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = k.view(b, t, h, d // h).transpose(1, 2)
        v = v.view(b, t, h, d // h).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(-2, -1)) / float((d // h) ** 0.5)
        att = att.masked_fill(mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab=96, d=64, heads=4, layers=2, ctx=64):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids):
        """Whole sequence with a causal mask (Trilu)."""
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        ones = torch.ones(t, t, dtype=torch.bool)
        mask = ~torch.tril(ones)
        for blk in self.blocks:
            x, _, _ = blk(x, mask)
        return self.head(self.ln(x))


class GPTWithPast(nn.Module):
    """The same weights, one step at a time with a KV cache (HF layout)."""

    def __init__(self, gpt):
        super().__init__()
        self.g = gpt

    def forward(self, input_ids, attention_mask, *past):
        t = input_ids.shape[1]
        p = past[0].shape[2]
        pos = torch.arange(p, p + t, dtype=torch.long).unsqueeze(0)
        x = self.g.tok(input_ids) + self.g.pos(pos)
        # causal within the new tokens, and attention_mask [b, p + t] over all
        causal = ~torch.tril(torch.ones(t, p + t, dtype=torch.bool), diagonal=p)
        pad = (attention_mask == 0)[:, None, None, :]
        mask = causal[None, None, :, :] | pad
        presents = []
        for i, blk in enumerate(self.g.blocks):
            x, k, v = blk(x, mask, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        return (self.g.head(self.g.ln(x)), *presents)


def export_gpt(out):
    torch.manual_seed(0)
    g = GPT().eval()
    layers, heads, hd = len(g.blocks), g.blocks[0].heads, 64 // g.blocks[0].heads

    folder = os.path.join(out, "gpt_tiny")
    os.makedirs(folder, exist_ok=True)
    ids = torch.randint(0, 96, (2, 12))
    export(g, (ids,), os.path.join(folder, "model.onnx"), ["input_ids"], ["logits"],
           {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}})
    with torch.no_grad():
        write_set(folder, 0, [ids], [g(ids)])
        ids2 = torch.randint(0, 96, (1, 30))
        check_outputs("gpt_tiny", [g(ids)])
        write_set(folder, 1, [ids2], [g(ids2)])

    folder = os.path.join(out, "gpt_tiny_kv")
    os.makedirs(folder, exist_ok=True)
    m = GPTWithPast(g).eval()
    in_names = ["input_ids", "attention_mask"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch", 1: "sequence"},
           "attention_mask": {0: "batch", 1: "total_sequence"},
           "logits": {0: "batch", 1: "sequence"}}
    for i in range(layers):
        for kv in ("key", "value"):
            in_names.append("past_key_values.%d.%s" % (i, kv))
            out_names.append("present.%d.%s" % (i, kv))
            dyn[in_names[-1]] = {0: "batch", 2: "past_sequence"}
            dyn[out_names[-1]] = {0: "batch", 2: "total_sequence"}
    # Export with a non-empty past so the graph keeps the concatenation.
    prompt = torch.randint(0, 96, (1, 5))
    past = [torch.zeros(1, heads, 0, hd) for _ in range(2 * layers)]
    ex_past = [torch.rand(1, heads, 3, hd) for _ in range(2 * layers)]
    export(m, (prompt, torch.ones(1, 8, dtype=torch.long), *ex_past),
           os.path.join(folder, "model.onnx"), in_names, out_names, dyn)
    # Test sets: the prompt with an empty past, then token by token (greedy).
    with torch.no_grad():
        ids = prompt
        total = 0
        for k in range(6):
            total += ids.shape[1]
            am = torch.ones(1, total, dtype=torch.long)
            outs = m(ids, am, *past)
            write_set(folder, k, [ids, am, *past], list(outs))
            past = list(outs[1:])
            ids = outs[0][:, -1:, :].argmax(-1)
        # The whole-sequence model agrees with the stepped one (same weights).


# --- encoder with dynamic batch and sequence ----------------------------------------

class Encoder(nn.Module):
    """BERT-style: token + position embeddings, pre-LN blocks whose
    attention skips padded positions, a head on the first token."""

    def __init__(self, vocab=128, d=64, heads=4, layers=2, ctx=160):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, 8)

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        mask = (attention_mask == 0)[:, None, None, :]
        for blk in self.blocks:
            x, _, _ = blk(x, mask)
        return self.out(self.ln(x)[:, 0, :])


def export_encoder(out):
    torch.manual_seed(0)
    m = Encoder().eval()
    folder = os.path.join(out, "encoder_tiny")
    os.makedirs(folder, exist_ok=True)
    ids = torch.randint(0, 128, (2, 16))
    am = torch.ones(2, 16, dtype=torch.long)
    export(m, (ids, am), os.path.join(folder, "model.onnx"), ["input_ids", "attention_mask"],
           ["logits"], {"input_ids": {0: "batch", 1: "sequence"},
                        "attention_mask": {0: "batch", 1: "sequence"},
                        "logits": {0: "batch"}})
    with torch.no_grad():
        k = 0
        for b, t in ((1, 8), (4, 32), (8, 128), (2, 8), (3, 17)):
            ids = torch.randint(0, 128, (b, t))
            am = torch.ones(b, t, dtype=torch.long)
            am[0, t // 2:] = 0  # one padded row
            y = m(ids, am)
            check_outputs("encoder_tiny", [y])
            write_set(folder, k, [ids, am], [y])
            k += 1


# --- main ----------------------------------------------------------------------------

def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    out = argv[1]
    want_long = "--long" in argv
    names = [a for a in argv[2:] if not a.startswith("--")]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    jobs = []
    for name, ctor, size, is_long in vision_models():
        jobs.append((name, is_long, lambda n=name, c=ctor, s=size: export_vision(out, n, c, s)))
    jobs.append(("gpt_tiny", False, lambda: export_gpt(out)))
    jobs.append(("encoder_tiny", False, lambda: export_encoder(out)))
    if "--list" in argv:
        for name, is_long, _ in jobs:
            print(name + (" long" if is_long else ""))
        return 0
    done = 0
    for name, is_long, fn in jobs:
        if names and name not in names and not (name == "gpt_tiny" and "gpt_tiny_kv" in names):
            continue
        if not names and is_long and not want_long:
            continue
        try:
            ys = fn()
            std = ""
            if ys:
                std = " (output std %s)" % ", ".join("%.3g" % float(y.float().std()) for y in ys)
            print("%s: exported%s" % (name, std), flush=True)
            done += 1
        except Exception as e:  # report and go on: the list says which do not export
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print("%s: export failed: %s" % (name, msg[:300]), flush=True)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

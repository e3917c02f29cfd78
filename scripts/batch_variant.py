#!/usr/bin/env python3
"""Writes a batched variant of a model in the ONNX backend-test layout, for
the dynamic batching benchmark (bench/batching.sh); Python's standard
library only (the protobuf wire format is read and written here).

  batch_variant.py MODEL_DIR OUT_DIR [--dynbatch] [--batches 1,8,32]

OUT_DIR/model.onnx is MODEL_DIR/model.onnx, or with --dynbatch the same
graph re-declared with a dynamic batch: dim 0 of every graph input and
output becomes the symbolic dim "batch", and every Reshape whose target
shape is a constant starting with 1 gets 0 there instead (ONNX: "copy dim 0
of the input"), so that nothing pins the batch at 1 (torch exports of a
fixed-shape model bake it into their Reshapes: bert_tiny's attention).
Weights and every other node stay as they are.

For each batch size B, OUT_DIR/b<B>/test_data_set_0 holds MODEL_DIR's
test_data_set_0 inputs and reference outputs tiled B times along dim 0: the
rows of a batch-agnostic model are independent, so the tiled outputs are
the reference of the tiled inputs (what ort_bench.js checks and times).
The shared models are read-only: OUT_DIR must be elsewhere.
"""
import os
import struct
import sys


# --- the protobuf wire format -------------------------------------------------------

def read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def parse(buf):
    """A message as a list of [field, wire type, value] (value: int or bytes)."""
    out, i = [], 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append([field, wt, v])
    return out


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(msg):
    out = bytearray()
    for field, wt, v in msg:
        out += varint(field << 3 | wt)
        if wt == 0:
            out += varint(v)
        elif wt == 2:
            out += varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def get(msg, field):
    return [e for e in msg if e[0] == field]


def text(e):
    return e[2].decode()


# --- the model ----------------------------------------------------------------------

def dynamic_batch(vi):
    """ValueInfoProto with dim 0 of its tensor shape made "batch"."""
    vi = parse(vi)
    for t in get(vi, 2):                       # type
        tp = parse(t[2])
        for tt in get(tp, 1):                  # tensor_type
            tensor = parse(tt[2])
            for sh in get(tensor, 2):          # shape
                shape = parse(sh[2])
                dims = get(shape, 1)
                if dims:
                    dims[0][2] = encode([[2, 2, b"batch"]])  # dim_param
                sh[2] = encode(shape)
            tt[2] = encode(tensor)
        t[2] = encode(tp)
    return encode(vi)


def int64s(tensor):
    """The int64 values of a TensorProto (raw_data or int64_data), or None."""
    if not any(e[0] == 2 and e[2] == 7 for e in tensor):
        return None
    for e in get(tensor, 9):
        return list(struct.unpack("<%dq" % (len(e[2]) // 8), e[2]))
    vals = []
    for e in get(tensor, 7):
        if e[1] == 2:
            j = 0
            while j < len(e[2]):
                v, j = read_varint(e[2], j)
                vals.append(v - (1 << 64) if v >= 1 << 63 else v)
        else:
            vals.append(e[2] - (1 << 64) if e[2] >= 1 << 63 else e[2])
    return vals


def set_int64s(tensor, vals):
    rest = [e for e in tensor if e[0] not in (7, 9)]
    return rest + [[9, 2, struct.pack("<%dq" % len(vals), *vals)]]


def unpin(tensor):
    """A Reshape target [1, ...] as [0, ...]; None when it is not one."""
    vals = int64s(tensor)
    if not vals or vals[0] != 1:
        return None
    return encode(set_int64s(tensor, [0] + vals[1:]))


def rewrite(model_bytes):
    model = parse(model_bytes)
    n_unpinned = 0
    for g in get(model, 7):
        graph = parse(g[2])
        nodes = [parse(n[2]) for n in get(graph, 1)]
        targets = set()
        for node in nodes:
            if text(get(node, 4)[0]) == "Reshape":
                ins = get(node, 1)
                if len(ins) > 1:
                    targets.add(text(ins[1]))
        for e in graph:
            if e[0] in (11, 12):               # input, output
                e[2] = dynamic_batch(e[2])
            elif e[0] == 5:                    # initializer
                t = parse(e[2])
                if text(get(t, 8)[0]) in targets and unpin(t):
                    e[2] = unpin(t)
                    n_unpinned += 1
            elif e[0] == 1:                    # a Constant node feeding a Reshape
                node = parse(e[2])
                outs = get(node, 2)
                if text(get(node, 4)[0]) != "Constant" or not outs or text(outs[0]) not in targets:
                    continue
                for a in get(node, 5):
                    attr = parse(a[2])
                    for t in get(attr, 5):
                        u = unpin(parse(t[2]))
                        if u:
                            t[2] = u
                            n_unpinned += 1
                    a[2] = encode(attr)
                e[2] = encode(node)
        # Intermediate shapes an exporter declared would still say 1.
        graph = [e for e in graph if e[0] != 13]
        g[2] = encode(graph)
    return encode(model), n_unpinned


# --- test data ----------------------------------------------------------------------

def tile(tensor_bytes, b):
    """A TensorProto repeated b times along dim 0 (raw_data only)."""
    t = parse(tensor_bytes)
    dims = []
    for e in get(t, 1):
        if e[1] == 2:
            j = 0
            while j < len(e[2]):
                v, j = read_varint(e[2], j)
                dims.append(v)
        else:
            dims.append(e[2])
    raw = get(t, 9)
    if not dims or not raw:
        raise ValueError("tiling needs dims and raw_data")
    dims[0] *= b
    rest = [e for e in t if e[0] not in (1, 9)]
    return encode([[1, 0, d] for d in dims] + rest + [[9, 2, raw[0][2] * b]])


def main(argv):
    batches, args, dyn, i = [1, 8, 32], [], False, 0
    while i < len(argv):
        if argv[i] == "--batches" and i + 1 < len(argv):
            batches = [int(x) for x in argv[i + 1].split(",")]
            i += 1
        elif argv[i] == "--dynbatch":
            dyn = True
        else:
            args.append(argv[i])
        i += 1
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src, "model.onnx"), "rb") as f:
        data = f.read()
    if dyn:
        data, n = rewrite(data)
        print("%s: dynamic batch declared, %d Reshape targets unpinned" % (out, n))
    with open(os.path.join(out, "model.onnx"), "wb") as f:
        f.write(data)
    ts = os.path.join(src, "test_data_set_0")
    for b in batches:
        d = os.path.join(out, "b%d" % b, "test_data_set_0")
        os.makedirs(d, exist_ok=True)
        for name in sorted(os.listdir(ts)):
            with open(os.path.join(ts, name), "rb") as f:
                t = f.read()
            with open(os.path.join(d, name), "wb") as f:
                f.write(tile(t, b))


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Writes a model that computes next to nothing, with a given model's input
and output, for the dynamic batching benchmark (bench/batching.sh): served
batched, it shows what serve's per-request HTTP work and batching's own
machinery deliver when the engine costs nothing, the ceiling of any model
whose requests look alike. Python's standard library only.

  null_model.py MODEL.onnx OUT.onnx

MODEL.onnx must have one float input [1 or batch, K] and one float output
[1 or batch, M] with M <= K (mlp: 784 in, 10 out). OUT.onnx has the same
names with a dynamic batch ("batch") and one node, a Slice of the input's
first M columns: the same request and reply bytes, and no arithmetic.
"""
import struct
import sys

from batch_variant import encode, get, parse, text


def tensor_dims(vi):
    """Name and dims (ints, 0 where symbolic) of a ValueInfoProto."""
    vi = parse(vi)
    name = text(get(vi, 1)[0])
    dims = []
    for t in get(vi, 2):
        for tt in get(parse(t[2]), 1):
            tensor = parse(tt[2])
            if get(tensor, 1)[0][2] != 1:
                raise SystemExit("null_model: %s is not float" % name)
            for sh in get(tensor, 2):
                for d in get(parse(sh[2]), 1):
                    dv = get(parse(d[2]), 1)
                    dims.append(dv[0][2] if dv else 0)
    return name, dims


def value_info(name, m):
    dims = encode([[1, 2, encode([[2, 2, b"batch"]])], [1, 2, encode([[1, 0, m]])]])
    tensor = encode([[1, 0, 1], [2, 2, dims]])
    return encode([[1, 2, name.encode()], [2, 2, encode([[1, 2, tensor]])]])


def int64_tensor(name, v):
    return encode([[1, 0, 1], [2, 0, 7], [8, 2, name.encode()], [9, 2, struct.pack("<q", v)]])


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = parse(open(sys.argv[1], "rb").read())
    graph = parse(get(model, 7)[0][2])
    inits = {text(get(parse(e[2]), 8)[0]) for e in get(graph, 5) if get(parse(e[2]), 8)}
    ins = [tensor_dims(e[2]) for e in get(graph, 11)]
    ins = [x for x in ins if x[0] not in inits]
    outs = [tensor_dims(e[2]) for e in get(graph, 12)]
    if len(ins) != 1 or len(outs) != 1 or len(ins[0][1]) != 2 or len(outs[0][1]) != 2:
        raise SystemExit("null_model: want one [batch, K] input and one [batch, M] output")
    (iname, (_, k)), (oname, (_, m)) = ins[0], outs[0]
    if not 0 < m <= k:
        raise SystemExit("null_model: the output (%d) is wider than the input (%d)" % (m, k))
    node = encode([[1, 2, iname.encode()], [1, 2, b"starts"], [1, 2, b"ends"], [1, 2, b"axes"],
                   [2, 2, oname.encode()], [3, 2, b"slice"], [4, 2, b"Slice"]])
    g = encode([[1, 2, node], [2, 2, b"null"],
                [5, 2, int64_tensor("starts", 0)], [5, 2, int64_tensor("ends", m)],
                [5, 2, int64_tensor("axes", 1)],
                [11, 2, value_info(iname, k)], [12, 2, value_info(oname, m)]])
    out = encode([[1, 0, 8], [2, 2, b"rouse null_model.py"], [7, 2, g],
                  [8, 2, encode([[1, 2, b""], [2, 0, 13]])]])
    with open(sys.argv[2], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()

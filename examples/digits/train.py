#!/usr/bin/python3
"""Trains the digits example model and writes every file in this folder.

Only needed to REGENERATE the model: building and testing rouse use the
committed files and never run this script. It needs the Debian packages
python3-numpy, python3-sklearn and python3-onnx (apt-get install them) and is
meant for the Debian interpreter, /usr/bin/python3:

    /usr/bin/python3 examples/digits/train.py

What it does:
  * loads scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16),
    scales pixels to [0, 1] by dividing by 16 (the model expects that scaling;
    k/16 is exact in float32), splits 75 % train / 25 % test (stratified);
  * trains a 64 -> 64 (Relu) -> 10 MLP with plain numpy: softmax
    cross-entropy, Adam, mini-batches, float64, then rounds weights to float32;
  * prints the test accuracy (computed in float32 from the exported weights);
  * exports model.onnx (opset 13): input "pixels" float32 [batch, 64],
    outputs "logits" float32 [batch, 10] and "probabilities" (Softmax of the
    logits), using only Gemm, Relu and Softmax;
  * writes samples/ (one test digit per class, as an OIP v2 JSON request body
    and as a .npy array) and test_data_set_0/ (all ten samples as one batch,
    with the outputs numpy computes from the exported float32 weights).

Deterministic: a fixed seed drives the split and the initialization and
shuffling, BLAS is held to one thread (set before numpy loads) so sums happen
in a fixed order, and the ONNX file holds no timestamps. Running the script
twice on one machine gives bit-identical files; another numpy/BLAS build may
round differently in the last bits.
"""

import os
import sys

# One BLAS thread: a multi-threaded BLAS may split sums differently from run
# to run, which would make the trained weights differ in their last bits.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError as e:
    sys.exit(
        "train.py: missing Python package (%s).\n"
        "It needs numpy, scikit-learn and onnx, only to regenerate the example model:\n"
        "  apt-get install python3-numpy python3-sklearn python3-onnx\n"
        "and run it with /usr/bin/python3." % e
    )

SEED = 20240531
HIDDEN = 64
EPOCHS = 150
BATCH = 32
LR = 0.003
HERE = os.path.dirname(os.path.abspath(__file__))


def train(x, y, rng):
    """Adam on softmax cross-entropy; returns float64 (w1, b1, w2, b2)."""
    n_in, n_out = x.shape[1], 10
    # He initialization for the Relu layer, Glorot-like for the output layer.
    params = [
        rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0.0, np.sqrt(1.0 / HIDDEN), (HIDDEN, n_out)),
        np.zeros(n_out),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    onehot = np.eye(n_out)[y]
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            xb, tb = x[idx], onehot[idx]
            w1, b1, w2, b2 = params
            h_pre = xb @ w1 + b1
            h = np.maximum(h_pre, 0.0)
            z = h @ w2 + b2
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            dz = (p - tb) / len(xb)
            dh = (dz @ w2.T) * (h_pre > 0)
            grads = [xb.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]
            step += 1
            for i, g in enumerate(grads):
                m[i] = b1_ * m[i] + (1 - b1_) * g
                v[i] = b2_ * v[i] + (1 - b2_) * g * g
                mh = m[i] / (1 - b1_**step)
                vh = v[i] / (1 - b2_**step)
                params[i] = params[i] - LR * mh / (np.sqrt(vh) + eps)
    return params


def forward32(x, w):
    """The exported model's computation in float32: (logits, probabilities)."""
    w1, b1, w2, b2 = w
    h = np.maximum(x @ w1 + b1, np.float32(0))
    logits = (h @ w2 + b2).astype(np.float32)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return logits, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def export(w):
    w1, b1, w2, b2 = w
    inits = [
        numpy_helper.from_array(w1, "fc1.weight"),
        numpy_helper.from_array(b1, "fc1.bias"),
        numpy_helper.from_array(w2, "fc2.weight"),
        numpy_helper.from_array(b2, "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Gemm", ["pixels", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1"),
        helper.make_node("Relu", ["fc1"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "fc2.weight", "fc2.bias"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 64])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10]),
        ],
        initializer=inits,
    )
    graph.doc_string = (
        "8x8 handwritten digit classifier (scikit-learn digits). Input: 64 pixels "
        "in row-major order, each the 0..16 intensity divided by 16."
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="rouse-examples-digits",
        producer_version="1",
        ir_version=8,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def write_json(path, pixels):
    # repr() of a float gives the shortest text that reads back as the same
    # value; every k/16 is exact, so the JSON holds the float32 values exactly.
    data = ",".join(repr(float(v)) for v in pixels)
    with open(path, "w") as f:
        f.write('{"inputs":[{"name":"pixels","shape":[1,64],"datatype":"FP32",'
                '"data":[%s]}]}\n' % data)


def write_pb(path, array, name):
    t = numpy_helper.from_array(array, name)  # raw_data, little-endian
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=SEED % (2**32), stratify=y
    )
    rng = np.random.default_rng(SEED)
    w = [p.astype(np.float32) for p in train(x_tr.astype(np.float64), y_tr, rng)]

    logits_te, _ = forward32(x_te, w)
    acc = float((logits_te.argmax(axis=1) == y_te).mean())
    print("train %d, test %d images; test accuracy %.2f %%" % (len(x_tr), len(x_te), 100 * acc))
    if acc <= 0.95:
        sys.exit("train.py: test accuracy %.4f is not above 0.95; not writing files" % acc)

    model = export(w)
    onnx.save(model, os.path.join(HERE, "model.onnx"))

    # One sample per class: the first test image of that digit that the model
    # classifies correctly, so the label in the file name is what it predicts.
    samples_dir = os.path.join(HERE, "samples")
    os.makedirs(samples_dir, exist_ok=True)
    picks = []
    for digit in range(10):
        ok = np.flatnonzero((y_te == digit) & (logits_te.argmax(axis=1) == digit))
        picks.append(int(ok[0]))
        px = x_te[ok[0]].reshape(1, 64)
        np.save(os.path.join(samples_dir, "digit-%d.npy" % digit), px)
        write_json(os.path.join(samples_dir, "digit-%d.json" % digit), px[0])

    batch = x_te[picks]
    logits, probs = forward32(batch, w)
    set_dir = os.path.join(HERE, "test_data_set_0")
    os.makedirs(set_dir, exist_ok=True)
    write_pb(os.path.join(set_dir, "input_0.pb"), batch, "pixels")
    write_pb(os.path.join(set_dir, "output_0.pb"), logits, "logits")
    write_pb(os.path.join(set_dir, "output_1.pb"), probs, "probabilities")
    print("wrote model.onnx, samples/digit-{0..9}.{json,npy}, test_data_set_0/ "
          "(batch of %d, predicted %s)" % (len(picks), logits.argmax(axis=1).tolist()))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes the digits data set's train/test split as NumPy arrays, for
accuracy checks of lower-precision plans (tests/engine/test_digits_precision.sh):

  test_split/pixels.npy   float32 [450, 64]  the test split (25 %), scaled as
                          the model expects (intensity / 16)
  test_split/labels.npy   int64   [450]      their digits
  calibration/pixels.npy  float32 [200, 64]  the first 200 images of the train
                          split: calibration samples stacked on the batch
                          axis, never part of the test split

The split is train.py's (same seed, same stratified train_test_split), so the
test split is the one the model's accuracy is stated for; training is not
repeated. Needs numpy and scikit-learn (see README.md). Deterministic.
"""
import os
import sys

try:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError as e:
    sys.exit("split.py: missing Python package (%s); apt-get install python3-numpy "
             "python3-sklearn, run with /usr/bin/python3" % e)

SEED = 20240531  # train.py's
N_CALIBRATION = 200
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=SEED % (2**32), stratify=y
    )
    for d in ("test_split", "calibration"):
        os.makedirs(os.path.join(HERE, d), exist_ok=True)
    np.save(os.path.join(HERE, "test_split", "pixels.npy"), x_te)
    np.save(os.path.join(HERE, "test_split", "labels.npy"), y_te)
    np.save(os.path.join(HERE, "calibration", "pixels.npy"), x_tr[:N_CALIBRATION])
    print("wrote test_split/ (%d images) and calibration/ (%d images)"
          % (len(x_te), N_CALIBRATION))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Keras' own MobileNetV2 features for MobileNetV2Tests.testFeaturesEqualKeras (issue 18).

Run with the TensorFlow venv (scripts/reference/requirements-tf.txt):
    /tmp/venv-tf/bin/python scripts/reference/keras_mobilenetv2_forward.py OUT_DIR [--size 64]
then  VGGTL_MOBILENETV2_REFERENCE=OUT_DIR swift test ... --filter MobileNetV2Tests.testFeaturesEqualKeras

Writes to OUT_DIR (about 9 MB; not committed):
  weights.h5     model.save_weights of tf.keras.applications.MobileNetV2(weights=None,
                 include_top=False, input_shape=(size, size, 3)), every weight random (seeded),
                 BatchNorm moving statistics included
  x.npy          a float32 batch (2, size, size, 3) in [-1, 1], as `tf` preprocessing gives
  features.npy   model.predict(x) in float32, and features64.npy the same in float64
                 (tf.keras.backend.set_floatx('float64'), same weights)
"""
import argparse, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf


def build(size, weights=None):
    tf.keras.backend.clear_session()
    m = tf.keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(size, size, 3))
    if weights is not None:
        m.set_weights([w.astype(tf.keras.backend.floatx()) for w in weights])
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(18)
    model = build(args.size)
    weights = []
    for w in model.weights:
        n = w.name
        shape = tuple(w.shape)
        if n.endswith("gamma:0") or n.endswith("moving_variance:0"):
            v = rng.uniform(0.5, 1.5, shape)
        elif n.endswith("beta:0") or n.endswith("moving_mean:0"):
            v = rng.uniform(-0.2, 0.2, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if "depthwise" not in n else int(np.prod(shape[:2]))
            v = rng.uniform(-1, 1, shape) * np.sqrt(3.0 / fan_in)
        weights.append(v.astype(np.float32))
    model.set_weights(weights)
    model.save_weights(os.path.join(args.out, "weights.h5"))
    x = rng.uniform(-1, 1, (2, args.size, args.size, 3)).astype(np.float32)
    np.save(os.path.join(args.out, "x.npy"), x)
    np.save(os.path.join(args.out, "features.npy"), model.predict(x, verbose=0).astype(np.float32))
    tf.keras.backend.set_floatx("float64")
    m64 = build(args.size, weights)
    np.save(os.path.join(args.out, "features64.npy"), m64.predict(x.astype(np.float64), verbose=0))
    print("wrote", args.out, "tf", tf.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks the PyTorch implementation of the Keras variants (keras_variants.py) against
TensorFlow/Keras itself: same weights, same input, same head and loss. Reads the full float64
arrays torch_reference.py --full wrote (weights included) and reports, per quantity, the max
relative difference (max |a - b| / max |b|; the worst tensor for gradients):
  - Keras in float64 vs our float64 reference: does the implementation compute the same function?
  - Keras in float32 vs our float64 reference: what a float32 implementation's error looks like.

    /tmp/venv-tf/bin/python scripts/reference/tf_check.py --full /tmp/ref-full
Writes reports/tf_check.json.
"""
import argparse, json, os, sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
CTORS = {"keras_resnet50": tf.keras.applications.ResNet50, "keras_inceptionv3": tf.keras.applications.InceptionV3}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def build(variant, arrays, floatx):
    tf.keras.backend.clear_session()
    tf.keras.backend.set_floatx(floatx)
    b, h, w, _ = arrays["input"].shape
    base = CTORS[variant](weights=None, include_top=False, input_shape=(h, w, 3))
    classes = arrays["weights/head_dense/bias"].shape[0]
    out = tf.keras.layers.Dense(classes, name="head_dense")(tf.keras.layers.GlobalAveragePooling2D()(base.output))
    model = tf.keras.Model(base.input, [base.output, out])

    def load():
        for v in model.weights:
            v.assign(arrays["weights/" + v.name.split(":")[0]].astype(floatx))
    load()
    return model, base, load


def run(variant, arrays, floatx):
    model, base, load = build(variant, arrays, floatx)
    x = tf.constant(arrays["input"].astype(floatx))
    y = tf.constant(arrays["labels"].astype(np.int64))
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    res = {}
    f, logits = model(x, training=False)
    res["inference"] = {"features": f.numpy(), "logits": logits.numpy(), "loss": float(ce(y, logits))}

    bns = [l for l in base.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
    for l in bns:               # the moving averages then hold the batch statistics after one call
        l.momentum = 0.0
    with tf.GradientTape() as tape:
        f, logits = model(x, training=True)
        loss = ce(y, logits)
    vars_ = model.trainable_variables
    grads = tape.gradient(loss, vars_)
    res["train"] = {"features": f.numpy(), "logits": logits.numpy(), "loss": float(loss),
                    "grads": {v.name.split(":")[0]: g.numpy() for v, g in zip(vars_, grads)},
                    "bn_mean": {l.name: l.moving_mean.numpy() for l in bns},
                    "bn_var": {l.name: l.moving_variance.numpy() for l in bns}}
    load()
    for l in bns:               # fine-tuning: frozen BatchNormalization runs in inference mode
        l.trainable = False
    with tf.GradientTape() as tape:
        f, logits = model(x, training=True)
        loss = ce(y, logits)
    vars_ = model.trainable_variables
    grads = tape.gradient(loss, vars_)
    res["frozen"] = {"loss": float(loss), "features": f.numpy(),
                     "grads": {v.name.split(":")[0]: g.numpy() for v, g in zip(vars_, grads)}}
    return res


def dump_sketches(variant):
    """The gradient sketches in the committed dump's header (safetensors: 8-byte length, JSON)."""
    with open(os.path.join(HERE, "dumps", f"{variant}.safetensors"), "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    return json.loads(header["__metadata__"]["sketches"])


def compare(variant, res, arrays, zero_names, sensitive):
    out = {}
    for step in ("inference", "train"):
        for q in ("features", "logits"):
            out[f"{step}/{q}"] = rel(res[step][q], arrays[f"{step}/{q}"])
        out[f"{step}/loss"] = abs(res[step]["loss"] - float(arrays[f"{step}/loss"])) / abs(float(arrays[f"{step}/loss"]))
    out["frozen/features_vs_inference"] = rel(res["frozen"]["features"], arrays["inference/features"])
    out["frozen/loss"] = abs(res["frozen"]["loss"] - float(arrays["frozen/loss"])) / abs(float(arrays["frozen/loss"]))
    for step in ("train", "frozen"):
        ref = {k[len(f"{step}/grad/"):]: arrays[k] for k in arrays.files if k.startswith(f"{step}/grad/")}
        got = res[step]["grads"]
        assert sorted(ref) == sorted(got), f"{variant} {step}: gradient sets differ: " \
            f"{sorted(set(ref) ^ set(got))[:6]}"
        errs, zeros, loose = {}, {}, {}
        scale = float(np.median([np.linalg.norm(g) for n, g in ref.items() if n not in zero_names[step]]))
        for n, g in ref.items():
            if n in zero_names[step]:
                zeros[n] = float(np.linalg.norm(got[n]) / scale)
            elif n in sensitive[step]:
                loose[n] = float(np.linalg.norm(got[n] - g) / np.linalg.norm(g))
            else:
                errs[n] = rel(got[n], g)
        if loose:
            out[f"{step}/routing_sensitive_count"] = len(loose)
            out[f"{step}/routing_sensitive_max_relative_l2"] = max(loose.values())
            out[f"{step}/routing_sensitive_max_rel"] = max(rel(got[n], ref[n]) for n in loose)
        worst = max(errs, key=errs.get)
        out[f"{step}/grads_max"], out[f"{step}/grads_worst_tensor"] = errs[worst], worst
        out[f"{step}/grads_median"] = float(np.median(list(errs.values())))
        out[f"{step}/grads_over_1e-4"] = int(sum(e > 1e-4 for e in errs.values()))
        out[f"{step}/grads_compared"] = len(errs)
        if zeros:
            out[f"{step}/expected_zero_count"] = len(zeros)
            out[f"{step}/expected_zero_max_norm_over_median_norm"] = max(zeros.values())
    bn_m = {k[len("train/bn_mean/"):]: arrays[k] for k in arrays.files if k.startswith("train/bn_mean/")}
    if bn_m:
        out["train/bn_batch_mean"] = max(rel(res["train"]["bn_mean"][n], m) for n, m in bn_m.items())
        out["train/bn_batch_var_biased"] = max(rel(res["train"]["bn_var"][n], arrays[f"train/bn_var/{n}"]) for n in bn_m)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", default="/tmp/ref-full")
    ap.add_argument("--only", nargs="*", default=list(CTORS))
    args = ap.parse_args()
    report = {"versions": {"tensorflow": tf.__version__, "numpy": np.__version__},
              "measure": "max |a - b| / max |b| per tensor (b: our float64 PyTorch reference); gradients: the worst "
                         "tensor, the median, and how many exceed 1e-4; gradients that are 0 in exact arithmetic "
                         "(expected_zero) are compared by norm against the median gradient norm instead, and "
                         "routing-sensitive ones (a near-tie max pool upstream) by relative L2 apart"}
    for variant in args.only:
        arrays = np.load(os.path.join(args.full, f"{variant}.npz"))
        sk = dump_sketches(variant)
        zero_names = {s: {n for n, e in sk[s].items() if e.get("expected_zero")} for s in ("train", "frozen")}
        sensitive = {s: {n for n, e in sk[s].items() if e.get("routing_sensitive")} for s in ("train", "frozen")}
        for floatx in ("float64", "float32"):
            res = run(variant, arrays, floatx)
            cmp = compare(variant, res, arrays, zero_names, sensitive)
            report[f"{variant} keras-{floatx} vs reference-float64"] = cmp
            print(f"{variant} keras {floatx}: " + ", ".join(
                f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}" for k, v in cmp.items()), flush=True)
    os.makedirs(os.path.join(HERE, "reports"), exist_ok=True)
    with open(os.path.join(HERE, "reports", "tf_check.json"), "w") as fh:
        json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()

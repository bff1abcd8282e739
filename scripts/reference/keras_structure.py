#!/usr/bin/env python3
"""Ground truth from real Keras: the layer list, parameter counts and HDF5 layouts of
keras.applications.ResNet50, InceptionV3 and MobileNetV2 (weights=None), include_top False and True.

Run with the TensorFlow venv (scripts/reference/requirements-tf.txt):
    /tmp/venv-tf/bin/python scripts/reference/keras_structure.py [--out scripts/reference/keras]

Writes, per model and top/notop:
  <model>_<notop|top>.layers.json  every entry of model.layers in order, Keras' totals
  <model>_<notop|top>.h5.json      structure (names, order, shapes; no values) of the files
                                   model.save_weights('x.h5') and model.save('x.h5') write
Each model is built right after tf.keras.backend.clear_session(), so its auto-generated names
(conv2d, conv2d_1, ...) are what a fresh session gives.
"""
import argparse, json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refjson import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import h5py
import numpy as np
import tensorflow as tf
import keras

MODELS = {
    "resnet50": (tf.keras.applications.ResNet50, 224),
    "inceptionv3": (tf.keras.applications.InceptionV3, 299),
    "mobilenetv2": (tf.keras.applications.MobileNetV2, 224),
}

# The config keys that decide what a layer computes (the rest is naming and initialisers).
ESSENTIAL = {
    "Conv2D": ["filters", "kernel_size", "strides", "padding", "dilation_rate", "use_bias", "activation"],
    "Dense": ["units", "use_bias", "activation"],
    "BatchNormalization": ["axis", "epsilon", "momentum", "center", "scale"],
    "MaxPooling2D": ["pool_size", "strides", "padding"],
    "AveragePooling2D": ["pool_size", "strides", "padding"],
    "GlobalAveragePooling2D": ["keepdims"],
    "GlobalMaxPooling2D": ["keepdims"],
    "ZeroPadding2D": ["padding"],
    "DepthwiseConv2D": ["kernel_size", "strides", "padding", "depth_multiplier", "use_bias", "activation"],
    "ReLU": ["max_value", "negative_slope", "threshold"],
    "Activation": ["activation"],
    "Concatenate": ["axis"],
    "Add": [],
    "Flatten": [],
    "InputLayer": ["batch_input_shape"],
}


def shape_list(s):
    if isinstance(s, list):
        return [shape_list(x) for x in s]
    return [None if d is None else int(d) for d in s]


def weight_entry(w):
    return {"name": w.name, "shape": [int(d) for d in w.shape]}


def inbound_names(layer):
    names = []
    for node in layer._inbound_nodes:
        inb = node.inbound_layers
        inb = inb if isinstance(inb, (list, tuple)) else [inb]
        names.append([l.name for l in inb])
    # Every layer of these models is called once; keep the flat list for that case.
    return names[0] if len(names) == 1 else names


def layer_entry(i, layer):
    cls = layer.__class__.__name__
    cfg = layer.get_config()
    essential = {}
    for k in ESSENTIAL.get(cls, None) or []:
        if k in cfg:
            v = cfg[k]
            # ReLU keeps max_value as a NumPy scalar array.
            v = v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v
            essential[k] = list(v) if isinstance(v, tuple) else v
    if cls not in ESSENTIAL:
        essential["_unlisted_class_full_config"] = json.loads(json.dumps(cfg, default=str))
    return {
        "index": i,
        "name": layer.name,
        "class_name": cls,
        "output_shape": shape_list(layer.output_shape if not isinstance(layer.output_shape, list)
                                   else layer.output_shape[0]),
        "params": int(layer.count_params()),
        "trainable_weights": [weight_entry(w) for w in layer.trainable_weights],
        "non_trainable_weights": [weight_entry(w) for w in layer.non_trainable_weights],
        "inbound_layers": inbound_names(layer),
        "config": essential,
    }


def h5_structure(path):
    """Names, order and shapes of an HDF5 file Keras wrote: attributes (string lists kept in
    their order, other values described), groups in h5py's listing order, datasets with shape
    and dtype. No weight values."""
    def attrs_of(obj):
        out = {}
        for k in obj.attrs.keys():
            v = obj.attrs[k]
            if isinstance(v, np.ndarray) and v.size == 0:
                # Keras stores an empty name list as an empty float64 array, not as strings.
                out[k] = {"empty_array_dtype": str(v.dtype)}
            elif isinstance(v, np.ndarray) and v.dtype.kind in "SOU":
                out[k] = [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in v.tolist()]
            elif isinstance(v, (bytes, np.bytes_)):
                s = v.decode("utf8")
                out[k] = s if len(s) <= 200 else {"string_of_length": len(s), "starts": s[:120]}
            elif isinstance(v, str):
                out[k] = v if len(v) <= 200 else {"string_of_length": len(v), "starts": v[:120]}
            else:
                out[k] = {"value": np.asarray(v).tolist()}
        return out

    with h5py.File(path, "r") as f:
        groups, datasets = [], []

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                a = attrs_of(obj)
                groups.append({"path": name, "attrs": a} if a else {"path": name})
            else:
                datasets.append({"path": name, "shape": list(obj.shape), "dtype": str(obj.dtype)})
        f.visititems(visit)
        return {"root_attrs": attrs_of(f), "groups": groups, "datasets": datasets}


def load_by_order_check(tmp):
    """What an official-style file (auto names numbered from 1) does in Keras: write InceptionV3
    from a session whose names are shifted by one, load it into a fresh model, compare values."""
    tf.keras.backend.clear_session()
    for cls in (tf.keras.layers.Conv2D, tf.keras.layers.BatchNormalization):
        cls(1, 1) if cls is tf.keras.layers.Conv2D else cls()   # uses up conv2d / batch_normalization
    tf.keras.layers.Activation("relu"); tf.keras.layers.MaxPooling2D(); tf.keras.layers.AveragePooling2D()
    tf.keras.layers.Concatenate()
    shifted = tf.keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    path = os.path.join(tmp, "shifted.h5")
    shifted.save_weights(path)
    tf.keras.backend.clear_session()
    fresh = tf.keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    fresh.load_weights(path)
    same = all(np.array_equal(a, b) for a, b in zip(shifted.get_weights(), fresh.get_weights()))
    with h5py.File(path, "r") as f:
        file_names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
    return {"file_layer_names_first": file_names[:4], "file_conv_names_last": [n for n in file_names if n.startswith("conv2d")][-1],
            "model_layer_names_first": [l.name for l in fresh.layers[:4]],
            "load_weights_succeeded_and_values_equal": bool(same)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "keras"))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "h5py": h5py.__version__,
                "python": sys.version.split()[0]}
    for mname, (ctor, size) in MODELS.items():
        if mname not in args.models.split(","):
            continue
        for top in (False, True):
            tf.keras.backend.clear_session()
            model = ctor(weights=None, include_top=top, input_shape=(size, size, 3))
            tag = f"{mname}_{'top' if top else 'notop'}"
            trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
            non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
            layers = [layer_entry(i, l) for i, l in enumerate(model.layers)]
            doc = {
                "generated_by": "scripts/reference/keras_structure.py",
                "versions": versions,
                "constructor": f"tf.keras.applications.{ctor.__name__}(weights=None, include_top={top}, "
                               f"input_shape=({size}, {size}, 3)) right after clear_session()",
                "model_name": model.name,
                "layer_count": len(model.layers),
                "total_params": int(model.count_params()),
                "trainable_params": trainable,
                "non_trainable_params": non_trainable,
                "weight_tensor_count": len(model.weights),
                "layers": layers,
            }
            write_json(os.path.join(args.out, tag + ".layers.json"), doc)
            with tempfile.TemporaryDirectory() as tmp:
                wpath = os.path.join(tmp, "weights.h5")
                mpath = os.path.join(tmp, "model.h5")
                model.save_weights(wpath)
                model.save(mpath, save_format="h5")
                h5doc = {
                    "generated_by": "scripts/reference/keras_structure.py",
                    "versions": versions,
                    "note": "Structure only (names, order, shapes). 'groups' and 'datasets' are in "
                            "h5py's visit order (alphabetical), not layer order: layer order is the "
                            "root attribute layer_names (save_weights) or model_weights/layer_names "
                            "(save). Within a layer group the order is its weight_names attribute.",
                    "save_weights": dict(call="model.save_weights('x.h5')", **h5_structure(wpath)),
                    "save": dict(call="model.save('x.h5', save_format='h5') (model not compiled)",
                                 **h5_structure(mpath)),
                }
                write_json(os.path.join(args.out, tag + ".h5.json"), h5doc)
            if mname == "inceptionv3" and top:
                with tempfile.TemporaryDirectory() as tmp:
                    check = load_by_order_check(tmp)
                write_json(os.path.join(args.out, "inceptionv3_load_by_order.json"), {
                    "generated_by": "scripts/reference/keras_structure.py (load_by_order_check)",
                    "versions": versions,
                    "what": "InceptionV3 notop saved from a session whose auto names start at _1 "
                            "(like the official file), loaded with load_weights into a fresh model "
                            "(names from 0): Keras pairs layers by order, not by name.",
                    **check})
                print("load by order:", check)
            print(f"{tag}: {len(model.layers)} layers, total {model.count_params():,}, "
                  f"trainable {trainable:,}, non-trainable {non_trainable:,}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The official InceptionV3 weight files number their unnamed layers from 1 (conv2d_1 ...
conv2d_94, batch_normalization_1 ..., activation_1 ..., max_pooling2d_1, average_pooling2d_1,
concatenate_1), while a fresh tf.keras session numbers them from 0 (conv2d, conv2d_1 ...
conv2d_93). This script derives, for every index of model.layers, the fresh name and the
official-file name, and checks the derivation against the standalone Keras 2.0 listing in
keras/inceptionv3_keras2.0_layers.txt. Plain Python (no TensorFlow): it reads the
*.layers.json files keras_structure.py wrote.

    python3 scripts/reference/keras_official_names.py
"""
import json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
AUTO = ("conv2d", "batch_normalization", "activation", "max_pooling2d", "average_pooling2d", "concatenate")


def official(name):
    """Fresh tf.keras auto name -> the same layer's name in a 1-based (Keras 2.0) session."""
    for base in AUTO:
        if name == base:
            return base + "_1"
        m = re.fullmatch(re.escape(base) + r"_(\d+)", name)
        if m:
            return f"{base}_{int(m.group(1)) + 1}"
    return name  # explicit names (mixed0, avg_pool, predictions) and input_1 are the same


def main():
    listing = []
    with open(os.path.join(HERE, "keras", "inceptionv3_keras2.0_layers.txt")) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            i, n = line.split()
            assert int(i) == len(listing), f"listing index {i} out of order"
            listing.append(n)
    out = {"generated_by": "scripts/reference/keras_official_names.py"}
    for tag in ("notop", "top"):
        d = json.load(open(os.path.join(HERE, "keras", f"inceptionv3_{tag}.layers.json")))
        rows = []
        for l in d["layers"]:
            rows.append({"index": l["index"], "fresh_tf_keras": l["name"], "official_file": official(l["name"]),
                         "class_name": l["class_name"],
                         "has_weights": bool(l["trainable_weights"] or l["non_trainable_weights"])})
        mism = [(r["index"], r["official_file"], listing[r["index"]]) for r in rows[:len(listing)]
                if r["official_file"] != listing[r["index"]]]
        if tag == "notop" and (len(rows) != len(listing) or mism):
            print("MISMATCH with the Keras 2.0 listing:", len(rows), len(listing), mism[:10])
            sys.exit(1)
        weighted = [r for r in rows if r["has_weights"]]
        out[tag] = {
            "layer_count": len(rows),
            "layers_with_weights": len(weighted),
            "checked_against_keras2.0_listing": tag == "notop",
            "layers": rows,
        }
    out["rule"] = ("official_file name = fresh name with the number of each auto-named layer class "
                   "(conv2d, batch_normalization, activation, max_pooling2d, average_pooling2d, "
                   "concatenate) raised by one; explicitly named layers (input_1, mixed*, avg_pool, "
                   "predictions) unchanged. The order of model.layers is the same in both (it is "
                   "Keras' topological order, not creation order: e.g. index 18 is conv2d_8 fresh / "
                   "conv2d_9 official). Keras' own loader (load_weights_from_hdf5_group) pairs the "
                   "file's layers with weights, in layer_names order, with the model's layers with "
                   "weights, in model.layers order, ignoring names: match by that order.")
    from refjson import write_json  # noqa: E402 (same folder)
    write_json(os.path.join(HERE, "keras", "inceptionv3_official_names.json"), out)
    print("inceptionv3: fresh vs official names written; notop order equals the Keras 2.0 listing "
          f"({len(listing)} layers)")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()

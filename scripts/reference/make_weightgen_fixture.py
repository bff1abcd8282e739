#!/usr/bin/env python3
"""Writes fixtures/weightgen_fixture.json: values of the shared generator (weightgen.py) that
the Swift tests (ReferenceWeightsTests) must reproduce bit for bit. numpy only.

    /tmp/venv-torch/bin/python scripts/reference/make_weightgen_fixture.py
"""
import json, os
import numpy as np
import weightgen as wg

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [  # name, shape, kind, layout, global seed
    ("conv1_conv/kernel", [7, 7, 3, 4], "kernel", "keras", 0),
    ("conv1_conv/bias", [4], "bias", "keras", 0),
    ("conv2_block1_1_bn/gamma", [5], "gamma", "keras", 0),
    ("conv2_block1_1_bn/beta", [5], "beta", "keras", 0),
    ("conv2_block1_1_bn/moving_mean", [5], "moving_mean", "keras", 0),
    ("conv2_block1_1_bn/moving_variance", [37], "moving_variance", "keras", 0),
    ("batch_normalization_93/moving_variance", [6], "moving_variance", "keras", 7),
    ("head_dense/kernel", [6, 3], "kernel", "keras", 0),
    ("layer1.0.conv2.weight", [4, 3, 3, 3], "kernel", "torch", 0),
    ("fc.weight", [3, 6], "kernel", "torch", 0),
    ("input", [1, 3, 3, 3], "input", "keras", 0),
    ("input", [1, 3, 3, 3], "input", "keras", 12345678901234567890),
]


def main():
    out = {"generated_by": "scripts/reference/make_weightgen_fixture.py", "spec": "scripts/reference/weightgen.py",
           "fnv1a64": [], "streams": [], "tensors": [], "sketches": []}
    for text in ["", "a", "conv1_conv/kernel", "sketch3:conv1_conv/kernel"]:
        out["fnv1a64"].append({"text": text, "hash": f"{wg.fnv1a64(text):016x}"})
    for seed in [0, 0xFFFFFFFFFFFFFFFF, wg.fnv1a64("conv1_conv/kernel")]:
        out["streams"].append({"seed": f"{seed:016x}", "first": [f"{int(v):016x}" for v in wg.stream(seed, 5)]})
    for name, shape, kind, layout, gs in CASES:
        v = wg.tensor(name, shape, kind, layout, gs)
        out["tensors"].append({"name": name, "shape": shape, "kind": kind, "layout": layout,
                               "global_seed": str(gs), "bits": [int(b) for b in v.reshape(-1).view(np.uint32)]})
    # A sketch of a generated tensor (as a gradient would be sketched), K = 8, S = 16.
    for name, shape, kind, layout, gs in CASES[:1] + CASES[5:6]:
        v = wg.tensor(name, shape, kind, layout, gs)
        s = wg.sketch(name, v)
        out["sketches"].append({"name": name, "of_tensor": name, "norm": s["norm"], "maxabs": s["maxabs"],
                                "proj": s["proj"].tolist(), "sample_index": s["sample_index"].tolist(),
                                "sample_value": s["sample_value"].tolist()})
    path = os.path.join(HERE, "fixtures", "weightgen_fixture.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()

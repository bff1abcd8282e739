#!/usr/bin/env python3
"""Writes fixtures/weightgen_fixture.json: values of the shared generator (weightgen.py) that
the Swift tests (ReferenceWeightsTests) must reproduce bit for bit. numpy only.

    /tmp/venv-torch/bin/python scripts/reference/make_weightgen_fixture.py
"""
import json, os
import numpy as np
import weightgen as wg

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [  # name, shape, scale, offset, signed, global seed
    ("conv1_conv/kernel", [7, 7, 3, 4], wg.kernel_scale([7, 7, 3, 4], "keras", 6.0), 0.0, False, 0),
    ("conv5_block3_3_conv/kernel", [1, 1, 5, 7], wg.kernel_scale([1, 1, 5, 7], "keras", 3.0), 0.0, False, 0),
    ("layer1.0.conv2.weight", [4, 3, 3, 3], wg.kernel_scale([4, 3, 3, 3], "torch", 3.0), 0.0, False, 0),
    ("conv1_conv/bias", [4], 0.1, 0.0, False, 0),
    ("conv2_block1_1_bn/gamma", [5], 0.05, 0.15, False, 0),
    ("conv2_block1_1_bn/beta", [37], 0.1, 1.0, True, 0),
    ("conv2_block1_3_bn/beta", [6], 0.1, 1.0, False, 0),
    ("batch_normalization_93/beta", [40], 0.2, 2.0, True, 7),
    ("input", [1, 3, 3, 3], 1.0, 0.0, False, 0),
    ("input", [1, 3, 3, 3], 1.0, 0.0, False, 12345678901234567890),
]


def main():
    out = {"generated_by": "scripts/reference/make_weightgen_fixture.py", "spec": "scripts/reference/weightgen.py",
           "fnv1a64": [], "streams": [], "kernel_scales": [], "tensors": [], "sketches": []}
    for text in ["", "a", "conv1_conv/kernel", "sketch3:conv1_conv/kernel"]:
        out["fnv1a64"].append({"text": text, "hash": f"{wg.fnv1a64(text):016x}"})
    for seed in [0, 0xFFFFFFFFFFFFFFFF, wg.fnv1a64("conv1_conv/kernel")]:
        out["streams"].append({"seed": f"{seed:016x}", "first": [f"{int(v):016x}" for v in wg.stream(seed, 5)]})
    for shape, layout, gain in [([7, 7, 3, 64], "keras", 6.0), ([1, 1, 1024, 2048], "keras", 3.0),
                                ([64, 3, 7, 7], "torch", 3.0), ([2048, 3], "keras", 6.0)]:
        out["kernel_scales"].append({"shape": shape, "layout": layout, "gain": gain,
                                     "bits": int(np.float32(wg.kernel_scale(shape, layout, gain)).view(np.uint32))})
    for name, shape, scale, offset, signed, gs in CASES:
        v = wg.tensor(name, shape, scale, offset, signed, gs)
        out["tensors"].append({"name": name, "shape": shape, "scale": scale, "offset": offset, "signed": signed,
                               "global_seed": str(gs), "bits": [int(b) for b in v.reshape(-1).view(np.uint32)]})
    # Sketches of generated tensors (as a gradient would be sketched), K = 8, S = 16.
    for name, shape, scale, offset, signed, gs in [CASES[0], CASES[5]]:
        v = wg.tensor(name, shape, scale, offset, signed, gs)
        s = wg.sketch(name, v)
        out["sketches"].append({"name": name, "norm": s["norm"], "maxabs": s["maxabs"],
                                "proj": s["proj"].tolist(), "sample_index": s["sample_index"].tolist(),
                                "sample_value": s["sample_value"].tolist()})
    path = os.path.join(HERE, "fixtures", "weightgen_fixture.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()

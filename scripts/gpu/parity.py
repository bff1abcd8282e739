#!/usr/bin/env python3
"""CPU-vs-OpenCL parity data for scripts/gpu/run.sh, checked against a float64 PyTorch reference.

  parity.py make DIR [S]  random VGG16 trunk weights (He-scaled so activations neither vanish nor
                          explode over 13 layers) as DIR/vgg16.safetensors with Keras names and
                          HWIO kernels, and 16 PNG images of two classes at SxS (default 224) in
                          DIR/images (extract them with --size SxS: no resizing)
  parity.py compare DIR   the trunk in float64 on the CPU (and float32 on CUDA with TF32 off,
                          when there is a GPU) against vggtl's DIR/cpu and DIR/opencl features

`vggtl extract --preprocess rescale` gives pixels / 255 in RGB, so the reference feeds the same.
"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn
from PIL import Image

BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]


def layer_names():
    return [f"block{b}_conv{i}" for b, (n, _) in enumerate(BLOCKS, 1) for i in range(1, n + 1)]


def weights(seed=7):
    g = torch.Generator().manual_seed(seed)
    out, c = {}, 3
    for name, f in zip(layer_names(), [f for n, f in BLOCKS for _ in range(n)]):
        out[name + "/kernel"] = torch.randn(3, 3, c, f, generator=g) * (2.0 / (9 * c)) ** 0.5 * 0.7
        out[name + "/bias"] = (torch.rand(f, generator=g) - 0.5) * 0.1
        c = f
    return out


def make(d, size=224):
    from safetensors.torch import save_file
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in weights().items()}, os.path.join(d, "vgg16.safetensors"))
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    for cls, f in (("a", 2), ("b", 5)):
        os.makedirs(os.path.join(d, "images", cls), exist_ok=True)
        for k in range(8):
            base = np.stack([np.sin(6.28 * (xx * (k + 1) + yy * f)), np.cos(6.28 * yy * (k + 2)), xx * yy], -1)
            img = (base * 0.5 + 0.5) * 200 + rng.integers(0, 56, (size, size, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, "images", cls, f"{k}.png"))
    print("parity data in", d)


def trunk(w, dtype, device):
    """The VGG16 trunk in NCHW with the HWIO kernels transposed to OIHW."""
    layers, it = [], iter(layer_names())
    for n, _ in BLOCKS:
        for _ in range(n):
            name = next(it)
            k = w[name + "/kernel"]
            conv = nn.Conv2d(k.shape[2], k.shape[3], 3, padding=1)
            conv.weight.data = k.permute(3, 2, 0, 1).contiguous()
            conv.bias.data = w[name + "/bias"].clone()
            layers += [conv, nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers).to(device, dtype).eval()


def compare(d):
    from safetensors.torch import load_file
    w = load_file(os.path.join(d, "vgg16.safetensors"))
    files = sorted(os.path.join(d, "images", c, f) for c in ("a", "b") for f in os.listdir(os.path.join(d, "images", c)))
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB"), np.float64) / 255.0 for f in files])).permute(0, 3, 1, 2)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    refs = {}
    with torch.no_grad():
        refs["float64 cpu"] = trunk(w, torch.float64, "cpu")(x).permute(0, 2, 3, 1).numpy()
        if torch.cuda.is_available():
            y = trunk(w, torch.float32, "cuda")(x.float().cuda())
            refs["torch float32 cuda"] = y.permute(0, 2, 3, 1).double().cpu().numpy()
    ref = refs["float64 cpu"]

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b)), float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    rows = [(k, *rel(v, ref)) for k, v in refs.items() if k != "float64 cpu"]
    got = {}
    for tag in ("cpu", "opencl"):
        p = os.path.join(d, tag, "features.npy")
        if os.path.exists(p):
            got[tag] = np.load(p).astype(np.float64).reshape(ref.shape)
            rows.append((f"vggtl {tag}", *rel(got[tag], ref)))
        else:
            rows.append((f"vggtl {tag} (missing)", float("nan"), float("nan")))
    if len(got) == 2:
        rows.append(("vggtl opencl vs vggtl cpu", *rel(got["opencl"], got["cpu"])))
    print(f"features after block5_pool, {len(files)} images {x.shape[2]}x{x.shape[3]}, against float64 PyTorch on the CPU")
    print(f"{'what':28s} {'rel L2':>10s} {'max rel':>10s}")
    for r in rows:
        print(f"{r[0]:28s} {r[1]:10.2e} {r[2]:10.2e}")
    print("RESULT " + json.dumps({"parity": rows}))
    bad = [r for r in rows if r[0].startswith("vggtl") and not (r[1] <= 1e-4)]
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("make", "compare"):
        sys.exit(__doc__)
    sys.exit(make(sys.argv[2], *map(int, sys.argv[3:])) if sys.argv[1] == "make" else compare(sys.argv[2]))

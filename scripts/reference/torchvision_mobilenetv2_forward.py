#!/usr/bin/env python3
"""torchvision's own mobilenet_v2 features for MobileNetV2Tests.testFeaturesEqualTorchvision (issue 18).

Run with the PyTorch venv (scripts/reference/requirements-torch.txt):
    /tmp/venv-torch/bin/python scripts/reference/torchvision_mobilenetv2_forward.py OUT_DIR [--size 64]
then  VGGTL_MOBILENETV2_TORCH_REFERENCE=OUT_DIR swift test ... --filter MobileNetV2Tests.testFeaturesEqualTorchvision

Writes to OUT_DIR (about 9 MB; not committed):
  model.safetensors  the state dict of torchvision.models.mobilenet_v2(weights=None), every
                     tensor random (seeded), BatchNorm running statistics included, the
                     classifier too (classifier.1: 1000 classes)
  x.npy              a float32 batch (2, size, size, 3) NHWC
  features64.npy     model.features(x) in float64 (eval mode), NHWC
"""
import argparse, os
import numpy as np
import torch
import torchvision
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(18)
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2); m.running_var.uniform_(0.5, 1.5)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, os.path.join(args.out, "model.safetensors"))
    rng = np.random.default_rng(18)
    x = rng.uniform(-2, 2, (2, args.size, args.size, 3)).astype(np.float32)
    np.save(os.path.join(args.out, "x.npy"), x)
    m64 = model.double()
    with torch.no_grad():
        y = m64.features(torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2))
    np.save(os.path.join(args.out, "features64.npy"), y.permute(0, 2, 3, 1).contiguous().numpy())
    print("wrote", args.out, "torch", torch.__version__, "torchvision", torchvision.__version__)


if __name__ == "__main__":
    main()

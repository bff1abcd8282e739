#!/usr/bin/env python3
"""The PyTorch side of BENCHMARKS.md: the six `vggtl bench` cases, defined the same way.

Random weights and data, float32, CPU, median seconds per step over --steps timed steps after
one warm-up step, reported as img/s. A measurement tool, not a dependency of vggtl:

    python3 -m venv /tmp/venv-torch
    /tmp/venv-torch/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/venv-torch/bin/python scripts/bench/pytorch_bench.py --threads 2 --json

On a GPU (scripts/gpu/run.sh): --device cuda --precision fp32|tf32|bf16, where fp32 turns
TF32 off in cuDNN and cuBLAS (exact float32, what vggtl computes), tf32 is PyTorch's default
for convolutions with TF32 matmuls allowed, and bf16 is autocast with channels_last; cuDNN's
autotuner (cudnn.benchmark) is on and 3 warm-up steps run before the timed ones.

Cases (as Sources/VGGTLBench/Workloads.swift):
  extract224 / extract150: VGG16 conv trunk forward (no grad), batch 32
  full150 / full224: every layer trained, trunk + Flatten-Dense256-ReLU-Dropout0.5-Dense2,
                     softmax cross-entropy, SGD lr 1e-4 momentum 0.9, batch 16
  part150: as full150 with blocks 1-4 frozen (block5 + head trained)
  bn32: VGG16 with BatchNorm after every conv + Keras top (4096-4096-10), Adam lr 1e-4,
        32x32, batch 64
  resnet50-extract224: Keras' ResNet50 (v1: torchvision's resnet50 with the stride moved to the
        first 1x1 of each stage's first block, and conv biases) trunk forward, batch 32
  resnet50-finetune224: the same + GAP-Dense256-ReLU-Dropout0.5-Dense2, conv5 (layer4) and the head
        trained, every BatchNorm normalising with its moving statistics (vggtl finetune's default),
        SGD lr 1e-4 momentum 0.9, batch 32
  inceptionv3-extract299: torchvision's inception_v3 trunk (up to Mixed_7c) forward, batch 32
"""
import argparse, contextlib, json, statistics, time
import torch
import torch.nn as nn

CFG = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]


def trunk(bn=False):
    layers, c = [], 3
    blocks = []
    for reps, f in CFG:
        block = []
        for _ in range(reps):
            block.append(nn.Conv2d(c, f, 3, padding=1))
            if bn:
                block.append(nn.BatchNorm2d(f, momentum=0.01, eps=1e-3))
            block.append(nn.ReLU(inplace=True))
            c = f
        block.append(nn.MaxPool2d(2, 2))
        blocks.append(nn.Sequential(*block))
    return nn.Sequential(*blocks)


def model(case, size):
    side = size
    for _ in range(5):
        side //= 2
    flat = 512 * side * side
    if case == "bn32":
        head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 4096), nn.ReLU(inplace=True),
                             nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 10))
        return nn.Sequential(trunk(bn=True), head)
    head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(256, 2))
    return nn.Sequential(trunk(), head)


def resnet50_keras():
    """torchvision's resnet50 made Keras' ResNet50 v1: stride on conv1 of each stage's first
    block instead of conv2, and a bias in every convolution."""
    import torchvision
    m = torchvision.models.resnet50()
    for layer in (m.layer2, m.layer3, m.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            mod.bias = nn.Parameter(torch.zeros(mod.out_channels))
    return m


def backbone_model(name):
    import torchvision
    if name.startswith("resnet50"):
        trunk = nn.Sequential(*list(resnet50_keras().children())[:-2])
    else:
        m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
        trunk = nn.Sequential(*list(m.children())[:-3])
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 256), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(256, 2))
    return nn.Sequential(trunk, head)


CASES = {
    # name: (kind, size, batch)
    "extract224": ("extract", 224, 32),
    "extract150": ("extract", 150, 32),
    "full150": ("train", 150, 16),
    "full224": ("train", 224, 16),
    "part150": ("train", 150, 16),
    "bn32": ("train", 32, 64),
    "resnet50-extract224": ("extract", 224, 32),
    "resnet50-finetune224": ("train", 224, 32),
    "inceptionv3-extract299": ("extract", 299, 32),
}


def run(name, steps, channels_last, device="cpu", precision="fp32"):
    kind, size, batch = CASES[name]
    torch.manual_seed(1)
    m = (backbone_model(name) if name in ("resnet50-extract224", "resnet50-finetune224", "inceptionv3-extract299") else model(name, size)).to(device)
    x = (torch.rand(batch, 3, size, size) * 2 - 1).to(device)
    y = (torch.arange(batch) % (10 if name == "bn32" else 2)).to(device)
    if channels_last or precision == "bf16":
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    warm = 3 if device == "cuda" else 1
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    if kind == "extract":
        t = m[0].eval()
        with torch.no_grad(), autocast:
            for i in range(steps + warm):
                t0 = time.perf_counter()
                t(x).sum().item()
                if i >= warm:
                    times.append(time.perf_counter() - t0)
    else:
        if name == "part150":
            for block in m[0][:4]:
                for p in block.parameters():
                    p.requires_grad_(False)
        if name == "resnet50-finetune224":
            for child in list(m[0].children())[:-1]:  # everything before layer4 (conv5)
                for p in child.parameters():
                    p.requires_grad_(False)
        params = [p for p in m.parameters() if p.requires_grad]
        opt = (torch.optim.Adam(params, lr=1e-4, eps=1e-7) if name == "bn32"
               else torch.optim.SGD(params, lr=1e-4, momentum=0.9))
        lossf = nn.CrossEntropyLoss()
        m.train()
        if name == "resnet50-finetune224":
            for mod in m.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.eval()
        for i in range(steps + warm):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            with autocast:
                loss = lossf(m(x), y)
            loss.backward()
            opt.step()
            loss.item()
            if i >= warm:
                times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    r = {"name": name, "imagesPerSecond": batch / med, "stepSeconds": times}
    if device == "cuda":
        r["peakMemoryBytes"] = torch.cuda.max_memory_allocated()
        del m, x, y
        torch.cuda.empty_cache()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="all")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true", help="NHWC memory format (oneDNN's preferred)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"],
                    help="cuda only: fp32 (TF32 off), tf32 (PyTorch's default for convolutions), bf16 (autocast)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = a.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = a.precision != "fp32"
    names = list(CASES) if a.cases == "all" else a.cases.split(",")
    out = {"torch": torch.__version__, "threads": a.threads, "channelsLast": a.channels_last,
           "device": a.device, "precision": a.precision, "cases": []}
    if a.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["cudnn"] = torch.backends.cudnn.version()
    for n in names:
        r = run(n, a.steps, a.channels_last, a.device, a.precision)
        out["cases"].append(r)
        if not a.json:
            print(f"{n:10s} {r['imagesPerSecond']:8.2f} img/s", flush=True)
    if a.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Scaling model for vggtl's data-parallel training (ring allreduce), printed as Markdown.

Per step every rank computes forward + backward on its batch, then the gradients (4 bytes per
trainable parameter) are summed by a ring allreduce:

    t_ring = 2 (N - 1) / N * S / B  +  2 (N - 1) * alpha * buckets

(S bytes, N ranks on the ring, B bytes/s per rank and direction, alpha seconds per message).
Across M nodes with one network card each, a hierarchical allreduce (reduce-scatter inside the
node, ring over the nodes, all-gather inside the node) sends 2 (M - 1) / M * S through each
node's card. vggtl stages gradients through host memory (OpenCL buffers -> MPI -> back), which
adds S / B_copy twice per step unless hidden; a device-aware path (NCCL, CUDA-aware MPI over
NVLink) would avoid it: the NVLink rows are that bound, not what vggtl does today.

Buckets start as soon as their layers' backward is done, so communication overlaps backward
(about 2/3 of a step's compute); what is left shows:

    t_step = t_compute + max(0, t_comm - overlap * t_backward)

with `overlap` the share of backward that buckets can cover (the last bucket finishes after
backward, so not all of it). Efficiency = t_compute / t_step, images/s = N * batch / t_step.
Usage: scaling_model.py [--json]
"""
import json
import sys

MB = 1e6
GB = 1e9

# Trainable parameters of each case (float32 gradients) and the H200 step kind it is timed with:
# the tutorial head works at 150x150 (full150), Keras' top needs 224x224 (full224). ResNet50 and
# InceptionV3 have no H200 step time yet: theirs are VGG16 full224's scaled by convolution FLOPs.
MODELS = [
    ("VGG16 + tutorial head, every layer trained (14.7 M + 2.1 M)", 16.8e6, "150"),
    ("VGG16 block5 + tutorial head trained (7.1 M + 2.1 M)", 9.2e6, "150"),
    ("VGG16 with Keras' top, every layer trained (138.4 M)", 138.36e6, "224"),
    ("ResNet50 with Keras' top, every layer trained (25.6 M), steps FLOP-scaled", 25.6e6, "resnet50"),
    ("InceptionV3 with Keras' top, every layer trained (23.9 M), steps FLOP-scaled", 23.9e6, "inceptionv3"),
]

# Seconds per training step at batch 16 per rank on one H200 (DESIGN.md, BENCHMARKS.md): img/s
# full150 / full224: vggtl OpenCL fp32 136 / 61, PyTorch CUDA fp32 (TF32 off) 838 / 470, PyTorch
# bf16 autocast 2994 / 2171. Keras' top adds ~0.7 GFLOP per image to ~92: the same step time.
# (block5-only training costs less per step than full150; full150's time makes it pessimistic.)
STEPS = {
    "150": [("vggtl OpenCL fp32 today", 16 / 136), ("at PyTorch's fp32 speed", 16 / 838), ("at PyTorch's bf16 speed", 16 / 2994)],
    "224": [("vggtl OpenCL fp32 today", 16 / 61), ("at PyTorch's fp32 speed", 16 / 470), ("at PyTorch's bf16 speed", 16 / 2171)],
}
# ResNet50 at 224 (3.86 GMAC of convolution per image) and InceptionV3 at 299 (5.71 GMAC) against
# VGG16's 15.47 at 224: full224's step times scaled by that ratio. A lower bound on their steps
# (their BatchNorm and elementwise passes make them less FLOP-efficient than VGG16), so the
# efficiencies below are pessimistic: a longer step hides more communication.
VGG16_GMAC_224 = 15.47
for key, gmac in (("resnet50", 3.86), ("inceptionv3", 5.71)):
    STEPS[key] = [(k, t * gmac / VGG16_GMAC_224) for k, t in STEPS["224"]]

# Links: bytes/s per direction the allreduce gets (85-90% of the line rate) and latency per message.
LINKS = [
    ("100 Gb/s Ethernet", 12.5 * GB * 0.85, 20e-6, True),
    ("200 Gb/s InfiniBand", 25 * GB * 0.9, 2e-6, True),
    ("NVLink-class (450 GB/s, device-aware: a bound)", 450 * GB * 0.8, 3e-6, False),
]
# vggtl stages gradients through host memory: device -> host and back at this rate each way
# (PCIe 5 x16 in practice), hidden like the rest when backward is long enough.
COPY = 25 * GB
BACKWARD_SHARE = 2 / 3
OVERLAP = 0.8
BUCKET = 25 * MB
RANKS = [2, 8, 64]


def comm_time(nbytes, n, bandwidth, latency, staged):
    if n <= 1:
        return 0.0
    buckets = max(1, round(nbytes / BUCKET))
    t = 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency * buckets
    return t + (2 * nbytes / COPY if staged else 0.0)


def step_time(compute, comm):
    return compute + max(0.0, comm - OVERLAP * BACKWARD_SHARE * compute)


def crossover(nbytes, link, compute):
    """Smallest N at which communication no longer hides behind backward, or None up to 4096."""
    _, bw, lat, staged = link
    for n in range(2, 4097):
        if comm_time(nbytes, n, bw, lat, staged) > OVERLAP * BACKWARD_SHARE * compute:
            return n
    return None


def main():
    out = {}
    print(f"N: nodes with one network card each (Ethernet, InfiniBand rows) or GPUs of one node (NVLink row). Allreduce per step: ring, "
          f"{BUCKET / MB:.0f} MB buckets, host staging at {COPY / GB:.0f} GB/s each way except on the NVLink bound. Efficiency: compute / step "
          f"time at batch 16 per rank, {OVERLAP:.0%} of backward ({OVERLAP * BACKWARD_SHARE:.2f} of the step) hiding communication.\n")
    for model, params, size in MODELS:
        nbytes = 4 * params
        print(f"#### {model}: {nbytes / MB:.0f} MB of gradients per step\n")
        kinds = STEPS.get(size, [])
        print("| link | step (batch 16/rank) | " + " | ".join(f"allreduce N={n}" for n in RANKS)
              + (" | " + " | ".join(f"efficiency N={n}" for n in RANKS) if kinds else "") + " |")
        print("|---|---" + "|---:" * (len(RANKS) * (2 if kinds else 1)) + "|")
        for link in LINKS:
            name, bw, lat, staged = link
            comms = [comm_time(nbytes, n, bw, lat, staged) for n in RANKS]
            out.setdefault(model, {})[name] = comms
            ms = [f"{1e3 * c:.1f} ms" for c in comms]
            if not kinds:
                print(f"| {name} | (no H200 time yet) | " + " | ".join(ms) + " |")
            for k, compute in kinds:
                eff = [f"{100 * compute / step_time(compute, c):.0f}%" for c in comms]
                print(f"| {name} | {k}, {1e3 * compute:.0f} ms | " + " | ".join(ms + eff) + " |")
        print()
        for k, compute in kinds:
            parts = []
            for link in LINKS:
                n = crossover(nbytes, link, compute)
                n16 = crossover(nbytes / 2, link, compute)
                n64 = crossover(nbytes, link, 4 * compute)
                parts.append(f"{link[0].split(' (')[0]} N={n or '>4096'} (fp16: {n16 or '>4096'}, batch 64: {n64 or '>4096'})")
            print(f"- {k}: communication outgrows the hidden part of backward at " + "; ".join(parts))
        print()
    if "--json" in sys.argv:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

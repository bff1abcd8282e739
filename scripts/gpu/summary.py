#!/usr/bin/env python3
"""The summary of a scripts/gpu/run.sh call, from the files it wrote to OUT:
img/s of the six cases (and ResNet50/InceptionV3) against PyTorch CUDA (fp32 with TF32 off is the target's reference),
every convolution pass against the same run's sgemm rate (direct-convolution FLOPs) and against
the generic im2col path, peak GPU memory of full224, and the parity line.
  summary.py OUT
"""
import json, os, sys

out = sys.argv[1]


def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


vggtl = load("vggtl_opencl.json")
torch = {m: load(f"torch_{m}.json") for m in ("fp32", "tf32", "bf16")}
if vggtl:
    print(f"device: {vggtl['device']}; sgemm: {vggtl.get('gemmGFLOPS') or 0:.0f} GFLOP/s")
for m, t in torch.items():
    if t:
        print(f"pytorch {t['torch']} {t['device']} {m}: {t.get('gpu', '')} cudnn {t.get('cudnn', '-')}")

ours = {c["name"]: c["imagesPerSecond"] for c in (vggtl or {}).get("cases", [])}
theirs = {m: {c["name"]: c for c in t["cases"]} for m, t in torch.items() if t}
# ResNet50 / InceptionV3, measured after the six (vggtl and PyTorch fp32 only).
ours.update({c["name"]: c["imagesPerSecond"] for c in (load("vggtl_opencl_backbones.json") or {}).get("cases", [])})
theirs.setdefault("fp32", {}).update({c["name"]: c for c in (load("torch_backbones_fp32.json") or {}).get("cases", [])})
print()
print(f"{'case':22s} {'vggtl':>9s} {'torch fp32':>11s} {'ratio':>6s} {'torch tf32':>11s} {'ratio':>6s} {'torch bf16':>11s}")
for case in ("extract224", "extract150", "full150", "full224", "part150", "bn32",
             "resnet50-extract224", "resnet50-finetune224", "inceptionv3-extract299"):
    if case not in ours and not any(case in t for t in theirs.values()):
        continue
    v = ours.get(case)
    cells = [f"{v:9.1f}" if v else f"{'-':>9s}"]
    for m in ("fp32", "tf32", "bf16"):
        r = theirs.get(m, {}).get(case)
        cells.append(f"{r['imagesPerSecond']:11.1f}" if r else f"{'-':>11s}")
        if m != "bf16":
            cells.append(f"{v / r['imagesPerSecond']:6.2f}" if v and r else f"{'-':>6s}")
    print(f"{case:22s} " + " ".join(cells))
print("targets: every case >= 0.50x torch fp32; moonshot >= 1.0x fp32 and >= 0.5x tf32")

layers = load("layers_opencl.json")
generic = load("layers_opencl_im2col.json")
if layers:
    before = {(k["layer"], k["pass"]): k["milliseconds"] for k in (generic or {}).get("kernels", [])}
    convs = [k for k in layers["kernels"] if k.get("gflops") is not None]
    print()
    print(f"conv passes at {layers['size']}x{layers['size']}, batch {layers['batch']}, "
          f"against sgemm {layers.get('gemmGFLOPS') or 0:.0f} GFLOP/s (target: each >= 50%)")
    print(f"{'layer':14s} {'pass':16s} {'algorithm':44s} {'ms':>8s} {'TFLOP/s':>8s} {'% sgemm':>8s} {'im2col ms':>10s}")
    for k in convs:
        b = before.get((k["layer"], k["pass"]))
        pct = k.get("percentOfPeak")
        print(f"{k['layer']:14s} {k['pass']:16s} {k['algorithm'][:44]:44s} {k['milliseconds']:8.2f} {k['gflops'] / 1000:8.2f} "
              f"{(f'{pct:7.0f}%' if pct is not None else '       -')} {(f'{b:10.2f}' if b else '         -')}")
    met = [k for k in convs if (k.get("percentOfPeak") or 0) >= 50]
    total = sum(k["milliseconds"] for k in convs)
    total_before = sum(before.get((k["layer"], k["pass"]), 0) for k in convs)
    print(f"{len(met)} of {len(convs)} conv passes >= 50% of sgemm; conv total {total:.1f} ms"
          + (f" (generic im2col path: {total_before:.1f} ms)" if total_before else ""))
    if layers.get("tuningEntry"):
        print("\n" + layers["tuningEntry"])

mem = {}
for who in ("vggtl", "torch"):
    try:
        mem[who] = float(open(os.path.join(out, f"memory_{who}_full224.txt")).read())
    except (OSError, ValueError):
        pass
if mem:
    alloc = theirs.get("fp32", {}).get("full224", {}).get("peakMemoryBytes")
    print()
    print("peak GPU memory, full224 batch 16 (nvidia-smi, above idle): "
          + ", ".join(f"{w} {v:.0f} MiB" for w, v in mem.items())
          + (f"; torch max_memory_allocated {alloc / 2**20:.0f} MiB" if alloc else ""))

try:
    for line in open(os.path.join(out, "parity.txt")):
        if line.startswith("vggtl"):
            print("parity:", line.rstrip())
except OSError:
    pass

#!/usr/bin/env python3
"""PREDICTED H200 times of vggtl's OpenCL convolution passes and bench cases (BENCHMARKS.md),
from FLOP and byte counts and the ceilings measured on that card: CLBlast sgemm 30.7 TFLOP/s
at 4096^3, HBM ~4.8 TB/s. No GPU was used; a GPU run (scripts/gpu/run.sh) confirms or refutes.

Assumptions (each a fraction of a measured ceiling, stated so a measurement can test it):
  implicit GEMM (ours)          70% of sgemm on the padded GEMM (gather index math, no vector loads)
  split-K kernel gradient       70% of sgemm on the padded GEMM, + partial sums written and re-read
  Winograd batched GEMMs        60% of sgemm (forward/backward-data: reduction only C long, many
                                mid-sized GEMMs; kernel gradient: C x K outputs, split over tiles)
  memory-bound kernels          70% of HBM (transforms, reductions); pooling backward and
                                elementwise kernels at their measured 0.5 and 2.5 TB/s (issue 10)
  each kernel launch            5 us of queue overhead (in-order queue, small kernels)
  batch upload                  pageable PCIe copy at 20 GB/s
A pass takes max(FLOPs / rate, bytes / bandwidth) per kernel; bytes count compulsory traffic
(each tensor read or written once: tile re-reads are assumed to hit the 50 MB L2).
  predict.py               the per-pass table at 224x224 batch 16 and the case table
  predict.py --markdown    the same as markdown for BENCHMARKS.md
  predict.py --pessimistic implicit GEMM and split-K at 50%, Winograd GEMMs at 40%, memory at 50%
"""
import math, sys

SGEMM = 30.7e12
HBM = 4.8e12
EFF_IMPLICIT, EFF_SPLITK, EFF_WINO, EFF_MEM = 0.70, 0.70, 0.60, 0.70
POOL_BWD_BW, ELEMENTWISE_BW = 0.5e12, 2.5e12
LAUNCH = 5e-6
PCIE = 20e9
F = 4  # bytes per float
TILES = [(128, 128), (128, 64), (64, 64), (32, 64)]   # the NVIDIA entry of ConvTileTable
BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]
TORCH_FP32 = {"extract224": 1430, "extract150": 2402, "full150": 838, "full224": 470, "part150": 1835, "bn32": 7543}
MEASURED_OCL = {"extract224": 415, "extract150": 946, "full150": 136, "full224": 61, "part150": 756, "bn32": 2694}


def convs(size):
    """(name, H=W, Cin, Cout) of the 13 VGG16 convolutions at an input size."""
    out, s, c = [], size, 3
    for b, (n, k) in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            out.append((f"block{b}_conv{i}", s, c, k))
            c = k
        s //= 2
    return out


def padded(m, n):
    """The least padded M x N among the tiles (what the autotune would lean to)."""
    return min(math.ceil(m / tm) * tm * math.ceil(n / tn) * tn for tm, tn in TILES)


def kernel_time(flops, nbytes, rate, bw=HBM * EFF_MEM):
    return max(flops / rate, nbytes / bw) + LAUNCH


def implicit(batch, h, cin, cout):
    """Forward (or backward-data with cin/cout swapped) as implicit GEMM, 3x3 'same'.
    Returns (seconds, algorithm, bytes moved)."""
    m, k = batch * h * h, 9 * cin
    flops = 2 * padded(m, cout) * k
    nbytes = F * (m * cin + 9 * cin * cout + m * cout)
    return kernel_time(flops, nbytes, SGEMM * EFF_IMPLICIT), "implicit-gemm", nbytes


def winograd(mt, batch, h, cin, cout):
    a = (mt + 2) ** 2
    t = batch * math.ceil(h / mt) ** 2
    x, v, p, y = batch * h * h * cin, a * t * cin, a * t * cout, batch * h * h * cout
    u = a * cin * cout
    time = kernel_time(0, F * (9 * cin * cout + u), 1)                       # kernel transform
    time += kernel_time(0, F * (x + v), 1)                                   # input transform
    time += kernel_time(2 * a * padded(t, cout) * cin, F * (v + u + p), SGEMM * EFF_WINO)
    time += kernel_time(0, F * (p + y), 1)                                   # output transform
    nbytes = F * (9 * cin * cout + 2 * u + x + 2 * v + 2 * p + y)
    return time, f"winograd-F({mt}x{mt},3x3)", nbytes


def split_k(batch, h, cin, cout, cus=132):
    p, q = batch * h * h, 9 * cin
    flops = 2 * padded(q, cout) * p
    tiles = min(math.ceil(q / tm) * math.ceil(cout / tn) for tm, tn in TILES)
    splits = max(1, min(math.ceil(4 * cus / tiles), p // 64))
    partial = splits * q * cout if splits > 1 else 0
    nbytes = F * (p * cin + p * cout + 2 * partial + q * cout)
    return kernel_time(flops, nbytes, SGEMM * EFF_SPLITK) + (LAUNCH * 2 if splits > 1 else 0), f"split-k({splits} splits)", nbytes


def winograd_filter(mt, batch, h, cin, cout, cus=132):
    """Kernel gradient by Winograd: V of x, dM of dy, dU = V^T dM split over tiles, dw = G^T dU G."""
    a = (mt + 2) ** 2
    t = batch * math.ceil(h / mt) ** 2
    x, dy, v, dm = batch * h * h * cin, batch * h * h * cout, a * t * cin, a * t * cout
    groups = min(a * math.ceil(cin / tm) * math.ceil(cout / tn) for tm, tn in TILES)
    splits = max(1, min(math.ceil(4 * cus / groups), t // 64))
    partial = splits * a * cin * cout
    time = kernel_time(0, F * (x + v), 1) + kernel_time(0, F * (dy + dm), 1)
    time += kernel_time(2 * a * t * padded(cin, cout), F * (v + dm + partial), SGEMM * EFF_WINO)
    time += kernel_time(0, F * (partial + 9 * cin * cout), 1)
    return time, f"winograd-F({mt}x{mt},3x3)", F * (x + dy + 2 * v + 2 * dm + 2 * partial + 9 * cin * cout)


def filter_pass(batch, h, cin, cout):
    options = [split_k(batch, h, cin, cout)]
    if cin >= 16 and cout >= 16:
        options += [winograd_filter(2, batch, h, cin, cout), winograd_filter(4, batch, h, cin, cout)]
    return min(options, key=lambda o: o[0])


def forward_pass(batch, h, cin, cout):
    options = [implicit(batch, h, cin, cout)]
    if cin >= 16 and cout >= 16:
        options += [winograd(2, batch, h, cin, cout), winograd(4, batch, h, cin, cout)]
    return min(options, key=lambda o: o[0])


def direct_flops(batch, h, cin, cout):
    return 2 * batch * h * h * 9 * cin * cout


def case_passes(kind, size, batch):
    """[(layer, pass, time, algorithm, direct flops)] of one step's convolutions."""
    rows = []
    layers = convs(size)
    for i, (name, h, cin, cout) in enumerate(layers):
        t, a, b = forward_pass(batch, h, cin, cout)
        rows.append((name, "forward", t, a, direct_flops(batch, h, cin, cout), b))
    if kind in ("full", "part", "bn32"):
        trained = layers if kind != "part" else layers[-3:]
        for j, (name, h, cin, cout) in enumerate(trained):
            first_trained = (kind == "part" and j == 0)
            if name != "block1_conv1" and not first_trained:
                t, a, b = forward_pass(batch, h, cout, cin)   # backward-data: the flipped convolution
                rows.append((name, "backward-data", t, a, direct_flops(batch, h, cin, cout), b))
            t, a, b = filter_pass(batch, h, cin, cout)
            rows.append((name, "backward-filter", t, a, direct_flops(batch, h, cin, cout), b))
    return rows


def other_time(kind, size, batch):
    """Everything but the convolutions: pools, ReLU backward, BatchNorm, head, optimizer, upload."""
    t = batch * size * size * 3 * F / PCIE
    acts, pooled, s = 0, 0, size
    for n, k in BLOCKS:
        acts += n * batch * s * s * k
        pooled += batch * s * s * k
        s //= 2
    params = 14.7e6
    t += pooled * F * 1.25 / (ELEMENTWISE_BW) + 5 * LAUNCH                  # pool forward
    if kind in ("full", "part", "bn32"):
        frac = 1.0 if kind != "part" else 0.05                              # part: block5 only
        t += frac * (acts * 3 * F / ELEMENTWISE_BW + pooled * F * 2.25 / POOL_BWD_BW) + 30 * LAUNCH
        if kind == "bn32":
            t += acts * F * 9 / ELEMENTWISE_BW + 13 * 8 * LAUNCH                # BN forward + backward
            head = 512 * 4096 + 4096 * 4096 + 4096 * 10
            t += 3 * 2 * batch * head / SGEMM + 7 * F * (params + head) / ELEMENTWISE_BW + 20 * LAUNCH
        else:
            trained = params if kind == "full" else 7.1e6
            t += 5 * F * trained / ELEMENTWISE_BW + 20 * LAUNCH               # SGD momentum
    return t


CASES = [("extract224", "extract", 224, 32), ("extract150", "extract", 150, 32), ("full150", "full", 150, 16),
         ("full224", "full", 224, 16), ("part150", "part", 150, 16), ("bn32", "bn32", 32, 64)]


def main():
    global EFF_IMPLICIT, EFF_SPLITK, EFF_WINO, EFF_MEM
    if "--pessimistic" in sys.argv:
        EFF_IMPLICIT, EFF_SPLITK, EFF_WINO, EFF_MEM = 0.50, 0.50, 0.40, 0.50
    md = "--markdown" in sys.argv
    rows = case_passes("full", 224, 16)
    if md:
        print("| layer | pass | algorithm (predicted best) | GFLOP (direct) | MB moved | predicted ms | % of sgemm |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
    else:
        print("PREDICTED per pass, 224x224 batch 16 (direct-convolution FLOPs against sgemm 30.7 TFLOP/s)")
    below = 0
    for name, p, t, a, fl, b in sorted(rows, key=lambda r: (r[0], ["forward", "backward-data", "backward-filter"].index(r[1]))):
        pct = fl / t / SGEMM * 100
        below += pct < 50
        if md:
            print(f"| {name} | {p} | {a} | {fl / 1e9:.1f} | {b / 1e6:.0f} | {t * 1e3:.3f} | {pct:.0f}% |")
        else:
            print(f"{name:14s} {p:16s} {a:22s} {fl / 1e9:7.1f} GFLOP {b / 1e6:7.0f} MB {t * 1e3:8.3f} ms {pct:5.0f}%")
    print(f"\n{below} of {len(rows)} passes below 50% of sgemm (predicted)\n")
    if md:
        print("| case | conv ms | other ms | step ms | predicted img/s | PyTorch fp32 img/s | ratio | measured before (img/s) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case, kind, size, batch in CASES:
        conv = sum(r[2] for r in case_passes(kind, size, batch))
        other = other_time(kind, size, batch)
        step = conv + other
        ips = batch / step
        if md:
            print(f"| {case} b{batch} | {conv * 1e3:.1f} | {other * 1e3:.1f} | {step * 1e3:.1f} | {ips:.0f} | "
                  f"{TORCH_FP32[case]} | {ips / TORCH_FP32[case]:.2f} | {MEASURED_OCL[case]} |")
        else:
            print(f"{case:11s} b{batch:<3d} conv {conv * 1e3:7.2f} ms other {other * 1e3:6.2f} ms -> {ips:7.0f} img/s "
                  f"(torch fp32 {TORCH_FP32[case]}, ratio {ips / TORCH_FP32[case]:.2f})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Markdown table from the JSON files compare.sh writes: table.py DIR CASE..."""
import json, os, sys

d, cases = sys.argv[1], sys.argv[2:]
gemm = json.load(open(os.path.join(d, "gemm.json"))).get("gemmGFLOPS")
extras = sorted({f.split("-")[0] for f in os.listdir(d) if f.endswith(".json") and "-" in f} - {"vggtl", "torch"})
head = "| case | vggtl img/s | GFLOP/s | % of GEMM peak | PyTorch img/s (same sitting) | ratio | PyTorch anchor (issue) | ratio to anchor |"
for e in extras:
    head += f" {e} img/s |"
print(f"GEMM peak (sgemm 2048^3, median, this sitting): {gemm:.0f} GFLOP/s\n" if gemm else "")
print(head)
print("|" + " --- |" * (8 + len(extras)))
for c in cases:
    v = json.load(open(os.path.join(d, f"vggtl-{c}.json")))["cases"][0]
    t = json.load(open(os.path.join(d, f"torch-{c}.json")))["cases"][0]
    ips, tips = v["imagesPerSecond"], t["imagesPerSecond"]
    gf = v.get("gflops")
    pct = f"{100 * gf / gemm:.0f}%" if gf and gemm else "-"
    anchor = v.get("pytorchImagesPerSecond")
    to_anchor = f"{ips / anchor:.2f}" if anchor else "-"
    row = (f"| {c} | {ips:.2f} | {gf:.0f} | {pct} | {tips:.2f} | **{ips / tips:.2f}** | "
           f"{anchor if anchor else '-'} | {to_anchor} |" if gf else
           f"| {c} | {ips:.2f} | - | - | {tips:.2f} | **{ips / tips:.2f}** | {anchor if anchor else '-'} | {to_anchor} |")
    for e in extras:
        p = os.path.join(d, f"{e}-{c}.json")
        row += f" {json.load(open(p))['cases'][0]['imagesPerSecond']:.2f} |" if os.path.exists(p) else " - |"
    print(row)

#!/usr/bin/env python3
"""Per-kernel time of an Nsight Compute run: summarize_ncu.py NCU.csv

Reads `ncu --csv --page raw --metrics gpu__time_duration.sum` output (scripts/gpu.sh profile-decode) and prints,
per kernel name, how many launches and their total and mean duration, largest first, then the sum over all
kernels: what one decode step's kernels cost run one at a time, to set against the step's measured time (the
difference is launch gaps and the kernels' ramp-up/tail, which a CUDA graph only partly hides).
"""
import csv
import sys
from collections import defaultdict

SCALE_TO_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def kernel_name(full):
    """'void ns::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 1>(const T *, ...)' -> 'ns::gemv_kernel<__nv_bfloat16, 1>'."""
    name = full.replace("(anonymous namespace)::", "")
    if name.startswith("void "):
        name = name[len("void "):]
    return name.split("(")[0].strip() or full


def main(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(line for line in f if line.startswith('"'))]
    if len(rows) < 2:
        sys.exit(f"summarize_ncu.py: {path}: no kernel rows (is it ncu --csv --page raw output?)")
    header, units, data = rows[0], rows[1], rows[2:]
    name_col, time_col = header.index("Kernel Name"), header.index("gpu__time_duration.sum")
    scale = SCALE_TO_US.get(units[time_col])
    if scale is None:
        sys.exit(f"summarize_ncu.py: {path}: unknown unit '{units[time_col]}' for gpu__time_duration.sum")
    totals, counts = defaultdict(float), defaultdict(int)
    for r in data:
        name = kernel_name(r[name_col])
        totals[name] += float(r[time_col].replace(",", "")) * scale
        counts[name] += 1
    everything = sum(totals.values())
    print(f"{'kernel':<90} {'launches':>8} {'total us':>10} {'mean us':>9} {'share':>6}")
    for name in sorted(totals, key=totals.get, reverse=True):
        print(f"{name[:90]:<90} {counts[name]:>8} {totals[name]:>10.1f} {totals[name] / counts[name]:>9.2f} "
              f"{100 * totals[name] / everything:>5.1f}%")
    print(f"{'all kernels':<90} {sum(counts.values()):>8} {everything:>10.1f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

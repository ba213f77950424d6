#!/usr/bin/env python3
"""Time vimg against qemu-img on the same work, alternating the two (A B A B
...) and reporting the median of the per-pair ratios vimg/qemu-img, as
research/qemu-img-baseline.md prescribes: single timings on shared machines
swing by up to 2x, paired ratios do not.

usage: bench/pairs.py PAIRS 'vimg command' 'qemu-img command' [label]
Outputs are removed before every run; commands run in the current folder.
"""
import shlex, statistics, subprocess, sys, time, os, glob

def run(cmd, outputs):
    for o in outputs:
        for f in glob.glob(o):
            if os.path.isdir(f):
                subprocess.run(["rm", "-rf", f])
            else:
                os.remove(f)
    t = time.perf_counter()
    r = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {cmd}\n{r.stderr.decode()}")
    return dt

def main():
    pairs, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    label = sys.argv[4] if len(sys.argv) > 4 else a
    outputs = os.environ.get("OUTPUTS", "").split()
    run(a, outputs); run(b, outputs)  # warm-up
    ratios, ta, tb = [], [], []
    for _ in range(pairs):
        x = run(a, outputs); y = run(b, outputs)
        ta.append(x); tb.append(y); ratios.append(x / y)
    print(f"{label:40s} ratio {statistics.median(ratios):.2f}  "
          f"(vimg {statistics.median(ta):.3f}s, qemu-img {statistics.median(tb):.3f}s, {pairs} pairs)")

main()

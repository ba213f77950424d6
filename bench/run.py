#!/usr/bin/env python3
"""vimg against qemu-img on the workload of issue 13, one command from a
clean checkout:

    bench/run.py [--pairs N] [--dir DIR] [--only LABEL,...] [--scale]

Builds vimg (release), makes the workload in DIR (default
/var/tmp/vimg-bench): an 8 GiB raw disk holding 2 GiB of real files (the
system's libraries and shared data, 64 runs of 32 MiB), and its VMDK, VHD
and streamOptimized conversions made by qemu-img. Then each row runs vimg
and qemu-img alternately (A B A B ..., PAIRS pairs after a warm-up), with
the page cache written back (`sync`, untimed) before every run, and prints the median of the per-pair ratios vimg / qemu-img, the
median times and vimg's peak RSS. Lone timings on shared machines swing by
2x; paired ratios do not. --scale adds the same conversion with 1, 4 and
16 GiB of data, each run from a cold page cache (root: it drops the
caches), in seconds per GiB, which should stay flat. Nothing here is
a test: no figure fails anything.
"""
import argparse, os, shutil, statistics, subprocess, sys, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIMG = os.path.join(REPO, "target", "release", "vimg")
MIB, GIB = 1 << 20, 1 << 30


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def data_files():
    """The system's files, in a fixed order: what fills the disk."""
    for top in ["/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/lib", "/usr/bin"]:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(root, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    yield p


def make_raw(path, size, data, run=32 * MIB):
    """A sparse raw disk of `size` with `data` bytes of real files, in runs
    of `run` bytes spread evenly over it."""
    runs = data // run
    stride = size // runs
    files = data_files()
    buf = bytearray()
    with open(path, "wb") as out:
        out.truncate(size)
        for i in range(runs):
            while len(buf) < run:
                try:
                    with open(next(files), "rb") as f:
                        buf += f.read(run)
                except StopIteration:
                    files = data_files()
                except OSError:
                    pass
            out.seek(i * stride)
            out.write(buf[:run])
            del buf[:run]


def workload(d, data_gib=2):
    os.makedirs(d, exist_ok=True)
    os.chdir(d)
    if not os.path.exists("w.raw"):
        print(f"making the workload in {d} ...", flush=True)
        make_raw("w.raw.part", 8 * GIB, data_gib * GIB)
        os.rename("w.raw.part", "w.raw")
    for name, cmd in [
        ("w.vmdk", "qemu-img convert -O vmdk w.raw w.vmdk"),
        ("w.vhd", "qemu-img convert -O vpc -o subformat=dynamic w.raw w.vhd"),
        ("w-stream.vmdk", "qemu-img convert -O vmdk -o subformat=streamOptimized w.raw w-stream.vmdk"),
    ]:
        if not os.path.exists(name):
            sh(cmd)
    # commit and rebase: a base with the workload's data and a delta over
    # it holding 1 GiB, kept as p-*.vmdk and copied before each run; a
    # second base that differs from the first by 1 GiB.
    if not os.path.exists("p-delta.vmdk"):
        shutil.copy("w.vmdk", "base.vmdk")
        sh(f"rm -f delta.vmdk && {VIMG} snapshot create -q base.vmdk delta.vmdk")
        args = " ".join(f"-c 'write -P {i + 1} {i * 256 + 64}M 32M'" for i in range(32))
        sh(f"qemu-io -f vmdk {args} delta.vmdk > /dev/null")
        sh("cp --sparse=always base.vmdk p-base.vmdk && cp --sparse=always delta.vmdk p-delta.vmdk")
    if not os.path.exists("other.vmdk"):
        shutil.copy("w.vmdk", "other.vmdk")
        args = " ".join(f"-c 'write -P {i + 101} {i * 256}M 32M'" for i in range(32))
        sh(f"qemu-io -f vmdk {args} other.vmdk > /dev/null")
    if not os.path.exists("big.vmdk"):
        sh(f"{VIMG} create -q -f vmdk big.vmdk 2T")
        sh(f"{VIMG} snapshot create -q big.vmdk big-delta.vmdk")
        sh(f"qemu-io -f vmdk -c 'write -P 9 1T 64M' big-delta.vmdk > /dev/null")
    sh("sync")


# The commit and rebase chain as made, before every run.
FRESH_CHAIN = "cp --sparse=always p-base.vmdk base.vmdk && cp --sparse=always p-delta.vmdk delta.vmdk"


def timed(cmd, prepare=None):
    """Seconds `cmd` takes (after `prepare`, untimed) and its peak RSS in
    KiB (of the command GNU time measures: the first word)."""
    if prepare:
        sh(prepare)
    sh("sync")
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "sh", "-c", f"exec {cmd}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    # Written back before the next run, untimed: neither tool syncs.
    sh("sync")
    if r.returncode != 0:
        sys.exit(f"failed: {cmd}\n{r.stderr.decode()}")
    rss = int(r.stderr.decode().strip().splitlines()[-1])
    return dt, rss


def clean(outputs):
    for o in outputs:
        if os.path.exists(o):
            os.remove(o)


def pair_row(label, a, b, outputs=(), prepare=None, pairs=5, size_of=None):
    timed_a = lambda: (clean(outputs), timed(a, prepare))[1]
    timed_b = lambda: (clean(outputs), timed(b, prepare))[1]
    timed_a(); timed_b()  # warm-up
    ratios, ta, tb, rss = [], [], [], []
    sizes = None
    for _ in range(pairs):
        x, m = timed_a()
        if size_of:
            sa = os.path.getsize(size_of)
        y, _ = timed_b()
        if size_of:
            sizes = sa / os.path.getsize(size_of)
        ta.append(x); tb.append(y); ratios.append(x / y); rss.append(m)
    clean(outputs)
    extra = f"  size {sizes:.3f}x" if sizes else ""
    print(f"| {label} | {statistics.median(ratios):.2f} | {statistics.median(ta):.2f} s | "
          f"{statistics.median(tb):.2f} s | {max(rss) // 1024} MiB |{extra}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--dir", default="/var/tmp/vimg-bench")
    ap.add_argument("--only", default="")
    ap.add_argument("--scale", action="store_true")
    args = ap.parse_args()
    sh(f"cargo build --release --quiet --manifest-path {REPO}/Cargo.toml")
    workload(args.dir)
    v, q = VIMG, "qemu-img"
    rows = [
        ("raw → VMDK", f"{v} convert -O vmdk w.raw o.vmdk", f"{q} convert -O vmdk w.raw o.vmdk", ["o.vmdk"], None, None),
        ("raw → VHD dynamic", f"{v} convert -O vhd w.raw o.vhd", f"{q} convert -O vpc w.raw o.vhd", ["o.vhd"], None, None),
        ("VHD → VMDK", f"{v} convert -O vmdk w.vhd o.vmdk", f"{q} convert -O vmdk w.vhd o.vmdk", ["o.vmdk"], None, None),
        ("VMDK → VHD", f"{v} convert -O vhd w.vmdk o.vhd", f"{q} convert -O vpc w.vmdk o.vhd", ["o.vhd"], None, None),
        ("VMDK → raw", f"{v} convert -O raw w.vmdk o.raw", f"{q} convert -O raw w.vmdk o.raw", ["o.raw"], None, None),
        ("raw → streamOptimized", f"{v} convert -O vmdk -o subformat=streamOptimized w.raw o.vmdk",
         f"{q} convert -O vmdk -o subformat=streamOptimized w.raw o.vmdk", ["o.vmdk"], None, "o.vmdk"),
        ("streamOptimized → raw", f"{v} convert -O raw w-stream.vmdk o.raw", f"{q} convert -O raw w-stream.vmdk o.raw", ["o.raw"], None, None),
        ("map (JSON) of the VMDK", f"{v} map --output json w.vmdk", f"{q} map --output json w.vmdk", [], None, None),
        ("check of the VMDK", f"{v} check w.vmdk", f"{q} check w.vmdk", [], None, None),
        ("commit 1 GiB delta into a VMDK base", f"{v} commit -q --force delta.vmdk", f"{q} commit -q delta.vmdk", [],
         FRESH_CHAIN, None),
        ("VMDK → raw ÷ cp --sparse=always of the VMDK", f"{v} convert -O raw w.vmdk o.raw", "cp --sparse=always w.vmdk o.raw", ["o.raw"], None, None),
        ("VMDK → VHD ÷ cp --sparse=always of the VMDK", f"{v} convert -O vhd w.vmdk o.vhd", "cp --sparse=always w.vmdk o.vhd", ["o.vhd"], None, None),
        ("raw → VMDK ÷ cp --sparse=always of the raw", f"{v} convert -O vmdk w.raw o.vmdk", "cp --sparse=always w.raw o.vmdk", ["o.vmdk"], None, None),
        ("VHD → VMDK ÷ cp --sparse=always of the VHD", f"{v} convert -O vmdk w.vhd o.vmdk", "cp --sparse=always w.vhd o.vmdk", ["o.vmdk"], None, None),
    ]
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    print(f"\n{args.pairs} pairs each, `sync` (untimed) before every run; machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // GIB} GiB\n")
    print("| operation | ratio | vimg | peer | vimg peak RSS |")
    print("|---|---|---|---|---|")
    for label, a, b, outs, prep, size_of in rows:
        if only and not any(o in label for o in only):
            continue
        pair_row(label, a, b, outs, prep, args.pairs, size_of)
    if not only or any("rebase" in o for o in only):
        t, m = timed(f"{v} rebase -q -b other.vmdk delta.vmdk", FRESH_CHAIN)  # 1 GiB differs
        print(f"| rebase onto a base differing by 1 GiB (no peer) | – | {t:.2f} s (per GiB) | – | {m // 1024} MiB |")
    if not only or any("2 TiB" in o for o in only):
        for label, cmd, prep in [
            ("check of an empty 2 TiB VMDK", f"{v} check big.vmdk", None),
            ("commit 64 MiB into a 2 TiB base", f"{v} commit -q big-delta.vmdk",
             f"{v} create -q -f vmdk big2.vmdk 2T && rm -f big2.vmdk"),
        ]:
            t, m = timed(cmd, prep)
            print(f"| {label} (peak RSS) | – | {t:.2f} s | – | {m // 1024} MiB |")
    if args.scale:
        for gib in [1, 4, 16]:
            name = f"s{gib}.raw"
            if not os.path.exists(name):
                make_raw(name, 32 * GIB, gib * GIB)
            runs, floor = [], []
            for _ in range(max(args.pairs, 3)):
                # Every run reads its source from the disk: how much of it
                # the page cache holds otherwise depends on what ran before.
                cold = "sync && echo 3 > /proc/sys/vm/drop_caches"
                clean(["o.vmdk"])
                runs.append(timed(f"{v} convert -O vmdk {name} o.vmdk", cold))
                clean(["o.vmdk"])
                floor.append(timed(f"cp --sparse=always {name} o.vmdk", cold))
            clean(["o.vmdk"])
            t = statistics.median(r[0] for r in runs)
            c = statistics.median(r[0] for r in floor)
            m = max(r[1] for r in runs)
            print(f"| raw → VMDK with {gib} GiB of data, ÷ cp --sparse=always (median of {len(runs)}, cold cache) | {t / c:.2f} | {t / gib:.2f} s/GiB | {c / gib:.2f} s/GiB | {m // 1024} MiB |")


main()

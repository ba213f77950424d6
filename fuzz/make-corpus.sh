#!/usr/bin/env bash
# Build the seed corpora for the vimg fuzz targets into fuzz/corpus/<target>/
# (git-ignored): small real images from shared/corpus (large ones truncated,
# .gz ones expanded first), images made by qemu-img and by vimg, and text
# descriptors followed by the extent files they name.
#
# Usage: fuzz/make-corpus.sh [SHARED_CORPUS_DIR]
# Needs qemu-img, python3, and vimg built (cargo build) in the repo root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${1:-$repo/../shared/corpus}
[ -d "$shared" ] || shared=/work/shared/corpus
vimg=$repo/target/debug/vimg
[ -x "$vimg" ] || (cd "$repo" && cargo build -q)
max=1048576

seeds=$here/corpus/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
mkdir -p "$seeds"

# add NAME FILE: copy FILE as a seed, truncated to 1 MiB.
add() {
    cp "$2" "$seeds/$1"
    truncate -s "<$max" "$seeds/$1"
}
# desc NAME DESCRIPTOR EXTENT...: the descriptor, a NUL, then each extent file
# (separated by the harness's extent separator), all within 1 MiB.
desc() {
    local name=$1 d=$2
    shift 2
    {
        # (qemu-img pads descriptor files with NULs; the first NUL must be ours)
        python3 -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], "rb").read().rstrip(b"\0"))' "$d"
        printf '\0'
        local first=1
        for e in "$@"; do
            [ $first = 1 ] || printf '\0--extent--\0'
            first=0
            cat "$e"
        done
    } >"$seeds/$name"
    truncate -s "<$max" "$seeds/$name"
}

# --- shared/corpus: real images from other tools --------------------------
while IFS= read -r f; do
    rel=${f#"$shared"/}
    name=shared-$(echo "$rel" | tr '/' '_')
    case "$f" in
    # Raw flat extents are raw disks; they go in below behind their
    # descriptors. Fixed VHDs over 1 MiB lose their footer when cut, so
    # they are shrunk instead (below).
    *-flat.vmdk* | */fixed.vhd.gz | *.vhdf | */vhd.hexpat.vhd) ;;
    *.gz)
        gunzip -c "$f" >"$work/x"
        add "${name%.gz}" "$work/x"
        ;;
    *.bz2) ;; # d2v-zerofilled: 252 MiB of zeros, not a useful seed
    *MANIFEST.md | */.gitattributes) ;;
    *) add "$name" "$f" ;;
    esac
done < <(find "$shared" -type f | sort)

# The descriptors with their extents, as one input each.
gunzip -c "$shared/vmdk-rs/monolithicFlat-flat.vmdk.gz" >"$work/flat.full"
head -c 65536 "$work/flat.full" >"$work/flat"
desc shared-monolithicFlat+extent.vmdk "$shared/vmdk-rs/monolithicFlat.vmdk" "$work/flat"
desc shared-twoGbMaxExtentFlat+extent.vmdk "$shared/vmdk-rs/twoGbMaxExtentFlat.vmdk" "$work/flat"
head -c 65536 "$shared/vmdk-rs/vmfs_thick-flat.vmdk" >"$work/vmfs"
desc shared-vmfs_thick+extent.vmdk "$shared/vmdk-rs/vmfs_thick.vmdk" "$work/vmfs"
desc shared-twoGbMaxExtentSparse+extent.vmdk "$shared/vmdk-rs/twoGbMaxExtentSparse.vmdk" \
    "$shared/vmdk-rs/twoGbMaxExtentSparse-s001.vmdk"

# Fixed VHDs cut down to 1 MiB: keep the first 1 MiB - 512 bytes of data and
# put the footer after it with the sizes and checksum patched.
shrink_fixed() {
    python3 - "$1" "$2" <<'EOF'
import struct, sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()
footer = bytearray(data[-512:])
size = 1024 * 1024 - 512
size -= size % 512
struct.pack_into('>QQ', footer, 40, size, size)
footer[56:60] = struct.pack('>HBB', 65535, 16, 255)  # "use current size"
footer[64:68] = b'\0\0\0\0'
struct.pack_into('>I', footer, 64, ~sum(footer) & 0xffffffff)
open(dst, 'wb').write(data[:size] + bytes(footer))
EOF
}
gunzip -c "$shared/node-vhd/fixed.vhd.gz" >"$work/fixed.vhd"
shrink_fixed "$work/fixed.vhd" "$seeds/shared-node-vhd_fixed-shrunk.vhd"
shrink_fixed "$shared/imhex-patterns/vhd.hexpat.vhd" "$seeds/shared-imhex-vhd-shrunk.vhd"
shrink_fixed "$shared/freebsd-mkimg/img-1x1-512-mbr.vhdf" "$seeds/shared-mkimg-vhdf-shrunk.vhd"

# --- qemu-img ----------------------------------------------------------------
cd "$work"
# A small raw disk with some data in it.
python3 - <<'EOF'
import os
with open('data.raw', 'wb') as f:
    f.truncate(4 << 20)
    for off, n in [(0, 4096), (65536 - 100, 300), (1 << 20, 70000), ((4 << 20) - 512, 512)]:
        f.seek(off)
        f.write(bytes((i * 7 + off) & 0xff | 1 for i in range(n)))
with open('small.raw', 'wb') as f:
    f.truncate(512 << 10)
    f.seek(1000)
    f.write(b'vimg fuzz seed' * 100)
EOF
q() { qemu-img "$@" >/dev/null; }
q create -f vmdk q-sparse.vmdk 16M && add qemu-create-sparse.vmdk q-sparse.vmdk
q create -f vmdk -o zeroed_grain=on q-zg.vmdk 16M && add qemu-create-zeroed-grain.vmdk q-zg.vmdk
q create -f vmdk -o subformat=streamOptimized q-stream.vmdk 16M && add qemu-create-stream.vmdk q-stream.vmdk
q create -f vmdk -o subformat=monolithicFlat q-flat.vmdk 256K &&
    desc qemu-create-flat+extent.vmdk q-flat.vmdk q-flat-flat.vmdk
q create -f vmdk -o subformat=twoGbMaxExtentSparse q-2gs.vmdk 16M &&
    desc qemu-create-2gbsparse+extent.vmdk q-2gs.vmdk q-2gs-s001.vmdk
q create -f vpc q-dyn.vhd 16M && add qemu-create-dynamic.vhd q-dyn.vhd
q create -f vpc -o force_size=on q-dyn-fs.vhd 16M && add qemu-create-dynamic-forcesize.vhd q-dyn-fs.vhd
q create -f vpc -o subformat=fixed q-fixed.vhd 512K && add qemu-create-fixed.vhd q-fixed.vhd
q convert -O vmdk data.raw qc.vmdk && add qemu-convert-sparse.vmdk qc.vmdk
q convert -O vmdk -o subformat=streamOptimized data.raw qcs.vmdk && add qemu-convert-stream.vmdk qcs.vmdk
q convert -O vmdk -o zeroed_grain=on data.raw qcz.vmdk && add qemu-convert-zeroed-grain.vmdk qcz.vmdk
q convert -O vmdk -o subformat=twoGbMaxExtentSparse small.raw qc2.vmdk &&
    desc qemu-convert-2gbsparse+extent.vmdk qc2.vmdk qc2-s001.vmdk
q convert -O vpc data.raw qc.vhd && add qemu-convert-dynamic.vhd qc.vhd
q convert -O vpc -o subformat=fixed small.raw qcf.vhd && add qemu-convert-fixed.vhd qcf.vhd

# --- images with their parent ----------------------------------------------
# The input is the image, the harness's parent separator, then the parent's
# file (written under the name the image gives its parent; see materialize
# in src/lib.rs).
sep() { printf '\0--parent--\0'; }
q convert -O vmdk data.raw p.vmdk
q create -f vmdk -b p.vmdk -F vmdk qd.vmdk
qemu-io -c 'write -P 0x5a 70000 9000' -c 'write -P 0x33 1048000 1000' qd.vmdk >/dev/null
{ cat qd.vmdk; sep; cat p.vmdk; } >"$seeds/qemu-delta-monolithic.vmdk"
q create -f vmdk -o subformat=twoGbMaxExtentSparse -b p.vmdk -F vmdk qd2.vmdk
qemu-io -c 'write -P 0x5a 3000 100' qd2.vmdk >/dev/null
desc qemu-delta-2gbsparse.vmdk qd2.vmdk qd2-s001.vmdk
{ sep; cat p.vmdk; } >>"$seeds/qemu-delta-2gbsparse.vmdk"
# A differencing VHD (with its dynamic parent) and a VMDK delta with 4 KiB
# grains over p.vmdk.
python3 "$here/make-parent-seeds.py" "$seeds" p.vmdk

# --- vimg ----------------------------------------------------------------------
v() { "$vimg" "$@" >/dev/null; }
v create -f vmdk v-sparse.vmdk 16M && add vimg-create-sparse.vmdk v-sparse.vmdk
v create -f vmdk -o zeroed_grain=on v-zg.vmdk 16M && add vimg-create-zeroed-grain.vmdk v-zg.vmdk
v create -f vhd v-dyn.vhd 16M && add vimg-create-dynamic.vhd v-dyn.vhd
v create -f vhd -o block_size=512K v-dyn512.vhd 16M && add vimg-create-dynamic-512k.vhd v-dyn512.vhd
v create -f vhd -o subformat=fixed v-fixed.vhd 256K && add vimg-create-fixed.vhd v-fixed.vhd
v convert -O vmdk data.raw vc.vmdk && add vimg-convert-sparse.vmdk vc.vmdk
v convert -O vhd -o block_size=512K data.raw vc.vhd && add vimg-convert-dynamic-512k.vhd vc.vhd
v convert -O vhd -o block_size=512K small.raw vc1.vhd && add vimg-convert-dynamic-1block.vhd vc1.vhd
v convert -O vhd -o subformat=fixed small.raw vcf.vhd && add vimg-convert-fixed.vhd vcf.vhd
v convert -O vmdk -o subformat=monolithicFlat small.raw vcflat.vmdk 2>/dev/null &&
    desc vimg-convert-flat+extent.vmdk vcflat.vmdk vcflat-flat.vmdk || true

# --- hand-written descriptors ------------------------------------------------
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 64 FLAT "a.bin" 0\nRDONLY 64 ZERO\nRW 32 FLAT "b.bin" 8\n\nddb.adapterType = "ide"\n' >d1.vmdk
head -c 40960 data.raw >a.bin
tail -c 40960 data.raw >b.bin
desc hand-flat-zero-flat.vmdk d1.vmdk a.bin b.bin
printf '# Disk DescriptorFile\nversion=1\ncreateType="twoGbMaxExtentSparse"\nRW 32768 SPARSE "s.vmdk"\nRW 2048 ZERO\n' >d2.vmdk
desc hand-sparse-zero.vmdk d2.vmdk q-sparse.vmdk

# An ESXi seSparse extent as qemu reads it (const header, volatile header,
# grain directory, one grain table; grains: data, zero, unmapped, data
# stored out of order), 16 MiB, under a descriptor; 42 KiB in all.
python3 - <<'EOF'
import struct
cap = 32768                       # sectors: one grain table
gd, gt, grains = 2, 3, 3 + 64     # sectors
h = struct.pack('<26Q', 0xcafebabe, 0x200000001, cap, 8, 64, 0, 0, 0, 0, 0,
                1, 1, 0, 0, 0, 0, gd, 1, gt, 64, 0, 0, 0, 0, grains, 8 * 2)
f = bytearray(h.ljust(512, b'\0'))
f += struct.pack('<Q', 0xcafecafe).ljust(512, b'\0')
f += struct.pack('<Q', 0x1000000000000000).ljust(512, b'\0')
table = [0] * 4096
table[0] = 0x3000000000000000                          # grain 0 of the region
table[1] = 0x2000000000000000                          # zero
table[2] = 0x1000000000000000                          # unmapped
table[7] = 0x3000000000000000 | (1 << 48)              # grain 1 of the region
f += b''.join(struct.pack('<Q', e) for e in table)
f += b'\x5e' * 4096
f += b'\xa7' * 4096
open('se.bin', 'wb').write(f)
EOF
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="seSparse"\n\n# Extent description\nRW 32768 SESPARSE "se.bin"\n' >d3.vmdk
desc hand-sesparse.vmdk d3.vmdk se.bin

# Both targets start from the same seeds.
for t in open_read open_write; do
    mkdir -p "$here/corpus/$t"
    cp "$seeds"/* "$here/corpus/$t/"
done
ls -l "$seeds" | awk 'NR>1 {n++; s+=$5} END {print n " seeds, " s " bytes"}'

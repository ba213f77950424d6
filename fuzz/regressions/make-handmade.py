#!/usr/bin/env python3
"""Write the hand-built regression inputs (the *-small.bin and
*-handmade.bin files in this directory) from scratch, so their structure is
documented. Run from anywhere: python3 make-handmade.py"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(name, data):
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(data)


def sec(b):
    return b + bytes(-len(b) % 512)


def vhd_checksum(b, field):
    return ~sum(x for i, x in enumerate(b) if not field <= i < field + 4) & 0xffffffff


def vhd_footer(size):
    f = bytearray(512)
    f[0:8] = b'conectix'
    # features, version, data offset 512, timestamp, creator 'vimg' 1.0 Wi2k,
    # original and current size, geometry 65535/16/255 ("use current size"),
    # disk type 3 (dynamic)
    struct.pack_into('>IIQI4sI4sQQHBBI', f, 8, 2, 0x10000, 512, 0, b'vimg',
                     0x10000, b'Wi2k', size, size, 65535, 16, 255, 3)
    struct.pack_into('>I', f, 64, vhd_checksum(f, 64))
    return bytes(f)


def vhd_header(entries, block_size):
    h = bytearray(1024)
    h[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', h, 8, 2**64 - 1, 1536, 0x10000, entries, block_size)
    struct.pack_into('>I', h, 36, vhd_checksum(h, 36))
    return bytes(h)


# --- streamOptimized VMDK with the grain directory at the end ---------------
# 0 header (gd = GD_AT_END)  1 embedded descriptor  2 one deflated grain
# 3-6 grain table  7 grain directory  8 footer marker  9 footer  10 EOS marker
# qemu-img check: clean. Opening it read-write and flushing (no writes) makes
# vimg extend the file to 1024 + 65536 bytes, so the footer is no longer in
# the second-to-last sector and the image stops opening.
def kdmv(gd):
    h = bytearray(512)
    h[0:4] = b'KDMV'
    # version 3, flags newline-test + compressed, capacity 128 sectors,
    # grain 128 sectors, descriptor at sector 1 (1 sector), 512 GTEs/GT,
    # no RGD, gd offset, overhead 2
    struct.pack_into('<IIQQQQIQQQ', h, 4, 3, 0x10001, 128, 128, 1, 1, 512, 0, gd, 2)
    h[73:77] = b'\n \r\n'
    struct.pack_into('<H', h, 77, 1)  # deflate
    return bytes(h)


desc = sec(b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
           b'createType="streamOptimized"\nRW 128 SPARSE "stream-gd-at-end.vmdk"\n')
grain = sec(zlib.compress(bytes([0x5a]) * 65536))
gt = bytearray(2048)
struct.pack_into('<I', gt, 0, 2)
gd = sec(struct.pack('<I', 3))
footer_marker = sec(struct.pack('<QII', 1, 0, 3))
put('open_write-vmdk-stream-gd-at-end-flush-moves-footer-small.bin',
    kdmv(2**64 - 1) + desc + grain + bytes(gt) + gd + footer_marker + kdmv(7) + bytes(512))

# --- dynamic VHD whose one block runs past the end of the file --------------
# 64 KiB disk, 2 MiB blocks; block 0 at byte 2048 (bitmap) holds 64 KiB of
# data and then the trailing footer: the block "ends" 2 MiB later. Read-only,
# vimg refuses to read it; read-write it reads and writes it.
data = bytes((i * 7) & 0xff | 1 for i in range(65536))
put('open_write-vhd-block-past-eof-small.bin',
    vhd_footer(65536) + vhd_header(1, 2 << 20) + sec(struct.pack('>I', 4))
    + b'\xff' * 512 + data + vhd_footer(65536))

# --- dynamic VHD with partly used blocks ------------------------------------
# 4 KiB blocks, 2 of them; each bitmap is 0x55: sectors 1, 3, 5, 7 hold data,
# sectors 0, 2, 4, 6 are unused (read as zeros). block_status at an offset
# that is not a multiple of 512 reports a run that runs into the next sector.
N, BS = 2, 4096
bat = bytearray(512)
for i in range(N):
    struct.pack_into('>I', bat, 4 * i, (2048 + i * (512 + BS)) // 512)
blocks = b''.join(b'\x55' + bytes(511) + bytes([0xd0 + i]) * BS for i in range(N))
put('open_read-vhd-status-unaligned-overshoots-sector-small.bin',
    vhd_footer(N * BS) + vhd_header(N, BS) + bytes(bat) + blocks + vhd_footer(N * BS))

# --- VMDK descriptor whose extent sizes add up past 2^64 bytes ------------
put('open_read-vmdk-extent-sizes-overflow-handmade.bin',
    b'createType="monolithicFlat"\nRW 36028797018963967 ZERO\nRW 36028797018963967 ZERO\n')

# --- VMDK descriptor with a FLAT extent at a huge offset in its file --------
# (the harness creates f.bin from the 1 KiB after the NUL)
put('open_read-vmdk-flat-offset-overflow-handmade.bin',
    b'createType="monolithicFlat"\nRW 100 FLAT "f.bin" 36028797018963967\n\0' + b'x' * 1024)

# --- sparse VMDK whose 16384 directory entries all name one grain table ----
# 65536 entries per table, all "zeroed grain" (1, with flag 2 set), 1-sector
# grains: 2^30 grains described by a 328 KB file.
n, gtes = 16384, 65536
gt_at = 1 + n * 4 // 512
h = bytearray(512)
h[0:4] = b'KDMV'
struct.pack_into('<IIQQQQIQQQ', h, 4, 2, 0x5, n * gtes, 1, 0, 0, gtes, 0, 1, gt_at + 512)
h[73:77] = b'\n \r\n'
put('open_read-vmdk-gd-aliases-one-gt-hang-oom-handmade.bin',
    bytes(h) + struct.pack('<%dI' % n, *([gt_at] * n)) + struct.pack('<%dI' % gtes, *([1] * gtes)))


# =========================================================================
# Second round (fuzz2). Helpers for hand-built sparse VMDKs.
def kdmv_header(capacity, grain, gtes, desc_off, desc_size, rgd, gd, overhead, flags=1):
    """Sparse extent header, version 1; flags 1 = newline test only (no
    redundant directory), 3 = with it."""
    h = bytearray(512)
    h[0:4] = b'KDMV'
    struct.pack_into('<IIQQQQIQQQ', h, 4, 1, flags, capacity, grain, desc_off, desc_size,
                     gtes, rgd, gd, overhead)
    h[73:77] = b'\n \r\n'
    return bytes(h)


def sectors(n, pieces):
    """n zero sectors with pieces [(sector, bytes)] laid over them."""
    b = bytearray(n * 512)
    for s, data in pieces:
        b[s * 512:s * 512 + len(data)] = data
    return bytes(b)


def descriptor(create_type, extents, name_sectors=128):
    return (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
            b'createType="' + create_type + b'"\n' + extents)


# --- 7. sparse VMDK whose file is shorter than its overhead ----------------
# 0 header (64 KiB disk, 4 KiB grains, 16-entry tables, GD at sector 1,
# overhead 128 sectors)  1 GD -> table at 2  2 the (empty) table. The file
# ends at 1536, before the 64 KiB overhead. A write allocates its grain at
# the end of the file (sector 3), the flush records it, and the next open
# refuses it: "grain 0 at byte 1536 lies inside the metadata area".
put('open_write-vmdk-file-shorter-than-overhead-small.bin',
    sectors(3, [(0, kdmv_header(128, 8, 16, 0, 0, 0, 1, 128)), (1, struct.pack('<I', 2))]))

# --- 8. embedded descriptor space that covers the grain directory ----------
# 0 header (descriptor at sector 1, 4 sectors of space; GD at 3; overhead 6)
# 1 descriptor text (NUL-terminated)  3 GD -> table at 5  5 the table.
# Any write, then flush: the descriptor (new CID) is written back padded with
# zeros to its 4 sectors, over the GD; the written grain is lost.
put('open_write-vmdk-embedded-descriptor-covers-gd-small.bin',
    sectors(6, [(0, kdmv_header(128, 8, 16, 1, 4, 0, 3, 6)),
                (1, descriptor(b'monolithicSparse', b'RW 128 SPARSE "disk.vmdk"\n') + b'\0'),
                (3, struct.pack('<I', 5))]))

# --- 9. grain table entry pointing at the grain directory (overhead 0) ------
# 0 header (GD at 2, overhead 0)  2 GD -> table at 3  3 table: grain 0 at
# sector 2 (the GD itself)  4.. 4 KiB of 0x11. With overhead 0 nothing is
# "metadata", so the grain is accepted; a write into grain 0 (virtual bytes
# 0-4095) overwrites the directory.
gt = bytearray(64)
struct.pack_into('<I', gt, 0, 2)
put('open_write-vmdk-grain-on-grain-directory-handmade.bin',
    sectors(12, [(0, kdmv_header(128, 8, 16, 0, 0, 0, 2, 0)), (2, struct.pack('<I', 3)),
                 (3, bytes(gt)), (4, bytes([0x11]) * 4096)]))

# --- 10. grain table inside the grain directory ----------------------------
# 0 header (516 KiB disk, 1-sector grains, 8-entry tables: 129 GD entries;
# GD at 1, overhead 3)  1-2 GD: entry 0 -> table at sector 2, which is also
# where GD entries 128-135 are. Writing into grain 0 sets table entry 0 =
# GD entry 128; allocating a table for the last grains sets GD entry 128 =
# table 0's entry 0. Either way the other structure is rewritten.
put('open_write-vmdk-grain-table-inside-grain-directory-small.bin',
    sectors(3, [(0, kdmv_header(129 * 8, 1, 8, 0, 0, 0, 1, 3)), (1, struct.pack('<I', 2))]))

# --- 11. dynamic VHD block that covers the trailing footer -----------------
# 8 KiB disk, 4 KiB blocks; block 0 at 2048 (bitmap) with data 2560-6655;
# the trailing footer is at 6144, the block's last sector. Byte 1700 (BAT
# padding, unread) only steers the harness's write plan (hash of the input):
# a whole write of block 0, then a write into block 1. Allocating block 1
# zeroes from the "old footer" at 6144 up to the new block, i.e. the last
# sector of block 0 that was just written.
bat = bytearray(b'\xff' * 512)
struct.pack_into('>I', bat, 0, 4)
bat[1700 - 1536] = 0
put('open_write-vhd-block-covers-trailing-footer-handmade.bin',
    vhd_footer(8192) + vhd_header(2, 4096) + bytes(bat) + b'\xff' * 512
    + bytes((i * 7) & 0xff | 1 for i in range(3584)) + vhd_footer(8192))

# --- 12. dynamic VHD without a trailing footer -----------------------------
# As 11 but block 0's data fills 2560-6655 and the file ends there (the
# footer copy at 0 is used). vimg takes the last sector of the file, block
# 0's last data sector, for the footer; allocating block 1 (the harness
# writes at 6737) zeroes it. A disk that lost its trailing footer (a
# truncated copy) loses data this way.
bat = bytearray(b'\xff' * 512)
struct.pack_into('>I', bat, 0, 4)
bat[1700 - 1536] = 2
put('open_write-vhd-no-trailing-footer-alloc-zeroes-last-sector-handmade.bin',
    vhd_footer(8192) + vhd_header(2, 4096) + bytes(bat) + b'\xff' * 512
    + bytes((i * 7) & 0xff | 1 for i in range(4096)))

# --- 13. fixed VHD whose current size is 2^64 - 1 --------------------------
# 512 bytes of data, then a fixed-disk footer (type 2, creator 'vimg' so the
# current size counts) with current size 0xffff...ff: size + 512 overflows.
f = bytearray(vhd_footer(2**64 - 1))
struct.pack_into('>I', f, 60, 2)
struct.pack_into('>I', f, 64, 0)
struct.pack_into('>I', f, 64, vhd_checksum(f, 64))
put('open_read-vhd-fixed-size-overflow-handmade.bin', bytes(512) + bytes(f))

# --- 14. text descriptor whose FLAT extent is the descriptor file ----------
# The harness saves the input as disk.vmdk; its one extent is disk.vmdk from
# byte 0. A write lands on the descriptor text; flush writes the descriptor
# back and cuts the file to its length, so the written data is gone.
put('open_write-vmdk-flat-extent-is-descriptor-handmade.bin',
    descriptor(b'monolithicFlat', b'RW 8 FLAT "disk.vmdk" 0\n') + b'\0' + bytes(4096))

# --- 15. one sparse extent file named by two extent lines ------------------
# s.vmdk: header (64 KiB, 4 KiB grains, GD at 1, overhead 3), GD -> table at
# 2, empty table. Each extent line opens it separately, with its own
# allocator at the end of the file: grains written through the two extents
# land on the same bytes.
sp = sectors(4, [(0, kdmv_header(128, 8, 16, 0, 0, 0, 1, 3)), (1, struct.pack('<I', 2))])
put('open_write-vmdk-sparse-extent-named-twice-handmade.bin',
    descriptor(b'twoGbMaxExtentSparse', b'RW 128 SPARSE "s.vmdk"\nRW 128 SPARSE "s.vmdk"\n')
    + b'\0' + sp)

# --- 16. unquoted extent file name with a quote in it ----------------------
# 'RW 8 FLAT f"x 0' parses (name f"x); flush writes 'RW 8 FLAT "f"x" 0',
# which does not parse: the image no longer opens.
put('open_write-vmdk-unquoted-extent-name-with-quote-handmade.bin',
    descriptor(b'monolithicFlat', b'RW 8 FLAT f"x 0\n') + b'\0' + bytes(4096))

# --- 17. embedded descriptor that vimg's own rewrite no longer fits --------
# 0 header (descriptor at sector 1, one sector of space; GD at 2 -> table at
# 3; overhead 4)  1 a 500-byte descriptor (a long ddb value fills it).
# vimg writes the descriptor back in its own layout (comment lines, quoted
# values), 554 bytes: after any write every flush fails with "the descriptor
# (554 bytes) no longer fits its 512-byte space".
d = descriptor(b'monolithicSparse', b'RW 128 SPARSE "disk.vmdk"\nddb.adapterType="ide"\n')
d += b'ddb.x="' + b'y' * (500 - len(d) - 9) + b'"\n'
assert len(d) == 500
put('open_write-vmdk-descriptor-outgrows-embedded-space-handmade.bin',
    sectors(4, [(0, kdmv_header(128, 8, 16, 1, 1, 0, 2, 4)), (1, d), (2, struct.pack('<I', 3))]))

# --- 18. differencing VHD whose parent locator lies inside a block ---------
# Parent (after the harness's parent separator): a fixed 8 KiB VHD, UUID
# 01..10. Child: differencing, 8 KiB, 4 KiB blocks; dynamic header at 512
# with no parent name and one W2ru locator (".\p.vhd", 14 bytes) at 2560;
# BAT at 1536: block 0 at 2048 (bitmap, all sectors unused), so its data
# (2560-6655) starts with the locator. Writing sector 0 of the disk
# overwrites the locator: the image no longer finds its parent.
def vhd_footer2(size, disk_type, uuid):
    f = bytearray(vhd_footer(size))
    struct.pack_into('>I', f, 60, disk_type)
    if disk_type == 2:
        struct.pack_into('>Q', f, 16, 2**64 - 1)  # no dynamic header
    f[68:84] = uuid
    struct.pack_into('>I', f, 64, 0)
    struct.pack_into('>I', f, 64, vhd_checksum(f, 64))
    return bytes(f)


def vhd_child_header(entries, block_size, parent_uuid, locators):
    h = bytearray(vhd_header(entries, block_size))
    h[40:56] = parent_uuid
    for i, (code, space, length, offset) in enumerate(locators):
        struct.pack_into('>4sIIIQ', h, 576 + 24 * i, code, space, length, 0, offset)
    struct.pack_into('>I', h, 36, 0)
    struct.pack_into('>I', h, 36, vhd_checksum(h, 36))
    return bytes(h)


PUUID, CUUID = bytes(range(1, 17)), bytes(range(0x21, 0x31))
loc = '.\\p.vhd'.encode('utf-16-le')
bat = bytearray(b'\xff' * 512)
struct.pack_into('>I', bat, 0, 4)
parent = bytes((i * 5) & 0xff | 1 for i in range(8192)) + vhd_footer2(8192, 2, PUUID)
child = (vhd_footer2(8192, 4, CUUID)
         + vhd_child_header(2, 4096, PUUID, [(b'W2ru', 512, len(loc), 2560)])
         + bytes(bat) + bytes(512) + loc + bytes(4096 - len(loc)) + vhd_footer2(8192, 4, CUUID))
put('open_write-vhd-locator-inside-block-handmade.bin', child + b'\0--parent--\0' + parent)

# --- 19. 20,000 extent lines naming one sparse file ------------------------
# s (after the NUL): a sparse extent with 200 grain tables of 512 "zeroed
# grain" entries (1-sector grains, flag 2), so no table is empty. Each extent
# line opens the file again and loads all 400 KiB of its tables, and keeps
# them: 20,000 x 400 KiB. Read-only open runs past 2 GB (and a minute).
ngt = 200
gt_at = 1 + -(-ngt * 4 // 512)
sp = bytearray(gt_at * 512 + ngt * 2048)
sp[0:512] = kdmv_header(ngt * 512, 1, 512, 0, 0, 0, 1, gt_at + ngt * 4, flags=5)
for i in range(ngt):
    struct.pack_into('<I', sp, 512 + 4 * i, gt_at + 4 * i)
    struct.pack_into('<512I', sp, (gt_at + 4 * i) * 512, *([1] * 512))
put('open_read-vmdk-many-extents-one-sparse-file-oom-handmade.bin',
    b'createType="twoGbMaxExtentSparse"\n' + b'RW 1 SPARSE "s"\n' * 20000 + b'\0' + bytes(sp))


# =========================================================================
# Resize. A 1 MiB sparse VMDK (16 grains, one grain table of 512 entries)
# whose table also names a grain for entry 20, past the capacity: readers
# never look there, but a disk grown past it would read that grain's 0xBB
# where the new part must read zeros.
gt = [0] * 512
gt[0], gt[20] = 128, 256
put('resize-vmdk-entry-past-the-capacity-shows-when-grown-handmade.bin',
    sectors(384, [(0, kdmv_header(2048, 128, 512, 0, 0, 0, 1, 128)),
                  (1, struct.pack('<I', 2)),
                  (2, struct.pack('<512I', *gt)),
                  (128, b'\xaa' * 65536),
                  (256, b'\xbb' * 65536)]))

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

#!/usr/bin/env python3
"""Seeds for images with a parent: a differencing VHD and a VMDK delta with
small grains, each followed by the harness's parent separator and its
parent (see materialize in src/lib.rs). Usage: make-parent-seeds.py DIR
[PARENT_VMDK]: writes DIR/delta-*.vhd / *.vmdk; PARENT_VMDK (a sparse VMDK,
e.g. one qemu-img converted) is the parent of the VMDK delta."""
import re
import struct
import sys

SEP = b'\0--parent--\0'
out = sys.argv[1]


def put(name, data):
    with open('%s/%s' % (out, name), 'wb') as f:
        f.write(data)


def vhd_checksum(b, field):
    return ~sum(x for i, x in enumerate(b) if not field <= i < field + 4) & 0xffffffff


def vhd_footer(size, dtype, uuid, data_offset=512):
    f = bytearray(512)
    f[0:8] = b'conectix'
    # features, version, data offset, timestamp, creator 'vimg' 1.0 Wi2k,
    # original and current size, geometry 65535/16/255, disk type
    struct.pack_into('>IIQI4sI4sQQHBBI', f, 8, 2, 0x10000, data_offset, 0, b'vimg',
                     0x10000, b'Wi2k', size, size, 65535, 16, 255, dtype)
    f[68:84] = uuid
    struct.pack_into('>I', f, 64, vhd_checksum(f, 64))
    return bytes(f)


def vhd_header(entries, block_size, table, parent_uuid=bytes(16), parent_name='',
               locators=()):
    h = bytearray(1024)
    h[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', h, 8, 2**64 - 1, table, 0x10000, entries, block_size)
    h[40:56] = parent_uuid
    name = parent_name.encode('utf-16-be')
    h[64:64 + len(name)] = name
    for i, (code, space, length, offset) in enumerate(locators):
        struct.pack_into('>4sIIIQ', h, 576 + 24 * i, code, space, length, 0, offset)
    struct.pack_into('>I', h, 36, vhd_checksum(h, 36))
    return bytes(h)


def pattern(n, seed):
    return bytes((i * 7 + seed) & 0xff | 1 for i in range(n))


# A dynamic parent: 8 blocks of 4 KiB, blocks 0, 3 and 7 full of data.
BS, N = 4096, 8
PUUID = bytes(range(1, 17))
bat = bytearray(b'\xff' * 512)
blocks = b''
for k, b in enumerate([0, 3, 7]):
    struct.pack_into('>I', bat, 4 * b, (2048 + k * (512 + BS)) // 512)
    blocks += b'\xff' * 512 + pattern(BS, 0x10 * b)
vhd_parent = (vhd_footer(N * BS, 3, PUUID) + vhd_header(N, BS, 1536) + bytes(bat) + blocks
              + vhd_footer(N * BS, 3, PUUID))

# A differencing child of it (found as "p.vhd"): a W2ru locator (".\p.vhd")
# at 1536, the BAT at 2048; block 3 allocated with every other sector used,
# block 5 with its first half used.
loc = '.\\p.vhd'.encode('utf-16-le')
bat = bytearray(b'\xff' * 512)
child_blocks = b''
for k, (b, bitmap) in enumerate([(3, b'\x55'), (5, b'\xf0')]):
    struct.pack_into('>I', bat, 4 * b, (2560 + k * (512 + BS)) // 512)
    child_blocks += bitmap + bytes(511) + pattern(BS, 0x80 + b)
CUUID = bytes(range(0x21, 0x31))
child = (vhd_footer(N * BS, 4, CUUID)
         + vhd_header(N, BS, 2048, PUUID, 'p.vhd', [(b'W2ru', 512, len(loc), 1536)])
         + loc + bytes(512 - len(loc)) + bytes(bat) + child_blocks + vhd_footer(N * BS, 4, CUUID))
put('delta-differencing.vhd', child + SEP + vhd_parent)

# --- a VMDK delta with 4 KiB grains over a 64 KiB-grain parent ---------------
if len(sys.argv) > 2:
    p = open(sys.argv[2], 'rb').read()
    cid = re.search(rb'CID=([0-9a-f]+)', p).group(1)
    pcap = struct.unpack_from('<Q', p, 12)[0]
    # larger than the parent, 64-entry tables, embedded descriptor
    cap, grain, gtes = pcap + 1808, 8, 64
    n = -(-(-(-cap // grain)) // gtes)
    desc = (b'# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=' + cid
            + b'\ncreateType="monolithicSparse"\nparentFileNameHint="p.vmdk"\n'
            + b'RW %d SPARSE "c.vmdk"\n' % cap)
    # grain directory at sector 3, then one sector per 64-entry table
    gd_at = 3
    gt_at = gd_at + -(-n * 4 // 512)
    overhead = gt_at + n
    h = bytearray(512)
    h[0:4] = b'KDMV'
    struct.pack_into('<IIQQQQIQQQ', h, 4, 1, 1, cap, grain, 1, 2, gtes, 0, gd_at, overhead)
    h[73:77] = b'\n \r\n'
    img = bytearray(overhead * 512)
    img[0:512] = h
    img[512:512 + len(desc)] = desc
    for i in range(n):
        struct.pack_into('<I', img, gd_at * 512 + 4 * i, gt_at + i)
    for k, g in enumerate([1, 40, 1000, cap // grain - 1]):
        at = len(img) // 512
        struct.pack_into('<I', img, (gt_at + g // gtes) * 512 + 4 * (g % gtes), at)
        img += pattern(4096, 0x40 + k)
    put('delta-small-grains.vmdk', bytes(img) + SEP + p)

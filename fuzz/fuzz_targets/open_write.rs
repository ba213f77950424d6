//! Open the input for writing (format probed), write a few small buffers at
//! offsets derived from the input, read them back, flush, reopen read-only
//! and check that the written bytes -- and the bytes around them, and
//! witness ranges no write touched (the whole of a small disk) -- read back
//! as expected. VHD checksums are repaired first so that the fuzzer reaches
//! the write paths. An input may carry the image's parent (see
//! `vimg_fuzz::materialize`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vimg::image::{factory::open, Image};
use vimg::io::Access;
use vimg_fuzz::{
    debug, extension_for, fix_vhd_checksums, hash, materialize, sane, scratch, walk_steps, Rng,
};

/// Bytes kept for comparison on each side of a write.
const GUARD: u64 = 300;
/// Largest single write.
const MAX_WRITE: u64 = 192 << 10;

struct Write {
    offset: u64,
    data: Vec<u8>,
    ok: bool,
}

fn read(dev: &mut dyn Image, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    dev.read_at(&mut buf, offset).ok().map(|_| buf)
}

/// What `[offset, offset + len)` should read after all `writes`, given what
/// it read before (`None` when a failed write makes it unknown).
fn expected(writes: &[Write], offset: u64, before: &[u8]) -> Option<Vec<u8>> {
    let mut out = before.to_vec();
    let end = offset + before.len() as u64;
    for w in writes {
        let w_end = w.offset + w.data.len() as u64;
        if w_end <= offset || w.offset >= end {
            continue;
        }
        if !w.ok {
            return None;
        }
        let from = w.offset.max(offset);
        let to = w_end.min(end);
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&w.data[(from - w.offset) as usize..(to - w.offset) as usize]);
    }
    Some(out)
}

/// Disks up to this size are compared whole before and after the writes.
const WHOLE_DISK: u64 = 1 << 20;
/// Clusters whose first and last sector are compared on larger disks.
const SAMPLED_CLUSTERS: u64 = 64;
/// Piece size of the whole-disk comparison.
const WITNESS_PIECE: u64 = 64 << 10;

/// Ranges to compare besides the written ones: the whole of a small disk;
/// on a larger one its first and last 4 KiB and the first and last sector
/// of clusters spread over it (allocation moves footers and tables next to
/// cluster edges).
fn witnesses(size: u64, cluster: u64) -> Vec<(u64, u64)> {
    if size <= WHOLE_DISK {
        // In pieces, so that a failed write only hides the pieces it touches.
        return (0..size.div_ceil(WITNESS_PIECE))
            .map(|k| {
                let start = k * WITNESS_PIECE;
                (start, WITNESS_PIECE.min(size - start))
            })
            .collect();
    }
    let mut out = vec![(0, 4096), (size - 4096, 4096)];
    let clusters = size.div_ceil(cluster);
    let step = clusters.div_ceil(SAMPLED_CLUSTERS).max(1);
    let mut c = 0;
    while c < clusters {
        let start = c * cluster;
        let end = (start + cluster).min(size);
        out.push((start, 512.min(end - start)));
        let last = end.saturating_sub(512).max(start);
        out.push((last, end - last));
        c += step;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let data = fix_vhd_checksums(data).unwrap_or_else(|| data.to_vec());
    let dir = scratch("open_write");
    let name = format!("disk.{}", extension_for(&data));
    let path = materialize(&dir, &name, &[&name], &data);
    // Read-back checks only where the image's own tables do not alias.
    let strict = sane(&dir, &path);
    let mut dev = match open(&path, None, Access::Write) {
        Ok(dev) => dev,
        Err(e) => {
            if debug() {
                eprintln!("{name}: {e}");
            }
            return;
        }
    };
    let size = dev.virtual_size();
    if size == 0 {
        return;
    }
    let cluster = dev.cluster_size().clamp(1, 1 << 40);
    let mut rng = Rng(hash(&data));

    // Plan the writes.
    let count = 1 + rng.below(4);
    let mut writes = Vec::new();
    for i in 0..count {
        let len = match rng.below(7) {
            0 => 1,
            1 => 512,
            2 => 513,
            3 => 4096,
            4 => cluster,
            5 => 2 * cluster + 3,
            _ => 1 + rng.below(65536),
        }
        .clamp(1, MAX_WRITE)
        .min(size);
        let last = size - len;
        let offset = match rng.below(6) {
            0 => 0,
            1 => last,
            // straddle a cluster boundary
            2 => cluster
                .saturating_mul(1 + rng.below(size / cluster + 1))
                .saturating_sub(len / 2 + 1),
            3 => rng.below(last + 1) / 512 * 512,
            4 => rng.below(last + 1),
            _ => size / 2,
        }
        .min(last);
        let fill = (i as u8).wrapping_mul(37).wrapping_add(1);
        let data: Vec<u8> = (0..len)
            .map(|k| fill ^ (k as u8).rotate_left(3) | 1)
            .collect();
        writes.push(Write {
            offset,
            data,
            ok: false,
        });
    }

    // What the ranges and their surroundings read before any write, plus
    // witnesses elsewhere that no write touches (or, for small disks, the
    // whole disk): a write must not change what it was not given.
    let mut spans: Vec<(u64, u64)> = writes
        .iter()
        .map(|w| {
            let start = w.offset.saturating_sub(GUARD);
            let end = (w.offset + w.data.len() as u64)
                .saturating_add(GUARD)
                .min(size);
            (start, end - start)
        })
        .collect();
    spans.extend(witnesses(size, cluster));
    let before: Vec<Option<Vec<u8>>> = spans
        .iter()
        .map(|&(o, l)| read(dev.as_mut(), o, l))
        .collect();

    // Validation must not depend on the access mode: what reads through a
    // read-only open must read through the read-write one, and the reverse.
    if let Ok(mut ro) = open(&path, None, Access::Read) {
        assert_eq!(
            ro.virtual_size(),
            size,
            "read-only and read-write opens disagree on the size"
        );
        for (&(o, l), b) in spans.iter().zip(&before) {
            let ro_ok = read(ro.as_mut(), o, l).is_some();
            assert!(
                ro_ok == b.is_some(),
                "bytes {o}..{}: read-only open {}, read-write open {}",
                o + l,
                if ro_ok { "reads them" } else { "fails" },
                if b.is_some() { "reads them" } else { "fails" },
            );
        }
    }

    for w in &mut writes {
        let r = dev.write_at(&w.data, w.offset);
        if debug() {
            eprintln!(
                "{name} (strict: {strict}): write {} bytes at {} of {size}: {r:?}",
                w.data.len(),
                w.offset
            );
        }
        w.ok = r.is_ok();
    }

    if !strict {
        // Writes may show through aliased data, but the image's structure
        // must survive: flush, reopen and walk.
        if dev.flush().is_err() {
            return;
        }
        drop(dev);
        match open(&path, None, Access::Read) {
            Ok(mut dev) => walk_steps(dev.as_mut(), 10_000),
            Err(e) => panic!("the image no longer opens after writes and a flush: {e}"),
        }
        return;
    }

    // Same handle, before flush.
    for (&(o, l), b) in spans.iter().zip(&before) {
        let (Some(b), Some(want)) = (b, b.as_ref().and_then(|b| expected(&writes, o, b))) else {
            continue;
        };
        let _ = b;
        if let Some(got) = read(dev.as_mut(), o, l) {
            assert!(
                got == want,
                "bytes {o}..{} differ from what was written (same handle)",
                o + l
            );
        }
    }

    if let Err(e) = dev.flush() {
        // Nothing outside the image's own structure can make a flush fail
        // once writes into it succeeded.
        if writes.iter().any(|w| w.ok) {
            panic!("flush failed after successful writes: {e}");
        }
        return;
    }
    drop(dev);

    let mut dev = match open(&path, None, Access::Read) {
        Ok(dev) => dev,
        Err(e) => panic!("the image no longer opens after writes and a flush: {e}"),
    };
    assert_eq!(dev.virtual_size(), size, "virtual size changed");
    for (&(o, l), b) in spans.iter().zip(&before) {
        let Some(want) = b.as_ref().and_then(|b| expected(&writes, o, b)) else {
            continue;
        };
        match read(dev.as_mut(), o, l) {
            Some(got) => assert!(
                got == want,
                "bytes {o}..{} differ from what was written (after reopen)",
                o + l
            ),
            None => panic!("bytes {o}..{} cannot be read after reopen", o + l),
        }
    }
    // open_read walks whole disks; here a shorter walk keeps the target fast.
    walk_steps(dev.as_mut(), 10_000);
});

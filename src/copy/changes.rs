//! Targets that already read something: an existing image `convert -n`
//! writes into, and a new delta `convert -B` makes over a backing file.
//! Only what changes what the target reads is written, in whole granules
//! (a VMDK grain), so a delta holds just what differs from its parent and
//! an existing disk is not rewritten where it already holds the data.

use std::path::PathBuf;

use crate::chain;
use crate::error::Result;
use crate::image::{Image, Sink, Source};
use crate::io::is_zero;

/// Bytes compared and written as one: a VMDK grain, so that a delta never
/// takes part of a grain (the rest of which would then read as zeros
/// instead of its parent's data).
pub const GRANULE: u64 = 64 << 10;

/// A target written where `buf` differs from what a reference reads:
/// an existing image itself (`convert -n`), or a new delta's parent
/// (`convert -B`, the delta written).
pub struct Changes<'a> {
    reference: &'a mut dyn Image,
    /// Where the changes go; `None`: into the reference itself.
    delta: Option<&'a mut dyn Sink>,
    scratch: Vec<u8>,
}

impl<'a> Changes<'a> {
    /// Write into `image` where it reads differently.
    pub fn in_place(image: &'a mut dyn Image) -> Self {
        Changes {
            reference: image,
            delta: None,
            scratch: Vec::new(),
        }
    }

    /// Write into `delta` where the source differs from `backing`.
    pub fn over(backing: &'a mut dyn Image, delta: &'a mut dyn Sink) -> Self {
        Changes {
            reference: backing,
            delta: Some(delta),
            scratch: Vec::new(),
        }
    }

    fn target(&self) -> &dyn Sink {
        match &self.delta {
            Some(d) => &**d,
            None => &*self.reference,
        }
    }
}

impl Sink for Changes<'_> {
    fn virtual_size(&self) -> u64 {
        self.target().virtual_size()
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let dirty = differing(self.reference, buf, offset, &mut self.scratch)?;
        let target: &mut dyn Sink = match &mut self.delta {
            Some(d) => &mut **d,
            None => &mut *self.reference,
        };
        for (start, end) in dirty {
            let piece = &buf[(start - offset) as usize..(end - offset) as usize];
            target.write_at(piece, start)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.delta {
            Some(d) => d.flush(),
            None => self.reference.flush(),
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        self.target().files()
    }
}

/// The ranges of `buf` (at `offset` of the disk) in whose [`GRANULE`]s
/// it differs from what `reference` reads (through its chain), whole
/// granules clamped to `buf`, neighbours joined, in order. Ranges the
/// chain holds nothing for are not read.
fn differing(
    reference: &mut dyn Image,
    buf: &[u8],
    offset: u64,
    scratch: &mut Vec<u8>,
) -> Result<Vec<(u64, u64)>> {
    let end = offset + buf.len() as u64;
    let size = reference.virtual_size();
    let first = offset / GRANULE;
    let mut dirty = vec![false; ((end.div_ceil(GRANULE)) - first) as usize];
    let mut at = offset;
    while at < end {
        // Past the reference's end it reads nothing: zeros.
        let (seg_end, zero) = match at < size {
            true => {
                let (m, _) = chain::status(reference, at, end.min(size) - at)?;
                let zero = matches!(m.source, Source::Unallocated | Source::Zero { .. });
                (at + m.len.max(1).min(end.min(size) - at), zero)
            }
            false => (end, true),
        };
        let seg = &buf[(at - offset) as usize..(seg_end - offset) as usize];
        if !zero {
            scratch.resize(seg.len(), 0);
            reference.read_at(scratch, at)?;
        }
        let mut g = at;
        while g < seg_end {
            let g_end = ((g / GRANULE + 1) * GRANULE).min(seg_end);
            let part = &seg[(g - at) as usize..(g_end - at) as usize];
            let differs = match zero {
                true => !is_zero(part),
                false => part != &scratch[(g - at) as usize..(g_end - at) as usize],
            };
            if differs {
                dirty[(g / GRANULE - first) as usize] = true;
            }
            g = g_end;
        }
        at = seg_end;
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, _) in dirty.iter().enumerate().filter(|(_, &d)| d) {
        let g = (first + i as u64) * GRANULE;
        let (s, e) = (g.max(offset), (g + GRANULE).min(end));
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Access;
    use crate::raw::Raw;

    #[test]
    fn only_granules_that_differ_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.raw");
        let mut data = vec![0u8; 1 << 20];
        data[70_000] = 1; // granule 1
        data[300_000..300_010].fill(2); // granule 4
        std::fs::write(&path, &data).unwrap();
        let mut reference = Raw::open(&path, Access::Read).unwrap();
        let mut buf = data.clone();
        buf[70_000] = 0; // differs: granule 1
        buf[200_000] = 9; // differs: granule 3
        buf[300_000..300_010].fill(2); // same
        buf[1_000_000] = 5; // differs: granule 15
        let mut scratch = Vec::new();
        let got = differing(&mut reference, &buf, 0, &mut scratch).unwrap();
        let g = GRANULE;
        assert_eq!(got, vec![(g, 2 * g), (3 * g, 4 * g), (15 * g, 16 * g)]);
        // An offset that is not a granule boundary clamps the first range.
        let got = differing(&mut reference, &buf[100..200_100], 100, &mut scratch).unwrap();
        assert_eq!(got, vec![(g, 2 * g), (3 * g, 200_100)]);
    }
}

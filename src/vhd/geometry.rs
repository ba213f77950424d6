//! Disk size and CHS geometry: the VHD specification's geometry algorithm,
//! and the real-world rule for which of the footer's two sizes to trust.
//!
//! Virtual PC sized a disk by its geometry (which rounds down); Hyper-V and
//! most later tools use the footer's current size. QEMU picks by creator
//! application and treats the maximum geometry 65535/16/255 as "use current
//! size". vimg writes the exact size with a geometry every reader agrees on:
//! the specification's geometry when it addresses exactly that size, else
//! the maximum one (see docs/vhd-size.md).

use super::footer::{Footer, Geometry};
use crate::io::SECTOR;

/// The largest geometry; it tells readers to use the footer's current size.
pub const MAX_GEOMETRY: Geometry = Geometry {
    cylinders: 65535,
    heads: 16,
    sectors: 255,
};

/// Largest disk a VHD can describe: 2040 GiB.
pub const MAX_SIZE: u64 = 0xff00_0000 * SECTOR;

/// Creator applications whose disks are sized by their CHS geometry:
/// Virtual PC and QEMU before `force_size`. Every other creator (Hyper-V
/// `win `, Disk2vhd `d2v `, XenServer `tap\0`, `CTXS`, Azure `wa\0\0`, qemu
/// `qem2`, VirtualBox `vbox`, vimg, and any unknown one) is sized by the
/// footer's current size, as qemu-img does since 10.0.
const GEOMETRY_CREATORS: [&[u8; 4]; 2] = [b"vpc ", b"qemu"];

/// Where the disk size was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeSource {
    CurrentSize,
    Geometry,
}

impl SizeSource {
    pub fn name(self) -> &'static str {
        match self {
            SizeSource::CurrentSize => "current-size",
            SizeSource::Geometry => "geometry",
        }
    }
}

/// The geometry the specification assigns to `total_sectors` (it may
/// address fewer sectors than asked for).
pub fn chs_for(total_sectors: u64) -> Geometry {
    let total = total_sectors.min(MAX_GEOMETRY.total_sectors());
    let (sectors, heads, cyl_heads);
    if total >= 65535 * 16 * 63 {
        sectors = 255u64;
        heads = 16u64;
        cyl_heads = total / sectors;
    } else {
        let mut s = 17u64;
        let mut ch = total / s;
        let mut h = ch.div_ceil(1024).max(4);
        if ch >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            ch = total / s;
        }
        if ch >= h * 1024 {
            s = 63;
            h = 16;
            ch = total / s;
        }
        sectors = s;
        heads = h;
        cyl_heads = ch;
    }
    Geometry {
        cylinders: (cyl_heads / heads) as u16,
        heads: heads as u8,
        sectors: sectors as u8,
    }
}

/// The geometry vimg writes for a disk of exactly `size` bytes.
pub fn geometry_for_exact(size: u64) -> Geometry {
    let sectors = size / SECTOR;
    let chs = chs_for(sectors);
    if chs.total_sectors() == sectors {
        chs
    } else {
        MAX_GEOMETRY
    }
}

/// The smallest size of at least `size` bytes that a specification
/// geometry addresses exactly, with that geometry (qemu-img's default
/// rounding, `force_size=off`). Sizes past the largest geometry keep their
/// sector count and get the maximum geometry.
pub fn round_to_geometry(size: u64) -> (u64, Geometry) {
    let wanted = size.div_ceil(SECTOR).min(MAX_GEOMETRY.total_sectors());
    let mut sectors = wanted;
    loop {
        let chs = chs_for(sectors);
        if chs.total_sectors() >= wanted {
            if chs == MAX_GEOMETRY {
                return (size.div_ceil(SECTOR) * SECTOR, chs);
            }
            return (chs.total_sectors() * SECTOR, chs);
        }
        sectors += 1;
    }
}

/// Which size to trust for an existing disk, by its creator and geometry.
pub fn size_source(footer: &Footer) -> SizeSource {
    let g = footer.geometry;
    if GEOMETRY_CREATORS.contains(&&footer.creator_app)
        && g != MAX_GEOMETRY
        && g.total_sectors() != 0
    {
        SizeSource::Geometry
    } else {
        SizeSource::CurrentSize
    }
}

/// The virtual disk size of an existing disk, and where it came from.
pub fn disk_size(footer: &Footer) -> (u64, SizeSource) {
    let source = size_source(footer);
    let size = match source {
        SizeSource::CurrentSize => footer.current_size / SECTOR * SECTOR,
        SizeSource::Geometry => footer.geometry.total_sectors() * SECTOR,
    };
    (size, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(cylinders: u16, heads: u8, sectors: u8) -> Geometry {
        Geometry {
            cylinders,
            heads,
            sectors,
        }
    }

    #[test]
    fn spec_geometry_matches_real_images() {
        // Windows 10's 512 MiB dynamic disk (node-vhd sample)
        assert_eq!(chs_for(536_870_912 / 512), g(1040, 16, 63));
        // diskpart's 4 MiB disk (dfvfs sample)
        assert_eq!(chs_for(4_194_304 / 512), g(120, 4, 17));
        // Hyper-V 2012 R2's 127 GiB disk
        assert_eq!(chs_for(136_365_211_648 / 512), g(65278, 16, 255));
    }

    #[test]
    fn exact_sizes_keep_spec_geometry_or_take_the_maximum() {
        // 4,212,736 bytes = 121 x 4 x 17 sectors: exact in CHS
        assert_eq!(geometry_for_exact(4_212_736), g(121, 4, 17));
        // 10 GiB is not a CHS product: maximum geometry says "current size"
        assert_eq!(geometry_for_exact(10 << 30), MAX_GEOMETRY);
    }

    #[test]
    fn size_source_follows_qemu_img_10() {
        let mut f = Footer::parse(&{
            let mut b = vec![0u8; 512];
            b[..8].copy_from_slice(b"conectix");
            b[60..64].copy_from_slice(&3u32.to_be_bytes());
            let sum = super::super::footer::checksum(&b, 64);
            b[64..68].copy_from_slice(&sum.to_be_bytes());
            b
        })
        .unwrap();
        f.geometry = g(1003, 12, 17);
        for (creator, source) in [
            (b"vpc ", SizeSource::Geometry),
            (b"qemu", SizeSource::Geometry),
            (b"win ", SizeSource::CurrentSize),
            (b"*img", SizeSource::CurrentSize),
            (b"d2v\0", SizeSource::CurrentSize),
        ] {
            f.creator_app = *creator;
            assert_eq!(size_source(&f), source, "{creator:?}");
        }
        f.creator_app = *b"vpc ";
        f.geometry = MAX_GEOMETRY;
        assert_eq!(size_source(&f), SizeSource::CurrentSize);
    }

    #[test]
    fn rounding_up_matches_qemu_img() {
        // qemu-img create -f vpc x 1000000000 gives 1,000,194,048 bytes
        assert_eq!(round_to_geometry(1_000_000_000).0, 1_000_194_048);
        // 8 GiB becomes 8,590,417,920 bytes (research baseline)
        assert_eq!(round_to_geometry(8 << 30).0, 8_590_417_920);
        let (size, chs) = round_to_geometry(4 << 20);
        assert_eq!(size, chs.total_sectors() * 512);
        assert!(size >= 4 << 20);
        // past the largest geometry the size is kept
        assert_eq!(round_to_geometry(1 << 40), (1 << 40, MAX_GEOMETRY));
    }
}

//! Writes against a model: random sequences of writes (unaligned offsets
//! and lengths, zeros, overwrites, grain- and block-straddling runs) into
//! every format vimg writes and into chains, checked after every step
//! against a plain byte array, through the same handle and after a flush
//! and a reopen. Many seeds; the failing one is named.

use std::path::{Path, PathBuf};

use vimg::image::factory::{create, open};
use vimg::image::{Backing, Format, Image};
use vimg::io::Access;
use vimg::options::Options;

use crate::support::*;

const SIZE: u64 = 6 * MIB + 3 * 512;
const SEEDS: u64 = 40;
const STEPS: usize = 24;

/// One kind of image to write into: format, -o options, and whether it is
/// a delta over a base holding data.
struct Kind {
    name: &'static str,
    format: Format,
    opts: &'static str,
    delta: bool,
}

const KINDS: [Kind; 9] = [
    Kind {
        name: "vmdk sparse",
        format: Format::Vmdk,
        opts: "",
        delta: false,
    },
    Kind {
        name: "vmdk zeroed grain",
        format: Format::Vmdk,
        opts: "zeroed_grain",
        delta: false,
    },
    Kind {
        name: "vmdk split sparse",
        format: Format::Vmdk,
        opts: "subformat=twoGbMaxExtentSparse",
        delta: false,
    },
    Kind {
        name: "vmdk flat",
        format: Format::Vmdk,
        opts: "subformat=monolithicFlat",
        delta: false,
    },
    Kind {
        name: "vmdk delta",
        format: Format::Vmdk,
        opts: "",
        delta: true,
    },
    Kind {
        name: "vhd dynamic",
        format: Format::Vhd,
        opts: "block_size=512K",
        delta: false,
    },
    Kind {
        name: "vhd fixed",
        format: Format::Vhd,
        opts: "subformat=fixed",
        delta: false,
    },
    Kind {
        name: "vhd differencing",
        format: Format::Vhd,
        opts: "block_size=512K",
        delta: true,
    },
    Kind {
        name: "raw",
        format: Format::Raw,
        opts: "",
        delta: false,
    },
];

fn ext(format: Format) -> &'static str {
    match format {
        Format::Vmdk => "vmdk",
        Format::Vhd => "vhd",
        Format::Raw => "raw",
    }
}

/// Create the image of `kind` in `dir` (over a base holding data, for a
/// delta) and return its path and what it reads now.
fn make(dir: &Path, kind: &Kind, rng: &mut Rng) -> (PathBuf, Vec<u8>) {
    let ext = ext(kind.format);
    let path = dir.join(format!("disk.{ext}"));
    let mut model = vec![0u8; SIZE as usize];
    let backing = kind.delta.then(|| {
        let base = dir.join(format!("base.{ext}"));
        let mut opts = Options::parse([kind.opts]).unwrap();
        let mut b = create(&base, kind.format, SIZE, &mut opts, None).unwrap();
        for _ in 0..6 {
            let len = rng.range(1, 300_000) as usize;
            let at = rng.below(SIZE - len as u64);
            let data = rng.bytes(len);
            b.write_at(&data, at).unwrap();
            model[at as usize..at as usize + len].copy_from_slice(&data);
        }
        b.flush().unwrap();
        Backing {
            path: base,
            name: format!("base.{ext}"),
            format: Some(kind.format),
        }
    });
    let mut opts = Options::parse([kind.opts]).unwrap();
    let mut image = create(&path, kind.format, SIZE, &mut opts, backing.as_ref()).unwrap();
    image.flush().unwrap();
    (path, model)
}

/// A write: where, and what (random bytes, zeros, or one byte repeated).
fn plan(rng: &mut Rng, cluster: u64) -> (u64, Vec<u8>) {
    let len = match rng.below(6) {
        0 => rng.range(1, 512),
        1 => 512 * rng.range(1, 9),
        2 => cluster + rng.below(3) * 512,
        3 => rng.range(1, 3 * cluster),
        _ => rng.range(1, 200_000),
    }
    .min(SIZE);
    let at = match rng.below(4) {
        // across a cluster boundary
        0 => (cluster * rng.range(1, SIZE / cluster)).saturating_sub(len / 2),
        1 => SIZE - len,
        _ => rng.below(SIZE - len + 1),
    }
    .min(SIZE - len);
    let data = match rng.below(4) {
        0 => vec![0u8; len as usize],
        1 => vec![rng.nonzero_byte(); len as usize],
        _ => rng.bytes(len as usize),
    };
    (at, data)
}

fn read_all(image: &mut dyn Image) -> Vec<u8> {
    let mut buf = vec![0u8; SIZE as usize];
    image.read_at(&mut buf, 0).unwrap();
    buf
}

fn assert_model(got: &[u8], model: &[u8], what: &str) {
    if let Some(at) = first_difference(got, model) {
        panic!(
            "{what}: byte {at} reads {:#04x}, the model says {:#04x}",
            got[at], model[at]
        );
    }
}

#[test]
fn random_writes_read_back_as_the_model_says_through_reopens() {
    for kind in &KINDS {
        for seed in 0..SEEDS {
            let dir = tempdir();
            let mut rng = Rng::new(0x5eed_0000 + seed);
            let (path, mut model) = make(dir.path(), kind, &mut rng);
            let mut image = open(&path, None, Access::Write).unwrap();
            let cluster = image.cluster_size().max(512);
            for step in 0..STEPS {
                let what = format!("{} seed {seed} step {step}", kind.name);
                let (at, data) = plan(&mut rng, cluster);
                image.write_at(&data, at).unwrap();
                model[at as usize..at as usize + data.len()].copy_from_slice(&data);
                if rng.chance(30) {
                    image.flush().unwrap();
                    drop(image);
                    image = open(&path, None, Access::Write).unwrap();
                    assert_model(
                        &read_all(image.as_mut()),
                        &model,
                        &format!("{what}, reopened"),
                    );
                } else if step % 6 == 5 {
                    assert_model(&read_all(image.as_mut()), &model, &what);
                }
            }
            image.flush().unwrap();
            drop(image);
            let mut last = open(&path, None, Access::Read).unwrap();
            assert_model(
                &read_all(last.as_mut()),
                &model,
                &format!("{} seed {seed}, at the end", kind.name),
            );
        }
    }
}

/// qemu-img, too, reads the written images as the model says (one seed
/// per kind that qemu reads whole: not differencing VHDs).
#[test]
fn qemu_reads_randomly_written_images_as_the_model_says() {
    for kind in KINDS
        .iter()
        .filter(|k| !(k.delta && k.format == Format::Vhd))
    {
        let dir = tempdir();
        let mut rng = Rng::new(0x9e11 + kind.name.len() as u64);
        let (path, mut model) = make(dir.path(), kind, &mut rng);
        let mut image = open(&path, None, Access::Write).unwrap();
        let cluster = image.cluster_size().max(512);
        for _ in 0..STEPS {
            let (at, data) = plan(&mut rng, cluster);
            image.write_at(&data, at).unwrap();
            model[at as usize..at as usize + data.len()].copy_from_slice(&data);
        }
        image.flush().unwrap();
        drop(image);
        let expected = dir.path().join("model.raw");
        std::fs::write(&expected, &model).unwrap();
        assert_identical(ext(kind.format), &path, "raw", &expected);
    }
}

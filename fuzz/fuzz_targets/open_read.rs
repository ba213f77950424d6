//! Open the input read-only as a probed image, as VMDK and as VHD; on
//! success query info, walk block_status over the whole disk and read a few
//! ranges, checking them against the allocation map.
//!
//! A text descriptor followed by a NUL may carry the extent files it names
//! (see `vimg_fuzz::materialize`). Inputs with a VHD footer are tried a
//! second time with their checksums repaired.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vimg::image::{factory::open, Format};
use vimg::io::Access;
use vimg_fuzz::{debug, exercise, fix_vhd_checksums, hash, materialize, scratch};

const NAMES: [&str; 3] = ["disk.img", "disk.vmdk", "disk.vhd"];

fn run(data: &[u8]) {
    let dir = scratch("open_read");
    let salt = hash(data);
    for (name, format) in [
        ("disk.img", None),
        ("disk.vmdk", Some(Format::Vmdk)),
        ("disk.vhd", Some(Format::Vhd)),
    ] {
        let path = materialize(&dir, name, &NAMES, data);
        match open(&path, format, Access::Read) {
            Ok(mut dev) => {
                if debug() {
                    eprintln!("{name} {format:?}: opened, {} bytes", dev.virtual_size());
                }
                exercise(dev.as_mut(), salt);
            }
            Err(e) if debug() => eprintln!("{name} {format:?}: {e}"),
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    run(data);
    if let Some(fixed) = fix_vhd_checksums(data) {
        run(&fixed);
    }
});

//! vimg's integration tests, in one binary: each module tests one area
//! through the command line and the library against the peers (qemu-img,
//! qemu-io, libvmdk, libvhdi, VMDKstream); `support` is what they share.

mod support;

/// The fuzz targets' input-to-files helpers, shared with the regression
/// replay ([`fuzz_replay`]) and the VHD checksum of `support::vhd`.
#[path = "../../fuzz/src/harness.rs"]
mod harness;

mod bad_input;
mod convert;
mod create;
mod fuzz_replay;
mod map;
mod qemu_io;
mod review_regressions;
mod safety;
mod vhd;
mod vmdk;

//! vimg's integration tests, in one binary: each module tests one area
//! through the command line and the library against the peers (qemu-img,
//! qemu-io, libvmdk, libvhdi, VMDKstream); `support` is what they share.

mod support;

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

//! `vimg map`: agreeing with `qemu-img map`, and surviving hostile input.

mod agreement;
mod robust;

//! Open the input for writing, write into it, and check that it reads as
//! written, before and after a flush and a reopen: [`vimg_fuzz::checks::open_write`].

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vimg_fuzz::checks::open_write(&vimg_fuzz::scratch("open_write"), data)
});

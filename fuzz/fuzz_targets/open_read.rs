//! Open the input read-only every way and check what it says against what
//! it reads: [`vimg_fuzz::checks::open_read`].

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vimg_fuzz::checks::open_read(&vimg_fuzz::scratch("open_read"), data)
});

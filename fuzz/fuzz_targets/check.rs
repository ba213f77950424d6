//! Check and repair the input every way and hold the repairs to their
//! promises: [`vimg_fuzz::checks::check`].

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vimg_fuzz::checks::check(&vimg_fuzz::scratch("check"), data));

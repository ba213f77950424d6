//! Grow and shrink back what opens for writing: it opens again each time,
//! at the size asked for, with its content: [`vimg_fuzz::checks::resize`].

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vimg_fuzz::checks::resize(&vimg_fuzz::scratch("resize"), data));

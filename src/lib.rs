//! vimg: create, inspect and convert VMware VMDK and Microsoft VHD disk
//! images. The library holds the formats behind one trait
//! ([`image::Image`]); `cmd` holds the command-line interface.

pub mod alloc;
pub mod chain;
pub mod cmd;
pub mod copy;
pub mod error;
pub mod image;
pub mod interrupt;
pub mod io;
pub mod options;
pub mod raw;
pub mod units;
pub mod vhd;
pub mod vmdk;

pub use error::{Error, Result};

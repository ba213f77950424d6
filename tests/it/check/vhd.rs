//! `check` on vhd images: filled in by the work on issue 10.

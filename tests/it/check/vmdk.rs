//! `check` on vmdk images: filled in by the work on issue 10.

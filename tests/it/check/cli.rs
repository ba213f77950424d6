//! `check` on cli images: filled in by the work on issue 10.

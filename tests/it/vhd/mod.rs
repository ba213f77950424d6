//! VHD: the third-party corpus, differencing disks, round trips through
//! odd sizes and block sizes, and the size rules.

mod corpus;
mod differencing;
mod roundtrip;
mod sizes;

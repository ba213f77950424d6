//! VMDK: the third-party corpus, deltas, descriptors, create options,
//! streamOptimized and the five subformats.

mod corpus;
mod deltas;
mod descriptor;
mod options;
mod stream;
mod subformats;

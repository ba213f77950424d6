//! VMDK: the third-party corpus, deltas, descriptors, create options,
//! streamOptimized, the five subformats and ESXi seSparse deltas.

mod corpus;
mod deltas;
mod descriptor;
mod options;
mod sesparse;
mod stream;
mod subformats;

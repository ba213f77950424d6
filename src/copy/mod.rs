//! Copying between images: the [`plan`] walks a chain's allocation and says
//! which runs to move, the [`pipeline`] moves them on two threads (what
//! `convert` uses). Commands whose target lives inside their source (commit
//! writes into the parent of the image it reads) use the plan on one thread.

pub mod changes;
pub mod concat;
pub mod offload;
pub mod pipeline;
pub mod plan;
pub mod throttle;

pub use pipeline::{copy, CopyOptions};
pub use plan::{Layers, Plan, CHUNK};

//! tidelog-watermarks (work in progress in this commit: ids only).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ids;
pub use ids::{GlobalSeq, LaneId, LaneSeq};

//! tidelog: the engine crate. Not written yet; re-exports the watermarks crate.
#![deny(unsafe_code)]
pub use tidelog_watermarks as watermarks;
pub mod lease;

//! Shared code of tidelog's cross-crate tests: the engine state machine that the
//! `engine_state_machine` fuzz target and its corpus replay drive, and the crash
//! harnesses' appender and checks.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod appender;
pub mod state_machine;

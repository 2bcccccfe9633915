//! Shared helpers for tidelog cross-crate tests (none yet).

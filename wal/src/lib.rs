//! tidelog-wal: not written yet.
#![deny(unsafe_code)]

//! Peer comparison harness for tidelog (not written yet).

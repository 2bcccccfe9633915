//! Checks shared by the `lease_record` fuzz target and its corpus replay test, so that
//! both run the very same assertions. A panic here is a finding.

use super::record::WriterLease;

/// Decodes `data` as a lease record: decoding must never panic, and a record it accepts
/// must encode to bytes that decode to the same record.
pub fn lease_record(data: &[u8]) {
    let Ok(lease) = WriterLease::decode(data) else {
        return;
    };
    match WriterLease::decode(&lease.encode()) {
        Ok(again) => assert_eq!(again, lease, "re-encoding changed the record"),
        Err(err) => panic!("an accepted record does not decode once re-encoded: {err}"),
    }
}

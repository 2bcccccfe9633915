//! The lease record: who holds the writer lease of one database key, under which fencing
//! token, and until when. This file is the one place that defines its encoding.
//!
//! # Grammar (format version 1)
//!
//! A record is one UTF-8 JSON object, at most [`RECORD_LEN_MAX`] bytes:
//!
//! ```json
//! {
//!   "format": 1,
//!   "database_key": "main",
//!   "holder_id": "host-a/pid-4711/boot-93c1",
//!   "term": 3,
//!   "generation": 7,
//!   "acquired_at_ms": 1730000000000,
//!   "expires_at_ms": 1730000060000,
//!   "released": false
//! }
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `format` | integer | [`RECORD_FORMAT_VERSION`]; absent (or 0) in legacy records |
//! | `database_key` | non-empty string | the key the record governs; must match the key it is stored under |
//! | `holder_id` | non-empty string | who holds (or last held) the lease |
//! | `term` | integer | replication term the holder acquired under; absent in legacy records, read as [`BASE_TERM`] |
//! | `generation` | integer >= 1 | tenure counter: advances whenever a new tenure starts |
//! | `acquired_at_ms` | integer | wall-clock ms since the Unix epoch when this tenure started |
//! | `expires_at_ms` | integer >= `acquired_at_ms` | wall-clock ms after which anyone may take the lease |
//! | `released` | boolean | the holder gave the lease up; absent means `false` |
//!
//! Versioning rule: a reader accepts every format up to its own [`RECORD_FORMAT_VERSION`]
//! and refuses a newer one ([`DecodeError::UnsupportedVersion`]) rather than guess what a
//! newer writer meant: a lease that cannot be understood must not be taken. Unknown fields
//! are ignored, so adding an optional field does not need a new version; changing the
//! meaning of a field does.
//!
//! The decoder never panics: it bounds the input length before parsing, and every field
//! is checked for presence, type and range, with the reason named in the error.

use std::fmt;

use serde_json::{Map, Value};
use thiserror::Error;

/// The format version this build writes, and the newest it reads.
pub const RECORD_FORMAT_VERSION: u64 = 1;

/// The term of a lease taken without a term (`try_acquire`), and of a legacy record that
/// carries none. Term 0 is left unused so that `LeaseToken::default()` (term 0,
/// generation 0) sorts below every token a real holder can have.
pub const BASE_TERM: u64 = 1;

/// The first generation of a key that has never been held.
pub const FIRST_GENERATION: u64 = 1;

/// Largest encoded record the decoder looks at. A real record is about 250 bytes; the
/// bound only exists so garbage cannot make the decoder allocate without limit.
pub const RECORD_LEN_MAX: usize = 64 * 1024;

/// The fencing token of a tenure: `term` first, then `generation`.
///
/// Every legitimate hand-off moves the token strictly forward (a new holder gets the next
/// generation, a new primary a higher term), so anything stamped with a lower token than
/// the published one was written by a deposed holder and must be refused. The derived
/// order compares `term` first, then `generation`, which is the fencing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LeaseToken {
    /// Replication term the tenure was acquired under.
    pub term: u64,
    /// Tenure counter within the key's history.
    pub generation: u64,
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term {}, generation {}", self.term, self.generation)
    }
}

/// One published state of the writer lease of a database key (see the module docs for
/// the encoding).
///
/// A `WriterLease` returned by [`LeaseManager`](super::LeaseManager) is a snapshot: the
/// caller holds the lease only while the published record still carries the same holder
/// and token, and is not expired. Check it with `refresh` before acting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterLease {
    /// The key the lease governs (a database, or a lane of one).
    pub database_key: String,
    /// Who holds (or last held) the lease. Must be unique per process incarnation.
    pub holder_id: String,
    /// Replication term the holder acquired under.
    pub term: u64,
    /// Tenure counter: advances whenever a new tenure starts.
    pub generation: u64,
    /// Wall-clock ms since the Unix epoch when this tenure started.
    pub acquired_at_ms: u64,
    /// Wall-clock ms since the Unix epoch from which the lease counts as expired.
    pub expires_at_ms: u64,
    /// The holder released the lease; anyone may take it (at a term not behind `term`).
    pub released: bool,
}

impl WriterLease {
    /// The fencing token `(term, generation)` of this tenure.
    #[must_use]
    pub fn fencing_token(&self) -> LeaseToken {
        LeaseToken {
            term: self.term,
            generation: self.generation,
        }
    }

    /// True from `expires_at_ms` on (an expiry at exactly `now_ms` has passed).
    #[must_use]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms <= now_ms
    }

    /// True while the lease keeps other holders out: not released and not expired.
    #[must_use]
    pub fn is_live(&self, now_ms: u64) -> bool {
        !self.released && !self.is_expired(now_ms)
    }

    /// Milliseconds left before expiry at `now_ms` (0 once expired).
    #[must_use]
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.expires_at_ms.saturating_sub(now_ms)
    }

    /// True when this tenure's term is behind `current_term`: its holder was deposed.
    #[must_use]
    pub fn fenced_by_term(&self, current_term: u64) -> bool {
        self.term < current_term
    }

    /// The record's bytes in the current format (pretty-printed JSON, for operators who
    /// read it with `cat` or `etcdctl get`).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "format": RECORD_FORMAT_VERSION,
            "database_key": self.database_key,
            "holder_id": self.holder_id,
            "term": self.term,
            "generation": self.generation,
            "acquired_at_ms": self.acquired_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "released": self.released,
        });
        format!("{value:#}\n").into_bytes()
    }

    /// Reads a record in any supported format. Never panics; says what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<WriterLease, DecodeError> {
        if bytes.len() > RECORD_LEN_MAX {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: RECORD_LEN_MAX,
            });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|source| DecodeError::NotJson { source })?;
        let Value::Object(object) = value else {
            return Err(DecodeError::NotAnObject {
                found: json_type(&value),
            });
        };
        let format = optional_u64(&object, "format")?.unwrap_or(0);
        if format > RECORD_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: format,
                supported_max: RECORD_FORMAT_VERSION,
            });
        }
        let legacy = format == 0;
        let term = match optional_u64(&object, "term")? {
            Some(term) => term,
            None if legacy => BASE_TERM,
            None => return Err(DecodeError::MissingField { field: "term" }),
        };
        let lease = WriterLease {
            database_key: required_str(&object, "database_key")?,
            holder_id: required_str(&object, "holder_id")?,
            term,
            generation: required_u64(&object, "generation")?,
            acquired_at_ms: required_u64(&object, "acquired_at_ms")?,
            expires_at_ms: required_u64(&object, "expires_at_ms")?,
            released: optional_bool(&object, "released")?.unwrap_or(false),
        };
        lease.check()?;
        Ok(lease)
    }

    /// The invariants every stored record keeps; checked after decoding.
    fn check(&self) -> Result<(), DecodeError> {
        let invalid = |field, reason| Err(DecodeError::InvalidValue { field, reason });
        if self.database_key.is_empty() {
            return invalid("database_key", "is empty");
        }
        if self.holder_id.is_empty() {
            return invalid("holder_id", "is empty");
        }
        if self.generation < FIRST_GENERATION {
            return invalid("generation", "is 0; generations start at 1");
        }
        if self.expires_at_ms < self.acquired_at_ms {
            return invalid("expires_at_ms", "is before acquired_at_ms");
        }
        Ok(())
    }
}

impl fmt::Display for WriterLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The expiry is a point on the holder's wall clock: said relative to now where a
        // clock is at hand (`LeaseError::Held`), never as milliseconds since the epoch.
        write!(
            f,
            "'{}' at {}{}",
            self.holder_id,
            self.fencing_token(),
            if self.released { " (released)" } else { "" }
        )
    }
}

/// What was wrong with bytes that should have been a lease record.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than any record this format can produce.
    #[error("the record is {len} bytes, more than the {max} a lease record can be")]
    TooLarge {
        /// Length found.
        len: usize,
        /// [`RECORD_LEN_MAX`].
        max: usize,
    },
    /// Not valid JSON (or not UTF-8).
    #[error("the record is not valid JSON: {source}")]
    NotJson {
        /// The parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but not an object.
    #[error("the record is a JSON {found}, not an object")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// Written by a newer tidelog.
    #[error(
        "the record has format version {found}, newer than the {supported_max} this build \
         reads; upgrade tidelog on this node"
    )]
    UnsupportedVersion {
        /// Version found.
        found: u64,
        /// [`RECORD_FORMAT_VERSION`].
        supported_max: u64,
    },
    /// A required field is absent.
    #[error("the record has no '{field}' field")]
    MissingField {
        /// Field name.
        field: &'static str,
    },
    /// A field has the wrong JSON type (an integer field holding a negative number, a
    /// fraction or a number above `u64::MAX` counts as the wrong type).
    #[error("the record's '{field}' is a {found}, expected {expected}")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// What the format requires.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A field is present and typed right but breaks an invariant.
    #[error("the record's '{field}' {reason}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// The broken invariant.
        reason: &'static str,
    },
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() => "unsigned integer",
        Value::Number(n) if n.is_i64() => "negative integer",
        Value::Number(_) => "non-integer number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const U64: &str = "an unsigned 64-bit integer";

fn optional_u64(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, DecodeError> {
    match object.get(field) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(DecodeError::WrongType {
            field,
            expected: U64,
            found: json_type(value),
        }),
    }
}

fn required_u64(object: &Map<String, Value>, field: &'static str) -> Result<u64, DecodeError> {
    optional_u64(object, field)?.ok_or(DecodeError::MissingField { field })
}

fn optional_bool(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<bool>, DecodeError> {
    match object.get(field) {
        None => Ok(None),
        Some(value) => value.as_bool().map(Some).ok_or(DecodeError::WrongType {
            field,
            expected: "a boolean",
            found: json_type(value),
        }),
    }
}

fn required_str(object: &Map<String, Value>, field: &'static str) -> Result<String, DecodeError> {
    match object.get(field) {
        None => Err(DecodeError::MissingField { field }),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(value) => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: json_type(value),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WriterLease {
        WriterLease {
            database_key: "main".into(),
            holder_id: "writer-a".into(),
            term: 3,
            generation: 7,
            acquired_at_ms: 1_730_000_000_000,
            expires_at_ms: 1_730_000_060_000,
            released: false,
        }
    }

    #[test]
    fn a_record_survives_encode_then_decode() {
        let mut lease = sample();
        assert_eq!(WriterLease::decode(&lease.encode()).unwrap(), lease);
        lease.released = true;
        assert_eq!(WriterLease::decode(&lease.encode()).unwrap(), lease);
    }

    #[test]
    fn the_encoding_names_its_format_version() {
        let value: Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert_eq!(value["format"], RECORD_FORMAT_VERSION);
    }

    #[test]
    fn tokens_order_by_term_before_generation() {
        let older_term = LeaseToken {
            term: 1,
            generation: 99,
        };
        let newer_term = LeaseToken {
            term: 2,
            generation: 1,
        };
        assert!(older_term < newer_term);
        assert!(
            LeaseToken {
                term: 2,
                generation: 1
            } < LeaseToken {
                term: 2,
                generation: 2
            }
        );
        assert!(
            LeaseToken::default()
                < LeaseToken {
                    term: BASE_TERM,
                    generation: FIRST_GENERATION
                }
        );
    }

    #[test]
    fn a_lease_expires_exactly_at_its_expiry_instant() {
        let lease = sample();
        assert!(lease.is_live(lease.expires_at_ms - 1));
        assert!(!lease.is_live(lease.expires_at_ms));
        assert_eq!(lease.remaining_ms(lease.expires_at_ms - 5), 5);
        assert_eq!(lease.remaining_ms(lease.expires_at_ms + 5), 0);
    }

    #[test]
    fn a_released_lease_is_not_live_before_its_expiry() {
        let mut lease = sample();
        lease.released = true;
        assert!(!lease.is_live(lease.acquired_at_ms));
    }

    #[test]
    fn a_legacy_record_without_format_or_term_reads_at_the_base_term() {
        let legacy = br#"{"database_key":"main","holder_id":"a","generation":2,
            "acquired_at_ms":10,"expires_at_ms":20}"#;
        let lease = WriterLease::decode(legacy).unwrap();
        assert_eq!(lease.term, BASE_TERM);
        assert_eq!(lease.generation, 2);
        assert!(!lease.released);
    }

    #[test]
    fn a_current_record_without_term_is_refused() {
        let bytes = br#"{"format":1,"database_key":"main","holder_id":"a","generation":2,
            "acquired_at_ms":10,"expires_at_ms":20}"#;
        let err = WriterLease::decode(bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::MissingField { field: "term" }),
            "{err}"
        );
    }

    #[test]
    fn a_newer_format_is_refused_not_guessed() {
        let bytes = br#"{"format":2,"database_key":"main","holder_id":"a","term":1,
            "generation":2,"acquired_at_ms":10,"expires_at_ms":20}"#;
        let err = WriterLease::decode(bytes).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::UnsupportedVersion {
                    found: 2,
                    supported_max: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn each_broken_field_is_named_in_the_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not valid JSON"),
            (b"[1,2]", "JSON array"),
            (br#"{"holder_id":"a","generation":1,"acquired_at_ms":1,"expires_at_ms":2}"#, "'database_key'"),
            (br#"{"database_key":"k","holder_id":7,"generation":1,"acquired_at_ms":1,"expires_at_ms":2}"#, "'holder_id' is a unsigned integer"),
            (br#"{"database_key":"k","holder_id":"a","generation":-1,"acquired_at_ms":1,"expires_at_ms":2}"#, "'generation' is a negative integer"),
            (br#"{"database_key":"k","holder_id":"a","generation":1.5,"acquired_at_ms":1,"expires_at_ms":2}"#, "'generation' is a non-integer"),
            (br#"{"database_key":"k","holder_id":"a","generation":0,"acquired_at_ms":1,"expires_at_ms":2}"#, "'generation' is 0"),
            (br#"{"database_key":"k","holder_id":"a","generation":1,"acquired_at_ms":3,"expires_at_ms":2}"#, "'expires_at_ms' is before"),
            (br#"{"database_key":"","holder_id":"a","generation":1,"acquired_at_ms":1,"expires_at_ms":2}"#, "'database_key' is empty"),
            (br#"{"database_key":"k","holder_id":"a","generation":1,"acquired_at_ms":1,"expires_at_ms":2,"released":"no"}"#, "'released' is a string"),
            (br#"{"format":"1","database_key":"k"}"#, "'format' is a string"),
        ];
        for (bytes, expected) in cases {
            let message = WriterLease::decode(bytes).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "decoding {:?}: message {message:?} does not contain {expected:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn an_oversized_input_is_refused_before_parsing() {
        let bytes = vec![b' '; RECORD_LEN_MAX + 1];
        assert!(matches!(
            WriterLease::decode(&bytes),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}

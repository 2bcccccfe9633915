//! The lease record decoder on hostile input.
//!
//! What could go wrong: a record on a shared backend is written by other processes, other
//! versions, or damaged; a decoder that panics (an unchecked index, an overflow, a
//! recursion limit) takes every process that reads the lease down with it, and one that
//! accepts a damaged record may hand the lease to the wrong holder.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tidelog::lease::{DecodeError, WriterLease, BASE_TERM, RECORD_FORMAT_VERSION};

fn any_lease() -> impl Strategy<Value = WriterLease> {
    (
        "[!-~]{1,80}",
        "\\PC{1,64}",
        any::<u64>(),
        1..=u64::MAX,
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(database_key, holder_id, term, generation, a, b, released)| WriterLease {
                database_key,
                holder_id,
                term,
                generation,
                acquired_at_ms: a.min(b),
                expires_at_ms: a.max(b),
                released,
            },
        )
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 8] = [
    "format",
    "database_key",
    "holder_id",
    "term",
    "generation",
    "acquired_at_ms",
    "expires_at_ms",
    "released",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = WriterLease::decode(&bytes);
    }

    #[test]
    fn every_record_decodes_to_itself(lease in any_lease()) {
        prop_assert_eq!(WriterLease::decode(&lease.encode()).unwrap(), lease);
    }

    #[test]
    fn a_damaged_record_is_refused_or_read_but_never_panics(
        lease in any_lease(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = lease.encode();
        for (at, byte) in flips {
            let index = at.index(bytes.len());
            bytes[index] = byte;
        }
        let _ = WriterLease::decode(&bytes);
        let _ = WriterLease::decode(&bytes[..cut.index(bytes.len())]);
    }

    #[test]
    fn a_field_of_any_other_value_is_refused_with_its_name_or_read_correctly(
        lease in any_lease(),
        field in prop::sample::select(FIELDS.to_vec()),
        replacement in any_json(),
    ) {
        let Value::Object(mut object) =
            serde_json::from_slice::<Value>(&lease.encode()).unwrap()
        else {
            panic!("a record encodes as an object");
        };
        object.insert(field.to_owned(), replacement);
        let bytes = Value::Object(object.clone()).to_string().into_bytes();
        match WriterLease::decode(&bytes) {
            // Accepted: then it must say exactly what the object says.
            Ok(decoded) => prop_assert_eq!(decoded, expected_from(&object)),
            Err(DecodeError::MissingField { field: named })
            | Err(DecodeError::WrongType { field: named, .. }) => prop_assert_eq!(named, field),
            // `expires_at_ms >= acquired_at_ms` spans two fields: replacing either may
            // break it, and the error names `expires_at_ms`.
            Err(DecodeError::InvalidValue { field: named, .. }) => {
                let pair = ["acquired_at_ms", "expires_at_ms"];
                prop_assert!(
                    named == field || (pair.contains(&named) && pair.contains(&field)),
                    "replaced {} but the error names {}", field, named
                );
            }
            Err(DecodeError::UnsupportedVersion { found, .. }) => {
                prop_assert_eq!(field, "format");
                prop_assert!(found > RECORD_FORMAT_VERSION);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn a_missing_field_is_refused_by_name_except_in_legacy_records(
        lease in any_lease(),
        field in prop::sample::select(FIELDS.to_vec()),
    ) {
        let Value::Object(mut object) =
            serde_json::from_slice::<Value>(&lease.encode()).unwrap()
        else {
            panic!("a record encodes as an object");
        };
        object.remove(field);
        let decoded = WriterLease::decode(Value::Object(object).to_string().as_bytes());
        match field {
            "released" => prop_assert_eq!(decoded.unwrap().released, false),
            // Without "format" the record is legacy, which every field still describes.
            "format" => prop_assert_eq!(decoded.unwrap(), lease),
            _ => prop_assert!(
                matches!(decoded, Err(DecodeError::MissingField { field: named }) if named == field),
                "{decoded:?}"
            ),
        }
    }
}

/// The lease an accepted object describes, read the way the format defines.
fn expected_from(object: &Map<String, Value>) -> WriterLease {
    let number = |field: &str| object[field].as_u64().unwrap();
    let legacy = object.get("format").and_then(Value::as_u64).unwrap_or(0) == 0;
    WriterLease {
        database_key: object["database_key"].as_str().unwrap().to_owned(),
        holder_id: object["holder_id"].as_str().unwrap().to_owned(),
        term: match object.get("term") {
            None if legacy => BASE_TERM,
            _ => number("term"),
        },
        generation: number("generation"),
        acquired_at_ms: number("acquired_at_ms"),
        expires_at_ms: number("expires_at_ms"),
        released: object
            .get("released")
            .is_some_and(|flag| flag.as_bool().unwrap()),
    }
}

#[test]
fn deeply_nested_input_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let mut bytes = vec![b'['; depth];
    bytes.extend(std::iter::repeat_n(b']', depth));
    // Over the length bound: refused before parsing.
    assert!(matches!(
        WriterLease::decode(&bytes),
        Err(DecodeError::TooLarge { .. })
    ));
    // Within it: the parser's recursion limit refuses it.
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        WriterLease::decode(nested.as_bytes()),
        Err(DecodeError::NotJson { .. })
    ));
}

//! What could go wrong: a caller error (sequence gap, empty batch, oversize record, batch
//! larger than a segment) writes part of a unit, moves the written point, or panics.
mod common;
use common::*;
use tidelog_wal::{AppendError, GlobalSeq, LaneId, LaneSeq, NewFrame, RecoveryMode, Wal};

fn frame(seq: u64, payload: &[u8]) -> NewFrame<'_> {
    NewFrame {
        global_seq: GlobalSeq(seq),
        lane: LaneId(1),
        lane_seq: LaneSeq(seq),
        wall_ms: 0,
        key: b"",
        payload,
    }
}

#[test]
fn misuse_is_refused_with_a_typed_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
    append_unit(&mut wal, 1).unwrap();
    let big = vec![0u8; 3000];
    let fits = vec![0u8; 2000];
    let long_key = vec![0u8; 70_000];
    let cases: Vec<(Vec<NewFrame<'_>>, &str)> = vec![
        (vec![], "empty"),
        (vec![frame(3, b"x")], "gap"),
        (vec![frame(2, b"x"), frame(4, b"y")], "gap inside"),
        (vec![frame(2, &big)], "too large"),
        (
            vec![NewFrame {
                key: &long_key,
                ..frame(2, b"")
            }],
            "key",
        ),
        ((2..=6).map(|s| frame(s, &fits)).collect(), "unit too large"),
    ];
    for (unit, what) in cases {
        let err = wal.append(&unit).expect_err(what);
        let ok = match what {
            "empty" => matches!(err, AppendError::EmptyUnit),
            "gap" | "gap inside" => matches!(err, AppendError::SequenceOutOfOrder { .. }),
            "too large" => matches!(err, AppendError::RecordTooLarge { bytes: 3000, .. }),
            "key" => matches!(err, AppendError::KeyTooLong { .. }),
            _ => matches!(err, AppendError::UnitTooLarge { .. }),
        };
        assert!(ok, "{what}: {err}");
        assert_eq!(wal.last_written(), GlobalSeq(1), "{what}");
        assert!(wal.poisoned().is_none(), "misuse does not poison");
    }
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(dir.path(), o).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(2));
    assert_eq!(read_all(&wal.reader()), vec![1, 2]);
}

#[test]
fn a_key_and_a_record_of_exactly_the_largest_size_are_accepted() {
    use tidelog_wal::format::FRAME_KEY_LEN_MAX;
    use tidelog_wal::{SimDisk, WalOptions};
    let disk = SimDisk::new();
    let dir = std::path::Path::new("/db/wal");
    let o = WalOptions {
        segment_size: 256 * 1024,
        max_record_bytes: 100_000,
        ..opts(RecoveryMode::AbsoluteConsistency)
    };
    let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
    let key = vec![b'k'; FRAME_KEY_LEN_MAX];
    let at_max_key = NewFrame {
        key: &key,
        ..frame(1, b"p")
    };
    wal.append(&[at_max_key]).unwrap();
    let record = vec![b'r'; 100_000];
    wal.append(&[frame(2, &record)]).unwrap();
    // One byte more of either is refused.
    let longer_key = vec![b'k'; FRAME_KEY_LEN_MAX + 1];
    let err = wal
        .append(&[NewFrame {
            key: &longer_key,
            ..frame(3, b"")
        }])
        .unwrap_err();
    assert!(matches!(err, AppendError::KeyTooLong { .. }), "{err}");
    let larger = vec![b'r'; 100_001];
    let err = wal.append(&[frame(3, &larger)]).unwrap_err();
    assert!(
        matches!(err, AppendError::RecordTooLarge { bytes: 100_001, .. }),
        "{err}"
    );
    wal.sync().unwrap();
    drop(wal);
    let (wal, _) = Wal::open_with(disk, dir, o).unwrap();
    let reader = wal.reader();
    assert_eq!(reader.get(GlobalSeq(1)).unwrap().key(), &key[..]);
    assert_eq!(reader.get(GlobalSeq(2)).unwrap().payload(), &record[..]);
    assert!(reader.get(GlobalSeq(3)).is_none());
}

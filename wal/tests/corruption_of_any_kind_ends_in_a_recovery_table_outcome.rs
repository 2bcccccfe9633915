//! The corruption suite: single bit flips and zeroed ranges swept across every segment
//! (headers, sealed segments, the tail, the zeroed space after it), segments truncated,
//! missing, duplicated and reordered, on a fully synced log of several segments.
//!
//! What could go wrong: recovery panics, returns a record whose bytes differ from what was
//! appended, silently drops synced records (a damaged sealed segment read as "end of
//! log"), or ends in something that is not a row of the decision table in
//! `docs/recovery.md`. Every case must end in a typed refusal or in a log whose every
//! record is byte-exact; losing records is allowed only as a reported torn tail of the
//! last segment.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use tidelog_wal::segment::segment_file_name;
use tidelog_wal::{OpenError, RecoveryMode, SegmentIndex, Wal};

const UNITS: u64 = 40;

/// A synced log of several segments; returns (its files and bytes, last sequence).
fn pristine() -> (Vec<(PathBuf, Vec<u8>)>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = {
        let (mut wal, _) =
            Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
        fill(&mut wal, UNITS, 1);
        wal.sync().expect("sync");
        wal.last_durable().0
    };
    let files = snapshot(dir.path())
        .into_iter()
        .map(|(p, bytes)| (PathBuf::from(p.file_name().expect("name")), bytes))
        .collect::<Vec<_>>();
    assert!(files.len() >= 3, "the log must span several segments");
    (files, last)
}

/// What a case ended in.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Outcome {
    /// Opened with every record.
    Intact,
    /// Opened after cutting a reported torn tail of the last segment.
    TornTail,
    /// Refused with a typed error from the table.
    Refused(&'static str),
}

/// Writes `files` into a fresh directory, opens it, and checks the outcome is a table row.
fn open_case(files: &[(PathBuf, Vec<u8>)], last: u64, what: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write case");
    }
    let result = std::panic::catch_unwind(|| {
        Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).map(|(wal, rec)| {
            // read_all asserts every byte of every record against what was appended.
            let seqs = read_all(&wal.reader());
            (seqs, rec)
        })
    });
    let opened = result.unwrap_or_else(|_| panic!("{what}: recovery panicked"));
    match opened {
        Ok((seqs, rec)) => {
            assert_eq!(
                seqs,
                (1..=rec.last_seq.0).collect::<Vec<_>>(),
                "{what}: records missing inside the log"
            );
            if rec.last_seq.0 == last {
                Outcome::Intact
            } else {
                assert!(
                    rec.last_seq.0 < last,
                    "{what}: records that were never appended"
                );
                assert!(
                    rec.report.torn_tail.is_some(),
                    "{what}: records {}..={last} lost without a report",
                    rec.last_seq.0 + 1
                );
                // Every unit was synced before the next was written, and each frame
                // carries the durable point its writer knew: only the last unit (at most
                // 3 records) has nothing after it to prove it durable.
                assert!(
                    last - rec.last_seq.0 <= 3,
                    "{what}: records {}..={last} dropped as a torn tail, more than the last unit",
                    rec.last_seq.0 + 1
                );
                Outcome::TornTail
            }
        }
        Err(err) => {
            let row = match err {
                OpenError::CorruptDurableData { .. } => "CorruptDurableData",
                OpenError::BadSegmentHeader { .. } => "BadSegmentHeader",
                OpenError::SegmentGap { .. } => "SegmentGap",
                OpenError::SequenceMismatch { .. } => "SequenceMismatch",
                OpenError::ForeignFile { .. } => "ForeignFile",
                OpenError::SegmentCutShort { .. } => "SegmentCutShort",
                other => panic!("{what}: an outcome outside the recovery table: {other}"),
            };
            Outcome::Refused(row)
        }
    }
}

fn with(
    files: &[(PathBuf, Vec<u8>)],
    i: usize,
    f: impl FnOnce(&mut Vec<u8>),
) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = files.to_vec();
    if let Some((_, bytes)) = files.get_mut(i) {
        f(bytes);
    }
    files
}

/// Index in `files` of the last segment holding frames.
fn last_used(files: &[(PathBuf, Vec<u8>)]) -> usize {
    files
        .iter()
        .rposition(|(_, b)| written_end(b) > 64)
        .expect("a segment with frames")
}

/// End of the written part of a segment (after its last non-zero byte), to tell it from
/// the zeroed, preallocated rest; 64 or less means no frame went in.
fn written_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

#[test]
fn a_bit_flip_anywhere_in_any_segment_ends_in_a_table_outcome_never_garbage() {
    let (files, last) = pristine();
    // The segment frames go into now; later ones are prepared, all zeros.
    let last_segment = last_used(&files);
    let mut cases = 0;
    let mut outcomes = std::collections::BTreeMap::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let written = written_end(bytes);
        // Every byte of the header, then a stride through the frames and the zeroed tail.
        let positions = (0..64).chain((64..bytes.len()).step_by(29));
        for at in positions {
            let bit = (at % 8) as u8;
            let case = with(&files, i, |b| b[at] ^= 1 << bit);
            let what = format!("{} byte {at} bit {bit}", name.display());
            let outcome = open_case(&case, last, &what);
            if i < last_segment && (64..written).contains(&at) {
                // A sealed segment was synced before the next one began: nothing in it
                // may be dropped as a torn tail.
                assert!(
                    outcome != Outcome::TornTail,
                    "{what}: damage to a sealed segment taken for a torn tail"
                );
            }
            if at < 64 && written > 64 {
                // (The header of a prepared segment no frame went into is a "torn
                // unused header" when damaged: reset and reused, nothing lost.)
                assert!(
                    matches!(outcome, Outcome::Refused(_)),
                    "{what}: a damaged header was accepted: {outcome:?}"
                );
            }
            *outcomes.entry(outcome).or_insert(0u32) += 1;
            cases += 1;
        }
    }
    eprintln!("bit flips: {cases} cases: {outcomes:?}");
    assert!(outcomes.contains_key(&Outcome::Refused("CorruptDurableData")));
    assert!(outcomes.contains_key(&Outcome::Refused("BadSegmentHeader")));
}

#[test]
fn a_zeroed_range_anywhere_ends_in_a_table_outcome_never_garbage() {
    let (files, last) = pristine();
    // The segment frames go into now; later ones are prepared, all zeros.
    let last_segment = last_used(&files);
    let mut cases = 0;
    for (i, (name, bytes)) in files.iter().enumerate() {
        let written = written_end(bytes);
        for at in (0..bytes.len()).step_by(211) {
            for len in [1usize, 48, 700] {
                let end = (at + len).min(bytes.len());
                let case = with(&files, i, |b| b[at..end].fill(0));
                let what = format!("{} zeroed {at}..{end}", name.display());
                let outcome = open_case(&case, last, &what);
                if i < last_segment && at < written && end > 64 {
                    assert!(outcome != Outcome::TornTail, "{what}: {outcome:?}");
                }
                cases += 1;
            }
        }
    }
    eprintln!("zeroed ranges: {cases} cases");
}

#[test]
fn truncated_segments_are_refused_or_lose_nothing() {
    let (files, last) = pristine();
    let mut cases = 0;
    let mut cut_short = 0;
    for (i, (name, bytes)) in files.iter().enumerate() {
        let written = written_end(bytes);
        for len in [
            0,
            1,
            63,
            64,
            100,
            written / 2,
            written,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let case = with(&files, i, |b| b.truncate(len));
            let what = format!("{} truncated to {len}", name.display());
            let outcome = open_case(&case, last, &what);
            if len < 64 {
                assert!(
                    matches!(outcome, Outcome::Refused(_)),
                    "{what}: {outcome:?}"
                );
            }
            if i + 1 < files.len() && len < written {
                assert!(
                    matches!(outcome, Outcome::Refused(_)),
                    "{what}: durable frames cut off and accepted: {outcome:?}"
                );
            }
            if outcome == Outcome::Refused("SegmentCutShort") {
                assert_eq!(i, last_used(&files), "{what}: only the newest segment");
                tolerated_cut(&case, &what);
                cut_short += 1;
            }
            cases += 1;
        }
    }
    eprintln!("truncations: {cases} cases, {cut_short} newest segments cut short");
    assert!(cut_short > 0, "the sweep cut the newest segment short");
}

/// `TolerateCorruptedTail` opens a log whose newest segment file was cut short: the
/// records before the cut, exact and contiguous, the file its full length again, and a
/// writer that appends after them.
fn tolerated_cut(files: &[(PathBuf, Vec<u8>)], what: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write case");
    }
    let (mut wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::TolerateCorruptedTail))
        .unwrap_or_else(|e| panic!("{what}: tolerate-tail refused a cut-short file: {e}"));
    assert_eq!(
        read_all(&wal.reader()),
        (1..=rec.last_seq.0).collect::<Vec<_>>(),
        "{what}"
    );
    for (name, _) in files {
        let len = std::fs::metadata(dir.path().join(name))
            .expect("file")
            .len();
        assert_eq!(len, SEGMENT, "{what}: {} left short", name.display());
    }
    common::append_unit(&mut wal, 2).expect("append after the cut");
    wal.sync().expect("sync");
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .unwrap_or_else(|e| panic!("{what}: reopen after the cut: {e}"));
    assert_eq!(
        read_all(&wal.reader()),
        (1..=rec.last_seq.0 + 2).collect::<Vec<_>>(),
        "{what}"
    );
}

fn name_of(index: u64) -> PathBuf {
    PathBuf::from(segment_file_name(SegmentIndex(index)))
}

#[test]
fn a_missing_segment_is_a_gap_unless_it_is_the_first_or_last() {
    let (files, last) = pristine();
    let n = files.len();
    for i in 1..n - 1 {
        let mut case = files.clone();
        case.remove(i);
        let outcome = open_case(&case, last, &format!("segment {} missing", i + 1));
        assert_eq!(outcome, Outcome::Refused("SegmentGap"));
    }
}

/// Not detected today: with the first segment gone the log opens starting at the second
/// segment's first sequence (the shape a truncated log will have once checkpoints and
/// truncation exist). What it returns is still exact and contiguous; the records of the
/// missing segment are simply not there. `docs/recovery.md` lists this limit.
#[test]
fn without_its_first_segment_the_log_opens_from_the_second_with_exact_records() {
    let (files, _) = pristine();
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in &files[1..] {
        std::fs::write(dir.path().join(name), bytes).expect("write case");
    }
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    let seqs = read_all(&wal.reader());
    let first = *seqs.first().expect("records");
    assert!(first > 1);
    assert_eq!(seqs, (first..=rec.last_seq.0).collect::<Vec<_>>());
}

#[test]
fn a_duplicated_segment_under_another_index_is_refused() {
    let (files, last) = pristine();
    let n = files.len() as u64;
    // Segments holding frames (a prepared, never used segment is all zeros: a copy of it
    // is just another prepared segment).
    let used = files.iter().filter(|(_, b)| written_end(b) > 64).count();
    assert!(used >= 3);
    for i in 0..used {
        // The copy takes the place of the next index after the end of the log.
        let mut case = files.clone();
        case.push((name_of(n + 1), files[i].1.clone()));
        let outcome = open_case(
            &case,
            last,
            &format!("segment {} copied as {}", i + 1, n + 1),
        );
        assert_eq!(
            outcome,
            Outcome::Refused("BadSegmentHeader"),
            "copy of {}",
            i + 1
        );
        // The copy replaces another segment.
        let j = (i + 1) % used;
        let case = with(&files, j, |b| *b = files[i].1.clone());
        let outcome = open_case(
            &case,
            last,
            &format!("segment {} copied over {}", i + 1, j + 1),
        );
        assert_eq!(
            outcome,
            Outcome::Refused("BadSegmentHeader"),
            "copy over {}",
            j + 1
        );
    }
}

#[test]
fn reordered_segments_are_refused() {
    let (files, last) = pristine();
    for i in 0..files.len() - 1 {
        let mut case = files.clone();
        let (a, b) = (case[i].1.clone(), case[i + 1].1.clone());
        case[i].1 = b;
        case[i + 1].1 = a;
        let outcome = open_case(
            &case,
            last,
            &format!("segments {} and {} swapped", i + 1, i + 2),
        );
        assert_eq!(outcome, Outcome::Refused("BadSegmentHeader"));
    }
}

#[test]
fn an_untouched_copy_opens_intact() {
    let (files, last) = pristine();
    assert_eq!(open_case(&files, last, "untouched"), Outcome::Intact);
    assert!(Path::new(&files[0].0).to_string_lossy().ends_with(".seg"));
}

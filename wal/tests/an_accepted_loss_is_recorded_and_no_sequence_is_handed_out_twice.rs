//! Loss is accepted only explicitly (`RecoveryMode::AcceptLoss`, or the cut a tolerant
//! mode reports), and no sequence is ever handed out twice. What could go wrong: the log
//! continuing right after what survived, so that sequences acknowledged for lost records
//! are handed out again; the acceptance forgotten, so the next open refuses again; the
//! bound ignored after a crash (records acknowledged after the extent record's last
//! update reused).

mod common;

use common::{append_unit, fill, read_all, segment_files, Db};
use std::fs;
use tidelog_wal::extent;
use tidelog_wal::io::RealStorage;
use tidelog_wal::{GlobalSeq, OpenError, RecoveryMode, Verdict, Wal};

/// Writes 300 units; closes cleanly or not; deletes the newest `drop` segment files.
fn damaged(db: &Db, clean: bool, drop: usize) -> GlobalSeq {
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    fill(&mut wal, 300, 4);
    wal.sync().unwrap();
    if clean {
        wal.record_extent().unwrap();
    }
    let acknowledged = wal.last_durable();
    drop_wal(wal);
    let all = segment_files(&db.wal);
    for path in all.iter().rev().take(drop) {
        fs::remove_file(path).unwrap();
    }
    acknowledged
}

fn drop_wal(wal: Wal) {
    drop(wal);
}

#[test]
fn accepting_a_lost_end_after_a_clean_close_continues_right_above_the_acknowledged() {
    let db = Db::new();
    let acknowledged = damaged(&db, true, 3);
    assert!(matches!(
        db.open(RecoveryMode::AbsoluteConsistency),
        Err(OpenError::LostRecords { .. })
    ));
    assert!(
        matches!(
            db.open(RecoveryMode::SkipCorrupted),
            Err(OpenError::LostRecords { .. })
        ),
        "only AcceptLoss accepts vanished segments"
    );
    let (mut wal, recovered) = db.open(RecoveryMode::AcceptLoss).unwrap();
    let (first, last) = recovered
        .report
        .accepted_loss
        .expect("the loss is reported");
    assert_eq!(
        last, acknowledged,
        "a clean close makes the lost range exact"
    );
    assert!(first <= acknowledged && first.0 > 1);
    assert_eq!(recovered.last_seq, acknowledged);
    append_unit(&mut wal, 2).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_written(), GlobalSeq(acknowledged.0 + 2));
    wal.record_extent().unwrap();
    drop(wal);

    // The acceptance is remembered: the default mode opens, reads every survivor and the
    // new records, and verify calls the log clean.
    let (wal, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert!(recovered.report.is_clean(), "{:?}", recovered.report);
    let seqs = read_all(&wal.reader());
    assert_eq!(seqs.last(), Some(&(acknowledged.0 + 2)));
    assert!(seqs.iter().all(|s| *s < first.0 || *s > acknowledged.0));
    drop(wal);
    let report = db.verify();
    assert_eq!(report.verdict, Verdict::Clean, "{:?}", report.findings);
    let recorded = extent::read(&RealStorage, &db.extent).unwrap().unwrap();
    assert_eq!(recorded.accepted_losses, vec![(first, last)]);
}

#[test]
fn accepting_a_lost_end_after_a_crash_continues_above_what_a_segment_could_have_held() {
    let db = Db::new();
    let acknowledged = damaged(&db, false, 3);
    let recorded = extent::read(&RealStorage, &db.extent).unwrap().unwrap();
    assert!(!recorded.closed_cleanly);
    assert!(
        recorded.durable_seq < acknowledged,
        "the record lags without a close"
    );
    let (mut wal, recovered) = db.open(RecoveryMode::AcceptLoss).unwrap();
    let (_, last) = recovered.report.accepted_loss.unwrap();
    // 8 KiB segments hold at most (8192 - 1024) / 48 frames: whatever the newest segment
    // held past the record's durable sequence is below the new start.
    assert_eq!(last.0, recorded.durable_seq.0 + (8192 - 1024) / 48 + 1);
    assert!(last >= acknowledged, "{last} vs {acknowledged}");
    append_unit(&mut wal, 1).unwrap();
    assert_eq!(wal.last_written(), GlobalSeq(last.0 + 1));
}

#[test]
fn accepting_the_loss_of_every_segment_starts_a_log_above_everything_acknowledged() {
    let db = Db::new();
    let acknowledged = damaged(&db, true, usize::MAX);
    assert!(segment_files(&db.wal).is_empty());
    let (mut wal, recovered) = db.open(RecoveryMode::AcceptLoss).unwrap();
    assert_eq!(
        recovered.report.accepted_loss,
        Some((GlobalSeq(1), acknowledged))
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_written(), GlobalSeq(acknowledged.0 + 1));
    drop(wal);
    let (wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(read_all(&wal.reader()), vec![acknowledged.0 + 1]);
}

#[test]
fn a_tolerated_cut_never_hands_out_the_cut_sequences_again() {
    let db = Db::new();
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    fill(&mut wal, 300, 4);
    wal.sync().unwrap();
    wal.record_extent().unwrap();
    let acknowledged = wal.last_durable();
    drop(wal);
    // Damage a frame in the first (sealed) segment.
    let first = segment_files(&db.wal)[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[600] ^= 0x40;
    fs::write(&first, bytes).unwrap();
    let (mut wal, recovered) = db.open(RecoveryMode::TolerateCorruptedTail).unwrap();
    assert!(!recovered.report.skipped.is_empty());
    let (_, last) = recovered.report.accepted_loss.expect("the cut is recorded");
    assert!(last >= acknowledged);
    append_unit(&mut wal, 1).unwrap();
    assert!(wal.last_written() > acknowledged);
    wal.sync().unwrap();
    wal.record_extent().unwrap();
    drop(wal);
    let (_, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert!(recovered.last_seq > acknowledged);
}

#[test]
fn after_skip_corrupted_the_default_mode_opens_again_and_passes_the_accepted_region() {
    let db = Db::new();
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    fill(&mut wal, 300, 4);
    wal.sync().unwrap();
    wal.record_extent().unwrap();
    drop(wal);
    let first = segment_files(&db.wal)[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[600] ^= 0x40;
    fs::write(&first, bytes).unwrap();
    assert!(matches!(
        db.open(RecoveryMode::AbsoluteConsistency),
        Err(OpenError::CorruptDurableData { .. })
    ));
    let (wal, recovered) = db.open(RecoveryMode::SkipCorrupted).unwrap();
    assert_eq!(recovered.report.skipped.len(), 1);
    drop(wal);
    let (mut wal, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(
        recovered.report.skipped.len(),
        1,
        "the skip is still reported"
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
}

#[test]
fn a_hole_in_the_middle_is_never_accepted_and_giving_up_the_tail_after_it_never_reuses_a_sequence()
{
    let db = Db::new();
    let acknowledged = damaged(&db, true, 0);
    let all = segment_files(&db.wal);
    assert!(all.len() >= 4, "{} segments", all.len());
    fs::remove_file(&all[1]).unwrap();
    let before = db.image();
    match db.open(RecoveryMode::AcceptLoss) {
        Err(OpenError::HoleNotAccepted {
            loss, after_gap, ..
        }) => {
            assert_eq!(after_gap, all[2]);
            assert_eq!(
                loss.missing_segments,
                vec![(tidelog_wal::SegmentIndex(2), tidelog_wal::SegmentIndex(2))]
            );
            assert_eq!(loss.acknowledged, acknowledged);
        }
        other => panic!("expected HoleNotAccepted, got {:?}", other.err()),
    }
    assert_eq!(db.image(), before, "a refusal changed files");

    // What the message tells the operator: give up everything from the hole on.
    let aside = db.dir().join("aside");
    fs::create_dir(&aside).unwrap();
    for path in &all[2..] {
        fs::rename(path, aside.join(path.file_name().unwrap())).unwrap();
    }
    let (mut wal, recovered) = db.open(RecoveryMode::AcceptLoss).unwrap();
    let (first, last) = recovered
        .report
        .accepted_loss
        .expect("the loss is recorded");
    assert_eq!(
        last, acknowledged,
        "a clean close makes the lost range exact"
    );
    assert_eq!(
        read_all(&wal.reader()),
        (1..first.0).collect::<Vec<_>>(),
        "the records before the hole"
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(
        wal.last_durable().0,
        acknowledged.0 + 1,
        "above every acknowledged"
    );
}

//! What could go wrong: the machine dies while a checkpoint is written (or while the
//! retention and truncation that follow it run) and after reboot the previous checkpoint
//! is damaged or gone, a half-written checkpoint is returned, the log no longer reaches
//! back to the checkpoint recovery starts from, or records acknowledged before are lost.
//! Sweeps the crash over every storage operation of taking the second checkpoint.
mod common;
use tidelog::wal::SimDisk;
use tidelog::{Engine, GlobalSeq, HlcPoint, Options};

/// Tiny segments: the workload spans several, so truncation has work to do.
fn rotating() -> Options {
    let mut options = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(2 * 1024)
        .max_batch_bytes(4 * 1024);
    options.prepare_segments_in_background = false;
    // The log is kept only after the newest checkpoint: checkpoint B truncates the log up
    // to itself, so the sweep crashes truncation too.
    options.checkpoints.log_for_last = 1;
    options
}

fn payload(i: u64) -> Vec<u8> {
    let mut bytes = format!("record-{i}").into_bytes();
    bytes.resize(900, b'.');
    bytes
}

fn state(label: &str) -> Vec<u8> {
    // Several sectors, so a torn write can keep some and drop others.
    (0..3000u32)
        .map(|i| label.as_bytes()[i as usize % label.len()] ^ (i as u8))
        .collect()
}

/// The first sequence after checkpoint A.
fn a_seq_after(engine: &Engine<SimDisk>) -> GlobalSeq {
    engine.checkpoints()[0].point.seq().next()
}

struct Run {
    a: HlcPoint,
    durable: HlcPoint,
    ops_before_b: u64,
}

/// 30 records, checkpoint A, 20 more, then checkpoint B (the one the sweep crashes).
/// With `crash_after`, the machine dies at that operation of checkpoint B (counted from
/// its start: group commit timing makes absolute operation counts vary between runs).
fn workload(engine: &Engine<SimDisk>, disk: &SimDisk, crash_after: Option<u64>) -> Option<Run> {
    for i in 1..=30 {
        engine.append(1 + (i % 3) as u32, payload(i)).ok()?;
    }
    let a = engine.sync().ok()?;
    engine.checkpoint(a, &state("A")).ok()?;
    for i in 31..=50 {
        engine.append(1 + (i % 3) as u32, payload(i)).ok()?;
    }
    let durable = engine.sync().ok()?;
    let ops_before_b = disk.ops();
    if let Some(k) = crash_after {
        disk.crash_at(ops_before_b + k);
    }
    let _ = engine.checkpoint(durable, &state("B"));
    Some(Run {
        a,
        durable,
        ops_before_b,
    })
}

#[test]
fn a_crash_at_any_step_of_a_checkpoint_keeps_the_previous_one_intact_and_never_returns_a_torn_one()
{
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = SimDisk::new();
    let (start, end, a_point, durable) = {
        let engine =
            Engine::open_with_storage(probe.clone(), probe_dir.path(), rotating()).unwrap();
        let run = workload(&engine, &probe, None).unwrap();
        assert_eq!(engine.checkpoints().len(), 2);
        assert!(
            engine.truncation_status().log_starts_at > GlobalSeq(1),
            "checkpoint B truncated the log"
        );
        assert!(engine.truncation_status().log_starts_at > a_seq_after(&engine));
        let end = probe.ops();
        engine.close().unwrap();
        (run.ops_before_b, end, run.a, run.durable)
    };
    assert!(end > start + 5, "checkpoint B took {} steps", end - start);
    let mut crashes = 0;
    let mut saw = [false; 2];
    for k in 1..=end - start {
        for seed in 0..4 {
            let run_dir = tempfile::tempdir().unwrap();
            let disk = SimDisk::new();
            {
                let engine =
                    Engine::open_with_storage(disk.clone(), run_dir.path(), rotating()).unwrap();
                let run =
                    workload(&engine, &disk, Some(k)).expect("the crash comes during checkpoint B");
                assert_eq!(
                    (run.a.seq(), run.durable.seq()),
                    (a_point.seq(), durable.seq())
                );
                drop(engine);
            }
            let image = disk.crash_image(seed);
            let engine = Engine::open_with_storage(image, run_dir.path(), rotating())
                .unwrap_or_else(|e| panic!("reopen after crash at op {k} (seed {seed}): {e}"));
            let a = engine
                .checkpoint_at_or_before(a_point.seq())
                .unwrap()
                .unwrap_or_else(|| panic!("crash at {k}/{seed}: checkpoint A is gone"));
            assert_eq!(a.point().seq(), a_point.seq());
            assert_eq!(a.state(), &state("A")[..], "crash at {k}/{seed}: A altered");
            let latest = engine.latest_checkpoint().unwrap().unwrap();
            if latest.point().seq() == durable.seq() {
                assert_eq!(
                    latest.state(),
                    &state("B")[..],
                    "crash at {k}/{seed}: torn B returned"
                );
                saw[1] = true;
            } else {
                assert_eq!(latest.point().seq(), a_point.seq());
                saw[0] = true;
            }
            let recovered = engine.recovered_checkpoint().unwrap().point;
            assert_eq!(recovered.seq(), latest.point().seq());
            // Every acknowledged record after the recovery point is in the log, in order.
            let from = GlobalSeq(recovered.global_sequence + 1);
            let seqs: Vec<u64> = engine
                .scan_all(from)
                .unwrap()
                .map(|r| {
                    assert_eq!(r.payload(), &payload(r.global_seq().0)[..]);
                    r.global_seq().0
                })
                .collect();
            assert_eq!(seqs, (from.0..=durable.global_sequence).collect::<Vec<_>>());
            // Appending continues the sequence.
            let next = engine.append(1, b"after".to_vec()).unwrap();
            assert_eq!(next.point.global_sequence, durable.global_sequence + 1);
            crashes += 1;
        }
    }
    eprintln!(
        "checkpoint power-loss sweep: {crashes} crashes over {} operations",
        end - start
    );
    assert_eq!(saw, [true, true], "the sweep saw both outcomes");
}

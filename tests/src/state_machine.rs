//! The engine as a state machine on the simulated disk, checked against a plain model.
//!
//! [`run`] reads operations from arbitrary bytes (the `engine_state_machine` fuzz target
//! feeds it; `tests/tests/engine_state_machine_corpus.rs` replays the checked-in corpus):
//! appends, durable appends, batches across lanes, syncs, clean reopens, a power loss
//! armed at the k-th disk operation from now, and reboots from the crash image with each
//! unsynced sector kept, dropped, zeroed or garbage. After every reopen the log must hold
//! every record acknowledged as durable and every record at or below the durable
//! watermark last seen, byte for byte and in order; nothing that was never appended;
//! batches whole; global and lane sequences contiguous. A clean reopen must keep every
//! accepted record. Any difference panics: that is the finding.

use std::collections::HashMap;
use std::path::Path;
use tidelog::wal::SimDisk;
use tidelog::{AppendError, BatchEntry, Engine, GlobalSeq, Options, Receipt, SyncPolicy};

/// Lanes the operations spread over.
const LANES: u32 = 4;
/// Operations run per input at most, so every input ends quickly.
const MAX_OPS: usize = 64;

/// One record the harness tried to append, in the order of the attempts.
#[derive(Debug, Clone)]
struct Attempt {
    lane: u32,
    payload: Vec<u8>,
    /// The batch it belongs to (all or none of a batch may come back).
    batch: u64,
}

/// What the engine told us, and what it may therefore hold.
#[derive(Debug, Default)]
struct Model {
    /// Records the log holds for sure (acknowledged with a receipt), in global order.
    accepted: Vec<(Receipt, Attempt)>,
    /// Records acknowledged as durable: `accepted[..durable]` must survive a power loss.
    durable: usize,
    /// Attempts that failed (poison, armed crash): each may or may not be in the log, in
    /// this order, after the accepted ones.
    unsure: Vec<Attempt>,
    /// Next batch number.
    batches: u64,
    /// Next payload number, so every payload is unique.
    payloads: u64,
}

/// Byte source: the fuzzer's input, zeros once exhausted.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// Tiny segments so a short input rotates; segment preparation inline so the disk's
/// operation order depends only on the engine.
fn options(policy: u8) -> Options {
    let policy = match policy % 3 {
        0 => SyncPolicy::EveryGroup,
        1 => SyncPolicy::Never,
        _ => SyncPolicy::EveryRecords(3),
    };
    let mut options = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(1024)
        .max_batch_bytes(3 * 1024)
        .sync_policy(policy);
    options.prepare_segments_in_background = false;
    options
}

impl Model {
    fn attempt(&mut self, input: &mut Input<'_>, batch: u64) -> Attempt {
        let lane = u32::from(input.byte()) % LANES;
        let len = usize::from(input.byte()) * 3;
        let n = self.payloads;
        self.payloads += 1;
        let mut payload = format!("p{n}-l{lane}-").into_bytes();
        payload.resize(payload.len() + len, b'a' + (n % 26) as u8);
        Attempt {
            lane,
            payload,
            batch,
        }
    }

    fn next_batch(&mut self) -> u64 {
        self.batches += 1;
        self.batches
    }

    fn accept(&mut self, receipt: Receipt, attempt: Attempt) {
        let expected = self.accepted.len() as u64 + 1;
        assert_eq!(
            receipt.global_seq(),
            GlobalSeq(expected),
            "receipts must carry contiguous global sequences"
        );
        assert_eq!(receipt.lane.get(), attempt.lane, "receipt on another lane");
        self.accepted.push((receipt, attempt));
    }

    fn fail(&mut self, err: &AppendError, attempts: Vec<Attempt>, armed: bool) {
        assert!(
            matches!(err, AppendError::Poisoned { .. }),
            "only poison may refuse these appends, got: {err}"
        );
        assert!(
            armed,
            "the engine poisoned itself with no fault armed: {err}"
        );
        self.unsure.extend(attempts);
    }
}

/// Runs the operations encoded in `data` (see the module docs).
///
/// # Panics
/// When the engine and the model disagree: that is the finding.
pub fn run(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let mut input = Input { data, at: 0 };
    let policy = input.byte();
    let opts = options(policy);
    let mut disk = SimDisk::new();
    let mut engine = open(&disk, dir.path(), &opts, "the first open");
    let mut model = Model::default();
    let mut armed = false;
    let mut seen_durable = GlobalSeq::ZERO;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        match input.byte() % 8 {
            0 | 1 => {
                let attempt = model.attempt(&mut input, 0);
                match engine.append(attempt.lane, attempt.payload.clone()) {
                    Ok(receipt) => model.accept(receipt, attempt),
                    Err(e) => model.fail(&e, vec![attempt], armed),
                }
            }
            2 => {
                let attempt = model.attempt(&mut input, 0);
                let durable = engine.append_durable(attempt.lane, attempt.payload.clone());
                match durable {
                    Ok(receipt) => {
                        model.accept(receipt, attempt);
                        model.durable = model.accepted.len();
                    }
                    Err(e) => model.fail(&e, vec![attempt], armed),
                }
            }
            3 => {
                let batch = model.next_batch();
                let size = 1 + usize::from(input.byte()) % 3;
                let attempts: Vec<Attempt> = (0..size)
                    .map(|_| model.attempt(&mut input, batch))
                    .collect();
                let entries = attempts
                    .iter()
                    .map(|a| BatchEntry::new(a.lane, a.payload.clone()))
                    .collect();
                match engine.append_batch(entries) {
                    Ok(receipts) => {
                        assert_eq!(receipts.len(), attempts.len(), "one receipt per entry");
                        for (receipt, attempt) in receipts.into_iter().zip(attempts) {
                            model.accept(receipt, attempt);
                        }
                    }
                    Err(e) => model.fail(&e, attempts, armed),
                }
            }
            4 => match engine.sync() {
                Ok(point) => {
                    assert!(
                        point.global_sequence >= model.accepted.len() as u64,
                        "sync returned before covering every accepted record"
                    );
                    model.durable = model.accepted.len();
                }
                Err(e) => assert!(armed, "sync failed with no fault armed: {e}"),
            },
            5 => {
                // A clean close and reopen on the same disk: nothing accepted may go.
                if armed {
                    continue;
                }
                let close = engine.close();
                assert!(close.is_ok(), "a clean close failed: {close:?}");
                drop(engine);
                engine = open(&disk, dir.path(), &opts, "a clean reopen");
                check(
                    &engine,
                    &model,
                    model.accepted.len(),
                    "after a clean reopen",
                );
                model.durable = model.accepted.len();
            }
            6 => {
                // The machine will die at the k-th disk operation from now.
                if !armed {
                    disk.crash_at(disk.ops() + 1 + u64::from(input.byte() % 24));
                    armed = true;
                }
            }
            _ => {
                // Power loss now (or at the armed point if it came): reboot from the image.
                let seed = u64::from(input.byte());
                seen_durable = seen_durable.max(durable_seq(&engine));
                let image = disk.crash_image(seed);
                drop(engine);
                disk = image;
                engine = open(&disk, dir.path(), &opts, "reopen after a power loss");
                let must = model.durable.max(seen_durable.0 as usize);
                let found = check(&engine, &model, must, "after a power loss");
                model.survive(found);
                armed = false;
                seen_durable = GlobalSeq::ZERO;
            }
        }
        if !armed {
            let durable = durable_seq(&engine);
            assert!(
                durable.0 <= model.accepted.len() as u64,
                "durable watermark {durable} past the last accepted record"
            );
            seen_durable = seen_durable.max(durable);
        }
    }
    if !armed {
        let close = engine.close();
        assert!(close.is_ok(), "the final close failed: {close:?}");
    }
}

fn durable_seq(engine: &Engine<SimDisk>) -> GlobalSeq {
    GlobalSeq(engine.watermarks().global.durable_hlc.global_sequence)
}

fn open(disk: &SimDisk, dir: &Path, options: &Options, when: &str) -> Engine<SimDisk> {
    Engine::open_with_storage(disk.clone(), dir, options.clone())
        .unwrap_or_else(|e| panic!("{when}: the engine refused to open: {e}"))
}

impl Model {
    /// After a reboot the log holds `found` records: they are all durable now, the
    /// unsure attempts that came back become accepted, the rest are gone.
    fn survive(&mut self, found: Vec<(Receipt, Attempt)>) {
        self.accepted = found;
        self.durable = self.accepted.len();
        self.unsure.clear();
    }
}

/// Reads the whole log and checks it against the model; returns what it holds.
fn check(
    engine: &Engine<SimDisk>,
    model: &Model,
    must: usize,
    when: &str,
) -> Vec<(Receipt, Attempt)> {
    let records: Vec<tidelog::Record> = engine
        .scan_all(GlobalSeq(1))
        .unwrap_or_else(|e| panic!("{when}: scan failed: {e}"))
        .collect();
    assert!(
        records.len() >= must,
        "{when}: {} records came back but {must} were durable",
        records.len()
    );
    let mut lane_next: HashMap<u32, u64> = HashMap::new();
    let mut unsure = model.unsure.iter();
    let mut found = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let global = i as u64 + 1;
        assert_eq!(record.global_seq(), GlobalSeq(global), "{when}: a gap");
        let lane = record.lane().get();
        let lane_seq = lane_next.entry(lane).or_insert(0);
        *lane_seq += 1;
        assert_eq!(
            record.lane_seq().get(),
            *lane_seq,
            "{when}: lane {lane} has a gap at global {global}"
        );
        let attempt = match model.accepted.get(i) {
            Some((receipt, attempt)) => {
                assert_eq!(
                    receipt,
                    &record.receipt(),
                    "{when}: record {global} is not where its receipt put it"
                );
                attempt.clone()
            }
            None => unsure
                .find(|a| a.payload == record.payload())
                .unwrap_or_else(|| {
                    panic!(
                        "{when}: record {global} was never appended: {:?}",
                        String::from_utf8_lossy(record.payload())
                    )
                })
                .clone(),
        };
        assert_eq!(
            record.payload(),
            &attempt.payload[..],
            "{when}: record {global} altered"
        );
        assert_eq!(
            attempt.lane, lane,
            "{when}: record {global} on another lane"
        );
        found.push((record.receipt(), attempt));
    }
    check_batches_whole(model, &found, when);
    found
}

/// Every batch that came back in part is a finding.
fn check_batches_whole(model: &Model, found: &[(Receipt, Attempt)], when: &str) {
    let mut sizes: HashMap<u64, usize> = HashMap::new();
    for attempt in model
        .accepted
        .iter()
        .map(|(_, a)| a)
        .chain(model.unsure.iter())
        .filter(|a| a.batch != 0)
    {
        *sizes.entry(attempt.batch).or_default() += 1;
    }
    let mut present: HashMap<u64, usize> = HashMap::new();
    for (_, attempt) in found.iter().filter(|(_, a)| a.batch != 0) {
        *present.entry(attempt.batch).or_default() += 1;
    }
    for (batch, count) in present {
        assert_eq!(
            Some(&count),
            sizes.get(&batch),
            "{when}: batch {batch} came back in part"
        );
    }
}

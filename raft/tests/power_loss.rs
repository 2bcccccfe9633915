//! The log store under simulated power loss: the machine dies at every storage operation
//! of a script of appends, vote saves, committed saves, truncations and purges, and the
//! store is reopened over what the disk kept (tidelog's `SimDisk` drops what was not
//! synced, and tears, zeroes or garbles the unsynced sectors).
//!
//! What could go wrong: an entry whose flush callback fired, a vote `save_vote` returned
//! for, or a finished `truncate` or `purge` is missing after the power loss; an entry a
//! truncation dropped comes back (also when the power fails in the middle of the
//! truncation, once entries of a newer term were written over it); the log comes back
//! with a hole, or with entries of two histories mixed; the store does not open or cannot
//! be written after the power loss.
//!
//! The check is exact: the store after the power loss must be the state the script's
//! model reaches after some prefix of the script, no shorter than the last operation
//! acknowledged as durable and no longer than the operation the power failed in.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use std::collections::BTreeMap;
use std::path::Path;
use tidelog::wal::SimDisk;
use tidelog::Options;
use tidelog_raft::{KvConfig, LogStore, LogStoreOptions, Request};

/// Crash images taken per power-loss point (each tears the unsynced sectors differently).
const SEEDS: u64 = 3;

/// One step of the script.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `save_vote` of a committed vote: (term, node).
    Vote(u64, u64),
    /// `append` of the entries `from..=to` of `term`, waited for until flushed.
    Append { term: u64, from: u64, to: u64 },
    /// `save_committed` (rides the next group commit: not durable on its own).
    Committed { term: u64, index: u64 },
    /// `truncate` from this index on.
    Truncate { term: u64, index: u64 },
    /// `purge` up to and including this index.
    Purge { term: u64, index: u64 },
}

/// The script: a follower's life through three terms, with conflicting suffixes
/// truncated and overwritten, and two purges (the second lets tidelog remove segments).
const SCRIPT: &[Op] = &[
    Op::Vote(1, 1),
    Op::Append {
        term: 1,
        from: 1,
        to: 6,
    },
    Op::Committed { term: 1, index: 4 },
    Op::Append {
        term: 1,
        from: 7,
        to: 14,
    },
    Op::Vote(2, 2),
    Op::Truncate { term: 1, index: 10 },
    Op::Append {
        term: 2,
        from: 10,
        to: 18,
    },
    Op::Committed { term: 2, index: 12 },
    Op::Purge { term: 1, index: 5 },
    Op::Append {
        term: 2,
        from: 19,
        to: 26,
    },
    Op::Vote(3, 1),
    Op::Truncate { term: 2, index: 23 },
    Op::Append {
        term: 3,
        from: 23,
        to: 30,
    },
    Op::Committed { term: 3, index: 27 },
    Op::Purge { term: 2, index: 20 },
    Op::Append {
        term: 3,
        from: 31,
        to: 34,
    },
];

impl Op {
    /// Whether the operation returning `Ok` means it is durable.
    fn acknowledges_durability(self) -> bool {
        !matches!(self, Op::Committed { .. })
    }
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn entry(term: u64, index: u64) -> Entry<KvConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            // Several sectors per segment page: a torn write can keep some, drop others.
            value: format!("written in term {term}:{}", "v".repeat(300)),
        }),
    }
}

/// What the store holds, as read through openraft's API.
#[derive(Debug, Clone, Default, PartialEq)]
struct StoreState {
    entries: BTreeMap<u64, Entry<KvConfig>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
}

impl StoreState {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Vote(term, node) => self.vote = Some(Vote::new_committed(term, node)),
            Op::Append { term, from, to } => {
                self.entries.split_off(&from);
                self.entries
                    .extend((from..=to).map(|i| (i, entry(term, i))));
            }
            Op::Committed { term, index } => self.committed = Some(log_id(term, index)),
            Op::Truncate { index, .. } => {
                self.entries.split_off(&index);
            }
            Op::Purge { term, index } => {
                self.entries = self.entries.split_off(&(index + 1));
                self.purged = Some(log_id(term, index));
            }
        }
    }
}

/// The model's state after each prefix of the script: `states[i]` after `i` operations.
fn model_states() -> Vec<StoreState> {
    let mut state = StoreState::default();
    let mut states = vec![state.clone()];
    for op in SCRIPT {
        state.apply(*op);
        states.push(state.clone());
    }
    states
}

/// A directory for one run's database. The log itself is on the simulated disk; what
/// tidelog keeps beside it on the real file system (its marker, the lease file) is synced
/// on every open, so the runs use a memory-backed file system where there is one: a
/// sweep of hundreds of opens then takes seconds, not a minute, on a busy disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn options() -> LogStoreOptions {
    let mut engine = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(2 * 1024)
        .max_batch_bytes(4 * 1024);
    // A fixed order of storage operations, so a sweep point means the same in every run.
    engine.prepare_segments_in_background = false;
    // Each purge's checkpoint lets tidelog remove the log below it at once.
    engine.checkpoints.log_for_last = 1;
    LogStoreOptions { engine }
}

async fn run_op(store: &mut LogStore<KvConfig, SimDisk>, op: Op) -> bool {
    match op {
        Op::Vote(term, node) => store
            .save_vote(&Vote::new_committed(term, node))
            .await
            .is_ok(),
        Op::Append { term, from, to } => store
            .blocking_append((from..=to).map(|i| entry(term, i)))
            .await
            .is_ok(),
        Op::Committed { term, index } => store
            .save_committed(Some(log_id(term, index)))
            .await
            .is_ok(),
        Op::Truncate { term, index } => store.truncate(log_id(term, index)).await.is_ok(),
        Op::Purge { term, index } => store.purge(log_id(term, index)).await.is_ok(),
    }
}

/// Runs the script on a store over `disk` until an operation fails; returns how many
/// succeeded, or `None` if the store did not even open.
async fn run_script(disk: &SimDisk, dir: &Path) -> Option<usize> {
    let mut store =
        LogStore::<KvConfig, SimDisk>::open_with_storage(disk.clone(), dir, options()).ok()?;
    for (done, op) in SCRIPT.iter().enumerate() {
        if !run_op(&mut store, *op).await {
            return Some(done);
        }
    }
    Some(SCRIPT.len())
}

async fn read_state(store: &mut LogStore<KvConfig, SimDisk>) -> StoreState {
    let entries: BTreeMap<u64, Entry<KvConfig>> = store
        .try_get_log_entries(0..u64::MAX)
        .await
        .expect("entries read after the power loss")
        .into_iter()
        .map(|e| (e.log_id.index, e))
        .collect();
    let log_state = store.get_log_state().await.expect("the log state");
    let last = entries
        .values()
        .next_back()
        .map(|e| e.log_id)
        .or(log_state.last_purged_log_id);
    assert_eq!(
        log_state.last_log_id, last,
        "the log state disagrees with the entries read"
    );
    StoreState {
        entries,
        vote: store.read_vote().await.expect("the vote"),
        committed: store.read_committed().await.expect("the committed id"),
        purged: log_state.last_purged_log_id,
    }
}

/// The store opens over the crash image, equals the model after some allowed prefix
/// (returned), and takes a new entry.
async fn check_after_power_loss(
    image: SimDisk,
    dir: &Path,
    states: &[StoreState],
    allowed: std::ops::RangeInclusive<usize>,
    what: &str,
) -> usize {
    let mut store = LogStore::<KvConfig, SimDisk>::open_with_storage(image, dir, options())
        .unwrap_or_else(|e| panic!("{what}: the store does not open after the power loss: {e}"));
    let found = read_state(&mut store).await;
    let Some(prefix) = allowed.clone().rev().find(|i| states[*i] == found) else {
        let describe = |s: &StoreState| {
            let ids: Vec<(u64, u64)> = s
                .entries
                .values()
                .map(|e| (e.log_id.index, e.log_id.leader_id.term))
                .collect();
            format!(
                "entries {ids:?}, vote {:?}, committed {:?}, purged {:?}",
                s.vote, s.committed, s.purged
            )
        };
        let expected: Vec<String> = allowed
            .map(|i| format!("after {i} ops: {}", describe(&states[i])))
            .collect();
        panic!(
            "{what}: after the power loss the store holds {}; expected one of:\n{}",
            describe(&found),
            expected.join("\n")
        );
    };
    let next = found
        .entries
        .keys()
        .next_back()
        .copied()
        .or(found.purged.map(|p| p.index))
        .unwrap_or(0)
        + 1;
    store
        .blocking_append([entry(9, next)])
        .await
        .unwrap_or_else(|e| panic!("{what}: no append after the power loss: {e}"));
    let read = store.try_get_log_entries(next..next + 1).await.unwrap();
    assert_eq!(
        read,
        vec![entry(9, next)],
        "{what}: the new entry reads back"
    );
    prefix
}

#[test]
fn after_a_power_loss_at_any_operation_the_store_holds_every_acknowledged_write_and_no_truncated_entry(
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let states = model_states();
    let total_ops = {
        let dir = scratch_dir();
        let disk = SimDisk::new();
        let done = runtime.block_on(run_script(&disk, dir.path()));
        assert_eq!(
            done,
            Some(SCRIPT.len()),
            "the script runs on the simulated disk"
        );
        disk.ops()
    };
    // (crashes, recovered the state before the op, after it) for each op the power failed in.
    let mut outcomes = vec![(0u32, false, false); SCRIPT.len()];
    let mut during_open = 0;
    for k in 1..=total_ops {
        for seed in 0..SEEDS {
            let what = format!("power loss at storage op {k} of {total_ops}, damage seed {seed}");
            let dir = scratch_dir();
            let disk = SimDisk::new();
            disk.crash_at(k);
            let opened = runtime.block_on(run_script(&disk, dir.path()));
            assert!(disk.is_crashed(), "{what}: the machine did not die");
            during_open += u32::from(opened.is_none());
            let done = opened.unwrap_or(0);
            let durable = SCRIPT[..done]
                .iter()
                .rposition(|op| op.acknowledges_durability())
                .map_or(0, |i| i + 1);
            let in_flight = (done + 1).min(SCRIPT.len());
            let prefix = runtime.block_on(check_after_power_loss(
                disk.crash_image(seed),
                dir.path(),
                &states,
                durable..=in_flight,
                &what,
            ));
            if opened.is_some() && done < SCRIPT.len() {
                let outcome = &mut outcomes[done];
                outcome.0 += 1;
                outcome.1 |= prefix <= done;
                outcome.2 |= prefix == done + 1;
            }
        }
    }
    eprintln!(
        "power-loss sweep: {total_ops} points x {SEEDS} seeds; {during_open} during open; \
         per op (crashes, before, after): {outcomes:?}"
    );
    assert!(during_open > 0, "no power loss while the store opened");
    for (op, (crashes, before, after)) in SCRIPT.iter().zip(&outcomes) {
        assert!(*crashes > 0, "no power loss during {op:?}");
        if matches!(op, Op::Truncate { .. } | Op::Purge { .. }) {
            assert!(
                *before && *after,
                "a power loss in the middle of {op:?} never left the log as before it ({before}) or never as after it ({after})"
            );
        }
    }
}

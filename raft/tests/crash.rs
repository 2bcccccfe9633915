//! A real process appending and truncating through the log store is SIGKILLed at varied
//! points, over and over on the same database: every entry whose flush callback fired is
//! there after the kill, and no entry `truncate` dropped ever comes back.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use tidelog_raft::{KvConfig, LogStore, LogStoreOptions, Request};

const CHILD_ENV: &str = "TIDELOG_RAFT_CRASH_CHILD_DIR";

fn rounds() -> u64 {
    std::env::var("TIDELOG_RAFT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn entry(term: u64, index: u64) -> Entry<KvConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("written in term {term}"),
        }),
    }
}

async fn read_all(store: &mut LogStore<KvConfig>) -> BTreeMap<u64, u64> {
    store
        .try_get_log_entries(0..u64::MAX)
        .await
        .expect("entries read")
        .into_iter()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect()
}

/// The child: continues the log in `dir` until killed. Prints `F term index` once an
/// entry's flush callback fired, `P index` before a truncation and `T index` after it.
#[tokio::test]
#[ignore = "the child process of the crash test; run by it"]
async fn crash_child_appends_and_truncates_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        panic!("{CHILD_ENV} is not set: this test is run by the crash test");
    };
    let mut store = LogStore::<KvConfig>::open(&dir, LogStoreOptions::small()).unwrap();
    let existing = read_all(&mut store).await;
    let mut term = existing.values().max().copied().unwrap_or(0) + 1;
    let mut next = existing.keys().max().copied().unwrap_or(0) + 1;
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    for round in 0u64.. {
        let count = 1 + round % 4;
        store
            .blocking_append((next..next + count).map(|i| entry(term, i)))
            .await
            .unwrap();
        for i in next..next + count {
            writeln!(out, "F {term} {i}").unwrap();
        }
        out.flush().unwrap();
        next += count;
        if round % 5 == 4 {
            let from = next.saturating_sub(3).max(1);
            writeln!(out, "P {from}").unwrap();
            out.flush().unwrap();
            store.truncate(log_id(term, from)).await.unwrap();
            writeln!(out, "T {from}").unwrap();
            out.flush().unwrap();
            term += 1;
            next = from;
        }
    }
}

/// What the parent knows from the child's lines.
#[derive(Default)]
struct Model {
    /// Entries whose flush callback fired and that no finished truncation dropped.
    flushed: BTreeMap<u64, u64>,
    /// Every (index, term) a finished truncation dropped.
    dropped: BTreeSet<(u64, u64)>,
    /// A truncation that started and did not report back.
    pending: Option<u64>,
}

impl Model {
    fn line(&mut self, line: &str) {
        let parts: Vec<u64> = line
            .split(' ')
            .skip(1)
            .map(|p| p.parse().expect("a number"))
            .collect();
        match (line.as_bytes().first(), parts.as_slice()) {
            (Some(b'F'), [term, index]) => {
                self.flushed.split_off(index);
                self.flushed.insert(*index, *term);
            }
            (Some(b'P'), [index]) => self.pending = Some(*index),
            (Some(b'T'), [index]) => {
                let gone = self.flushed.split_off(index);
                self.dropped.extend(gone);
                self.pending = None;
            }
            _ => panic!("unexpected line from the child: {line}"),
        }
    }

    fn check(&self, actual: &BTreeMap<u64, u64>, round: u64) {
        for (index, term) in &self.flushed {
            match (actual.get(index), self.pending) {
                (Some(found), _) => assert_eq!(
                    found, term,
                    "round {round}: entry {index} flushed in term {term} reads as term {found}"
                ),
                (None, Some(from)) if *index >= from => {}
                (None, _) => panic!(
                    "round {round}: flushed entry {index} (term {term}) lost; the log ends {:?}, the child reported up to {:?}",
                    actual.iter().next_back(),
                    self.flushed.iter().next_back()
                ),
            }
        }
        for (index, term) in actual {
            assert!(
                !self.dropped.contains(&(*index, *term)),
                "round {round}: entry {index} of term {term} was truncated and came back"
            );
        }
        let indexes: Vec<u64> = actual.keys().copied().collect();
        let want: Vec<u64> = (1..=indexes.len() as u64).collect();
        assert_eq!(indexes, want, "round {round}: the log has a hole");
    }
}

fn run_child_until(dir: &Path, lines: usize, model: &mut Model) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_appends_and_truncates_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    let mut ready = false;
    let mut lines_in = BufReader::new(stdout).lines();
    for line in lines_in.by_ref() {
        let line = line.expect("a line from the child");
        if !ready {
            ready = line.ends_with("READY");
            continue;
        }
        if !matches!(line.as_bytes().first(), Some(b'F' | b'P' | b'T')) {
            continue;
        }
        model.line(&line);
        seen += 1;
        if seen >= lines {
            break;
        }
    }
    // SIGKILL, right where it is.
    child.kill().expect("the child is killed");
    child.wait().expect("the child is reaped");
    // What it reported before it died and the parent had not read yet counts too (a
    // truncation it finished, entries it saw flushed).
    for line in lines_in {
        let line = line.expect("a line from the child");
        if matches!(line.as_bytes().first(), Some(b'F' | b'P' | b'T')) {
            model.line(&line);
        }
    }
    assert!(
        ready && seen >= lines,
        "the child stopped early after {seen} lines"
    );
    seen
}

#[test]
fn flushed_entries_survive_sigkill_and_truncated_ones_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut model = Model::default();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut total = 0;
    for round in 0..rounds() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lines = 20 + (seed % 300) as usize;
        total += run_child_until(dir.path(), lines, &mut model);
        let actual = runtime.block_on(async {
            let mut store = LogStore::<KvConfig>::open(dir.path(), LogStoreOptions::small())
                .expect("the log store opens after the kill");
            let actual = read_all(&mut store).await;
            let state = store.get_log_state().await.unwrap();
            assert_eq!(
                state.last_log_id.map(|l| l.index),
                actual.keys().max().copied()
            );
            store.close().unwrap();
            actual
        });
        model.check(&actual, round);
        // The next child continues this log: what is there now is the base.
        model.flushed = actual;
        model.pending = None;
    }
    assert!(!model.dropped.is_empty(), "no truncation was exercised");
    assert!(total > 0);
}

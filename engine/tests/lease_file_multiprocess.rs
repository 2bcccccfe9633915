//! Real processes racing for the same lease in a [`FileBackend`] directory: exactly one
//! wins each round.
//!
//! What could go wrong: the read-compare-write of the file backend is atomic between
//! threads but not between processes (a lock that is per process, a compare done outside
//! the lock, a temp file name shared by two processes), so two processes both see the key
//! free and both believe they won.
//!
//! The test re-runs this test binary as contender processes (the ignored
//! `contender_process` test, selected by name). Each waits on its stdin for a key, tries
//! to acquire it, and prints the outcome; the parent sends each round's key to all of them
//! at once and collects one answer from each before the next round.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tidelog::lease::{FileBackend, LeaseError, LeaseManager};

const CONTENDERS: usize = 4;
const ROUNDS: usize = 40;
const TTL: Duration = Duration::from_secs(60);
const DIR_ENV: &str = "TIDELOG_LEASE_RACE_DIR";
const HOLDER_ENV: &str = "TIDELOG_LEASE_RACE_HOLDER";
/// Marks the contender's answers among whatever else the test harness prints.
const ANSWER: &str = "lease-race-answer:";

struct Contender {
    holder: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Contender {
    fn spawn(dir: &std::path::Path, index: usize) -> Contender {
        let holder = format!("process-{index}");
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args(["contender_process", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(DIR_ENV, dir)
            .env(HOLDER_ENV, &holder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a contender process");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Contender {
            holder,
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, key: &str) {
        writeln!(self.stdin, "{key}").expect("write to a contender");
        self.stdin.flush().expect("flush to a contender");
    }

    fn answer(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).expect("read a contender");
            assert!(read > 0, "{} exited without answering", self.holder);
            // The harness may print "test contender_process ... " just before the first one.
            if let Some((_, answer)) = line.trim_end().split_once(ANSWER) {
                return answer.to_owned();
            }
        }
    }
}

#[test]
fn processes_racing_for_a_file_lease_leave_exactly_one_winner_per_round() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut contenders: Vec<Contender> = (0..CONTENDERS)
        .map(|index| Contender::spawn(dir.path(), index))
        .collect();
    let leases = LeaseManager::new(Arc::new(FileBackend::open(dir.path()).expect("open")));
    let mut wins_by_holder = [0_usize; CONTENDERS];
    for round in 0..ROUNDS {
        let key = format!("round-{round}");
        for contender in &mut contenders {
            contender.send(&key);
        }
        let answers: Vec<String> = contenders.iter_mut().map(Contender::answer).collect();
        let winners: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, answer)| answer.starts_with("won"))
            .map(|(index, _)| index)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: answers {answers:?}");
        for answer in &answers {
            assert!(
                answer.starts_with("won") || answer == "held" || answer == "lost-race",
                "round {round}: unexpected answer {answer:?}"
            );
        }
        let winner = winners[0];
        wins_by_holder[winner] += 1;
        let published = leases
            .current(&key)
            .expect("read")
            .expect("a published lease");
        assert_eq!(published.holder_id, contenders[winner].holder);
        assert_eq!(published.generation, 1);
    }
    for contender in contenders {
        let Contender {
            holder,
            mut child,
            stdin,
            ..
        } = contender;
        drop(stdin); // end of input: the contender returns
        let status = child.wait().expect("wait for a contender");
        assert!(status.success(), "{holder} failed: {status}");
    }
    assert_eq!(wins_by_holder.iter().sum::<usize>(), ROUNDS);
}

/// One contender: for each key read from stdin, one `try_acquire`, one answer line.
#[test]
#[ignore = "a helper process, started by the race test above with its environment"]
fn contender_process() {
    let dir = std::env::var_os(DIR_ENV).expect("started by the race test, with its dir");
    let holder = std::env::var(HOLDER_ENV).expect("started by the race test, with a holder");
    let leases = LeaseManager::new(Arc::new(FileBackend::open(dir).expect("open")));
    let stdout = std::io::stdout();
    for key in std::io::stdin().lock().lines() {
        let key = key.expect("read a key");
        let answer = match leases.try_acquire(&key, &holder, TTL) {
            Ok(lease) => format!("won generation {}", lease.generation),
            Err(LeaseError::Held { .. }) => "held".to_owned(),
            Err(LeaseError::LostRace { .. }) => "lost-race".to_owned(),
            Err(other) => format!("error: {other}"),
        };
        let mut out = stdout.lock();
        writeln!(out, "{ANSWER}{answer}").expect("answer");
        out.flush().expect("flush the answer");
    }
}

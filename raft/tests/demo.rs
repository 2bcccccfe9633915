//! The demo a person runs: `tidelog-raft demo` starts three node processes on loopback,
//! and must get through initialising, writing, reading everywhere, killing the leader by
//! its pid, electing a new one and writing again.

use std::process::Command;

#[test]
fn the_demo_survives_killing_the_leader_process_and_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tidelog-raft"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.matches("reads greeting = \"hello\"").count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("(SIGKILL)"), "{stdout}");
    assert!(stdout.contains("new leader: node"), "{stdout}");
    assert_eq!(
        stdout.matches("reads greeting = \"hello again\"").count(),
        2,
        "{stdout}"
    );
}

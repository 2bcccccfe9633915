//! A file system with no free block at all (another program filled it): the database
//! must still be able to free its own segments, from the shell, without anyone deleting
//! files by hand. What could go wrong: opening for writing needs a few small writes (the
//! lease record, the extent record, a checkpoint) and finds no room, so nothing can free
//! space; or the reserve that makes room is used and never comes back.
//!
//! Runs on a real, small tmpfs mounted in a private mount namespace (`unshare -rm`, which
//! needs root or unprivileged user namespaces). Without it the test is skipped loudly,
//! unless `TIDELOG_REQUIRE_TMPFS=1` (set by CI) makes that a failure.
mod common;
use common::*;
use std::process::Command;

/// Runs `script` with `sh` in a private mount namespace where `$MNT` is a fresh 8 MiB
/// tmpfs and `$T` the tidelog binary. `None` when no such namespace can be made here.
fn on_a_small_tmpfs(test: &str, script: &str) -> Option<String> {
    let mnt = tempfile::tempdir().unwrap();
    let full =
        format!("mount -t tmpfs -o size=8m tmpfs \"$MNT\" || exit 97\ncd \"$MNT\"\n{script}");
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &full])
        .env("MNT", mnt.path())
        .env("T", env!("CARGO_BIN_EXE_tidelog"))
        .output();
    let usable = out.as_ref().is_ok_and(|o| o.status.code() != Some(97))
        && out
            .as_ref()
            .is_ok_and(|o| !text(&o.stderr).contains("unshare failed"));
    if !usable {
        assert!(
            std::env::var("TIDELOG_REQUIRE_TMPFS").as_deref() != Ok("1"),
            "cannot mount a tmpfs in a private namespace here (unshare -rm), and \
             TIDELOG_REQUIRE_TMPFS=1: run as root or enable user namespaces"
        );
        eprintln!("SKIPPED {test}: no private tmpfs mount here (unshare -rm)");
        return None;
    }
    let out = out.unwrap();
    Some(format!(
        "{}\n--- stderr ---\n{}",
        text(&out.stdout),
        text(&out.stderr)
    ))
}

/// A database of 20,000 lines in 1 MiB segments, then a file filling the rest.
const FILL: &str = r#"
seq 1 20000 | sed 's/^/line-with-some-width-to-fill-several-segments-of-one-mebibyte-each-/' \
  | "$T" append --lane 1 --segment-size 1MiB --sync 1000 db > /dev/null || exit 98
dd if=/dev/zero of=filler bs=64k 2>/dev/null
echo "free after filling: $(df --output=avail . | tail -1 | tr -d ' ')"
"#;

#[test]
fn a_full_file_system_is_left_by_a_checkpoint_that_opens_in_the_reserve_and_puts_it_back() {
    let script = format!(
        r#"{FILL}
echo x | "$T" append --lane 1 db; echo "append on full rc=$?"
"$T" checkpoint db --json; echo "checkpoint rc=$?"
echo "reserve after: $(stat -c %s db/RESERVE)"
echo more | "$T" append --lane 1 db; echo "append after rc=$?"
"$T" verify db; echo "verify rc=$?"
"#
    );
    let Some(out) = on_a_small_tmpfs("full_file_system", &script) else {
        return;
    };
    assert!(out.contains("free after filling: 0"), "{out}");
    assert!(out.contains("append on full rc=1"), "{out}");
    assert!(
        out.contains("No space left on device")
            && out.contains("is full. `tidelog checkpoint db` frees the log segments"),
        "{out}"
    );
    assert!(out.contains("checkpoint rc=0"), "{out}");
    let json: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{out}")),
    )
    .unwrap();
    assert!(json["removed_segments"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(json["reserve"]["released_bytes"], 262_144, "{out}");
    assert_eq!(json["reserve"]["in_place"], true, "{out}");
    assert!(out.contains("reserve after: 262144"), "{out}");
    assert!(
        out.contains("lane=1 lane_seq=20001 global_seq=20001"),
        "{out}"
    );
    assert!(out.contains("append after rc=0"), "{out}");
    assert!(out.contains("verify rc=0"), "{out}");
}

#[test]
fn a_full_file_system_without_a_reserve_left_is_refused_naming_what_to_free_and_nothing_changes() {
    let script = format!(
        r#"{FILL}
rm db/RESERVE
dd if=/dev/zero of=filler2 bs=4k 2>/dev/null
before=$(find db -type f | sort | xargs sha1sum)
"$T" checkpoint db; echo "checkpoint rc=$?"
[ "$before" = "$(find db -type f | sort | xargs sha1sum)" ] && echo "unchanged"
rm filler2
"$T" checkpoint db > /dev/null; echo "checkpoint with room rc=$?"
echo "reserve back: $(stat -c %s db/RESERVE)"
"#
    );
    let Some(out) = on_a_small_tmpfs("full_file_system_no_reserve", &script) else {
        return;
    };
    assert!(out.contains("checkpoint rc=1"), "{out}");
    assert!(
        out.contains("is full and the database's reserve (db/RESERVE) is already used: free at least 256 KiB"),
        "{out}"
    );
    assert!(out.contains("\nunchanged\n"), "{out}");
    assert!(out.contains("checkpoint with room rc=0"), "{out}");
    assert!(out.contains("reserve back: 262144"), "{out}");
}

//! What could go wrong: a reader on another thread sees a frame before all of its bytes
//! are stored (torn read), sees past the written end, or blocks the writer.
mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tidelog_wal::{GlobalSeq, RecoveryMode, Wal};

#[test]
fn concurrent_readers_only_ever_see_complete_published_frames() {
    let dir = tempfile::tempdir().unwrap();
    let o = tidelog_wal::WalOptions {
        prepare_in_background: true,
        ..opts(RecoveryMode::AbsoluteConsistency)
    };
    let (mut wal, _) = Wal::open(dir.path(), o).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let reader = wal.reader();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !done.load(Ordering::Acquire) {
                    let end = reader.last_written();
                    if end.0 > 0 {
                        // Every published frame is complete and exact.
                        let f = reader.get(end).expect("published frame readable");
                        assert_eq!(f.payload(), &payload(end.0)[..]);
                        seen += 1;
                    }
                    assert!(reader.get(GlobalSeq(end.0 + 1000)).is_none());
                }
                let all = read_all(&reader);
                assert_eq!(all, (1..=reader.last_written().0).collect::<Vec<_>>());
                seen
            })
        })
        .collect();
    for u in 0..3000u64 {
        append_unit(&mut wal, 1 + u % 3).unwrap();
        if u % 10 == 9 {
            wal.sync().unwrap();
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(wal.current_segment().get() > 10);
}

#[test]
fn readers_and_frames_can_move_between_threads_and_the_writer_can_too() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<tidelog_wal::WalReader>();
    send_sync::<tidelog_wal::WalReader<tidelog_wal::SimDisk>>();
    send_sync::<tidelog_wal::FrameRef>();
    send::<Wal>();
    send::<Wal<tidelog_wal::SimDisk>>();
}

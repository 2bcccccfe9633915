//! Append throughput without sync: frame encoding, checksum and the store into the
//! segment's page cache, in groups of 64 frames with one store per group (as the engine's
//! group commit does). Goal: at least 1.5 GB/s for 4 KiB frames.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-wal cargo bench -p tidelog-wal --bench append`

use criterion::{criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};
use tidelog_wal::{LaneId, LaneSeq, NewFrame, Wal, WalOptions};

const SEGMENT: u64 = 256 * 1024 * 1024;
/// Frames per group commit (one store each).
const GROUP: u64 = 64;

fn bench_dir() -> tempfile::TempDir {
    let base = std::path::Path::new("/work/tmp");
    if base.is_dir() {
        tempfile::tempdir_in(base).expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}

/// A log with room for `bytes` more bytes of frames in its current segment.
struct Fresh {
    wal: Wal,
    _dir: tempfile::TempDir,
    room: u64,
}

fn fresh() -> Fresh {
    let dir = bench_dir();
    let opts = WalOptions {
        segment_size: SEGMENT,
        prepare_in_background: false,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), opts).expect("open");
    Fresh {
        wal,
        _dir: dir,
        room: SEGMENT - 4096,
    }
}

fn append_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_no_sync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for size in [128usize, 4096] {
        let payload = vec![0x5au8; size];
        let frame_bytes = (48 + size as u64).div_ceil(8) * 8;
        group.throughput(Throughput::Bytes(size as u64));
        let mut log: Option<Fresh> = None;
        group.bench_function(format!("{size}B"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    if log.as_ref().is_none_or(|l| l.room < frame_bytes * 1024) {
                        log = None; // drop (and delete) the full log before making a new one
                        log = Some(fresh());
                    }
                    let Some(l) = log.as_mut() else { break };
                    let n = (iters - done).min(l.room / frame_bytes);
                    let start = Instant::now();
                    let mut seq = l.wal.last_written();
                    for i in 0..n {
                        seq = seq.next();
                        let frame = NewFrame {
                            global_seq: seq,
                            lane: LaneId(1),
                            lane_seq: LaneSeq(seq.0),
                            wall_ms: seq.0,
                            key: b"",
                            payload: &payload,
                        };
                        l.wal.append_buffered(&[frame]).expect("append");
                        if (i + 1) % GROUP == 0 {
                            l.wal.flush().expect("flush");
                        }
                    }
                    l.wal.flush().expect("flush");
                    total += start.elapsed();
                    l.room -= n * frame_bytes;
                    done += n;
                }
                total
            });
        });
        drop(log);
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::append_throughput);
}
criterion_main!(group::benches);

//! Recovery scan of a 1 GiB log (16 segments of 64 MiB, 4 KiB records) from the page
//! cache: every header and frame checksum verified, offsets indexed. Goal: at least 1 GB/s.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-wal cargo bench -p tidelog-wal --bench recovery_scan`

use criterion::{criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};
use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, NewFrame, Wal, WalOptions};

const LOG_BYTES: u64 = 1 << 30;

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 64 * 1024 * 1024,
        prepare_in_background: false,
        ..WalOptions::default()
    }
}

fn recovery_scan(c: &mut Criterion) {
    let base = std::path::Path::new("/work/tmp");
    let dir = if base.is_dir() {
        tempfile::tempdir_in(base)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let payload = vec![0xa5u8; 4096];
    let frames = {
        let (mut wal, _) = Wal::open(dir.path(), opts()).expect("open");
        let mut seq = GlobalSeq::ZERO;
        while (seq.0 * 4152) < LOG_BYTES {
            seq = seq.next();
            let frame = NewFrame {
                global_seq: seq,
                lane: LaneId((seq.0 % 8) as u32),
                lane_seq: LaneSeq(seq.0),
                wall_ms: seq.0,
                key: b"",
                payload: &payload,
            };
            wal.append(&[frame]).expect("append");
            if seq.0 % 4096 == 4095 {
                wal.sync().expect("sync");
            }
        }
        wal.sync().expect("sync");
        seq.0
    };
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(frames * 4152));
    group.bench_function("scan_1GiB_4KiB_records", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (wal, rec) = Wal::open(dir.path(), opts()).expect("recover");
                total += start.elapsed();
                assert_eq!(rec.last_seq.0, frames);
                assert!(rec.report.is_clean());
                drop(wal);
            }
            total
        });
    });
    group.finish();
    drop(dir);
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::recovery_scan);
}
criterion_main!(group::benches);

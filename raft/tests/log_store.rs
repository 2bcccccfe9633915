//! The tidelog log store on its own: what survives a reopen, truncation that stays
//! truncated, purge honoured by tidelog's retention, appends riding group commit.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use std::path::Path;
use tidelog_raft::{KvConfig, LogStore, LogStoreOptions, Request};

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn entry(term: u64, index: u64, value_bytes: usize) -> Entry<KvConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("{term}:{}", "v".repeat(value_bytes)),
        }),
    }
}

fn open(dir: &Path) -> LogStore<KvConfig> {
    LogStore::open(dir, LogStoreOptions::small()).expect("the log store opens")
}

async fn ids(store: &mut LogStore<KvConfig>) -> Vec<LogId<u64>> {
    store
        .try_get_log_entries(0..u64::MAX)
        .await
        .expect("entries read")
        .into_iter()
        .map(|e| e.log_id)
        .collect()
}

#[tokio::test]
async fn entries_vote_and_committed_are_read_back_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        store
            .blocking_append((1..=20).map(|i| entry(1, i, 8)))
            .await
            .unwrap();
        store.save_vote(&Vote::new_committed(3, 2)).await.unwrap();
        store.save_committed(Some(log_id(1, 17))).await.unwrap();
        store.close().unwrap();
    }
    let mut store = open(dir.path());
    assert_eq!(
        ids(&mut store).await,
        (1..=20).map(|i| log_id(1, i)).collect::<Vec<_>>()
    );
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(3, 2))
    );
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 17)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 20)));
    assert_eq!(state.last_purged_log_id, None);
    let read = store.try_get_log_entries(5..8).await.unwrap();
    assert_eq!(read, (5..8).map(|i| entry(1, i, 8)).collect::<Vec<_>>());
}

#[tokio::test]
async fn entries_dropped_by_truncate_are_never_read_again_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        store
            .blocking_append((1..=10).map(|i| entry(1, i, 8)))
            .await
            .unwrap();
        store.truncate(log_id(1, 6)).await.unwrap();
        assert_eq!(
            ids(&mut store).await,
            (1..=5).map(|i| log_id(1, i)).collect::<Vec<_>>()
        );
        // The store is dropped without a close: what truncate returned for is durable.
    }
    {
        let mut store = open(dir.path());
        assert_eq!(
            ids(&mut store).await,
            (1..=5).map(|i| log_id(1, i)).collect::<Vec<_>>()
        );
        assert_eq!(
            store.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 5))
        );
        store
            .blocking_append((6..=8).map(|i| entry(2, i, 8)))
            .await
            .unwrap();
        store.truncate(log_id(2, 8)).await.unwrap();
    }
    let mut store = open(dir.path());
    let want: Vec<_> = (1..=5)
        .map(|i| log_id(1, i))
        .chain((6..=7).map(|i| log_id(2, i)))
        .collect();
    assert_eq!(ids(&mut store).await, want);
    let read = store.try_get_log_entries(6..8).await.unwrap();
    assert_eq!(read, vec![entry(2, 6, 8), entry(2, 7, 8)]);
}

#[tokio::test]
async fn purge_lets_tidelog_remove_the_segments_below_it_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        let mut options = LogStoreOptions::small();
        options.engine = options
            .engine
            .segment_size(1024 * 1024)
            .max_record_bytes(64 * 1024)
            .max_batch_bytes(512 * 1024);
        options
    };
    {
        let mut store = LogStore::<KvConfig>::open(dir.path(), options()).unwrap();
        for chunk in (1..=4000u64).collect::<Vec<_>>().chunks(200) {
            store
                .blocking_append(chunk.iter().map(|i| entry(1, *i, 1000)))
                .await
                .unwrap();
        }
        let before = store.engine().truncation_status();
        assert!(before.segments >= 4, "{before:?}");
        // Two purges: tidelog keeps the log after the older of its two newest checkpoints.
        store.purge(log_id(1, 2000)).await.unwrap();
        store.purge(log_id(1, 3000)).await.unwrap();
        let after = store.engine().truncation_status();
        assert!(
            after.segments < before.segments,
            "{before:?} then {after:?}"
        );
        assert!(after.log_starts_at.0 > 1, "{after:?}");
        store.close().unwrap();
    }
    let mut store = LogStore::<KvConfig>::open(dir.path(), options()).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3000)));
    assert_eq!(state.last_log_id, Some(log_id(1, 4000)));
    assert_eq!(
        ids(&mut store).await,
        (3001..=4000).map(|i| log_id(1, i)).collect::<Vec<_>>()
    );
    assert!(store.try_get_log_entries(1..3001).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_append_of_many_entries_rides_one_group_commit_not_a_sync_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (syncs_before, _) = store.engine().io_counters();
    store
        .blocking_append((1..=500).map(|i| entry(1, i, 8)))
        .await
        .unwrap();
    let (syncs_after, _) = store.engine().io_counters();
    assert!(
        syncs_after - syncs_before <= 2,
        "{} syncs for one append of 500 entries",
        syncs_after - syncs_before
    );
    assert_eq!(ids(&mut store).await.len(), 500);
}

#[tokio::test]
async fn an_append_larger_than_one_tidelog_batch_is_split_into_batches_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogStoreOptions::small();
    options.engine = options.engine.max_batch_bytes(16 * 1024);
    let mut store = LogStore::<KvConfig>::open(dir.path(), options).unwrap();
    // 200 entries of about 1 KiB: about 13 batches of at most 16 KiB.
    store
        .blocking_append((1..=200).map(|i| entry(1, i, 1000)))
        .await
        .expect("the append is split to fit tidelog's batch limit");
    assert_eq!(
        ids(&mut store).await,
        (1..=200).map(|i| log_id(1, i)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn saving_the_committed_log_id_costs_no_sync_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .blocking_append((1..=10).map(|i| entry(1, i, 8)))
        .await
        .unwrap();
    let (syncs_before, _) = store.engine().io_counters();
    for i in 1..=10 {
        store.save_committed(Some(log_id(1, i))).await.unwrap();
    }
    let (syncs_after, _) = store.engine().io_counters();
    assert_eq!(
        syncs_after, syncs_before,
        "committed saves synced: they belong in the next append's sync"
    );
    // It rides the next sync: a vote's here.
    store.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 10)));
}

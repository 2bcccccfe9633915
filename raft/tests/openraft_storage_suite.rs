//! openraft's own storage test suite (`openraft::testing::Suite::test_all`, every test in
//! it, unchanged) against the tidelog log store and the key-value state machine.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;
use tidelog_raft::{KvConfig, KvStateMachine, LogStore, LogStoreOptions, NodeId};

struct Builder;

impl StoreBuilder<KvConfig, LogStore<KvConfig>, KvStateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<KvConfig>, KvStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = LogStore::open(dir.path().join("log"), LogStoreOptions::small())
            .expect("the log store opens");
        let sm = KvStateMachine::open(dir.path().join("sm"), LogStoreOptions::small().engine)
            .expect("the state machine opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_the_tidelog_log_store() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}

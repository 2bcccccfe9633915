//! Three nodes in one process over loopback HTTP: elect a leader, write 10,000 entries
//! through it, stop it, a new leader takes over, nothing committed is lost, and after the
//! old leader comes back every node's log and state machine are identical.

use openraft::{BasicNode, RaftLogReader, ServerState};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tidelog_raft::{loopback_config, LogStoreOptions, NodeId, RaftNode, Request};

const WRITES: usize = 10_000;
const CLIENTS: usize = 16;

async fn start(id: NodeId, root: &Path, port: u16) -> RaftNode {
    RaftNode::start(
        id,
        &root.join(format!("node{id}")),
        format!("127.0.0.1:{port}").parse().unwrap(),
        loopback_config(3000),
        LogStoreOptions::small(),
    )
    .await
    .expect("the node starts")
}

async fn leader_among(nodes: &BTreeMap<NodeId, RaftNode>) -> NodeId {
    let any = nodes.values().next().unwrap();
    let metrics = any
        .raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| nodes.contains_key(&l)),
            "a leader among the live nodes",
        )
        .await
        .expect("a leader is elected");
    let leader = metrics.current_leader.unwrap();
    nodes[&leader]
        .raft
        .wait(Some(Duration::from_secs(20)))
        .state(ServerState::Leader, "the leader knows it leads")
        .await
        .expect("leader state");
    leader
}

/// Writes `count` keys `prefix-i` from `CLIENTS` concurrent clients, each through the
/// leader: a client told to go elsewhere (a leader change on a busy machine) follows the
/// hint, or waits for a leader, and writes the same key again (a `Set` is idempotent).
async fn write_many(nodes: &BTreeMap<NodeId, RaftNode>, prefix: &str, count: usize) {
    let rafts: BTreeMap<NodeId, openraft::Raft<tidelog_raft::KvConfig>> = nodes
        .iter()
        .map(|(id, node)| (*id, node.raft.clone()))
        .collect();
    let start = leader_among(nodes).await;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let rafts = rafts.clone();
        let prefix = prefix.to_owned();
        clients.spawn(async move {
            let mut target = start;
            for i in (client..count).step_by(CLIENTS) {
                let request = Request::Set {
                    key: format!("{prefix}-{i:05}"),
                    value: format!("value {i}"),
                };
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match rafts[&target].client_write(request.clone()).await {
                        Ok(_) => break,
                        Err(e) if attempts < 50 => {
                            let hint = e.forward_to_leader().and_then(|f| f.leader_id);
                            target = match hint.filter(|l| rafts.contains_key(l)) {
                                Some(leader) => leader,
                                None => {
                                    let any = rafts.values().next().unwrap();
                                    let m = any
                                        .wait(Some(Duration::from_secs(20)))
                                        .metrics(
                                            |m| {
                                                m.current_leader
                                                    .is_some_and(|l| rafts.contains_key(&l))
                                            },
                                            "a leader",
                                        )
                                        .await
                                        .unwrap_or_else(|w| panic!("no leader after {e}: {w}"));
                                    m.current_leader.unwrap()
                                }
                            };
                        }
                        Err(e) => panic!("write {prefix}-{i} failed {attempts} times: {e}"),
                    }
                }
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("a client task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_keep_every_committed_write_across_a_leader_failure_and_end_identical() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, root.path(), 0).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = nodes
        .iter()
        .map(|(id, node)| (*id, BasicNode::new(node.addr.to_string())))
        .collect();
    nodes[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialised");

    write_many(&nodes, "a", WRITES).await;
    let first = leader_among(&nodes).await;

    // The leader goes away; its port is kept to bring it back at the same address.
    let gone = nodes.remove(&first).unwrap();
    let port = gone.addr.port();
    let errors = gone.stop().await;
    assert!(errors.is_empty(), "{errors:?}");
    let second = leader_among(&nodes).await;
    assert_ne!(second, first);
    write_many(&nodes, "b", 500).await;
    let second = leader_among(&nodes).await;

    // Everything acknowledged is in the new leader's state machine.
    let leader_data = nodes[&second].sm.data();
    for i in 0..WRITES {
        assert_eq!(
            leader_data.get(&format!("a-{i:05}")),
            Some(&format!("value {i}"))
        );
    }
    for i in 0..500 {
        assert!(leader_data.contains_key(&format!("b-{i:05}")));
    }

    // The old leader comes back and catches up (from its own log, then from the leader).
    nodes.insert(first, start(first, root.path(), port).await);
    let last = nodes[&second]
        .raft
        .metrics()
        .borrow()
        .last_log_index
        .expect("a last log index");
    for node in nodes.values() {
        node.raft
            .wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(last), "caught up")
            .await
            .unwrap_or_else(|e| panic!("node {} did not catch up: {e}", node.id));
    }

    // Identical state machines, and identical logs over the range every node still holds.
    let data: Vec<_> = nodes.values().map(|n| n.sm.data()).collect();
    assert_eq!(data[0].len(), WRITES + 500);
    assert!(data.iter().all(|d| *d == data[0]));
    let mut from = 0;
    for node in nodes.values() {
        let mut log = node.log.clone();
        let state = openraft::storage::RaftLogStorage::get_log_state(&mut log)
            .await
            .unwrap();
        from = from.max(state.last_purged_log_id.map_or(0, |p| p.index + 1));
    }
    let mut logs = Vec::new();
    for node in nodes.values() {
        let mut log = node.log.clone();
        let entries = log.try_get_log_entries(from..=last).await.unwrap();
        assert_eq!(entries.len() as u64, last + 1 - from, "node {}", node.id);
        logs.push(
            entries
                .into_iter()
                .map(|e| serde_json::to_string(&e).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert!(logs.iter().all(|l| *l == logs[0]));
    // Snapshots were taken and the log purged below them on the way.
    assert!(from > 0, "no node purged its log");

    for node in nodes.into_values() {
        let errors = node.stop().await;
        assert!(errors.is_empty(), "{errors:?}");
    }
}

//! Committed writes per second and commit latency (p50, p99) of a three-node loopback
//! cluster with 1 and 16 clients: the nodes' logs on tidelog (`LogStore`), then the same
//! cluster (same HTTP network, same key-value state machine, same Raft configuration) with
//! an in-memory log store, then single-node tidelog (`Engine::append_durable`, 1 and 16
//! threads) for the same payload. All in one run, so the ratios share the machine's noise.
//!
//! `cargo bench -p tidelog-raft --bench cluster` (`TIDELOG_RAFT_BENCH_SECS`, default 3:
//! the measured seconds per configuration, after a short warm-up). Not run by
//! `cargo test`.

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    BasicNode, Entry, LogId, OptionalSend, Raft, RaftLogReader, ServerState, StorageError, Vote,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidelog::watermarks::WatermarkKind;
use tidelog_raft::{
    loopback_config, KvConfig, KvStateMachine, LogStore, LogStoreOptions, NodeId, Request,
};

/// No snapshot during a run: every configuration measures the write path only.
const SNAPSHOT_EVERY: u64 = 10_000_000;
const VALUE_BYTES: usize = 100;

// ---------------------------------------------------------------------------------------
// The in-memory log store: a BTreeMap of entries behind a mutex, the flush callback fired
// at once (nothing to make durable), the shape of openraft's own in-memory example store.

#[derive(Default)]
struct MemState {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    log: BTreeMap<u64, Entry<KvConfig>>,
}

#[derive(Clone, Default)]
struct MemLog(Arc<Mutex<MemState>>);

impl RaftLogReader<KvConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<KvConfig>>, StorageError<NodeId>> {
        let state = self.0.lock().unwrap();
        Ok(state.log.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<KvConfig> for MemLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<KvConfig>, StorageError<NodeId>> {
        let state = self.0.lock().unwrap();
        let last = state.log.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: state.purged,
            last_log_id: last.or(state.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.0.lock().unwrap().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.0.lock().unwrap().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.0.lock().unwrap().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.0.lock().unwrap().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<KvConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<KvConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut state = self.0.lock().unwrap();
            for entry in entries {
                state.log.insert(entry.log_id.index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut state = self.0.lock().unwrap();
        state.log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut state = self.0.lock().unwrap();
        state.log = state.log.split_off(&(log_id.index + 1));
        state.purged = Some(log_id);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Where the time goes: the tidelog store wrapped in counters (openraft's calls, entries
// per append, the engine's syncs) and a probe thread that times each append from its
// return (written) to the durable watermark covering it, the moment the store's own
// flush thread fires openraft's callback.

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    entries: AtomicU64,
    votes: AtomicU64,
    committed: AtomicU64,
    /// Summed time inside `append` (encoding and writing), nanoseconds.
    append_ns: AtomicU64,
    /// Summed time from an append's return to its entries being durable, nanoseconds.
    flush_ns: AtomicU64,
    flushes: AtomicU64,
    /// Summed time from one append's entries being durable to the next `append` call,
    /// nanoseconds: the Raft round trip around the store.
    gap_ns: AtomicU64,
    gaps: AtomicU64,
    /// When the last append became durable (nanoseconds since `epoch`), 0 if not yet.
    last_durable_ns: AtomicU64,
}

/// What one node's store did during a measured phase.
#[derive(Clone, Copy, Default)]
struct Profile {
    appends: u64,
    entries: u64,
    votes: u64,
    committed: u64,
    syncs: u64,
    groups: u64,
    append_ns: u64,
    flush_ns: u64,
    flushes: u64,
    gap_ns: u64,
    gaps: u64,
}

impl Profile {
    fn minus(self, before: Profile) -> Profile {
        Profile {
            appends: self.appends - before.appends,
            entries: self.entries - before.entries,
            votes: self.votes - before.votes,
            committed: self.committed - before.committed,
            syncs: self.syncs - before.syncs,
            groups: self.groups - before.groups,
            append_ns: self.append_ns - before.append_ns,
            flush_ns: self.flush_ns - before.flush_ns,
            flushes: self.flushes - before.flushes,
            gap_ns: self.gap_ns - before.gap_ns,
            gaps: self.gaps - before.gaps,
        }
    }
}

fn per(n: u64, d: u64) -> f64 {
    n as f64 / d.max(1) as f64
}

#[derive(Clone)]
struct Counted {
    inner: LogStore<KvConfig>,
    counters: Arc<Counters>,
    epoch: Instant,
    probe: std::sync::mpsc::Sender<(tidelog::HlcPoint, Instant)>,
}

impl Counted {
    fn new(inner: LogStore<KvConfig>) -> Counted {
        let counters = Arc::new(Counters::default());
        let epoch = Instant::now();
        let (probe, appended) = std::sync::mpsc::channel::<(tidelog::HlcPoint, Instant)>();
        let marks = inner.engine().watermark_handle();
        let c = counters.clone();
        std::thread::spawn(move || {
            while let Ok((point, returned)) = appended.recv() {
                if marks
                    .wait_for(WatermarkKind::Durable, point, Duration::from_secs(10))
                    .is_ok()
                {
                    let now = Instant::now();
                    c.flush_ns
                        .fetch_add((now - returned).as_nanos() as u64, Ordering::Relaxed);
                    c.flushes.fetch_add(1, Ordering::Relaxed);
                    c.last_durable_ns
                        .store((now - epoch).as_nanos() as u64, Ordering::Relaxed);
                }
            }
        });
        Counted {
            inner,
            counters,
            epoch,
            probe,
        }
    }

    fn profile(&self) -> Profile {
        let c = &self.counters;
        let (syncs, groups) = self.inner.engine().io_counters();
        Profile {
            appends: c.appends.load(Ordering::Relaxed),
            entries: c.entries.load(Ordering::Relaxed),
            votes: c.votes.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            syncs,
            groups,
            append_ns: c.append_ns.load(Ordering::Relaxed),
            flush_ns: c.flush_ns.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            gap_ns: c.gap_ns.load(Ordering::Relaxed),
            gaps: c.gaps.load(Ordering::Relaxed),
        }
    }
}

impl RaftLogReader<KvConfig> for Counted {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<KvConfig>>, StorageError<NodeId>> {
        self.inner.try_get_log_entries(range).await
    }
}

impl RaftLogStorage<KvConfig> for Counted {
    type LogReader = LogStore<KvConfig>;

    async fn get_log_state(&mut self) -> Result<LogState<KvConfig>, StorageError<NodeId>> {
        self.inner.get_log_state().await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.counters.votes.fetch_add(1, Ordering::Relaxed);
        self.inner.save_vote(vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.inner.read_vote().await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.counters.committed.fetch_add(1, Ordering::Relaxed);
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.inner.read_committed().await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<KvConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<KvConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let c = &self.counters;
        let called = Instant::now();
        let last_durable = c.last_durable_ns.load(Ordering::Relaxed);
        let now_ns = (called - self.epoch).as_nanos() as u64;
        if last_durable > 0 && now_ns > last_durable {
            c.gap_ns.fetch_add(now_ns - last_durable, Ordering::Relaxed);
            c.gaps.fetch_add(1, Ordering::Relaxed);
        }
        let entries: Vec<Entry<KvConfig>> = entries.into_iter().collect();
        c.appends.fetch_add(1, Ordering::Relaxed);
        c.entries.fetch_add(entries.len() as u64, Ordering::Relaxed);
        let result = self.inner.append(entries, callback).await;
        let returned = Instant::now();
        c.append_ns
            .fetch_add((returned - called).as_nanos() as u64, Ordering::Relaxed);
        let written = self.inner.engine().watermarks().global.written_hlc;
        let _ = self.probe.send((written, returned));
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.truncate(log_id).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.inner.purge(log_id).await
    }
}

// ---------------------------------------------------------------------------------------
// The cluster: three nodes on loopback, either store.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Tidelog,
    Memory,
}

enum Node {
    Tidelog {
        raft: Raft<KvConfig>,
        log: Counted,
        sm: KvStateMachine,
        server: tokio::task::JoinHandle<()>,
    },
    Memory {
        raft: Raft<KvConfig>,
        sm: KvStateMachine,
        server: tokio::task::JoinHandle<()>,
    },
}

impl Node {
    async fn start(store: Store, id: NodeId, dir: &Path) -> (Node, String) {
        let listen: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = loopback_config(SNAPSHOT_EVERY);
        match store {
            Store::Tidelog => {
                // What `RaftNode::start` puts together, with the store in counters.
                let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
                let addr = listener.local_addr().unwrap().to_string();
                let log = LogStore::open(dir.join("log"), LogStoreOptions::small())
                    .expect("the log store opens");
                let log = Counted::new(log);
                let sm = KvStateMachine::open(dir.join("sm"), LogStoreOptions::small().engine)
                    .expect("the state machine opens");
                let config = Arc::new(config.validate().unwrap());
                let raft = Raft::new(
                    id,
                    config,
                    tidelog_raft::network::Network,
                    log.clone(),
                    sm.clone(),
                )
                .await
                .expect("a tidelog node starts");
                let server = tokio::spawn(tidelog_raft::network::serve_node(
                    listener,
                    raft.clone(),
                    sm.clone(),
                ));
                (
                    Node::Tidelog {
                        raft,
                        log,
                        sm,
                        server,
                    },
                    addr,
                )
            }
            Store::Memory => {
                let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
                let addr = listener.local_addr().unwrap().to_string();
                let sm = KvStateMachine::open(dir.join("sm"), LogStoreOptions::small().engine)
                    .expect("the state machine opens");
                let config = Arc::new(config.validate().unwrap());
                let raft = Raft::new(
                    id,
                    config,
                    tidelog_raft::network::Network,
                    MemLog::default(),
                    sm.clone(),
                )
                .await
                .expect("an in-memory node starts");
                let server = tokio::spawn(tidelog_raft::network::serve_node(
                    listener,
                    raft.clone(),
                    sm.clone(),
                ));
                (Node::Memory { raft, sm, server }, addr)
            }
        }
    }

    fn raft(&self) -> &Raft<KvConfig> {
        match self {
            Node::Tidelog { raft, .. } | Node::Memory { raft, .. } => raft,
        }
    }

    async fn stop(self) {
        match self {
            Node::Tidelog {
                raft,
                log,
                sm,
                server,
            } => {
                server.abort();
                let _ = server.await;
                raft.shutdown().await.expect("raft shuts down");
                log.inner.close().expect("the log store closes");
                sm.engine().close().expect("the state machine closes");
            }
            Node::Memory { raft, sm, server } => {
                server.abort();
                let _ = server.await;
                raft.shutdown().await.expect("raft shuts down");
                sm.engine().close().expect("the state machine closes");
            }
        }
    }
}

async fn leader(rafts: &BTreeMap<NodeId, Raft<KvConfig>>) -> NodeId {
    let any = rafts.values().next().unwrap();
    let m = any
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .expect("a leader is elected");
    let leader = m.current_leader.unwrap();
    rafts[&leader]
        .wait(Some(Duration::from_secs(30)))
        .state(ServerState::Leader, "the leader knows it leads")
        .await
        .expect("leader state");
    leader
}

fn request(client: usize, i: u64) -> Request {
    Request::Set {
        key: format!("k-{client:02}-{i:08}"),
        value: "v".repeat(VALUE_BYTES),
    }
}

/// One measured figure: writes acknowledged, seconds, latencies.
struct Figure {
    writes: usize,
    secs: f64,
    latencies: Vec<Duration>,
    retries: usize,
}

impl Figure {
    fn per_sec(&self) -> f64 {
        self.writes as f64 / self.secs
    }
    fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        l[((l.len() - 1) as f64 * q).round() as usize]
    }
}

/// `clients` concurrent clients write through the leader for `secs` (following a leader
/// change if one happens); each write's latency is from `client_write` to its answer,
/// which openraft gives once the entry is committed (on a majority's log, flushed) and
/// applied on the leader.
async fn drive(rafts: &BTreeMap<NodeId, Raft<KvConfig>>, clients: usize, secs: f64) -> Figure {
    let start_leader = leader(rafts).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let rafts = rafts.clone();
        tasks.spawn(async move {
            let mut target = start_leader;
            let mut latencies = Vec::new();
            let mut retries = 0;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let req = request(client, i);
                let t = Instant::now();
                match rafts[&target].client_write(req).await {
                    Ok(_) => {
                        latencies.push(t.elapsed());
                        i += 1;
                    }
                    Err(e) => {
                        retries += 1;
                        target = match e.forward_to_leader().and_then(|f| f.leader_id) {
                            Some(l) => l,
                            None => leader(&rafts).await,
                        };
                    }
                }
            }
            (latencies, retries)
        });
    }
    let mut figure = Figure {
        writes: 0,
        secs: 0.0,
        latencies: Vec::new(),
        retries: 0,
    };
    while let Some(done) = tasks.join_next().await {
        let (latencies, retries) = done.expect("a client task");
        figure.latencies.extend(latencies);
        figure.retries += retries;
    }
    figure.secs = started.elapsed().as_secs_f64();
    figure.writes = figure.latencies.len();
    figure
}

fn profiles(nodes: &BTreeMap<NodeId, Node>) -> BTreeMap<NodeId, Profile> {
    nodes
        .iter()
        .filter_map(|(id, n)| match n {
            Node::Tidelog { log, .. } => Some((*id, log.profile())),
            Node::Memory { .. } => None,
        })
        .collect()
}

/// Prints where one phase's time went on each node of the tidelog cluster.
fn print_profile(
    clients: usize,
    figure: &Figure,
    leader: NodeId,
    before: &BTreeMap<NodeId, Profile>,
    after: &BTreeMap<NodeId, Profile>,
) {
    for (id, after) in after {
        let p = after.minus(before[id]);
        let role = if *id == leader { "leader" } else { "follower" };
        println!(
            "profile {clients} clients, node {id} ({role}): {} appends, {:.1} entries/append, \
             {:.2} syncs/append, {:.3} syncs/committed write, {} groups, {} committed saves \
             ({:.2}/append), {} votes, {:.1} us in append, {:.0} us append-return to durable, \
             {:.0} us durable to next append",
            p.appends,
            per(p.entries, p.appends),
            per(p.syncs, p.appends),
            per(p.syncs, figure.writes as u64),
            p.groups,
            p.committed,
            per(p.committed, p.appends),
            p.votes,
            per(p.append_ns, p.appends) / 1e3,
            per(p.flush_ns, p.flushes) / 1e3,
            per(p.gap_ns, p.gaps) / 1e3,
        );
    }
}

async fn cluster(store: Store, secs: f64) -> Vec<(usize, Figure)> {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = BTreeMap::new();
    let mut members = BTreeMap::new();
    for id in 1..=3 {
        let (node, addr) = Node::start(store, id, &root.path().join(format!("node{id}"))).await;
        members.insert(id, BasicNode::new(addr));
        nodes.insert(id, node);
    }
    nodes[&1]
        .raft()
        .initialize(members)
        .await
        .expect("initialised");
    let rafts: BTreeMap<NodeId, Raft<KvConfig>> = nodes
        .iter()
        .map(|(id, n)| (*id, n.raft().clone()))
        .collect();
    // Warm-up: connections open, the replication streams running.
    drive(&rafts, 16, 0.5).await;
    let mut figures = Vec::new();
    for clients in [1, 16] {
        let before = profiles(&nodes);
        let figure = drive(&rafts, clients, secs).await;
        if store == Store::Tidelog {
            let leader = leader(&rafts).await;
            print_profile(clients, &figure, leader, &before, &profiles(&nodes));
        }
        figures.push((clients, figure));
    }
    for node in nodes.into_values() {
        node.stop().await;
    }
    figures
}

/// Single-node tidelog: `threads` threads each `append_durable` the JSON of the same
/// request a Raft entry carries, for `secs`.
fn single_node(threads: usize, secs: f64) -> Figure {
    let dir = tempfile::tempdir().unwrap();
    let engine = tidelog::Engine::open(dir.path(), LogStoreOptions::small().engine).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let per_thread: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|client| {
                let engine = &engine;
                s.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let payload = serde_json::to_vec(&request(client, i)).unwrap();
                        let t = Instant::now();
                        engine.append_durable(1, payload).expect("append_durable");
                        latencies.push(t.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = started.elapsed().as_secs_f64();
    engine.close().unwrap();
    let latencies: Vec<Duration> = per_thread.into_iter().flatten().collect();
    Figure {
        writes: latencies.len(),
        secs,
        latencies,
        retries: 0,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let secs: f64 = std::env::var("TIDELOG_RAFT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let payload = serde_json::to_vec(&request(0, 0)).unwrap().len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let tidelog = runtime.block_on(cluster(Store::Tidelog, secs));
    let memory = runtime.block_on(cluster(Store::Memory, secs));
    let single: Vec<(usize, Figure)> = [1, 16]
        .into_iter()
        .map(|t| (t, single_node(t, secs)))
        .collect();

    println!(
        "payload {payload} bytes (one Set request as JSON), {secs} s per configuration, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| configuration | clients | committed writes/s | p50 ms | p99 ms | writes | retries | writes/s vs 3 nodes on tidelog |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let rows = [
        ("3 nodes, log on tidelog", &tidelog),
        ("3 nodes, log in memory", &memory),
        ("1 node, tidelog append_durable", &single),
    ];
    for (name, figures) in rows {
        for (clients, f) in figures.iter() {
            let base = tidelog
                .iter()
                .find(|(c, _)| c == clients)
                .map_or(f64::NAN, |(_, b)| b.per_sec());
            println!(
                "| {name} | {clients} | {:.0} | {} | {} | {} | {} | {:.2}x |",
                f.per_sec(),
                ms(f.quantile(0.5)),
                ms(f.quantile(0.99)),
                f.writes,
                f.retries,
                f.per_sec() / base
            );
        }
    }
}

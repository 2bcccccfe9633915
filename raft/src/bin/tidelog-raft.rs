//! `tidelog-raft`: run one node of the key-value cluster, or a three-node demo on loopback.

use clap::{Parser, Subcommand};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};
use tidelog_raft::network::{AddLearner, HttpClient};
use tidelog_raft::{loopback_config, LogStoreOptions, NodeId, RaftNode, Request};

#[derive(Parser)]
#[command(
    name = "tidelog-raft",
    about = "A key-value store replicated with openraft over tidelog logs",
    after_help = "Examples:\n  tidelog-raft demo                       # three nodes on loopback: init, write, read everywhere, kill the leader, write again\n  tidelog-raft node --id 1 --addr 127.0.0.1:21001 --dir /tmp/n1"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one node until it is killed: Raft over `DIR/log`, the state machine in `DIR/sm`,
    /// HTTP on ADDR.
    Node {
        /// The node id.
        #[arg(long)]
        id: NodeId,
        /// The address to serve on (loopback).
        #[arg(long)]
        addr: SocketAddr,
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Starts three nodes as processes on loopback ports, initialises a cluster, adds the
    /// members, writes, reads the value from every node, kills the leader by its process id,
    /// waits for a new leader and writes again.
    Demo {
        /// Where the nodes keep their data (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Cmd::Node { id, addr, dir } => runtime.block_on(node(id, addr, &dir)),
        Cmd::Demo { dir } => runtime.block_on(demo(dir)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn node(id: NodeId, addr: SocketAddr, dir: &Path) -> Result<(), String> {
    let node = RaftNode::start(
        id,
        dir,
        addr,
        loopback_config(5000),
        LogStoreOptions::small(),
    )
    .await
    .map_err(|e| e.to_string())?;
    eprintln!(
        "node {id} serving on {} (pid {})",
        node.addr,
        std::process::id()
    );
    // Runs until killed; Ctrl-C stops it cleanly.
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    for e in node.stop().await {
        eprintln!("{e}");
    }
    Ok(())
}

/// The three node processes; killed when dropped.
struct Nodes {
    children: BTreeMap<NodeId, Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() > deadline => return Err(format!("{what}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `{"Ok": ...}` or the error it holds.
fn ok(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(mut map) if map.contains_key("Ok") => {
            Ok(map.remove("Ok").unwrap_or_default())
        }
        other => Err(other.to_string()),
    }
}

async fn leader_of(addrs: &BTreeMap<NodeId, String>) -> Result<NodeId, String> {
    retry("waiting for a leader", || async {
        for addr in addrs.values() {
            let metrics: Value = HttpClient::new(addr.clone())
                .get("/api/metrics")
                .await
                .map_err(|e| e.to_string())?;
            if let Some(leader) = metrics["current_leader"].as_u64() {
                if addrs.contains_key(&leader) {
                    return Ok(leader);
                }
            }
        }
        Err("no leader yet".to_owned())
    })
    .await
}

async fn write(addr: &str, key: &str, value: &str) -> Result<(), String> {
    let request = Request::Set {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let answer: Value = HttpClient::new(addr)
        .post("/api/write", &request)
        .await
        .map_err(|e| e.to_string())?;
    ok(answer).map(|_| ())
}

async fn read_everywhere(
    addrs: &BTreeMap<NodeId, String>,
    key: &str,
    want: &str,
) -> Result<(), String> {
    for (id, addr) in addrs {
        let found = retry(&format!("reading {key} on node {id}"), || async {
            let value: Option<String> = HttpClient::new(addr.clone())
                .get(&format!("/api/read/{key}"))
                .await
                .map_err(|e| e.to_string())?;
            match value {
                Some(v) if v == want => Ok(v),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        println!("  node {id} ({addr}) reads {key} = {found:?}");
    }
    Ok(())
}

async fn demo(dir: Option<PathBuf>) -> Result<(), String> {
    let temp;
    let root = match dir {
        Some(dir) => dir,
        None => {
            temp = tempfile_dir()?;
            temp.clone()
        }
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut addrs = BTreeMap::new();
    let mut nodes = Nodes {
        children: BTreeMap::new(),
    };
    for id in 1..=3u64 {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(&exe)
            .args(["node", "--id", &id.to_string(), "--addr", &addr, "--dir"])
            .arg(root.join(format!("node{id}")))
            .spawn()
            .map_err(|e| format!("starting node {id}: {e}"))?;
        println!("started node {id} on {addr}, pid {}", child.id());
        nodes.children.insert(id, child);
        addrs.insert(id, addr);
    }
    let first = addrs[&1].clone();
    retry("initialising node 1", || async {
        let members = BTreeMap::from([(1u64, first.clone())]);
        let answer: Value = HttpClient::new(first.clone())
            .post("/api/init", &members)
            .await
            .map_err(|e| e.to_string())?;
        ok(answer)
    })
    .await?;
    println!("initialised a one-node cluster on node 1");
    for id in [2u64, 3] {
        let learner = AddLearner {
            id,
            addr: addrs[&id].clone(),
        };
        let answer: Value = retry(&format!("adding learner {id}"), || async {
            HttpClient::new(first.clone())
                .post("/api/add-learner", &learner)
                .await
                .map_err(|e| e.to_string())
        })
        .await?;
        ok(answer)?;
        println!("added node {id} as a learner");
    }
    let members: BTreeSet<NodeId> = addrs.keys().copied().collect();
    let answer: Value = HttpClient::new(first.clone())
        .post("/api/change-membership", &members)
        .await
        .map_err(|e| e.to_string())?;
    ok(answer)?;
    println!("members are now {members:?}");

    let leader = leader_of(&addrs).await?;
    println!("leader: node {leader}; writing greeting = hello through it");
    write(&addrs[&leader], "greeting", "hello").await?;
    read_everywhere(&addrs, "greeting", "hello").await?;

    let pid: u32 = HttpClient::new(addrs[&leader].clone())
        .get("/api/pid")
        .await
        .map_err(|e| e.to_string())?;
    println!("killing the leader, node {leader}, pid {pid} (SIGKILL)");
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .map_err(|e| format!("running kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -KILL {pid} failed"));
    }
    if let Some(mut child) = nodes.children.remove(&leader) {
        let _ = child.wait();
    }
    addrs.remove(&leader);
    let started = Instant::now();
    let new_leader = leader_of(&addrs).await?;
    println!(
        "new leader: node {new_leader}, after {} ms; writing greeting = hello again",
        started.elapsed().as_millis()
    );
    retry("writing through the new leader", || async {
        write(&addrs[&new_leader], "greeting", "hello again").await
    })
    .await?;
    read_everywhere(&addrs, "greeting", "hello again").await?;
    println!("demo done; data in {}", root.display());
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("tidelog-raft-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

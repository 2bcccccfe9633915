//! A real etcd on loopback ports of its own, in a temp dir, killed when dropped: the
//! store of the etcd lease backend's tests (feature `etcd`).

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between health probes while it starts.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

pub struct EtcdServer {
    child: Child,
    client_port: u16,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// The etcd binary: `$TIDELOG_ETCD_BIN`, else `etcd` on `$PATH`. Missing, the test
/// fails: a skipped etcd suite would look like a passing one.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDELOG_ETCD_BIN") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the etcd lease tests need an etcd binary, and none was found: install \
             it (Debian: apt-get install -y etcd-server, which puts it at \
             /usr/bin/etcd) or set TIDELOG_ETCD_BIN to its path"
        )
    })
}

impl EtcdServer {
    /// Starts etcd; if it exits at once (another process took one of the ports it
    /// was given between our probe and its bind), tries again on new ports, a
    /// bounded number of times.
    pub fn start() -> EtcdServer {
        const ATTEMPTS: usize = 3;
        let binary = etcd_binary();
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            match EtcdServer::start_once(&binary) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd exited before becoming healthy {ATTEMPTS} times; last log:\n{last_log}");
    }

    fn start_once(binary: &Path) -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let client_port = free_port();
        let peer_port = free_port();
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = File::create(dir.path().join("etcd.log")).expect("log file");
        let child = Command::new(binary)
            .arg("--name=tidelog-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=tidelog-test={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let mut server = EtcdServer {
            child,
            client_port,
            dir,
        };
        server.wait_healthy()?;
        Ok(server)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Polls `/health` until etcd answers healthy; `Err(log)` if it exited first.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .build();
        let url = format!("{}/health", self.endpoint());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exit {status}\n{}", read_log(self.dir.path())));
            }
            let healthy = agent
                .get(&url)
                .call()
                .ok()
                .and_then(|response| response.into_string().ok())
                .is_some_and(|body| body.contains("\"health\":\"true\""));
            if healthy {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy within {STARTUP_DEADLINE:?}; its log:\n{}",
                read_log(self.dir.path())
            );
            std::thread::sleep(PROBE_INTERVAL);
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's pid only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(dir: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(dir.join("etcd.log")).and_then(|mut f| f.read_to_string(&mut text));
    text
}

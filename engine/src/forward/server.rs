//! The writer's side of forwarding: a Unix socket in the database directory where
//! followers send appends; each is appended by this engine, so writes from every process
//! share its one total order, and answered with this engine's receipt or refusal.

use super::wire::{Answer, AppendWire, RefusalReason};
use crate::engine::{Engine, Inner};
use crate::error::AppendError;
use crate::record::Append;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tidelog_wal::io::Storage;

/// Name of the writer's socket in the database directory.
pub const SOCKET_NAME: &str = "writer.sock";

/// Most followers served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

/// How long a stopping server waits for the appends its followers already sent to be
/// answered (a follower that stopped reading its answers must not hold the close up
/// forever); past it, the remaining connections are hung up on.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections are being served, to wait for them when stopping.
#[derive(Debug, Default)]
struct Active {
    count: Mutex<usize>,
    changed: Condvar,
}

/// Counts one connection as served until dropped (when its serving thread ends).
struct Serving(Arc<Active>);

impl Serving {
    fn start(active: &Arc<Active>) -> Serving {
        *active.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Serving(active.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count -= 1;
        self.0.changed.notify_all();
    }
}

/// A running forwarding server.
#[derive(Debug)]
pub(crate) struct Server {
    path: PathBuf,
    /// The socket file's inode, to remove it only while it is still ours (a successor in
    /// this process may have replaced it).
    inode: u64,
    /// The listening socket, shut down to wake the acceptor.
    listener: UnixListener,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<UnixStream>>>,
    active: Arc<Active>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `<dir>/writer.sock` (a stale socket left by a dead writer is replaced:
    /// this engine holds the lease, so nobody else serves there).
    pub(crate) fn start<S: Storage>(engine: &Engine<S>, dir: &Path) -> std::io::Result<Server> {
        let path = dir.join(SOCKET_NAME);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let listener = UnixListener::bind(&path)?;
        let inode = std::fs::metadata(&path)?.ino();
        let waker = listener.try_clone()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(Active::default());
        let weak = Arc::downgrade(&engine.inner);
        let acceptor = {
            let (stopping, connections, active) =
                (stopping.clone(), connections.clone(), active.clone());
            std::thread::Builder::new()
                .name("tidelog-forward".into())
                .spawn(move || accept(&listener, &weak, &stopping, &connections, &active))?
        };
        Ok(Server {
            path,
            inode,
            listener: waker,
            stopping,
            connections,
            active,
            acceptor: Some(acceptor),
        })
    }

    /// Stops accepting, answers every append a follower has already sent (each is
    /// appended and answered as usual: the engine is still running), refuses any later
    /// one (the follower's send fails, so it knows nothing was written), then hangs up
    /// on every follower and removes the socket. Called before the engine stops, so a
    /// writer that closes while followers forward leaves none of their appends
    /// unanswered (bounded by [`DRAIN_TIMEOUT`] for a follower that stopped reading).
    pub(crate) fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Shutting a listening socket down wakes a blocked accept with an error (Linux).
        // If that ever fails, the acceptor is left blocked rather than waited for.
        let woken = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Read).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woken || acceptor.is_finished() {
                let _ = acceptor.join();
            }
        }
        // Shut the reading side: requests already in a connection's buffer are still
        // read and answered, a follower's later send fails (EPIPE), and a connection
        // whose buffer is drained reads its end, so its serving thread returns.
        for stream in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut count = self
            .active
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            count = self
                .active
                .changed
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(count);
        for stream in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn accept<S: Storage>(
    listener: &UnixListener,
    engine: &Weak<Inner<S>>,
    stopping: &AtomicBool,
    connections: &Mutex<Vec<UnixStream>>,
    active: &Arc<Active>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        {
            let mut open = connections.lock().unwrap_or_else(PoisonError::into_inner);
            open.retain(|s| s.peer_addr().is_ok());
            if open.len() >= MAX_CONNECTIONS {
                continue; // dropped: the follower sees the hang-up and retries
            }
            open.push(handle);
        }
        let engine = engine.clone();
        // Counted before the thread starts, so a stop that follows waits for it.
        let serving = Serving::start(active);
        let spawned = std::thread::Builder::new()
            .name("tidelog-follower".into())
            .spawn(move || {
                serve(stream, &engine);
                drop(serving);
            });
        if spawned.is_err() {
            continue;
        }
    }
}

/// Answers one follower's appends, in order, until it hangs up or the engine is gone.
fn serve<S: Storage>(stream: UnixStream, engine: &Weak<Inner<S>>) {
    let mut input = std::io::BufReader::new(&stream);
    let mut output = &stream;
    while let Ok(Some(request)) = Append::read(&mut input) {
        let answer = match engine.upgrade() {
            Some(inner) => answer(&Engine { inner }, request),
            None => Answer::refused(RefusalReason::WriterFailed, &AppendError::Closed),
        };
        if answer.write(&mut output).is_err() {
            return;
        }
    }
}

/// Appends what the follower sent, as it sent it, through the engine's one validation.
fn answer<S: Storage>(engine: &Engine<S>, append: Append) -> Answer {
    match engine.append_with(append) {
        Ok(receipt) => Answer::Receipt(receipt),
        Err(err) => Answer::from_error(&err),
    }
}

impl Answer {
    fn refused(reason: RefusalReason, err: &AppendError) -> Answer {
        Answer::Refusal {
            reason,
            expected: 0,
            actual: 0,
            message: err.to_string(),
        }
    }

    fn from_error(err: &AppendError) -> Answer {
        match err {
            AppendError::Conflict {
                expected, actual, ..
            } => Answer::Refusal {
                reason: RefusalReason::Conflict,
                expected: expected.0,
                actual: actual.0,
                message: err.to_string(),
            },
            AppendError::Poisoned { .. } | AppendError::Closed | AppendError::WouldBlock => {
                Answer::refused(RefusalReason::WriterFailed, err)
            }
            _ => Answer::refused(RefusalReason::Invalid, err),
        }
    }
}

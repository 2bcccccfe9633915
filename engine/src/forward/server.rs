//! The writer's side of forwarding: a Unix socket in the database directory where
//! followers send appends; each is appended by this engine, so writes from every process
//! share its one total order, and answered with this engine's receipt or refusal.

use super::wire::{Answer, AppendRequest, RefusalReason};
use crate::engine::{Engine, Inner};
use crate::error::AppendError;
use crate::writer::AppendRecord;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use tidelog_wal::io::Storage;

/// Name of the writer's socket in the database directory.
pub const SOCKET_NAME: &str = "writer.sock";

/// Most followers served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

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
        let weak = Arc::downgrade(&engine.inner);
        let acceptor = {
            let (stopping, connections) = (stopping.clone(), connections.clone());
            std::thread::Builder::new()
                .name("tidelog-forward".into())
                .spawn(move || accept(&listener, &weak, &stopping, &connections))?
        };
        Ok(Server {
            path,
            inode,
            listener: waker,
            stopping,
            connections,
            acceptor: Some(acceptor),
        })
    }

    /// Stops accepting, hangs up on every follower (an append in flight on a connection
    /// finishes first) and removes the socket.
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
        let spawned = std::thread::Builder::new()
            .name("tidelog-follower".into())
            .spawn(move || serve(stream, &engine));
        if spawned.is_err() {
            continue;
        }
    }
}

/// Answers one follower's appends, in order, until it hangs up or the engine is gone.
fn serve<S: Storage>(stream: UnixStream, engine: &Weak<Inner<S>>) {
    let mut input = std::io::BufReader::new(&stream);
    let mut output = &stream;
    while let Ok(Some(request)) = AppendRequest::read(&mut input) {
        let answer = match engine.upgrade() {
            Some(inner) => answer(&Engine { inner }, request),
            None => Answer::refused(RefusalReason::WriterFailed, &AppendError::Closed),
        };
        if answer.write(&mut output).is_err() {
            return;
        }
    }
}

fn answer<S: Storage>(engine: &Engine<S>, request: AppendRequest) -> Answer {
    let mut record = AppendRecord::new(request.lane, request.payload);
    record.durable = request.durable;
    record.expected = request.expected;
    if !request.key.is_empty() {
        if request.key.len() > crate::MAX_KEY_BYTES {
            let err = AppendError::KeyTooLong {
                size: request.key.len(),
                max: crate::MAX_KEY_BYTES,
            };
            return Answer::refused(RefusalReason::Invalid, &err);
        }
        record.key = request.key;
    }
    match engine.append_record(record, true) {
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

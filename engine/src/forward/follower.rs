//! A follower: a handle on a database another process (or handle) is writing. Its
//! appends are forwarded to the writer over the socket and answered with the writer's
//! receipt, so they land in the writer's one total order.

use super::cursor::Cursor;
use super::published::{read_published, PublishedError, PublishedWatermarks};
use super::server::SOCKET_NAME;
use super::wire::{Answer, AppendWire, RefusalReason, MAX_FRAME};
use crate::appender::Appender;
use crate::error::{AppendError, OpenError};
use crate::record::{Append, Durability, Receipt};
use std::collections::VecDeque;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tidelog_wal::{LogSnapshot, ScanError, ScanOptions, ScannedRecord};
use tidelog_watermarks::{GlobalSeq, LaneSeq};

/// The largest key plus payload one forwarded request can carry: a wire frame less its
/// header (2 bytes) and the request's fixed fields (15 bytes).
const MAX_FORWARDED_RECORD: u32 = MAX_FRAME - 17;

/// A connection to the writer of a database, for forwarding appends.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    connection: Mutex<Option<UnixStream>>,
    /// Where this follower reads, published so the writer's log truncation keeps it.
    cursor: Mutex<Option<Cursor>>,
    /// How long a forwarded append waits for the writer's answer.
    answer_timeout: Duration,
}

/// How long a forwarded append waits for its answer unless told otherwise
/// ([`Follower::with_answer_timeout`]).
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl Follower {
    /// Connects to the writer serving the database in `dir`.
    ///
    /// # Errors
    /// [`OpenError::NoWriter`] if no writer answers on the database's socket.
    pub fn connect(dir: impl AsRef<Path>) -> Result<Follower, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let stream = connect(&dir)?;
        Ok(Follower {
            dir,
            connection: Mutex::new(Some(stream)),
            cursor: Mutex::new(None),
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        })
    }

    /// The same follower, giving up on a forwarded append after `timeout` without an
    /// answer ([`AppendError::Unanswered`]): a writer paused (SIGSTOP, a frozen VM) for
    /// longer than its lease's TTL is no longer the writer, so a [`Database`](super::Database)
    /// waits one TTL and then looks for the writer again. Zero is taken as one
    /// millisecond.
    #[must_use]
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The database directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Up to `max` records from global sequence `from` on, in order, that the writer has
    /// made visible: read from the log files directly, never asking the writer, and never
    /// past the visible watermark it published (nothing a crash could take back under the
    /// default visibility). From the first call on, the writer's log truncation keeps
    /// everything from the lowest `from` this follower still reads (its cursor moves
    /// forward with each call and goes when the follower is dropped or its process dies).
    ///
    /// # Errors
    /// [`FollowError`] if the published watermarks or the log cannot be read, or the log
    /// holds damaged durable data.
    pub fn records_from(
        &self,
        from: GlobalSeq,
        max: usize,
    ) -> Result<Vec<ScannedRecord>, FollowError> {
        self.hold_from(from)?;
        read_visible(&self.dir, from, max)
    }

    /// Publishes (or moves forward) this follower's cursor.
    fn hold_from(&self, from: GlobalSeq) -> Result<(), FollowError> {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let io = |source| FollowError::Cursor {
            path: self.dir.join(super::cursor::FOLLOWERS_DIR),
            source,
        };
        match &*cursor {
            Some(existing) => existing.advance(from).map_err(io),
            None => {
                *cursor = Some(Cursor::create(&self.dir, from).map_err(io)?);
                Ok(())
            }
        }
    }

    /// Blocks until the writer has made global sequence `seq` visible (it published a
    /// visible watermark at or past it), or `timeout` has passed; returns the published
    /// watermarks that showed it. Wakes on the writer's publications (inotify on the
    /// database directory), not by polling; a damaged or missing record (a writer
    /// starting, or mid-rewrite) is waited through like an old one.
    ///
    /// # Errors
    /// [`FollowError::TimedOut`] with the visible watermark last seen, or
    /// [`FollowError::Watch`] if the directory cannot be watched.
    pub fn wait_for_visible(
        &self,
        seq: GlobalSeq,
        timeout: Duration,
    ) -> Result<PublishedWatermarks, FollowError> {
        wait_for_visible(&self.dir, seq, timeout)
    }

    /// The records from global sequence `from` on, in order, as the writer makes them
    /// visible: [`FollowerRecords::next_timeout`] returns the next one, waiting for the
    /// writer's publications when it has read everything visible so far. Reading keeps
    /// this follower's cursor, as [`Follower::records_from`] does.
    #[must_use]
    pub fn subscribe(&self, from: GlobalSeq) -> FollowerRecords<'_> {
        FollowerRecords {
            follower: self,
            next: from.max(GlobalSeq(1)),
            buffered: VecDeque::new(),
        }
    }

    /// The writer's global watermarks, as it last published them (after its last sync).
    ///
    /// # Errors
    /// [`PublishedError`] if none can be read.
    pub fn watermarks(&self) -> Result<PublishedWatermarks, PublishedError> {
        read_published(&self.dir)
    }

    /// Forwards what `append` describes to the writer, unchanged (key, expectation and
    /// durability included), where the engine validates and appends it as
    /// [`Engine::append_with`](crate::Engine::append_with) does; returns the writer's
    /// receipt. A key over [`IDEMPOTENCY_KEY_LEN_MAX`](crate::IDEMPOTENCY_KEY_LEN_MAX) or a request larger
    /// than a forwarding frame is refused here, before anything is sent.
    ///
    /// # Errors
    /// [`AppendError::KeyTooLong`], [`AppendError::RecordTooLarge`] (nothing sent);
    /// [`AppendError::Conflict`]; [`AppendError::WriterRefused`] if the writer refused it
    /// (poisoned, closing, bad input; nothing was written); [`AppendError::NoWriter`]
    /// (nothing sent); [`AppendError::Unanswered`] if the writer went away after the
    /// request was sent (it may or may not be in the log).
    pub fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        self.forward(append)
    }

    fn forward(&self, request: Append) -> Result<Receipt, AppendError> {
        // Misuse is refused here, before anything is sent: the writer would refuse it too
        // (with the same key check), and a request larger than a wire frame would cost
        // the connection.
        crate::engine::check_key(&request.key)?;
        if request.key.len() + request.payload.len() > MAX_FORWARDED_RECORD as usize {
            return Err(AppendError::RecordTooLarge {
                size: request.payload.len(),
                max: MAX_FORWARDED_RECORD - request.key.len() as u32,
            });
        }
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A connection lost earlier is re-made; nothing was in flight on it.
        let stream = match slot.take() {
            Some(stream) => stream,
            None => connect(&self.dir).map_err(|err| AppendError::NoWriter {
                message: err.to_string(),
            })?,
        };
        if let Err(err) = stream.set_read_timeout(Some(self.answer_timeout)) {
            return Err(AppendError::NoWriter {
                message: format!("setting the answer timeout failed: {err}"),
            });
        }
        if let Err(err) = request.write(&mut &stream) {
            // Nothing reached the writer (or it hung up unread): safe to say so.
            return Err(AppendError::NoWriter {
                message: format!("sending to the writer failed: {err}"),
            });
        }
        let answer = Answer::read(&mut BufReader::new(&stream));
        let lane = request.lane;
        match answer {
            Ok(Some(Answer::Receipt(receipt))) => {
                *slot = Some(stream);
                Ok(receipt)
            }
            Ok(Some(Answer::Refusal {
                reason,
                expected,
                actual,
                message,
            })) => {
                *slot = Some(stream);
                Err(match reason {
                    RefusalReason::Conflict => AppendError::Conflict {
                        lane,
                        expected: LaneSeq(expected),
                        actual: LaneSeq(actual),
                    },
                    RefusalReason::WriterFailed | RefusalReason::Invalid => {
                        AppendError::WriterRefused { message }
                    }
                })
            }
            Ok(None) => Err(AppendError::Unanswered {
                message: "the writer hung up".to_owned(),
            }),
            Err(err) if err.is_timeout() => Err(AppendError::Unanswered {
                message: format!("the writer did not answer within {:?}", self.answer_timeout),
            }),
            Err(err) => Err(AppendError::Unanswered {
                message: err.to_string(),
            }),
        }
    }
}

/// Every append method of a follower is durable ([`Durability::Durable`]): its receipt
/// crosses a process, so the caller cannot wait on the writer's watermarks, and a keyed
/// retry after [`AppendError::Unanswered`] must find the record after the writer dies.
/// For one answered once written use [`Follower::append_with`].
impl Appender for Follower {
    type Error = AppendError;
    const DURABILITY: Durability = Durability::Durable;

    fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        self.forward(append)
    }
}

/// How many records a [`FollowerRecords`] reads from the log at a time.
const SUBSCRIPTION_BATCH: usize = 256;

/// A follower's subscription: records in order as the writer makes them visible (see
/// [`Follower::subscribe`]).
#[derive(Debug)]
pub struct FollowerRecords<'a> {
    follower: &'a Follower,
    next: GlobalSeq,
    buffered: VecDeque<ScannedRecord>,
}

impl FollowerRecords<'_> {
    /// The next record, waiting up to `timeout` for the writer to make one visible;
    /// `None` if none became readable in that time.
    ///
    /// # Errors
    /// As [`Follower::records_from`] and [`Follower::wait_for_visible`] (other than its
    /// time running out).
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ScannedRecord>, FollowError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(record) = self.buffered.pop_front() {
                return Ok(Some(record));
            }
            let batch = self.follower.records_from(self.next, SUBSCRIPTION_BATCH)?;
            if let Some(last) = batch.last() {
                self.next = last.global_seq.next();
                self.buffered.extend(batch);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.follower.wait_for_visible(self.next, left) {
                Ok(_) => {
                    // Published but not readable yet would make this loop spin: read
                    // once more, then give the caller the turn.
                    let batch = self.follower.records_from(self.next, SUBSCRIPTION_BATCH)?;
                    let Some(last) = batch.last() else {
                        return Ok(None);
                    };
                    self.next = last.global_seq.next();
                    self.buffered.extend(batch);
                }
                Err(FollowError::TimedOut { .. }) => return Ok(None),
                Err(err) => return Err(err),
            }
        }
    }

    /// The global sequence this subscription reads next.
    #[must_use]
    pub fn position(&self) -> GlobalSeq {
        self.buffered
            .front()
            .map_or(self.next, |record| record.global_seq)
    }
}

/// Why a follower could not read the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The writer's published watermarks are missing or damaged.
    #[error(transparent)]
    Published(#[from] PublishedError),
    /// The log could not be read, or holds damaged durable data.
    #[error("reading the log as a follower failed: {0}")]
    Scan(#[from] ScanError),
    /// [`Follower::wait_for_visible`] ran out of time.
    #[error("the writer did not make global sequence {waiting_for} visible within {timeout:?} (visible: {visible}); wait longer, or check that a writer is running")]
    TimedOut {
        /// The sequence waited for.
        waiting_for: GlobalSeq,
        /// The visible watermark last published.
        visible: GlobalSeq,
        /// How long it waited.
        timeout: Duration,
    },
    /// The database directory could not be watched for the writer's publications.
    #[error("cannot watch {path} for the writer's publications: {source}")]
    Watch {
        /// The database directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The follower's cursor (which keeps the writer from truncating what it still
    /// reads) could not be written.
    #[error("cannot publish the follower's read position in {path}: {source}")]
    Cursor {
        /// The followers folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// [`Follower::wait_for_visible`] without a connection to the writer: blocks until the
/// writer of the database in `dir`, whichever process it is and whether or not one is
/// running yet, publishes a visible watermark at or past `seq`, or `timeout` passes.
/// Reads and watches files only, changes nothing: what a read-only tool that follows the
/// log (`tidelog dump --follow`) waits with.
///
/// # Errors
/// As [`Follower::wait_for_visible`].
pub fn wait_for_visible(
    dir: &Path,
    seq: GlobalSeq,
    timeout: Duration,
) -> Result<PublishedWatermarks, FollowError> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::fs::inotify;
    let watch = |source: rustix::io::Errno| FollowError::Watch {
        path: dir.to_path_buf(),
        source: source.into(),
    };
    let deadline = Instant::now() + timeout;
    let events = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .map_err(watch)?;
    // Publications rewrite the file in place (modify), a new writer renames a fresh
    // file over it (moved to).
    inotify::add_watch(
        &events,
        dir,
        inotify::WatchFlags::MODIFY | inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::CREATE,
    )
    .map_err(watch)?;
    let mut visible = GlobalSeq::ZERO;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    loop {
        // Read after the watch is in place, so no publication falls between the two.
        if let Ok(published) = read_published(dir) {
            visible = published.global.visible_hlc.seq();
            if visible >= seq {
                return Ok(published);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FollowError::TimedOut {
                waiting_for: seq,
                visible,
                timeout,
            });
        }
        let wait = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&events, PollFlags::IN)];
        match poll(&mut fds, Some(&wait)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(watch(err)),
        }
        // Drain what woke us; the record is read again at the top.
        let mut reader = inotify::Reader::new(&events, &mut buf);
        while reader.next().is_ok() {}
    }
}

/// Up to `max` records of the database in `dir` from `from` on, never past the visible
/// watermark its writer published: [`Follower::records_from`] without a connection to
/// the writer and without a cursor (so a truncation by the writer is not held back by
/// this read). Reads files only, changes nothing.
///
/// # Errors
/// As [`Follower::records_from`].
pub fn read_visible(
    dir: &Path,
    from: GlobalSeq,
    max: usize,
) -> Result<Vec<ScannedRecord>, FollowError> {
    let visible = read_published(dir)?.global.visible_hlc.seq();
    if from > visible {
        return Ok(Vec::new());
    }
    let snapshot = LogSnapshot::take(&dir.join(crate::marker::WAL_DIR))?;
    let mut out = Vec::new();
    for record in snapshot.records(from, ScanOptions::default()) {
        let record = record?;
        if record.global_seq > visible || out.len() >= max {
            break;
        }
        out.push(record);
    }
    Ok(out)
}

fn connect(dir: &Path) -> Result<UnixStream, OpenError> {
    let path = dir.join(SOCKET_NAME);
    UnixStream::connect(&path).map_err(|source| OpenError::NoWriter { path, source })
}

//! The appends: every method comes down to one [`Append`] value, validated once
//! ([`Engine::check_unit`]) before it is queued for the writer.

use super::{Engine, LOSS_LANE};
use crate::appender::Appender;
use crate::error::AppendError;
use crate::handoff::{oneshot, Pending};
use crate::inbox::TrySendError;
use crate::record::{Append, BatchEntry, Durability, Receipt};
use crate::writer::Request;
use tidelog_wal::io::Storage;
use tidelog_watermarks::{LaneId, LaneSeq};

/// Longest idempotency key, in bytes (a frame could carry longer ones, up to
/// `tidelog_wal::format::FRAME_KEY_LEN_MAX`; the engine keeps keys small because the
/// writer remembers every key still in the log).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 1024;

impl<S: Storage> Engine<S> {
    /// Appends `payload` to `lane` and returns once the writer has accepted and written
    /// it (not necessarily durable: wait with [`Engine::watermark_handle`] or use
    /// [`Engine::append_durable`]). Blocks while the writer's queue is full. Shorthand for
    /// [`Engine::append_with`] of [`Append::new`] ([`Appender::append`], inherent so that
    /// it needs no import; likewise the other plain forms here).
    ///
    /// # Errors
    /// See [`AppendError`]; on error nothing was acknowledged.
    pub fn append(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        Appender::append(self, lane, payload)
    }

    /// Appends what `append` describes (lane, payload, key, expectation, durability):
    /// every append method, local or forwarded, comes down to this one. It is validated
    /// here, before it reaches the writer: a key over [`IDEMPOTENCY_KEY_LEN_MAX`], a payload over
    /// [`Options::max_record_bytes`](crate::Options::max_record_bytes) or a record that
    /// does not fit a segment once framed is refused with nothing written, and the
    /// engine goes on. Blocks while the writer's queue is full.
    ///
    /// # Errors
    /// See [`AppendError`]: [`AppendError::KeyTooLong`], [`AppendError::RecordTooLarge`],
    /// [`AppendError::UnitTooLarge`] (misuse), [`AppendError::Conflict`] (expectation),
    /// [`AppendError::Closed`], [`AppendError::Poisoned`]; on error nothing was
    /// acknowledged.
    pub fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        let pending = self.queue(append, true)?;
        self.receive(pending)
    }

    /// Queues what `append` describes without waiting for the writer (validated as
    /// [`Engine::append_with`] validates): the returned ticket gives the receipt later,
    /// by [`AppendTicket::wait`] or `.await`. Blocks only while the queue is full.
    ///
    /// # Errors
    /// The misuse errors of [`Engine::append_with`], [`AppendError::Closed`],
    /// [`AppendError::Poisoned`]; the ticket reports the rest.
    pub fn submit_with(&self, append: Append) -> Result<AppendTicket, AppendError> {
        let pending = self.queue(append, true)?;
        Ok(AppendTicket { pending })
    }

    /// Queues `payload` for `lane` without waiting for the writer: the returned ticket
    /// gives the receipt later. Lets one thread keep many appends in flight (pipelining);
    /// appends from one thread are ordered as submitted. Blocks only while the queue is
    /// full. Shorthand for [`Engine::submit_with`].
    ///
    /// # Errors
    /// [`AppendError::RecordTooLarge`], [`AppendError::Closed`],
    /// [`AppendError::Poisoned`]; the ticket reports the rest.
    pub fn submit(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<AppendTicket, AppendError> {
        self.submit_with(Append::new(lane, payload))
    }

    /// As [`Engine::append`], but answers only once the record is durable: the receipt
    /// comes back after the sync that covers it. The sync is the one the policy runs
    /// next (the next group, or the interval's); under policies with no time bound
    /// ([`SyncPolicy::Never`](crate::SyncPolicy::Never),
    /// [`SyncPolicy::EveryRecords`](crate::SyncPolicy::EveryRecords)) the writer runs one
    /// for it rather than leave it waiting for ever.
    /// One hand-off instead of an append and then a watermark wait.
    ///
    /// # Errors
    /// As [`Engine::append`]; a sync that fails answers [`AppendError::Poisoned`] and the
    /// record must be treated as not durable.
    pub fn append_durable(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        Appender::append_durable(self, lane, payload)
    }

    /// The async form of [`Engine::append_durable`]: queues the record now and returns a
    /// future of its receipt, which resolves once the record is durable. Works under any
    /// runtime: the writer wakes the task after the sync that covers the record, as it
    /// answers a blocking appender. A failed sync, poison or the loss of the writer lease
    /// resolve it to an error, as they answer the blocking form.
    ///
    /// Queuing blocks only while the writer's queue is full (as [`Engine::submit`]
    /// does; size it with [`Options::channel_capacity`]). The record is queued whether
    /// or not the future is awaited: dropping the future does not withdraw it, it only
    /// gives up the answer.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default()).unwrap();
    /// let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    /// let receipt = runtime.block_on(engine.append_durable_async(7, b"paid".to_vec())).unwrap();
    /// assert!(engine.watermarks().global.durable_hlc.covers(receipt.point));
    /// ```
    ///
    /// # Errors
    /// The future resolves to the errors of [`Engine::append_durable`].
    ///
    /// [`Options::channel_capacity`]: crate::Options::channel_capacity
    pub fn append_durable_async(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> AppendFuture {
        self.queue_async(Append::new(lane, payload).durable())
    }

    /// The async form of [`Engine::append`]: queues the record now and returns a future
    /// of its receipt, which resolves once the writer has accepted and written it. As
    /// [`Engine::append_durable_async`] otherwise.
    ///
    /// # Errors
    /// The future resolves to the errors of [`Engine::append`].
    pub fn append_async(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> AppendFuture {
        self.queue_async(Append::new(lane, payload))
    }

    pub(crate) fn queue_async(&self, append: Append) -> AppendFuture {
        AppendFuture {
            state: match self.queue(append, true) {
                Ok(pending) => AsyncReply::Queued(pending),
                Err(error) => AsyncReply::Refused(Some(error)),
            },
        }
    }

    /// As [`Engine::append`] but never blocks on a full queue.
    ///
    /// # Errors
    /// [`AppendError::WouldBlock`] when the queue is full (nothing queued), else as
    /// [`Engine::append`].
    pub fn try_append(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        let pending = self.queue(Append::new(lane, payload), false)?;
        self.receive(pending)
    }

    /// Appends only if `lane`'s last lane sequence is `expected` (0 for an empty lane).
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when it is not (nothing written), else as
    /// [`Engine::append`].
    pub fn append_expecting(
        &self,
        lane: impl Into<LaneId>,
        expected: LaneSeq,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        Appender::append_expecting(self, lane, expected, payload)
    }

    /// Appends with an idempotency key: if a record with this key was appended before
    /// (in this process or before a reopen), returns that record's receipt and writes
    /// nothing. Lets callers retry an append whose outcome they did not learn. Answered
    /// once written, as [`Engine::append`] (see [`Durability`](crate::Durability) for the
    /// rule); for a durable keyed append use [`Engine::append_with`] with
    /// [`Append::durable`].
    ///
    /// **The window.** Keys are remembered for exactly the records still in the log:
    /// while a keyed record's segment is retained, a retry returns its original receipt,
    /// also after a reopen (the keys are rebuilt from the retained log). Once log
    /// truncation (after a checkpoint) removes the record's segment, its key is forgotten
    /// and a retry with it appends a new record. Memory for keys is therefore bounded by
    /// the retained log, not by the number of keyed appends ever made; see
    /// [`Engine::idempotency_keys`].
    ///
    /// # Errors
    /// As [`Engine::append`]; [`AppendError::KeyTooLong`] above [`IDEMPOTENCY_KEY_LEN_MAX`].
    pub fn append_idempotent(
        &self,
        lane: impl Into<LaneId>,
        key: impl Into<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        Appender::append_idempotent(self, lane, key, payload)
    }

    /// Appends several records, on one or more lanes, atomically: after a crash all of
    /// them are in the log or none is. If any entry's expectation fails, nothing is
    /// written.
    ///
    /// # Errors
    /// [`AppendError::BatchOutOfBounds`], [`AppendError::RecordTooLarge`],
    /// [`AppendError::Conflict`], else as [`Engine::append`].
    pub fn append_batch(&self, entries: Vec<BatchEntry>) -> Result<Vec<Receipt>, AppendError> {
        self.batch(entries, false)
    }

    /// As [`Engine::append_batch`], answered only once the whole batch is durable: one
    /// round trip to the writer instead of a batch then a [`Engine::sync`]. Forces a sync
    /// whatever the policy, as [`Engine::append_durable`] does.
    ///
    /// # Errors
    /// As [`Engine::append_batch`].
    pub fn append_batch_durable(
        &self,
        entries: Vec<BatchEntry>,
    ) -> Result<Vec<Receipt>, AppendError> {
        self.batch(entries, true)
    }

    pub(crate) fn batch(
        &self,
        entries: Vec<BatchEntry>,
        durable: bool,
    ) -> Result<Vec<Receipt>, AppendError> {
        let options = &self.inner.options;
        let bytes: u64 = entries.iter().map(|e| e.payload.len() as u64).sum();
        if entries.is_empty()
            || entries.len() > options.max_batch_records
            || bytes > options.max_batch_bytes
        {
            return Err(AppendError::BatchOutOfBounds {
                records: entries.len(),
                bytes,
                max_records: options.max_batch_records,
                max_bytes: options.max_batch_bytes,
            });
        }
        self.check_unit(entries.iter().map(|e| (e.lane, &[][..], &e.payload[..])))?;
        let (reply, pending) = oneshot();
        self.send(
            Request::Batch {
                entries,
                durable,
                reply,
            },
            true,
        )?;
        self.receive(pending)
    }

    /// The one validation of an atomic unit (one record, or a batch's records) before it
    /// reaches the writer, whatever door it came through: no record on [`LOSS_LANE`]
    /// (the engine's own), every key within
    /// [`IDEMPOTENCY_KEY_LEN_MAX`], every payload within `Options::max_record_bytes`, and the unit
    /// fits a segment of this log once framed (the log's own rule,
    /// [`WalOptions::unit_fits`]). What passes here the log accepts; a refusal writes
    /// nothing and poisons nothing.
    pub(crate) fn check_unit<'a>(
        &self,
        records: impl Iterator<Item = (LaneId, &'a [u8], &'a [u8])> + Clone,
    ) -> Result<(), AppendError> {
        let max = self.inner.options.max_record_bytes;
        for (lane, key, payload) in records.clone() {
            if lane == LOSS_LANE {
                return Err(AppendError::ReservedLane { lane });
            }
            check_key(key)?;
            if payload.len() > max as usize {
                return Err(AppendError::RecordTooLarge {
                    size: payload.len(),
                    max,
                });
            }
        }
        self.inner
            .log
            .unit_fits(records.map(|(_, key, payload)| (key.len(), payload.len())))
            .map(|_| ())
            .map_err(|e| AppendError::UnitTooLarge {
                bytes: e.bytes,
                capacity: e.capacity,
            })
    }

    /// Validates `append` ([`Engine::check_unit`]) and queues it for the writer: the
    /// single path of every single-record append.
    pub(crate) fn queue(
        &self,
        append: Append,
        block: bool,
    ) -> Result<Pending<Result<Receipt, AppendError>>, AppendError> {
        self.check_unit(std::iter::once((
            append.lane,
            &append.key[..],
            &append.payload[..],
        )))?;
        self.enqueue(append, block)
    }

    /// Queues `append` for the writer, unchecked: [`Engine::queue`] after validation, or
    /// the engine's own record of an accepted loss.
    pub(crate) fn enqueue(
        &self,
        append: Append,
        block: bool,
    ) -> Result<Pending<Result<Receipt, AppendError>>, AppendError> {
        let (reply, pending) = oneshot();
        self.send(Request::Append { append, reply }, block)?;
        Ok(pending)
    }

    pub(crate) fn send(&self, request: Request, block: bool) -> Result<(), AppendError> {
        if self.is_closed() {
            return Err(AppendError::Closed);
        }
        if let Some(cause) = self.inner.status.poison.get() {
            return Err(AppendError::Poisoned {
                cause: cause.clone(),
            });
        }
        if block {
            self.inner
                .requests
                .send(request)
                .map_err(|_| AppendError::Closed)
        } else {
            self.inner
                .requests
                .try_send(request)
                .map_err(|err| match err {
                    TrySendError::Full(_) => AppendError::WouldBlock,
                    TrySendError::Gone(_) => AppendError::Closed,
                })
        }
    }

    pub(crate) fn receive<T>(
        &self,
        pending: Pending<Result<T, AppendError>>,
    ) -> Result<T, AppendError> {
        pending.wait().unwrap_or(Err(AppendError::Closed))
    }
}

/// The engine's append family is the writer's own: the convenience methods are answered
/// once written ([`Durability::Written`]); [`Engine::append_with`] is the one door.
impl<S: Storage> Appender for Engine<S> {
    type Error = AppendError;
    const DURABILITY: Durability = Durability::Written;

    fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        Engine::append_with(self, append)
    }
}

/// Refuses a key longer than [`IDEMPOTENCY_KEY_LEN_MAX`] (a constant, so a follower checks it too
/// before sending, with this same function).
pub(crate) fn check_key(key: &[u8]) -> Result<(), AppendError> {
    if key.len() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(AppendError::KeyTooLong {
            size: key.len(),
            max: IDEMPOTENCY_KEY_LEN_MAX,
        });
    }
    Ok(())
}

/// An append in flight (see [`Engine::submit`]).
#[derive(Debug)]
#[must_use = "an append ticket says whether the append was accepted"]
pub struct AppendTicket {
    pending: Pending<Result<Receipt, AppendError>>,
}

impl AppendTicket {
    /// Waits for the writer's answer: the receipt once accepted and written.
    ///
    /// # Errors
    /// As [`Engine::append`].
    pub fn wait(self) -> Result<Receipt, AppendError> {
        self.pending.wait().unwrap_or(Err(AppendError::Closed))
    }
}

impl std::future::IntoFuture for AppendTicket {
    type Output = Result<Receipt, AppendError>;
    type IntoFuture = AppendFuture;

    /// Awaits the writer's answer instead of blocking in [`AppendTicket::wait`].
    fn into_future(self) -> AppendFuture {
        AppendFuture {
            state: AsyncReply::Queued(self.pending),
        }
    }
}

/// The receipt of an append, as a [`Future`](std::future::Future): made by
/// [`Engine::append_async`], [`Engine::append_durable_async`], or by awaiting an
/// [`AppendTicket`]. Needs no particular runtime; the writer wakes the task when it
/// answers. Dropping it gives up the answer, not the append.
#[derive(Debug)]
#[must_use = "the future says whether the append was accepted"]
pub struct AppendFuture {
    state: AsyncReply,
}

#[derive(Debug)]
enum AsyncReply {
    Queued(Pending<Result<Receipt, AppendError>>),
    Refused(Option<AppendError>),
}

impl std::future::Future for AppendFuture {
    type Output = Result<Receipt, AppendError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.get_mut().state {
            AsyncReply::Queued(pending) => pending
                .poll_reply(cx)
                .map(|reply| reply.unwrap_or(Err(AppendError::Closed))),
            AsyncReply::Refused(error) => {
                std::task::Poll::Ready(Err(error.take().unwrap_or(AppendError::Closed)))
            }
        }
    }
}

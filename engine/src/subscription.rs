//! Subscriptions: follow a lane or the whole log, in order, as records become visible.
//!
//! A subscription is a cursor that pulls from the mapped log and parks on the visible
//! watermark when it has caught up. The writer never buffers for subscribers, so a slow
//! one cannot make it grow memory: it just reads further behind, from the log.

use crate::checkpoint::LogHold;
use crate::engine::Engine;
use crate::error::ReadError;
use crate::record::Record;
use std::time::{Duration, Instant};
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq, WaitError};

/// What a subscription follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionTarget {
    /// One lane, by lane sequence.
    Lane(LaneId),
    /// Every lane, in global order.
    All,
}

/// Why a subscription stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The engine was closed.
    #[error("the engine is closed: the subscription ends")]
    Closed,
    /// The writer is poisoned and nothing more will become visible in this process.
    #[error("the log is poisoned: no more records will become visible; reopen the database")]
    Poisoned,
    /// The next record was truncated from the log before the subscription reached it
    /// (it started below the log's first record); resume from a checkpoint.
    #[error("the subscription's next record ({position}) was truncated from the log, which starts at global sequence {log_starts_at}; restore from a checkpoint and subscribe after it")]
    Truncated {
        /// The subscription's position (lane or global sequence).
        position: u64,
        /// The first global sequence the log holds.
        log_starts_at: GlobalSeq,
    },
}

/// A cursor over a lane or the whole log. See [`Engine::subscribe`].
#[derive(Debug)]
pub struct Subscription<S: Storage> {
    engine: Engine<S>,
    target: SubscriptionTarget,
    next: u64,
    /// Keeps the log from the next record on from being truncated.
    hold: LogHold,
}

impl<S: Storage> Subscription<S> {
    pub(crate) fn new(engine: Engine<S>, target: SubscriptionTarget, from: u64) -> Self {
        let next = from.max(1);
        let held = match target {
            SubscriptionTarget::All => GlobalSeq(next),
            SubscriptionTarget::Lane(lane) => engine
                .index()
                .lookup(lane, LaneSeq(next))
                .unwrap_or_else(|| engine.visible_seq().next()),
        };
        let hold = engine.checkpoint_state().register_subscriber(held);
        Subscription {
            engine,
            target,
            next,
            hold,
        }
    }

    /// The sequence (lane or global) of the next record to deliver.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next record if one is visible now, without blocking.
    ///
    /// # Errors
    /// [`SubscribeError::Closed`].
    pub fn try_next(&mut self) -> Result<Option<Record>, SubscribeError> {
        if self.engine.is_closed() {
            return Err(SubscribeError::Closed);
        }
        let truncated = |log_starts_at| SubscribeError::Truncated {
            position: self.next,
            log_starts_at,
        };
        let seq = match self.target {
            SubscriptionTarget::All => {
                let log_starts_at = self.engine.wal_reader().first_seq();
                if self.next < log_starts_at.0 {
                    return Err(truncated(log_starts_at));
                }
                Some(GlobalSeq(self.next))
            }
            SubscriptionTarget::Lane(lane) => {
                if let Err(ReadError::Truncated { log_starts_at, .. }) =
                    self.engine.check_truncated(lane, LaneSeq(self.next))
                {
                    return Err(truncated(log_starts_at));
                }
                self.engine.index().lookup(lane, LaneSeq(self.next))
            }
        };
        let record = seq.and_then(|seq| self.engine.visible_frame(seq));
        if let Some(record) = &record {
            self.next += 1;
            self.hold.advance(record.point().seq().next());
        }
        Ok(record)
    }

    /// The next record, waiting up to `timeout` for it to become visible; `None` when
    /// the timeout passes first.
    ///
    /// # Errors
    /// [`SubscribeError::Closed`], or [`SubscribeError::Poisoned`] once nothing more
    /// can become visible.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record>, SubscribeError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(record) = self.try_next()? {
                return Ok(Some(record));
            }
            let remaining = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if remaining.is_zero() {
                return Ok(None);
            }
            let marks = self.engine.watermark_handle();
            let waited = match self.target {
                SubscriptionTarget::All => {
                    marks.wait_for_visible(point(self.next), remaining.min(Duration::from_secs(1)))
                }
                SubscriptionTarget::Lane(lane) => {
                    let current = marks
                        .lock()
                        .current(tidelog_watermarks::WatermarkKind::Visible, Some(lane));
                    marks.wait_for_visible_on_lane(
                        lane,
                        point(current.global_sequence + 1),
                        remaining.min(Duration::from_secs(1)),
                    )
                }
            };
            match waited {
                Ok(_) | Err(WaitError::WaitTimeout { .. }) => {}
                Err(WaitError::Poisoned { .. }) => {
                    // Deliver what was visible before the failure, then stop.
                    return match self.try_next()? {
                        Some(record) => Ok(Some(record)),
                        None => Err(SubscribeError::Poisoned),
                    };
                }
                Err(_) => return Err(SubscribeError::Poisoned),
            }
        }
    }
}

fn point(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: 0,
        global_sequence: seq,
    }
}

impl<S: Storage> Iterator for Subscription<S> {
    type Item = Record;

    /// Blocks until the next record is visible; ends when the engine closes or is
    /// poisoned.
    fn next(&mut self) -> Option<Record> {
        loop {
            match self.next_timeout(Duration::from_secs(1)) {
                Ok(Some(record)) => return Some(record),
                Ok(None) => continue,
                Err(_) => return None,
            }
        }
    }
}

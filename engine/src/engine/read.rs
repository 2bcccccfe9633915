//! Reads, subscriptions and appliers: what is visible, read straight from the log.

use super::Engine;
use crate::applier::Applier;
use crate::error::ReadError;
use crate::record::Record;
use crate::subscription::{Subscription, SubscriptionTarget};
use std::ops::RangeInclusive;
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq};

impl<S: Storage> Engine<S> {
    /// The visible record `lane_seq` of `lane`, or `None` if there is none (yet).
    ///
    /// # Errors
    /// [`ReadError::Closed`], [`ReadError::ZeroLaneSeq`], [`ReadError::Truncated`] for a
    /// record truncated from the log (covered by a checkpoint).
    pub fn read(
        &self,
        lane: impl Into<LaneId>,
        lane_seq: LaneSeq,
    ) -> Result<Option<Record>, ReadError> {
        self.check_open()?;
        if lane_seq == LaneSeq::ZERO {
            return Err(ReadError::ZeroLaneSeq);
        }
        let lane = lane.into();
        self.check_truncated(lane, lane_seq)?;
        Ok(self
            .inner
            .index
            .lookup(lane, lane_seq)
            .and_then(|seq| self.visible_frame(seq)))
    }

    /// The visible records of `lane` with lane sequences in `range`, in order.
    ///
    /// # Errors
    /// [`ReadError::Closed`]; [`ReadError::Truncated`] when the range starts before the
    /// lane's first record still in the log.
    pub fn scan(
        &self,
        lane: impl Into<LaneId>,
        range: RangeInclusive<LaneSeq>,
    ) -> Result<impl Iterator<Item = Record> + '_, ReadError> {
        self.check_open()?;
        let lane = lane.into();
        self.check_truncated(lane, (*range.start()).max(LaneSeq(1)))?;
        let seqs = self.inner.index.range(lane, *range.start(), *range.end());
        Ok(seqs.into_iter().map_while(|seq| self.visible_frame(seq)))
    }

    /// Every visible record from global sequence `from` on, in global order.
    ///
    /// # Errors
    /// [`ReadError::Closed`].
    pub fn scan_all(
        &self,
        from: GlobalSeq,
    ) -> Result<impl Iterator<Item = Record> + '_, ReadError> {
        self.check_open()?;
        let visible = self.visible_seq();
        Ok(self
            .inner
            .reader
            .iter_from(from.max(GlobalSeq(1)))
            .take_while(move |frame| frame.global_seq() <= visible)
            .map(Record::new))
    }

    /// Follows `target` (one lane, or all) from `from` (a lane sequence for a lane, a
    /// global sequence for all), delivering records in order as they become visible.
    /// Subscribers pull from the log: a slow one costs the writer nothing.
    #[must_use]
    pub fn subscribe(&self, target: SubscriptionTarget, from: u64) -> Subscription<S> {
        Subscription::new(self.clone(), target, from)
    }

    /// Registers an applier starting at `from`. The global applied watermark is the
    /// minimum over registered appliers.
    #[must_use]
    pub fn register_applier(&self, name: impl Into<String>, from: HlcPoint) -> Applier {
        Applier::register(
            self.inner.appliers.clone(),
            self.inner.marks.clone(),
            name.into(),
            from,
        )
    }

    /// The registered appliers' names and positions, lowest first (what holds the
    /// global applied watermark back).
    #[must_use]
    pub fn appliers(&self) -> Vec<(String, HlcPoint)> {
        self.inner.appliers.lock().list()
    }

    pub(crate) fn visible_frame(&self, seq: GlobalSeq) -> Option<Record> {
        if seq > self.visible_seq() {
            return None;
        }
        self.inner.reader.get(seq).map(Record::new)
    }

    pub(crate) fn check_open(&self) -> Result<(), ReadError> {
        if self.is_closed() {
            Err(ReadError::Closed)
        } else {
            Ok(())
        }
    }
}

//! Checkpoints, holds and log truncation, as the engine offers them (the store, the
//! retention rules and the truncation floor are in [`crate::checkpoint`]).

use crate::checkpoint::holds::HoldKind;
use crate::checkpoint::*;
use crate::engine::Engine;
use crate::error::ReadError;
use std::collections::HashMap;
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq, WatermarkKind};

impl<S: Storage> Engine<S> {
    pub(crate) fn ckpt(&self) -> Result<&State<S>, CheckpointError> {
        if self.is_closed() {
            return Err(CheckpointError::Closed);
        }
        Ok(self.checkpoint_state())
    }

    /// Writes a checkpoint: `state` is the caller's snapshot, covering every record up to
    /// `point` (which must be durable). Atomic: after a crash it is there whole or not at
    /// all, and the previous checkpoints are untouched. Then, with
    /// [`CheckpointOptions::auto_truncate`], prunes old checkpoints and truncates the log.
    ///
    /// # Errors
    /// [`CheckpointError::NotDurable`], [`CheckpointError::BeforeLog`], I/O errors.
    pub fn checkpoint(
        &self,
        point: HlcPoint,
        state: &[u8],
    ) -> Result<CheckpointInfo, CheckpointError> {
        self.checkpoint_as(point, CheckpointKind::Regular, |out| {
            out.extend_from_slice(state);
            Ok(())
        })
    }

    /// As [`Engine::checkpoint`], with a kind, and the state produced by a writer callback.
    ///
    /// # Errors
    /// As [`Engine::checkpoint`]; [`CheckpointError::State`] if `write` fails.
    pub fn checkpoint_as(
        &self,
        point: HlcPoint,
        kind: CheckpointKind,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> Result<CheckpointInfo, CheckpointError> {
        crate::observe::span!("tidelog.checkpoint", seq = point.global_sequence);
        let ckpt = self.ckpt()?;
        let seq = point.seq();
        let durable = self
            .watermark_handle()
            .lock()
            .current(WatermarkKind::Durable, None)
            .seq();
        if seq > durable {
            return Err(CheckpointError::NotDurable {
                point: seq,
                durable,
            });
        }
        let mut state = Vec::new();
        write(&mut state).map_err(|source| CheckpointError::State { source })?;
        let _serial = ckpt.serial.lock();
        let log_starts_at = self.wal_reader().first_seq();
        if seq.0.saturating_add(1) < log_starts_at.0 {
            return Err(CheckpointError::BeforeLog {
                point: seq,
                log_starts_at,
            });
        }
        let lanes = self.lane_heads_at(seq);
        let info = ckpt
            .store
            .write(point, kind == CheckpointKind::Milestone, &lanes, &state)?;
        // The checkpoint's point is durable: the extent record learns it (one sync).
        ckpt.truncator.note_durable(seq)?;
        if ckpt.store.options().auto_truncate {
            ckpt.store.prune()?;
            self.truncate_locked(ckpt)?;
        }
        Ok(info)
    }

    pub(crate) fn lane_heads_at(&self, seq: GlobalSeq) -> Vec<LaneHead> {
        let reader = self.wal_reader();
        let mut heads: Vec<LaneHead> = self
            .index()
            .heads_at(seq)
            .into_iter()
            .map(|(lane, lane_seq, last)| LaneHead {
                lane,
                lane_seq,
                point: match last {
                    Ok(at) => HlcPoint {
                        wall_ms: reader.get(at).map_or(0, |f| f.wall_ms()),
                        global_sequence: at.0,
                    },
                    Err(base) => base,
                },
            })
            .collect();
        heads.sort_by_key(|h| h.lane);
        heads
    }

    /// The newest checkpoint that verifies (a damaged one is skipped, never returned).
    /// It stays on disk while the returned value lives.
    ///
    /// # Errors
    /// [`CheckpointError::Closed`], I/O errors.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        self.ckpt()?.store.open_at_or_before(GlobalSeq(u64::MAX))
    }

    /// The newest checkpoint covering at most `seq` that verifies.
    ///
    /// # Errors
    /// As [`Engine::latest_checkpoint`].
    pub fn checkpoint_at_or_before(
        &self,
        seq: GlobalSeq,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        self.ckpt()?.store.open_at_or_before(seq)
    }

    /// Every valid checkpoint, oldest first.
    #[must_use]
    pub fn checkpoints(&self) -> Vec<CheckpointInfo> {
        self.checkpoint_state().store.list()
    }

    /// The checkpoint recovery started from when this engine opened: the caller restores
    /// its state from it and replays the log after its point (`scan_all(point + 1)`).
    #[must_use]
    pub fn recovered_checkpoint(&self) -> Option<&CheckpointInfo> {
        self.checkpoint_state().recovered_from.as_ref()
    }

    /// Pins a checkpoint: retention keeps it (across reopens) until it is unpinned.
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`], I/O errors.
    pub fn pin_checkpoint(&self, id: CheckpointId) -> Result<(), CheckpointError> {
        self.ckpt()?.store.set_pinned(id, true)
    }

    /// Unpins a checkpoint; the next prune may remove it.
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`], I/O errors.
    pub fn unpin_checkpoint(&self, id: CheckpointId) -> Result<(), CheckpointError> {
        self.ckpt()?.store.set_pinned(id, false)
    }

    /// Applies retention now (see [`CheckpointOptions`]).
    ///
    /// # Errors
    /// I/O errors (what was removed before stays removed).
    pub fn prune_checkpoints(&self) -> Result<PruneReport, CheckpointError> {
        let ckpt = self.ckpt()?;
        let _serial = ckpt.serial.lock();
        ckpt.store.prune()
    }

    /// Keeps the log from `from` on from being truncated until the hold is dropped. The
    /// hook followers and backups use; any caller may take one.
    #[must_use]
    pub fn hold_log(&self, name: impl Into<String>, from: GlobalSeq) -> LogHold {
        LogHold::register(
            &self.checkpoint_state().holds,
            HoldKind::Named(name.into()),
            from,
        )
    }

    /// What log truncation could remove now, and what holds it back.
    #[must_use]
    pub fn truncation_status(&self) -> TruncationStatus {
        let ckpt = self.checkpoint_state();
        let mut claims = Vec::new();
        match ckpt.store.claiming_checkpoint() {
            Some(info) => claims.push((
                LogClaim::Checkpoint {
                    id: info.id,
                    point: info.point,
                },
                GlobalSeq(info.point.global_sequence.saturating_add(1)),
            )),
            None => claims.push((LogClaim::NoCheckpoint, GlobalSeq(1))),
        }
        for (name, point) in self.appliers() {
            claims.push((
                LogClaim::Applier { name, point },
                GlobalSeq(point.global_sequence.saturating_add(1)),
            ));
        }
        for (id, kind, from) in ckpt.holds.lock().list() {
            let claim = match kind {
                HoldKind::Named(name) => LogClaim::Hold { name },
                HoldKind::Subscriber => LogClaim::Subscriber { id },
            };
            claims.push((claim, from));
        }
        for (id, from) in crate::forward::live_cursors(self.dir()) {
            claims.push((LogClaim::Follower { id }, from));
        }
        claims.sort_by_key(|(_, from)| *from);
        let floor = claims.first().map_or(GlobalSeq(1), |(_, from)| *from);
        let segments = ckpt.truncator.segments();
        let removable = segments
            .windows(2)
            .take_while(|pair| matches!(pair, [_, next] if next.first_seq <= floor))
            .count();
        TruncationStatus {
            log_starts_at: self.wal_reader().first_seq(),
            floor,
            claims,
            segments: segments.len(),
            removable_segments: removable,
            log_bytes: segments.len() as u64 * ckpt.truncator.segment_size(),
        }
    }

    /// Removes the log segments wholly below the floor of [`Engine::truncation_status`].
    ///
    /// # Errors
    /// I/O errors; the log stays contiguous and opens either way.
    pub fn truncate_log(&self) -> Result<TruncationReport, CheckpointError> {
        crate::observe::span!("tidelog.truncation");
        let ckpt = self.ckpt()?;
        let _serial = ckpt.serial.lock();
        self.truncate_locked(ckpt)
    }

    pub(crate) fn truncate_locked(
        &self,
        ckpt: &State<S>,
    ) -> Result<TruncationReport, CheckpointError> {
        let status = self.truncation_status();
        // Where the log will start: the first segment that holds the floor or anything
        // after it is kept. The points of the records the lane index will drop are read
        // while their segments are still there.
        let segments = ckpt.truncator.segments();
        let start = segments
            .windows(2)
            .find_map(|pair| match pair {
                [kept, next] if next.first_seq > status.floor => Some(kept.first_seq),
                _ => None,
            })
            .or_else(|| segments.last().map(|s| s.first_seq));
        let reader = self.wal_reader();
        let bases: HashMap<LaneId, HlcPoint> = start
            .map(|start| self.index().last_below(start))
            .unwrap_or_default()
            .into_iter()
            .map(|(lane, seq)| {
                let wall_ms = reader.get(seq).map_or(0, |f| f.wall_ms());
                (
                    lane,
                    HlcPoint {
                        wall_ms,
                        global_sequence: seq.0,
                    },
                )
            })
            .collect();
        let removed = ckpt.truncator.remove_segments_below(status.floor)?;
        // The index keeps one entry per record still in the log (memory stays flat over
        // any number of appends); if the log starts elsewhere than planned, the next
        // truncation catches up.
        if start == Some(removed.first_seq) {
            self.index().forget_below(removed.first_seq, &bases);
        }
        Ok(TruncationReport { status, removed })
    }

    /// [`ReadError::Truncated`] if `lane_seq` of `lane` was truncated from the log.
    pub(crate) fn check_truncated(&self, lane: LaneId, lane_seq: LaneSeq) -> Result<(), ReadError> {
        match self.first_readable(lane) {
            Some((first_readable, log_starts_at)) if lane_seq < first_readable => {
                Err(ReadError::Truncated {
                    lane,
                    lane_seq,
                    first_readable,
                    log_starts_at,
                })
            }
            _ => Ok(()),
        }
    }

    /// The lane sequence `lane`'s readable records start at, when earlier ones were
    /// truncated away (`None`: the lane is unknown).
    pub(crate) fn first_readable(&self, lane: LaneId) -> Option<(LaneSeq, GlobalSeq)> {
        let log_starts_at = self.wal_reader().first_seq();
        // Records the index still lists but whose segment was removed in this process are
        // skipped too.
        let lane_seq = self.index().first_from(lane, log_starts_at)?;
        Some((lane_seq, log_starts_at))
    }
}

//! What keeps the log from being truncated: registered holds (subscriber cursors, named
//! holds such as a backup in progress or, later, a follower), plus the checkpoint and
//! appliers the engine asks about directly.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tidelog_watermarks::GlobalSeq;

/// Who registered a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HoldKind {
    Named(String),
    Subscriber,
}

#[derive(Debug, Default)]
pub(crate) struct LogHolds {
    next_id: u64,
    holds: BTreeMap<u64, (HoldKind, GlobalSeq)>,
}

impl LogHolds {
    /// Every hold: (id, kind, first sequence still needed).
    pub(crate) fn list(&self) -> Vec<(u64, HoldKind, GlobalSeq)> {
        self.holds
            .iter()
            .map(|(id, (kind, from))| (*id, kind.clone(), *from))
            .collect()
    }
}

/// Keeps the log from `from` on from being truncated while it lives (see
/// [`Engine::hold_log`](crate::Engine::hold_log)). Move it forward with
/// [`LogHold::advance`]; drop it to release.
#[derive(Debug)]
pub struct LogHold {
    holds: Arc<Mutex<LogHolds>>,
    id: u64,
}

impl LogHold {
    pub(crate) fn register(holds: &Arc<Mutex<LogHolds>>, kind: HoldKind, from: GlobalSeq) -> Self {
        let mut set = holds.lock();
        let id = set.next_id;
        set.next_id += 1;
        set.holds.insert(id, (kind, from.max(GlobalSeq(1))));
        LogHold {
            holds: Arc::clone(holds),
            id,
        }
    }

    /// Only records from `from` on are needed now (never moves back).
    pub fn advance(&self, from: GlobalSeq) {
        if let Some((_, at)) = self.holds.lock().holds.get_mut(&self.id) {
            *at = (*at).max(from);
        }
    }

    /// The first sequence this hold keeps.
    #[must_use]
    pub fn from(&self) -> GlobalSeq {
        self.holds
            .lock()
            .holds
            .get(&self.id)
            .map_or(GlobalSeq::ZERO, |(_, at)| *at)
    }
}

impl Drop for LogHold {
    fn drop(&mut self) {
        self.holds.lock().holds.remove(&self.id);
    }
}

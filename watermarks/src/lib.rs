//! # tidelog-watermarks
//!
//! How far each record of a tidelog database has travelled, and a way to wait for it.
//!
//! Six watermarks ([`WatermarkKind`]): accepted, written, durable, visible, emitted,
//! applied, each a frontier ([`HlcPoint`]) kept globally and per lane
//! ([`LaneWatermarks`]) in a [`WatermarkState`]. The writer advances them; any thread
//! waits on them through a cloneable [`WatermarkAdvanceHandle`] with `wait_for_*`, which
//! blocks on its own kind only and is woken only by an advance that covers its target.
//! Each wait has an async form (`wait_for_*_async`, a [`WatermarkWait`] future) that
//! parks its task's waker in the same targeted lists and works under any runtime.
//!
//! Coverage is by global sequence; wall time is informative. Advances are monotonic and
//! clamped so the invariants hold (see [`state`]'s documentation). The poison latch
//! ([`WatermarkState::mark_writer_crashed`]) freezes durability forever after a failed
//! write or sync and fails every wait at once.
//!
//! This crate knows nothing of files. Synchronization goes through one shim (`sync`) that
//! switches to loom under `--cfg loom`, so the loom models check this very code.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod clock;
mod error;
mod frontiers;
mod future;
mod handle;
pub mod ids;
mod point;
pub mod state;
pub mod sync;
mod view;
mod waiters;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::WaitError;
pub use frontiers::{Frontiers, LaneWatermarks, WatermarkSnapshot};
pub use future::WatermarkWait;
pub use handle::WatermarkAdvanceHandle;
pub use ids::{GlobalSeq, LaneId, LaneSeq};
pub use point::{HlcPoint, WatermarkKind};
pub use state::WatermarkState;
pub use view::{LaneView, WatermarkView};

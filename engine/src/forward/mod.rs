//! One writer, many processes: the writer serves a Unix socket in the database directory;
//! any other handle on the database is a [`Follower`] whose appends are forwarded there
//! and answered with the writer's receipt. [`Database`] picks the role on open and takes
//! the writer's place when the writer is gone (hand-off). [`LaneLogs`] gives each lane a
//! log and an append authority of its own.
//!
//! Guarantees: every append, local or forwarded, is ordered by the one writer, so all
//! processes share one contiguous total order. A forwarded append whose answer never came
//! back is reported as [`AppendError::Unanswered`](crate::AppendError::Unanswered), never
//! silently dropped or retried; an idempotency key makes the caller's retry safe.

mod cursor;
mod database;
mod follower;
mod lanes;
mod published;
mod server;
mod wire;

pub(crate) use cursor::live_cursors;
pub use cursor::FOLLOWERS_DIR;
pub use database::Database;
pub use follower::{
    read_visible, wait_for_visible, FollowError, Follower, FollowerRecords, DEFAULT_ANSWER_TIMEOUT,
};
pub use lanes::{LaneLogs, LaneLogsError};
pub(crate) use published::Publisher;
pub use published::{read_published, PublishedError, PublishedWatermarks, WATERMARKS_FILE};
pub(crate) use server::Server;
pub use server::SOCKET_NAME;

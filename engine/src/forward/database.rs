//! A database handle that is the writer when it can be and a follower otherwise, and
//! becomes the writer when the writer it followed is gone.

use super::follower::{read_visible, wait_for_visible, FollowError, Follower};
use crate::appender::Appender;
use crate::engine::Engine;
use crate::error::{AppendError, OpenError};
use crate::lease::LeaseError;
use crate::options::Options;
use crate::record::{Append, Durability, Receipt};
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tidelog_wal::ScannedRecord;
use tidelog_watermarks::GlobalSeq;

/// What a [`Database`] handle is right now.
#[derive(Debug)]
enum Role {
    Writer(Engine),
    Follower(Follower),
}

/// A handle on a database shared by several processes: the writer if it got the lease,
/// else a follower forwarding its appends to the writer. It changes role as the writer
/// changes: a follower whose writer is gone tries to become the writer; a writer that
/// lost its lease (paused past its TTL, replaced) reports its in-flight appends as
/// [`AppendError::Unanswered`] and follows the new writer.
#[derive(Debug)]
pub struct Database {
    dir: PathBuf,
    options: Options,
    role: RwLock<Role>,
    closed: AtomicBool,
}

impl Database {
    /// Opens `dir` as its writer, or, when another live writer holds the lease (or won
    /// the race for it), as a follower of that writer. A holder that is still starting
    /// (recovering before it serves its socket) is waited for, up to one lease TTL.
    ///
    /// # Errors
    /// As [`Engine::open`], and [`OpenError::NoWriter`] when the lease is held but its
    /// holder does not answer on the socket within one lease TTL.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Database, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let role = open_role(&dir, &options)?;
        Ok(Database {
            dir,
            options,
            role: RwLock::new(role),
            closed: AtomicBool::new(false),
        })
    }

    /// Opens `dir` as its writer only.
    ///
    /// # Errors
    /// As [`Engine::open`]: [`OpenError::Lease`] with [`LeaseError::Held`] when another
    /// live writer holds the lease.
    pub fn open_writer(dir: impl AsRef<Path>, options: Options) -> Result<Database, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let engine = Engine::open(&dir, options.clone())?;
        Ok(Database {
            dir,
            options,
            role: RwLock::new(Role::Writer(engine)),
            closed: AtomicBool::new(false),
        })
    }

    /// Makes this handle the writer: a no-op if it is one that still holds the lease,
    /// else takes the lease (free, expired, or held by a process that is gone). A
    /// follower stays a follower when that fails.
    ///
    /// # Errors
    /// As [`Engine::open`]: [`LeaseError::Held`] when another live writer holds it.
    pub fn acquire(&self) -> Result<(), OpenError> {
        crate::observe::span!("tidelog.handoff", dir = %self.dir.display());
        let mut role = self.role.write();
        match &*role {
            Role::Writer(engine) if !is_deposed(engine) => return Ok(()),
            Role::Writer(engine) => drop(engine.close()),
            Role::Follower(_) => {}
        }
        match Engine::open(&self.dir, self.options.clone()) {
            Ok(engine) => {
                *role = Role::Writer(engine);
                Ok(())
            }
            Err(err) => {
                // A deposed writer must not stay in place: follow whoever won.
                if matches!(*role, Role::Writer(_)) {
                    if let Ok(next) = open_role(&self.dir, &self.options) {
                        *role = next;
                    }
                }
                Err(err)
            }
        }
    }

    /// Whether this handle is the writer and still holds the lease.
    #[must_use]
    pub fn is_writer(&self) -> bool {
        matches!(&*self.role.read(), Role::Writer(engine) if !is_deposed(engine))
    }

    /// Up to `max` records from global sequence `from` on, in order, that the writer
    /// (this handle or another process) has made visible, read from the log files as a
    /// follower reads them (see [`Follower::records_from`], without a cursor).
    ///
    /// # Errors
    /// As [`Follower::records_from`].
    pub fn records_from(
        &self,
        from: GlobalSeq,
        max: usize,
    ) -> Result<Vec<ScannedRecord>, FollowError> {
        read_visible(&self.dir, from, max)
    }

    /// Blocks until global sequence `seq` is visible (see
    /// [`Follower::wait_for_visible`]), whoever the writer is.
    ///
    /// # Errors
    /// As [`Follower::wait_for_visible`].
    pub fn wait_for_visible(
        &self,
        seq: GlobalSeq,
        timeout: Duration,
    ) -> Result<super::PublishedWatermarks, FollowError> {
        wait_for_visible(&self.dir, seq, timeout)
    }

    /// The engine, when this handle is the writer.
    #[must_use]
    pub fn engine(&self) -> Option<Engine> {
        match &*self.role.read() {
            Role::Writer(engine) => Some(engine.clone()),
            Role::Follower(_) => None,
        }
    }

    /// Appends what `append` describes: locally when the writer (through
    /// [`Engine::append_with`]), else forwarded unchanged to the writer
    /// ([`Follower::append_with`]). When the writer it follows is gone, this handle first
    /// tries to become the writer. Misuse is refused with nothing written on either path.
    ///
    /// # Errors
    /// As [`Engine::append_with`] and [`Follower::append_with`].
    pub fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        self.route(
            |engine| engine.append_with(append.clone()),
            |follower| follower.append_with(append.clone()),
        )
    }

    /// Closes the handle: the writer drains, syncs and releases the lease.
    ///
    /// # Errors
    /// As [`Engine::close`], for the writer.
    pub fn close(&self) -> Result<(), crate::SyncError> {
        self.closed.store(true, Ordering::Release);
        match &*self.role.read() {
            Role::Writer(engine) => engine.close(),
            Role::Follower(_) => Ok(()),
        }
    }

    fn route(
        &self,
        local: impl Fn(&Engine) -> Result<Receipt, AppendError>,
        forwarded: impl Fn(&Follower) -> Result<Receipt, AppendError>,
    ) -> Result<Receipt, AppendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Closed);
        }
        let outcome = match &*self.role.read() {
            Role::Writer(engine) if !is_deposed(engine) => match local(engine) {
                // Lost the lease with this append in flight: it may be in the log (the
                // next writer recovers what reached the disk) or not.
                Err(AppendError::Poisoned { cause }) if cause.is_lease_loss() => {
                    Err(AppendError::Unanswered {
                        message: format!(
                            "this process stopped being the writer before the append was acknowledged ({cause})"
                        ),
                    })
                }
                other => return other,
            },
            // Deposed before this append: nothing was attempted here.
            Role::Writer(_) => Err(AppendError::NoWriter {
                message: "this process is no longer the writer".to_owned(),
            }),
            Role::Follower(follower) => forwarded(follower),
        };
        match outcome {
            // Nothing reached a writer: find the writer now (this process, if the lease
            // is free or its holder gone; else whoever holds it) and append there.
            Err(AppendError::NoWriter { .. }) if self.find_writer() => match &*self.role.read() {
                Role::Writer(engine) => local(engine),
                Role::Follower(follower) => forwarded(follower),
            },
            // The answer was lost with the writer: say so, and find the writer for the
            // caller's retry.
            Err(err @ AppendError::Unanswered { .. }) => {
                self.find_writer();
                Err(err)
            }
            other => other,
        }
    }

    /// Becomes the writer if the lease is free or its holder's process is gone, else
    /// follows whoever holds it; a writer deposed meanwhile is closed first. Returns
    /// whether this handle now has a usable role.
    fn find_writer(&self) -> bool {
        let mut role = self.role.write();
        match &*role {
            Role::Writer(engine) if !is_deposed(engine) => return true,
            // Closing a poisoned engine only stops its threads; the error says why it
            // was poisoned, which the caller has already been told.
            Role::Writer(engine) => drop(engine.close()),
            Role::Follower(_) => {}
        }
        match open_role(&self.dir, &self.options) {
            Ok(next) => {
                *role = next;
                true
            }
            Err(_) => false,
        }
    }
}

/// Every append method of a database handle is durable ([`Durability::Durable`]), as a
/// follower's is: whichever role the handle has when the append is made, its receipt may
/// have crossed a process, and a keyed retry after [`AppendError::Unanswered`] must find
/// the record after the writer dies. For one answered once written use
/// [`Database::append_with`].
impl Appender for Database {
    type Error = AppendError;
    const DURABILITY: Durability = Durability::Durable;

    fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        Database::append_with(self, append)
    }
}

/// Whether `engine` stopped being the writer: its lease was lost or ran out, whether or
/// not the engine has noticed yet by failing an append.
fn is_deposed(engine: &Engine) -> bool {
    match engine.failure() {
        Some(failure) => failure.is_lease_loss(),
        None => !engine.holds_lease(),
    }
}

fn open_role(dir: &Path, options: &Options) -> Result<Role, OpenError> {
    // A holder that just won the lease may still be recovering before it serves its
    // socket: look for it again, backing off, for up to one lease TTL.
    let deadline = Instant::now() + options.lease.ttl;
    let mut pause = Duration::from_millis(1);
    loop {
        match Engine::open(dir, options.clone()) {
            Ok(engine) => return Ok(Role::Writer(engine)),
            Err(OpenError::Lease(LeaseError::Held { .. } | LeaseError::LostRace { .. })) => {
                match Follower::connect(dir) {
                    // A writer that does not answer within its lease's TTL is no longer
                    // the writer.
                    Ok(follower) => {
                        return Ok(Role::Follower(
                            follower.with_answer_timeout(options.lease.ttl),
                        ))
                    }
                    Err(OpenError::NoWriter { .. }) if Instant::now() < deadline => {}
                    Err(err) => return Err(err),
                }
            }
            Err(err) => return Err(err),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

//! Online backups: a consistent copy of the database while appends go on (the copying
//! itself is in [`crate::checkpoint::backup`]).

use crate::checkpoint::backup::{
    check_backup_destination, copy_checkpoints, create_database, finish, BackupError, BackupReport,
    Listing,
};
use crate::checkpoint::holds::HoldKind;
use crate::checkpoint::LogHold;
use crate::engine::Engine;
use crate::marker;
use std::path::Path;
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, WatermarkKind};

impl<S: Storage> Engine<S> {
    /// Copies the database, consistent at the current durable point, into `dest` (a new
    /// or empty directory) while appends continue; see the `checkpoint::backup` module
    /// docs. The copy opens as a normal database.
    ///
    /// # Errors
    /// [`BackupError`]; on error the destination lacks its `BACKUP` marker.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport, BackupError> {
        self.backup_to_reporting(dest, |_, _| {})
    }

    /// [`Engine::backup_to`], telling `progress` after each log segment copied the bytes
    /// of log copied so far and the most it will copy (for a progress bar); the last
    /// report has both equal.
    ///
    /// # Errors
    /// As [`Engine::backup_to`].
    pub fn backup_to_reporting(
        &self,
        dest: impl AsRef<Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackupReport, BackupError> {
        let dest = dest.as_ref();
        let ckpt = self.ckpt()?;
        check_backup_destination(self.dir(), dest)?;
        create_database(dest)?;
        let _hold = LogHold::register(&ckpt.holds, HoldKind::Named("backup".into()), GlobalSeq(1));
        let _serial = ckpt.serial.lock();
        let point = self
            .watermark_handle()
            .lock()
            .current(WatermarkKind::Durable, None)
            .seq();
        let storage = ckpt.store.storage();
        let mut report = BackupReport::empty(point);
        copy_checkpoints(storage, ckpt.store.list(), Listing::Held, dest, &mut report)?;
        let copied = self.wal_reader().copy_prefix_reporting(
            storage,
            &dest.join(marker::WAL_DIR),
            point,
            ckpt.truncator.segment_size(),
            &mut progress,
        )?;
        report.log_starts_at = copied.first_seq;
        report.segments = copied.segments.len();
        report.bytes += copied.bytes;
        finish(storage, self.dir(), dest, &report)?;
        Ok(report)
    }
}

//! The harness's one error type: which system or step failed, and the cause.

use std::path::PathBuf;

/// A benchmark step that failed. The harness stops at the first one: a figure measured
/// after a failed write would not be comparable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A system under test returned an error.
    #[error("{system} failed while {step}: {source}; check the disk under the bench dir (free space, permissions) and rerun")]
    System {
        /// The system's name as in the table.
        system: &'static str,
        /// What the harness was doing.
        step: &'static str,
        /// The system's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file operation of the harness itself failed.
    #[error("the harness could not {step} {path}: {source}; check that the bench dir is writable")]
    Io {
        /// What the harness was doing.
        step: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The child process that fills a log for the recovery workload failed.
    #[error("the fill process for {system} exited with {status}; rerun it alone with `tidelog-bench fill {system} DIR BYTES crash` to see its error")]
    FillFailed {
        /// The system's name.
        system: &'static str,
        /// How the child ended.
        status: std::process::ExitStatus,
    },
    /// A system name on the command line that this build does not know.
    #[error("unknown or not built system `{name}`; this build has: {built}. Peers need their cargo feature (e.g. `--features all-peers`)")]
    UnknownSystem {
        /// The name given.
        name: String,
        /// The names this build has.
        built: String,
    },
    /// Recovery found fewer records than were durably written before the crash.
    #[error("{system} recovered {found} records after a crash but {expected} were acknowledged durable: it lost data")]
    LostRecords {
        /// The system's name.
        system: &'static str,
        /// Records acknowledged before the crash (at least; a torn tail may remove one).
        expected: u64,
        /// Records found.
        found: u64,
    },
}

impl BenchError {
    /// Wraps a system's error with its name and the step.
    pub fn system(
        system: &'static str,
        step: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::System {
            system,
            step,
            source: Box::new(source),
        }
    }

    /// Wraps an I/O error of the harness.
    pub fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            step,
            path: path.into(),
            source,
        }
    }
}

//! openraft's storage errors from tidelog's.

use openraft::{AnyError, NodeId, StorageError, StorageIOError};

pub(crate) fn io_error(message: impl Into<String>) -> std::io::Error {
    std::io::Error::other(message.into())
}

pub(crate) fn write_error<NID: NodeId>(e: impl ToString) -> StorageError<NID> {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}

pub(crate) fn read_error<NID: NodeId>(e: impl ToString) -> StorageError<NID> {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

pub(crate) fn sm_write_error<NID: NodeId>(e: impl ToString) -> StorageError<NID> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

pub(crate) fn snapshot_error<NID: NodeId>(e: impl ToString) -> StorageError<NID> {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

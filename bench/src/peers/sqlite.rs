//! SQLite in WAL mode with `synchronous=FULL`: one row per record (lane, payload), each
//! append its own transaction (autocommit), a batch one transaction. SQLite allows one
//! writer at a time, so concurrent appenders share one connection behind a lock.

use crate::error::BenchError;
use crate::peer::Peer;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::Path;

const NAME: &str = "sqlite";

struct Sqlite {
    conn: Mutex<Connection>,
}

/// Opens (or recovers) an SQLite database in `dir`.
///
/// # Errors
/// SQLite's error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let err = |e| BenchError::system(NAME, "opening", e);
    let conn = Connection::open(dir.join("log.sqlite")).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, lane INTEGER NOT NULL, payload BLOB NOT NULL)",
    )
    .map_err(err)?;
    Ok(Box::new(Sqlite {
        conn: Mutex::new(conn),
    }))
}

impl Peer for Sqlite {
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError> {
        let conn = self.conn.lock();
        conn.prepare_cached("INSERT INTO log (lane, payload) VALUES (?1, ?2)")
            .and_then(|mut insert| insert.execute((lane, record)))
            .map(drop)
            .map_err(|e| BenchError::system(NAME, "appending", e))
    }

    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let mut conn = self.conn.lock();
        let err = |e| BenchError::system(NAME, "appending a batch", e);
        let tx = conn.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO log (lane, payload) VALUES (?1, ?2)")
                .map_err(err)?;
            for record in records {
                insert.execute((lane, record)).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn count(&self) -> Result<u64, BenchError> {
        self.conn
            .lock()
            .query_row("SELECT count(*) FROM log", [], |row| row.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| BenchError::system(NAME, "counting", e))
    }

    fn close(&self) -> Result<(), BenchError> {
        self.conn
            .lock()
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
            .map_err(|e| BenchError::system(NAME, "closing", e))
    }
}

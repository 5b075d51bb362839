//! The per-repository state database (SQLite, WAL).
//!
//! It remembers what this computer knows so a sync cycle does not start from
//! scratch: each path's last synced metadata and version (so unchanged
//! files are recognised without reading them), where chunks can be found,
//! how far each other client's journal has been processed, and which
//! objects this client still holds on the relay. Losing it costs time, not
//! data: the relay and the folder are the truth.
//!
//! The schema is created and upgraded by numbered migrations run at open,
//! recorded in SQLite's `user_version`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::crypto::{ChunkId, ContentId};
use crate::ids::{ClientId, ObjectId};
use crate::path::RelPath;
use crate::version::VersionVector;

/// Each entry upgrades the schema by one version; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE files (
         path TEXT PRIMARY KEY,
         kind TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'deleted')),
         size INTEGER NOT NULL,
         mtime_ns INTEGER NOT NULL,
         inode INTEGER NOT NULL,
         executable INTEGER NOT NULL,
         content TEXT,
         chunks TEXT,
         version TEXT NOT NULL,
         origin TEXT NOT NULL
     );
     CREATE TABLE local_chunks (
         chunk TEXT NOT NULL,
         path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
         offset INTEGER NOT NULL,
         size INTEGER NOT NULL
     );
     CREATE INDEX local_chunks_by_chunk ON local_chunks(chunk);
     CREATE INDEX local_chunks_by_path ON local_chunks(path);
     CREATE TABLE chunk_locations (
         chunk TEXT PRIMARY KEY,
         client TEXT NOT NULL,
         object TEXT NOT NULL,
         offset INTEGER NOT NULL,
         length INTEGER NOT NULL
     );
     CREATE TABLE peers (
         client TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         processed INTEGER NOT NULL,
         generation INTEGER NOT NULL,
         updated INTEGER NOT NULL
     );
     CREATE TABLE own_objects (
         object TEXT PRIMARY KEY,
         seq INTEGER NOT NULL,
         size INTEGER NOT NULL
     );
     CREATE TABLE own_batches (
         seq INTEGER PRIMARY KEY,
         files INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     );",
    // 2: windows of large files, re-requests, retired clients.
    "CREATE TABLE staged_chunks (
         chunk TEXT PRIMARY KEY,
         size INTEGER NOT NULL,
         added INTEGER NOT NULL
     );
     CREATE TABLE wanted (
         content TEXT PRIMARY KEY,
         requester TEXT NOT NULL,
         seen INTEGER NOT NULL
     );
     CREATE TABLE requests (
         content TEXT PRIMARY KEY,
         requested INTEGER NOT NULL
     );
     CREATE TABLE retired (client TEXT PRIMARY KEY);
     CREATE INDEX files_by_content ON files(content);
     CREATE TABLE chunk_places (
         chunk TEXT NOT NULL,
         client TEXT NOT NULL,
         object TEXT NOT NULL,
         offset INTEGER NOT NULL,
         length INTEGER NOT NULL,
         PRIMARY KEY (chunk, client, object)
     );
     INSERT INTO chunk_places SELECT chunk, client, object, offset, length FROM chunk_locations;
     DROP TABLE chunk_locations;
     ALTER TABLE chunk_places RENAME TO chunk_locations;
     CREATE INDEX chunk_locations_by_object ON chunk_locations(client, object);",
    // 3: conflict copies waiting to be announced.
    "CREATE TABLE announcements (path TEXT PRIMARY KEY);",
];

/// A failure of the state database.
#[derive(Debug, thiserror::Error)]
#[error("the state database {}: {source}", path.display())]
pub struct StateError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

type Result<T> = std::result::Result<T, StateError>;

/// What the database remembers about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileState {
    /// The path inside the synced folder.
    pub(crate) path: RelPath,
    /// File, folder, or a remembered deletion.
    pub(crate) kind: StateKind,
    /// Size in bytes when last synced (0 for folders and deletions).
    pub(crate) size: u64,
    /// Modification time when last synced.
    pub(crate) mtime_ns: i64,
    /// Inode number when last synced (0 where unavailable).
    pub(crate) inode: u64,
    /// Unix execute permission.
    pub(crate) executable: bool,
    /// The content identifier (files only).
    pub(crate) content: Option<ContentId>,
    /// The content's chunks in order (files only).
    pub(crate) chunks: Vec<ChunkRef>,
    /// The version vector of this version.
    pub(crate) version: VersionVector,
    /// The client that made this version.
    pub(crate) origin: ClientId,
}

impl FileState {
    /// A remembered deletion of `path`, with the version that deleted it.
    pub(crate) fn deleted(path: RelPath, version: VersionVector, origin: ClientId) -> Self {
        FileState {
            path,
            kind: StateKind::Deleted,
            size: 0,
            mtime_ns: 0,
            inode: 0,
            executable: false,
            content: None,
            chunks: Vec::new(),
            version,
            origin,
        }
    }
}

/// Whether a path is a file, a folder, or was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// Deleted; remembered so the deletion's version can be compared.
    Deleted,
}

impl StateKind {
    fn as_str(self) -> &'static str {
        match self {
            StateKind::File => "file",
            StateKind::Dir => "dir",
            StateKind::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "file" => StateKind::File,
            "dir" => StateKind::Dir,
            _ => StateKind::Deleted,
        }
    }
}

/// One chunk of a file's content: its keyed identifier and plaintext size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    /// The keyed chunk identifier.
    pub(crate) id: ChunkId,
    /// Plaintext size in bytes.
    pub(crate) size: u64,
}

/// Where a sealed chunk lies on the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLocation {
    /// The client that owns the object.
    pub(crate) client: ClientId,
    /// The object holding the chunk.
    pub(crate) object: ObjectId,
    /// Offset of the sealed chunk inside the object.
    pub(crate) offset: u64,
    /// Length of the sealed chunk.
    pub(crate) length: u64,
}

/// What this client knows about another client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerState {
    /// Its display name.
    pub(crate) name: String,
    /// Every batch up to this one has been processed.
    pub(crate) processed: u64,
    /// The highest head generation seen (older heads are ignored).
    pub(crate) generation: u64,
    /// When its newest head was written (Unix seconds).
    pub(crate) updated: i64,
}

/// An open state database.
pub(crate) struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl StateDb {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let fail = |source| StateError {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(fail)?;
        let current: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if current > MIGRATIONS.len() {
            return Err(fail(rusqlite::Error::InvalidParameterName(format!(
                "it was written by a newer Escale (schema {current}, this version knows {})",
                MIGRATIONS.len()
            ))));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = conn.transaction().map_err(fail)?;
            tx.execute_batch(migration).map_err(fail)?;
            tx.pragma_update(None, "user_version", index + 1)
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> StateError {
        StateError {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `work` in one transaction: all of it is stored, or none.
    pub(crate) fn transaction<T>(&mut self, work: impl FnOnce(&StateDb) -> Result<T>) -> Result<T> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.fail(e))?;
        match work(self) {
            Ok(value) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| self.fail(e))?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(error)
            }
        }
    }

    /// A value from the key-value table.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// Stores a value in the key-value table.
    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// A numeric meta value, 0 when absent.
    pub(crate) fn meta_u64(&self, key: &str) -> Result<u64> {
        Ok(self
            .meta(key)?
            .and_then(|value| value.parse().ok())
            .unwrap_or(0))
    }

    fn row_to_file(row: &rusqlite::Row<'_>) -> rusqlite::Result<FileState> {
        let bad = |column: usize, message: String| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                message.into(),
            )
        };
        let path: String = row.get(0)?;
        let kind: String = row.get(1)?;
        let content: Option<String> = row.get(6)?;
        let chunks: Option<String> = row.get(7)?;
        let version: String = row.get(8)?;
        let origin: String = row.get(9)?;
        Ok(FileState {
            path: RelPath::new(&path).map_err(|e| bad(0, e.to_string()))?,
            kind: StateKind::parse(&kind),
            size: to_u64(row.get(2)?),
            mtime_ns: row.get(3)?,
            inode: to_u64(row.get(4)?),
            executable: row.get(5)?,
            content: content
                .map(|text| text.parse().map_err(|_| bad(6, "content id".into())))
                .transpose()?,
            chunks: chunks
                .map(|text| serde_json::from_str(&text).map_err(|e| bad(7, e.to_string())))
                .transpose()?
                .unwrap_or_default(),
            version: serde_json::from_str(&version).map_err(|e| bad(8, e.to_string()))?,
            origin: origin.parse().map_err(|_| bad(9, "client id".into()))?,
        })
    }

    const FILE_COLUMNS: &'static str =
        "path, kind, size, mtime_ns, inode, executable, content, chunks, version, origin";

    /// What is known about `path`, if anything.
    pub(crate) fn file(&self, path: &RelPath) -> Result<Option<FileState>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM files WHERE path = ?1", Self::FILE_COLUMNS),
                [path.as_str()],
                Self::row_to_file,
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// Every known path, deletions included, sorted by path.
    pub(crate) fn files(&self) -> Result<Vec<FileState>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM files ORDER BY path",
                Self::FILE_COLUMNS
            ))
            .map_err(|e| self.fail(e))?;
        statement
            .query_map([], Self::row_to_file)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))
    }

    /// Records `state` for its path, replacing what was there, and indexes
    /// its chunks as available locally.
    pub(crate) fn put_file(&self, state: &FileState) -> Result<()> {
        let chunks = (state.kind == StateKind::File)
            .then(|| serde_json::to_string(&state.chunks).expect("chunk lists always serialize"));
        let version = serde_json::to_string(&state.version).expect("versions always serialize");
        let path = state.path.as_str();
        self.conn
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO files ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    Self::FILE_COLUMNS
                ),
                params![
                    path,
                    state.kind.as_str(),
                    to_i64(state.size),
                    state.mtime_ns,
                    to_i64(state.inode),
                    state.executable,
                    state.content.map(|c| c.to_string()),
                    chunks,
                    version,
                    state.origin.to_string(),
                ],
            )
            .map_err(|e| self.fail(e))?;
        self.conn
            .execute("DELETE FROM local_chunks WHERE path = ?1", [path])
            .map_err(|e| self.fail(e))?;
        if state.kind == StateKind::File {
            let mut insert = self
                .conn
                .prepare_cached(
                    "INSERT INTO local_chunks (chunk, path, offset, size) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.fail(e))?;
            let mut offset = 0u64;
            for chunk in &state.chunks {
                insert
                    .execute(params![
                        chunk.id.to_string(),
                        path,
                        to_i64(offset),
                        to_i64(chunk.size)
                    ])
                    .map_err(|e| self.fail(e))?;
                offset += chunk.size;
            }
        }
        Ok(())
    }

    /// Places in local files where chunk `id` was when they were synced.
    /// The caller re-verifies the bytes: the file may have changed since.
    pub(crate) fn local_chunk_sources(&self, id: &ChunkId) -> Result<Vec<(RelPath, u64, u64)>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT path, offset, size FROM local_chunks WHERE chunk = ?1")
            .map_err(|e| self.fail(e))?;
        let rows: Vec<(String, i64, i64)> = statement
            .query_map([id.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(path, offset, size)| {
                Some((RelPath::new(&path).ok()?, to_u64(offset), to_u64(size)))
            })
            .collect())
    }

    /// Whether chunk `id` has ever been seen (locally or announced on the relay).
    pub(crate) fn chunk_known(&self, id: &ChunkId) -> Result<bool> {
        let text = id.to_string();
        let local: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM local_chunks WHERE chunk = ?1)
                     OR EXISTS (SELECT 1 FROM chunk_locations WHERE chunk = ?1)",
                [&text],
                |row| row.get(0),
            )
            .map_err(|e| self.fail(e))?;
        Ok(local)
    }

    /// Remembers a place where a chunk lies on the relay. A chunk can have
    /// several (uploaded again on request); announcing a known place again
    /// (a batch read a second time) keeps its age.
    pub(crate) fn put_chunk_location(&self, id: &ChunkId, at: &ChunkLocation) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO chunk_locations (chunk, client, object, offset, length)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id.to_string(),
                    at.client.to_string(),
                    at.object.to_string(),
                    to_i64(at.offset),
                    to_i64(at.length)
                ])
            })
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Where chunk `id` lies on the relay, newest announcement first.
    pub(crate) fn chunk_locations(&self, id: &ChunkId) -> Result<Vec<ChunkLocation>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT client, object, offset, length FROM chunk_locations WHERE chunk = ?1
                 ORDER BY rowid DESC",
            )
            .map_err(|e| self.fail(e))?;
        let rows: Vec<(String, String, i64, i64)> = statement
            .query_map([id.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(client, object, offset, length)| {
                Some(ChunkLocation {
                    client: client.parse().ok()?,
                    object: object.parse().ok()?,
                    offset: to_u64(offset),
                    length: to_u64(length),
                })
            })
            .collect())
    }

    /// Forgets the relay locations inside objects that were deleted.
    pub(crate) fn forget_object_locations(
        &self,
        client: &ClientId,
        object: &ObjectId,
    ) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM chunk_locations WHERE client = ?1 AND object = ?2",
                [client.to_string(), object.to_string()],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Every other client this client has heard of.
    pub(crate) fn peers(&self) -> Result<HashMap<ClientId, PeerState>> {
        let mut statement = self
            .conn
            .prepare("SELECT client, name, processed, generation, updated FROM peers")
            .map_err(|e| self.fail(e))?;
        let rows: Vec<(String, String, i64, i64, i64)> = statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(client, name, processed, generation, updated)| {
                Some((
                    client.parse().ok()?,
                    PeerState {
                        name,
                        processed: to_u64(processed),
                        generation: to_u64(generation),
                        updated,
                    },
                ))
            })
            .collect())
    }

    /// Stores what is known about another client.
    pub(crate) fn put_peer(&self, client: &ClientId, peer: &PeerState) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO peers (client, name, processed, generation, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    client.to_string(),
                    peer.name,
                    to_i64(peer.processed),
                    to_i64(peer.generation),
                    peer.updated
                ],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Records an object this client published in batch `seq`.
    pub(crate) fn put_own_object(&self, object: &ObjectId, seq: u64, size: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO own_objects (object, seq, size) VALUES (?1, ?2, ?3)",
                params![object.to_string(), to_i64(seq), to_i64(size)],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// This client's objects still on the relay: (object, batch, size).
    pub(crate) fn own_objects(&self) -> Result<Vec<(ObjectId, u64, u64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT object, seq, size FROM own_objects ORDER BY seq")
            .map_err(|e| self.fail(e))?;
        let rows: Vec<(String, i64, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(object, seq, size)| {
                Some((object.parse().ok()?, to_u64(seq), to_u64(size)))
            })
            .collect())
    }

    /// Forgets an own object after deleting it from the relay.
    pub(crate) fn remove_own_object(&self, object: &ObjectId) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM own_objects WHERE object = ?1",
                [object.to_string()],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Records the size of a batch this client published.
    pub(crate) fn put_own_batch(&self, seq: u64, files: u64, bytes: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO own_batches (seq, files, bytes) VALUES (?1, ?2, ?3)",
                params![to_i64(seq), to_i64(files), to_i64(bytes)],
            )
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Every live file whose content is `content`.
    pub(crate) fn files_with_content(&self, content: &ContentId) -> Result<Vec<FileState>> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM files WHERE content = ?1 AND kind = 'file'",
                Self::FILE_COLUMNS
            ))
            .map_err(|e| self.fail(e))?;
        statement
            .query_map([content.to_string()], Self::row_to_file)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))
    }

    /// Runs a statement that changes rows.
    fn change(&self, sql: &str, values: impl rusqlite::Params) -> Result<()> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Reads `(key, number)` rows; rows whose key does not parse are skipped.
    fn keyed<K: std::str::FromStr>(&self, sql: &str) -> Result<Vec<(K, i64)>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.fail(e))?;
        let rows: Vec<(String, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, value)| Some((key.parse().ok()?, value)))
            .collect())
    }

    /// Remembers a chunk kept in the staging folder since `added` (seconds).
    pub(crate) fn put_staged(&self, id: &ChunkId, size: u64, added: i64) -> Result<()> {
        self.change(
            "INSERT OR REPLACE INTO staged_chunks (chunk, size, added) VALUES (?1, ?2, ?3)",
            params![id.to_string(), to_i64(size), added],
        )
    }

    /// The staged chunks, with when each was added.
    pub(crate) fn staged_chunks(&self) -> Result<Vec<(ChunkId, i64)>> {
        self.keyed("SELECT chunk, added FROM staged_chunks")
    }

    /// Whether chunk `id` is staged.
    pub(crate) fn is_staged(&self, id: &ChunkId) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM staged_chunks WHERE chunk = ?1)",
                [id.to_string()],
                |row| row.get(0),
            )
            .map_err(|e| self.fail(e))
    }

    /// Forgets a staged chunk.
    pub(crate) fn remove_staged(&self, id: &ChunkId) -> Result<()> {
        self.change(
            "DELETE FROM staged_chunks WHERE chunk = ?1",
            [id.to_string()],
        )
    }

    /// Remembers that `requester` asked for `content` again, first seen
    /// at `seen` (seconds; a repeated request keeps the first time).
    pub(crate) fn put_wanted(
        &self,
        content: &ContentId,
        requester: &ClientId,
        seen: i64,
    ) -> Result<()> {
        self.change(
            "INSERT OR IGNORE INTO wanted (content, requester, seen) VALUES (?1, ?2, ?3)",
            params![content.to_string(), requester.to_string(), seen],
        )
    }

    /// Contents other clients asked for and nobody supplied yet, with when
    /// each request was first seen.
    pub(crate) fn wanted(&self) -> Result<Vec<(ContentId, i64)>> {
        self.keyed("SELECT content, seen FROM wanted")
    }

    /// Forgets a request of another client (supplied, by this client or another).
    pub(crate) fn remove_wanted(&self, content: &ContentId) -> Result<()> {
        self.change(
            "DELETE FROM wanted WHERE content = ?1",
            [content.to_string()],
        )
    }

    /// This client's own open requests, with when each was last sent.
    pub(crate) fn requests(&self) -> Result<HashMap<ContentId, i64>> {
        Ok(self
            .keyed("SELECT content, requested FROM requests")?
            .into_iter()
            .collect())
    }

    /// Records that this client asked for `content` at `when` (seconds).
    pub(crate) fn put_request(&self, content: &ContentId, when: i64) -> Result<()> {
        self.change(
            "INSERT OR REPLACE INTO requests (content, requested) VALUES (?1, ?2)",
            params![content.to_string(), when],
        )
    }

    /// Closes one of this client's requests.
    pub(crate) fn remove_request(&self, content: &ContentId) -> Result<()> {
        self.change(
            "DELETE FROM requests WHERE content = ?1",
            [content.to_string()],
        )
    }

    /// Marks the conflict copy at `path` for announcing as it is recorded
    /// (see [`crate::sync`]'s conflict handling).
    pub(crate) fn put_announcement(&self, path: &RelPath) -> Result<()> {
        self.change(
            "INSERT OR IGNORE INTO announcements (path) VALUES (?1)",
            [path.as_str()],
        )
    }

    /// The conflict copies waiting to be announced.
    pub(crate) fn announcements(&self) -> Result<Vec<RelPath>> {
        let mut statement = self
            .conn
            .prepare("SELECT path FROM announcements ORDER BY path")
            .map_err(|e| self.fail(e))?;
        let paths = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
            .map_err(|e| self.fail(e))?;
        // A path this version cannot read was never written by it: dropped.
        Ok(paths.iter().filter_map(|p| RelPath::new(p).ok()).collect())
    }

    /// Forgets the announcement of the copy at `path`.
    pub(crate) fn remove_announcement(&self, path: &RelPath) -> Result<()> {
        self.change("DELETE FROM announcements WHERE path = ?1", [path.as_str()])
    }

    /// Records that this client retired `client`.
    pub(crate) fn retire(&self, client: &ClientId) -> Result<()> {
        self.change(
            "INSERT OR IGNORE INTO retired (client) VALUES (?1)",
            [client.to_string()],
        )
    }

    /// The clients this client retired.
    pub(crate) fn retired(&self) -> Result<Vec<ClientId>> {
        let rows: Vec<(ClientId, i64)> = self.keyed("SELECT client, 0 FROM retired")?;
        Ok(rows.into_iter().map(|(client, _)| client).collect())
    }

    /// Files and bytes this client published after batch `after`.
    pub(crate) fn own_batches_after(&self, after: u64) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0) FROM own_batches WHERE seq > ?1",
                [to_i64(after)],
                |row| Ok((to_u64(row.get(0)?), to_u64(row.get(1)?))),
            )
            .map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &str) -> FileState {
        FileState {
            path: RelPath::new(path).unwrap(),
            kind: StateKind::File,
            size: 3,
            mtime_ns: 1_700_000_000_000_000_000,
            inode: 42,
            executable: true,
            content: Some(ContentId::from_bytes([7; 32])),
            chunks: vec![
                ChunkRef {
                    id: ChunkId::from_bytes([1; 32]),
                    size: 1,
                },
                ChunkRef {
                    id: ChunkId::from_bytes([2; 32]),
                    size: 2,
                },
            ],
            version: VersionVector::default().bump(ClientId([9; 16]), 3),
            origin: ClientId([9; 16]),
        }
    }

    #[test]
    fn migrations_run_once_and_reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        {
            let db = StateDb::open(&path).unwrap();
            db.put_file(&sample("a/b.txt")).unwrap();
            db.set_meta("client", "x").unwrap();
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(
            db.file(&RelPath::new("a/b.txt").unwrap()).unwrap(),
            Some(sample("a/b.txt"))
        );
        assert_eq!(db.meta("client").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn local_chunk_index_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db")).unwrap();
        db.put_file(&sample("x")).unwrap();
        let sources = db
            .local_chunk_sources(&ChunkId::from_bytes([2; 32]))
            .unwrap();
        assert_eq!(sources, vec![(RelPath::new("x").unwrap(), 1, 2)]);
        let mut deleted = sample("x");
        deleted.kind = StateKind::Deleted;
        db.put_file(&deleted).unwrap();
        assert!(
            db.local_chunk_sources(&ChunkId::from_bytes([2; 32]))
                .unwrap()
                .is_empty()
        );
        assert!(!db.chunk_known(&ChunkId::from_bytes([2; 32])).unwrap());
    }

    #[test]
    fn a_failed_transaction_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("s.db")).unwrap();
        let result: Result<()> = db.transaction(|db| {
            db.put_file(&sample("x"))?;
            Err(db.fail(rusqlite::Error::InvalidQuery))
        });
        assert!(result.is_err());
        assert_eq!(db.file(&RelPath::new("x").unwrap()).unwrap(), None);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = StateDb::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer Escale"), "{err}");
    }
}

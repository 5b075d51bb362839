//! Sending: find what changed in the folder, upload new chunks packed into
//! objects, then publish the journal batch and the head that points to it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;

use bytes::Bytes;

use crate::chunker;
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::format::{self, Batch, ChunkPlacement, ObjectEntry, Record, WireRecord};
use crate::ids::ObjectId;
use crate::path::RelPath;
use crate::scan::{self, EntryKind, Scan, ScannedEntry};
use crate::state::{ChunkLocation, ChunkRef, FileState, StateKind};
use crate::sync::{Problem, Session};
use crate::version::VersionVector;

/// Collects sealed chunks into objects and uploads each object once full.
struct Packer {
    current: Option<(ObjectId, Vec<u8>, Vec<ChunkPlacement>)>,
    done: Vec<ObjectEntry>,
    /// Chunks already packed in this batch, so a repeated chunk is sent once.
    packed: HashSet<ChunkId>,
    uploaded_bytes: u64,
}

impl Packer {
    fn new() -> Self {
        Packer {
            current: None,
            done: Vec::new(),
            packed: HashSet::new(),
            uploaded_bytes: 0,
        }
    }

    fn add(&mut self, session: &Session, id: ChunkId, plain: &[u8]) -> Result<()> {
        if !self.packed.insert(id) {
            return Ok(());
        }
        let (object, buffer, placements) = self
            .current
            .get_or_insert_with(|| (ObjectId::random(), Vec::new(), Vec::new()));
        let sealed = session.codec.seal_chunk(&session.me, object, &id, plain);
        placements.push(ChunkPlacement {
            id,
            offset: buffer.len() as u64,
            length: sealed.len() as u64,
        });
        buffer.extend_from_slice(&sealed);
        if buffer.len() as u64 >= format::OBJECT_TARGET_SIZE {
            self.flush(session)?;
        }
        Ok(())
    }

    fn flush(&mut self, session: &Session) -> Result<()> {
        let Some((id, buffer, chunks)) = self.current.take() else {
            return Ok(());
        };
        let size = buffer.len() as u64;
        session
            .relay
            .create_dir(&format::objects_dir(&session.me))?;
        session
            .relay
            .write(&format::object_path(&session.me, &id), Bytes::from(buffer))?;
        self.uploaded_bytes += size;
        self.done.push(ObjectEntry { id, size, chunks });
        Ok(())
    }
}

/// A change found by the scan, ready to be published.
struct Outgoing {
    record: Record,
    state: FileState,
}

impl Session {
    /// Publishes local changes as batch `seq`, if there are any.
    pub(crate) fn publish(&mut self, seq: u64) -> Result<()> {
        let view = self.local_view()?;
        for skipped in &view.scan.skipped {
            self.report.problems.push(Problem::new(
                Some(&skipped.path.display().to_string()),
                "skipped",
                skipped.reason.clone(),
            ));
        }
        let known = &view.known;
        let mut packer = Packer::new();
        let mut outgoing = Vec::new();

        for entry in &view.scan.entries {
            self.check_stop()?;
            let previous = known.get(&entry.path);
            if !differs(previous, entry) {
                continue;
            }
            let base = previous.map(|p| p.version.clone()).unwrap_or_default();
            match entry.kind {
                EntryKind::Dir => {
                    outgoing.push(self.dir_change(entry, base.bump(self.me, seq)));
                }
                EntryKind::File => {
                    let Some((content, chunks)) = self.read_and_pack(entry, &mut packer)? else {
                        continue;
                    };
                    if let Some(p) = previous
                        && p.kind == StateKind::File
                        && p.content == Some(content)
                        && p.mtime_ns == entry.mtime_ns
                        && p.executable == entry.executable
                    {
                        // Same content and time, new inode (an editor that
                        // saves by replacing): remember the new metadata only.
                        let mut refreshed = p.clone();
                        refreshed.size = entry.size;
                        refreshed.inode = entry.inode;
                        self.db.put_file(&refreshed)?;
                        continue;
                    }
                    outgoing.push(self.file_change(
                        entry,
                        content,
                        chunks,
                        base.bump(self.me, seq),
                    ));
                }
            }
        }

        for state in self.gone(&view) {
            let version = state.version.bump(self.me, seq);
            outgoing.push(Outgoing {
                record: Record {
                    path: state.path.clone(),
                    change: format::Change::Delete,
                    version: version.clone(),
                    origin: self.me,
                },
                state: FileState::deleted(state.path.clone(), version, self.me),
            });
        }

        if outgoing.is_empty() {
            return Ok(());
        }
        packer.flush(self)?;
        let batch = Batch {
            seq,
            objects: packer.done.clone(),
            records: outgoing
                .iter()
                .map(|o| WireRecord::from(&o.record))
                .collect(),
        };
        self.relay.create_dir(&format::journal_dir(&self.me))?;
        self.relay.write(
            &format::batch_path(&self.me, seq),
            Bytes::from(self.codec.seal_batch(&self.me, &batch)),
        )?;
        self.db.set_meta("journal", &seq.to_string())?;
        self.write_head(packer.uploaded_bytes)?;

        let bytes: u64 = outgoing.iter().map(|o| o.state.size).sum();
        let count = outgoing.len() as u64;
        let me = self.me;
        self.db.transaction(|db| {
            for change in &outgoing {
                db.put_file(&change.state)?;
            }
            for object in &packer.done {
                db.put_own_object(&object.id, seq, object.size)?;
                for chunk in &object.chunks {
                    db.put_chunk_location(
                        &chunk.id,
                        &ChunkLocation {
                            client: me,
                            object: object.id,
                            offset: chunk.offset,
                            length: chunk.length,
                        },
                    )?;
                }
            }
            db.put_own_batch(seq, count, bytes)
        })?;
        self.report.changes_sent += count;
        self.report.bytes_uploaded += packer.uploaded_bytes;
        Ok(())
    }

    fn dir_change(&self, entry: &ScannedEntry, version: VersionVector) -> Outgoing {
        Outgoing {
            record: Record {
                path: entry.path.clone(),
                change: format::Change::Dir,
                version: version.clone(),
                origin: self.me,
            },
            state: FileState {
                path: entry.path.clone(),
                kind: StateKind::Dir,
                size: 0,
                mtime_ns: entry.mtime_ns,
                inode: entry.inode,
                executable: false,
                content: None,
                chunks: Vec::new(),
                version,
                origin: self.me,
            },
        }
    }

    fn file_change(
        &self,
        entry: &ScannedEntry,
        content: crate::crypto::ContentId,
        chunks: Vec<ChunkRef>,
        version: VersionVector,
    ) -> Outgoing {
        Outgoing {
            record: Record {
                path: entry.path.clone(),
                change: format::Change::File {
                    size: entry.size,
                    mtime_ns: entry.mtime_ns,
                    executable: entry.executable,
                    content,
                    chunks: chunks.clone(),
                },
                version: version.clone(),
                origin: self.me,
            },
            state: FileState {
                path: entry.path.clone(),
                kind: StateKind::File,
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                inode: entry.inode,
                executable: entry.executable,
                content: Some(content),
                chunks,
                version,
                origin: self.me,
            },
        }
    }

    /// Reads a changed file once: chunks it, computes the identifiers, and
    /// packs the chunks the relay has never carried. Returns `None` (and
    /// reports it) if the file changed while being read: it is picked up
    /// again, whole, at the next cycle.
    fn read_and_pack(
        &mut self,
        entry: &ScannedEntry,
        packer: &mut Packer,
    ) -> Result<Option<(crate::crypto::ContentId, Vec<ChunkRef>)>> {
        let local = entry.path.to_local(&self.folder);
        let io_error = |source| Error::LocalIo {
            path: local.clone(),
            source,
        };
        let file = match File::open(&local) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                self.report.problems.push(Problem::from_error(
                    Some(entry.path.as_str()),
                    &io_error(error),
                ));
                return Ok(None);
            }
        };
        let mut chunks = Vec::new();
        let mut failure: Option<Error> = None;
        let mut hashed = 0u64;
        let session: &Session = self;
        // Read at most one byte more than scanned: growth is detected, and a
        // file appended to without end cannot hold the cycle forever.
        let read = chunker::for_each_chunk(file.take(entry.size.saturating_add(1)), |chunk| {
            let id = session.codec.keys().chunk_id(&chunk.data);
            hashed += chunk.data.len() as u64;
            let step = match session.db.chunk_known(&id) {
                Ok(true) => Ok(()),
                Ok(false) => packer.add(session, id, &chunk.data),
                Err(error) => Err(error.into()),
            };
            if let Err(error) = step {
                failure = Some(error);
                return Err(std::io::Error::other("stopped"));
            }
            chunks.push(ChunkRef {
                id,
                size: chunk.data.len() as u64,
            });
            Ok(())
        });
        self.report.bytes_hashed += hashed;
        if let Some(error) = failure {
            return Err(error);
        }
        let total = read.map_err(io_error)?;
        let after = scan::stat(&self.folder, &entry.path).map_err(io_error)?;
        let stable = after.is_some_and(|now| {
            now.size == entry.size && now.mtime_ns == entry.mtime_ns && total == entry.size
        });
        if !stable {
            self.report.problems.push(Problem::new(
                Some(entry.path.as_str()),
                "file_changing",
                format!(
                    "{} changed while it was being read; it will be sent once it stays unchanged",
                    entry.path.as_str()
                ),
            ));
            return Ok(None);
        }
        let ids: Vec<ChunkId> = chunks.iter().map(|c: &ChunkRef| c.id).collect();
        let content = self.codec.keys().content_id(&ids, total);
        Ok(Some((content, chunks)))
    }
}

/// Whether a scanned entry differs from what was last synced. Files are
/// compared by size, time, inode and permission only: an unchanged file is
/// not read at all.
pub(crate) fn differs(previous: Option<&FileState>, entry: &ScannedEntry) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    match entry.kind {
        EntryKind::Dir => previous.kind != StateKind::Dir,
        EntryKind::File => {
            previous.kind != StateKind::File
                || previous.size != entry.size
                || previous.mtime_ns != entry.mtime_ns
                || previous.inode != entry.inode
                || previous.executable != entry.executable
        }
    }
}

/// The folder as scanned, beside what the database knows of it: what both
/// sending and `status` start from.
pub(crate) struct LocalView {
    /// The scan, without the paths that stay on this computer.
    pub(crate) scan: Scan,
    /// Every path the database knows, deletions included.
    pub(crate) known: HashMap<RelPath, FileState>,
}

impl Session {
    /// Scans the folder (metadata only) and loads what the database knows.
    pub(crate) fn local_view(&self) -> Result<LocalView> {
        let mut scan = scan::scan(&self.folder).map_err(|source| Error::LocalIo {
            path: self.folder.clone(),
            source,
        })?;
        scan.entries
            .retain(|entry| !self.stays_local(&entry.path, entry.kind == EntryKind::Dir));
        let known = self
            .db
            .files()?
            .into_iter()
            .map(|state| (state.path.clone(), state))
            .collect();
        Ok(LocalView { scan, known })
    }

    /// Known paths gone from the folder: the deletions to send, deepest
    /// first so a folder's files go before the folder. What lies in a folder
    /// that could not be read is not gone, nor is what stays local.
    pub(crate) fn gone<'a>(&self, view: &'a LocalView) -> Vec<&'a FileState> {
        let present: HashSet<&RelPath> = view.scan.entries.iter().map(|e| &e.path).collect();
        let mut gone: Vec<&FileState> = view
            .known
            .values()
            .filter(|state| state.kind != StateKind::Deleted && !present.contains(&state.path))
            .filter(|state| !self.stays_local(&state.path, state.kind == StateKind::Dir))
            .filter(|state| {
                !view
                    .scan
                    .unreadable_dirs
                    .iter()
                    .any(|dir| state.path.is_under(dir) || state.path == *dir)
            })
            .collect();
        gone.sort_by(|a, b| b.path.cmp(&a.path));
        gone
    }
}

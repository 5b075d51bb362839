//! Receiving: read the other clients' new journal batches and make the
//! local folder match, one record at a time, never overwriting a file the
//! user changed meanwhile.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::config::RuleMode;
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::format::{Change, Record, WireRecord};
use crate::ids::ClientId;
use crate::path::RelPath;
use crate::scan::{self, EntryKind};
use crate::state::{ChunkLocation, ChunkRef, FileState, StateKind};
use crate::sync::planner::{self, ConflictPlan, Decision};
use crate::sync::relay_io::{RelayIo, Transfer};
use crate::sync::{Problem, Session, now_ns};
use crate::version::VersionVector;

/// The code of a record whose content is neither here nor on the relay:
/// the content is asked for again.
const CONTENT_UNAVAILABLE: &str = "content_unavailable";

/// A failure to apply one record; it is retried at the next cycle.
#[derive(Debug)]
struct Deferred(String, String);

impl From<Error> for Deferred {
    fn from(error: Error) -> Self {
        Deferred(error.code().to_owned(), error.to_string())
    }
}

type Step<T = ()> = std::result::Result<T, Deferred>;

/// Chunk reads started ahead of need while a file is assembled, so that
/// up to `transfers` are in flight while the current chunk is written.
///
/// Dropping it (a file that fails) waits for the reads still running, so
/// that none outlives its cycle.
struct ReadAhead {
    relay: RelayIo,
    /// Oldest first: the chunk's index in the file, where it is read from,
    /// and the read.
    pending: VecDeque<(usize, ChunkLocation, Transfer<Option<Bytes>>)>,
    /// The index of the next chunk to consider reading ahead.
    next: usize,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for (_, _, read) in self.pending.drain(..) {
            // Only waited for; what it read is not needed any more.
            let _ = self.relay.wait(read);
        }
    }
}

fn local_io(path: &Path) -> impl Fn(std::io::Error) -> Deferred + '_ {
    move |source| {
        Deferred::from(Error::LocalIo {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Session {
    /// Processes every other client's batches published since last time.
    pub(crate) fn receive(&mut self) -> Result<()> {
        let mut peers: Vec<(ClientId, u64)> = self
            .heads
            .iter()
            .filter_map(|(client, head)| head.as_ref().map(|h| (*client, h.journal)))
            .collect();
        peers.sort();
        let known = self.db.peers()?;
        let pending: u64 = peers
            .iter()
            .map(|(peer, journal)| {
                let processed = known.get(peer).map_or(0, |p| p.processed);
                journal.saturating_sub(processed)
            })
            .sum();
        if pending > 0 {
            self.events
                .progress_start(crate::events::Phase::Receiving, 0, 0);
        }
        // A second pass when the first one failed somewhere but learned where
        // content lies (another client uploaded it again, later in the
        // order): without it, the retry would wait for the next change.
        let problems_before = self.report.problems.len();
        for pass in 0..2 {
            if pass > 0 {
                // The retry reports afresh what still fails.
                self.report.problems.truncate(problems_before);
            }
            self.learned = false;
            let mut failed = false;
            for (peer, journal) in &peers {
                failed |= !self.receive_peer(peer, *journal)?;
            }
            if pass > 0 || !(failed && self.learned) {
                break;
            }
            self.needs.clear();
        }
        Ok(())
    }

    /// Processes one peer's new batches; `false` if one must be retried.
    fn receive_peer(&mut self, peer: &ClientId, journal: u64) -> Result<bool> {
        let Some(mut state) = self.db.peers()?.remove(peer) else {
            return Ok(true);
        };
        let mut first_failure: Option<u64> = None;
        for seq in state.processed + 1..=journal {
            if !self.receive_batch(peer, seq)? {
                first_failure.get_or_insert(seq);
            }
        }
        // Acknowledge only up to the first batch not fully applied, so
        // its data stays on the relay until it is.
        state.processed = first_failure.map_or(journal, |seq| seq - 1);
        self.db.put_peer(peer, &state)?;
        Ok(first_failure.is_none())
    }

    /// Applies one batch; `false` if something in it must be retried.
    fn receive_batch(&mut self, peer: &ClientId, seq: u64) -> Result<bool> {
        let path = crate::format::batch_path(peer, seq);
        let Some(sealed) = self.relay.read(&path, None)? else {
            self.report.problems.push(Problem::new(
                None,
                "relay_not_found",
                format!("journal batch {seq} of client {peer} is missing from the relay"),
            ));
            return Ok(false);
        };
        let batch = match self.codec.open_batch(peer, seq, &sealed) {
            Ok(batch) => batch,
            Err(error) => {
                self.report
                    .problems
                    .push(Problem::from_error(None, &Error::from(error)));
                return Ok(false);
            }
        };
        if !batch.objects.is_empty() {
            self.learned = true;
        }
        for content in &batch.requests {
            self.db
                .put_wanted(content, peer, now_ns() / 1_000_000_000)?;
        }
        for content in &batch.supplies {
            self.db.remove_wanted(content)?;
        }
        for object in &batch.objects {
            for chunk in &object.chunks {
                self.db.put_chunk_location(
                    &chunk.id,
                    &ChunkLocation {
                        client: *peer,
                        object: object.id,
                        offset: chunk.offset,
                        length: chunk.length,
                    },
                )?;
            }
        }
        let names = self.client_names()?;
        // Progress counts what each batch holds as it is opened: the
        // batches of a cycle are read one by one, so the totals grow.
        let size = |wire: &WireRecord| match wire {
            WireRecord::File { size, .. } => *size,
            _ => 0,
        };
        self.events.progress_more(
            batch.records.len() as u64,
            batch.records.iter().map(size).sum(),
        );
        let mut complete = true;
        for wire in &batch.records {
            self.check_stop()?;
            complete &= self.receive_record(peer, wire, &names);
            self.events.progress_done(1, size(wire));
        }
        if batch.prefetch && complete {
            complete = self.prefetch(&batch)?;
        }
        Ok(complete)
    }

    /// Applies one record of a batch from `peer`; `false` if it must be
    /// retried.
    fn receive_record(
        &mut self,
        peer: &ClientId,
        wire: &WireRecord,
        names: &HashMap<ClientId, String>,
    ) -> bool {
        let record = match wire.validate() {
            Ok(record) => record,
            Err((path, error)) => {
                // A refusal is final: nothing will make this path safe.
                self.report.problems.push(Problem::new(
                    None,
                    "unsafe_path",
                    format!("refused a change from client {peer} for the path {path:?}: {error}"),
                ));
                return true;
            }
        };
        // Excluded here, or sent only: this computer does not apply it.
        if !self.receives(&record.path, record.change == Change::Dir) {
            return true;
        }
        self.events.progress_file(record.path.as_str());
        let Err(Deferred(code, message)) = self.apply(&record, names) else {
            return true;
        };
        if code == CONTENT_UNAVAILABLE
            && let Change::File { content, .. } = &record.change
        {
            self.needs
                .push((*content, record.path.clone(), record.version.clone()));
        }
        self.report
            .problems
            .push(Problem::new(Some(record.path.as_str()), &code, message));
        false
    }

    /// Downloads every chunk of a windowed batch that this computer does
    /// not hold yet into the staging folder, where the record that comes
    /// later finds it. `false` if one could not be fetched.
    fn prefetch(&mut self, batch: &crate::format::Batch) -> Result<bool> {
        for object in &batch.objects {
            for chunk in &object.chunks {
                self.check_stop()?;
                if self.db.is_staged(&chunk.id)?
                    || !self.db.local_chunk_sources(&chunk.id)?.is_empty()
                {
                    continue;
                }
                match self.fetch_chunk(&chunk.id, None) {
                    Ok(data) => {
                        let staged = self.work.stage(&chunk.id, &data);
                        staged.map_err(|source| Error::LocalIo {
                            path: self.work.staging_dir(),
                            source,
                        })?;
                        self.db.put_staged(
                            &chunk.id,
                            data.len() as u64,
                            now_ns() / 1_000_000_000,
                        )?;
                    }
                    Err(Deferred(code, message)) => {
                        self.report
                            .problems
                            .push(Problem::new(None, &code, message));
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    fn apply(&mut self, record: &Record, names: &HashMap<ClientId, String>) -> Step {
        let mut local = self.db.file(&record.path).map_err(Error::from)?;
        if self.filter.mode(&record.path, record.change == Change::Dir) == RuleMode::ReceiveOnly {
            local = self.set_aside_local_edit(&record.path, local)?;
        }
        match planner::decide(local.as_ref(), record, names) {
            Decision::Ignore => Ok(()),
            Decision::Merge(version) => {
                let mut state = local.unwrap_or_else(|| deleted_state(record));
                state.version = version;
                self.db.put_file(&state).map_err(Error::from)?;
                Ok(())
            }
            Decision::KeepLocal(version) => {
                let Some(mut state) = local else {
                    return Ok(());
                };
                state.version = version;
                // Make the next scan see the path as changed, so the
                // surviving version is published again on top of both.
                state.mtime_ns = i64::MIN;
                if state.kind == StateKind::Dir {
                    state.kind = StateKind::Deleted;
                }
                self.db.put_file(&state).map_err(Error::from)?;
                Ok(())
            }
            Decision::Apply => match &record.change {
                Change::File { .. } => {
                    self.check_unchanged(&record.path, local.as_ref())?;
                    self.write_version(record, &record.path, local.as_ref(), record.version.clone())
                }
                Change::Dir => self.apply_dir(record, local.as_ref()),
                Change::Delete => self.apply_delete(record, local.as_ref()),
            },
            Decision::Conflict(plan) => self.apply_conflict(record, local.as_ref(), &plan),
        }
    }

    /// In a receive-only path, a local edit is not sent: when a change
    /// arrives, the edited file moves to the versions folder (nothing is
    /// lost) and the path counts as absent, so the change applies cleanly.
    fn set_aside_local_edit(
        &mut self,
        path: &RelPath,
        local: Option<FileState>,
    ) -> Step<Option<FileState>> {
        let now = scan::stat(&self.folder, path).map_err(local_io(&path.to_local(&self.folder)))?;
        if disk_matches(local.as_ref(), now.as_ref()) {
            return Ok(local);
        }
        if now.as_ref().is_some_and(|n| n.kind == EntryKind::File) {
            self.work
                .keep_version(&self.folder, path, now_ns())
                .map_err(local_io(&path.to_local(&self.folder)))?;
        } else if now.is_some() {
            // A folder where a file was: left alone, reported by the caller.
            return Ok(local);
        }
        let Some(mut state) = local else {
            return Ok(None);
        };
        state.kind = StateKind::Deleted;
        state.content = None;
        state.chunks = Vec::new();
        self.db.put_file(&state).map_err(Error::from)?;
        Ok(Some(state))
    }

    /// Refuses to touch `path` if it differs from what the database says
    /// it was: the user changed it during the sync.
    fn check_unchanged(&self, path: &RelPath, expected: Option<&FileState>) -> Step {
        let now = scan::stat(&self.folder, path).map_err(local_io(&path.to_local(&self.folder)))?;
        let same = disk_matches(expected, now.as_ref());
        if same {
            return Ok(());
        }
        if expected.is_none_or(|e| e.kind == StateKind::Deleted)
            && let Some(twin) = self.name_twin(path).map_err(Deferred::from)?
        {
            // A case-insensitive or normalizing filesystem sees the two
            // names as one file: writing would replace the other one.
            return Err(Deferred(
                "name_clash".into(),
                format!(
                    "{} and {} differ only by upper/lower case or accents, which this \
                     computer's file system cannot keep apart; rename one of them",
                    path.as_str(),
                    twin.as_str()
                ),
            ));
        }
        Err(Deferred(
            "local_change".into(),
            format!(
                "{} was changed on this computer during the sync; it will be compared again \
                 at the next sync",
                path.as_str()
            ),
        ))
    }

    /// Another known path that this file system may treat as `path`.
    fn name_twin(&self, path: &RelPath) -> Result<Option<RelPath>> {
        let key = path.collision_key();
        Ok(self
            .db
            .files()?
            .into_iter()
            .find(|state| {
                state.kind != StateKind::Deleted
                    && state.path != *path
                    && state.path.collision_key() == key
            })
            .map(|state| state.path))
    }

    /// Writes the content of `record` to `target` atomically: assemble and
    /// verify in the work folder, then rename over the target (whose old
    /// version goes to the versions folder).
    fn write_version(
        &mut self,
        record: &Record,
        target: &RelPath,
        local: Option<&FileState>,
        version: VersionVector,
    ) -> Step {
        let Change::File {
            size,
            mtime_ns,
            executable,
            content,
            chunks,
        } = &record.change
        else {
            return Ok(());
        };
        let temp = self
            .work
            .temp_path()
            .map_err(local_io(&self.work.versions_dir()))?;
        let assembled = self.assemble(&temp, chunks, *size, content, *mtime_ns, *executable);
        if let Err(error) = assembled {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
        let destination = target.to_local(&self.folder);
        let result = (|| {
            // Checked again right before the rename: the window in which a
            // user's edit could be overwritten is as small as it can be.
            self.check_unchanged(target, local)?;
            if local.is_some_and(|l| l.kind == StateKind::File) {
                self.work
                    .keep_version(&self.folder, target, now_ns())
                    .map_err(local_io(&destination))?;
            }
            self.make_parents(target)?;
            fs::rename(&temp, &destination).map_err(local_io(&destination))
        })();
        if let Err(error) = result {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
        let stat = scan::stat(&self.folder, target)
            .map_err(local_io(&destination))?
            .ok_or_else(|| Deferred("io_error".into(), format!("{} vanished", target.as_str())))?;
        self.db
            .put_file(&FileState {
                path: target.clone(),
                kind: StateKind::File,
                size: *size,
                mtime_ns: stat.mtime_ns,
                inode: stat.inode,
                executable: *executable,
                content: Some(*content),
                chunks: chunks.clone(),
                version,
                origin: record.origin,
            })
            .map_err(Error::from)?;
        self.report.changes_received += 1;
        Ok(())
    }

    /// Builds the file from its chunks, verifies it, fixes its time and
    /// permission, and makes it durable.
    fn assemble(
        &mut self,
        temp: &Path,
        chunks: &[ChunkRef],
        size: u64,
        content: &crate::crypto::ContentId,
        mtime_ns: i64,
        executable: bool,
    ) -> Step {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .map_err(local_io(temp))?;
        let mut total = 0u64;
        let mut ahead = ReadAhead {
            relay: self.relay.clone(),
            pending: VecDeque::new(),
            next: 0,
        };
        for (index, chunk) in chunks.iter().enumerate() {
            self.check_stop()?;
            self.read_ahead(chunks, index, &mut ahead)?;
            let started = if ahead.pending.front().is_some_and(|(at, _, _)| *at == index) {
                ahead.pending.pop_front()
            } else {
                None
            };
            let data = match started {
                Some((_, location, read)) => {
                    let sealed = self.relay.wait(read).map_err(Error::from)?;
                    match self.open_fetched(&chunk.id, &location, Some(chunk.size), sealed)? {
                        Some(plain) => plain,
                        // Gone from there: the other places, or asking again.
                        None => self.fetch_chunk(&chunk.id, Some(chunk.size))?,
                    }
                }
                None => self.fetch_chunk(&chunk.id, Some(chunk.size))?,
            };
            out.write_all(&data).map_err(local_io(temp))?;
            total += data.len() as u64;
        }
        let ids: Vec<ChunkId> = chunks.iter().map(|c| c.id).collect();
        if total != size || self.codec.keys().content_id(&ids, total) != *content {
            return Err(Deferred(
                "relay_data_invalid".into(),
                "the received content does not match its description; nothing was written".into(),
            ));
        }
        out.sync_all().map_err(local_io(temp))?;
        drop(out);
        set_permissions(temp, executable).map_err(local_io(temp))?;
        filetime::set_file_mtime(temp, to_filetime(mtime_ns)).map_err(local_io(temp))?;
        Ok(())
    }

    /// Starts reading from the relay the next chunks of a file (from
    /// `index` on) that neither a local file nor the staging folder holds,
    /// until `transfers` reads are in flight. Only on relays that read
    /// ranges: elsewhere every read ahead would fetch a whole object.
    fn read_ahead(&mut self, chunks: &[ChunkRef], index: usize, ahead: &mut ReadAhead) -> Step {
        if !self.relay.ranged_read() {
            return Ok(());
        }
        let transfers = usize::from(self.settings.transfers.max(1));
        ahead.next = ahead.next.max(index);
        while ahead.pending.len() < transfers && ahead.next < chunks.len() {
            let at = ahead.next;
            ahead.next += 1;
            let id = &chunks[at].id;
            if self.db.is_staged(id).map_err(Error::from)?
                || !self
                    .db
                    .local_chunk_sources(id)
                    .map_err(Error::from)?
                    .is_empty()
            {
                continue;
            }
            // The first place, as `fetch_chunk` would try it; the others
            // are tried there if it is gone.
            let Some(location) = self
                .db
                .chunk_locations(id)
                .map_err(Error::from)?
                .into_iter()
                .next()
            else {
                continue;
            };
            let object = crate::format::object_path(&location.client, &location.object);
            let range = location.offset..location.offset + location.length;
            let read = self.relay.spawn_read(object, Some(range));
            ahead.pending.push_back((at, location, read));
        }
        Ok(())
    }

    /// One chunk's plaintext: from a local file that has it, from the
    /// staging folder, else from the relay. `size`, when known, is checked.
    fn fetch_chunk(&mut self, id: &ChunkId, size: Option<u64>) -> Step<Vec<u8>> {
        for (path, offset, length) in self.db.local_chunk_sources(id).map_err(Error::from)? {
            if size.is_some_and(|size| length != size) {
                continue;
            }
            if let Ok(data) = read_range(&path.to_local(&self.folder), offset, length)
                && self.codec.keys().chunk_id(&data) == *id
            {
                return Ok(data);
            }
        }
        if let Some(data) = self.work.staged(id)
            && self.codec.keys().chunk_id(&data) == *id
        {
            return Ok(data);
        }
        let locations = self.db.chunk_locations(id).map_err(Error::from)?;
        if locations.is_empty() {
            return Err(Deferred(
                CONTENT_UNAVAILABLE.into(),
                "its content is neither on this computer nor on the relay any more; the other \
                 computers are asked to send it again"
                    .into(),
            ));
        }
        for location in locations {
            if let Some(plain) = self.fetch_from(id, &location, size)? {
                return Ok(plain);
            }
        }
        Err(Deferred(
            CONTENT_UNAVAILABLE.into(),
            "its content is no longer on the relay; the other computers are asked to send it \
             again"
                .into(),
        ))
    }

    /// One chunk from one place on the relay; `None` if that object is gone
    /// (its place is then forgotten).
    fn fetch_from(
        &mut self,
        id: &ChunkId,
        location: &ChunkLocation,
        size: Option<u64>,
    ) -> Step<Option<Vec<u8>>> {
        let object = crate::format::object_path(&location.client, &location.object);
        let range = location.offset..location.offset + location.length;
        let sealed = if self.relay.ranged_read() {
            self.relay.read(&object, Some(range)).map_err(Error::from)?
        } else {
            self.relay
                .read(&object, None)
                .map_err(Error::from)?
                .map(|whole| {
                    let start = usize::try_from(range.start)
                        .unwrap_or(usize::MAX)
                        .min(whole.len());
                    let end = usize::try_from(range.end)
                        .unwrap_or(usize::MAX)
                        .min(whole.len());
                    whole.slice(start..end)
                })
        };
        self.open_fetched(id, location, size, sealed)
    }

    /// Opens a chunk read from `location` (`None`: that object is gone, and
    /// its place is forgotten).
    fn open_fetched(
        &mut self,
        id: &ChunkId,
        location: &ChunkLocation,
        size: Option<u64>,
        sealed: Option<Bytes>,
    ) -> Step<Option<Vec<u8>>> {
        let Some(sealed) = sealed else {
            self.db
                .forget_object_locations(&location.client, &location.object)
                .map_err(Error::from)?;
            return Ok(None);
        };
        self.report.bytes_downloaded += sealed.len() as u64;
        let plain = self
            .codec
            .open_chunk(&location.client, &location.object, id, &sealed)
            .map_err(Error::from)?;
        if size.is_some_and(|size| plain.len() as u64 != size) {
            return Err(Deferred(
                "relay_data_invalid".into(),
                "a received chunk has the wrong size; nothing was written".into(),
            ));
        }
        Ok(Some(plain))
    }

    /// Creates the missing parent folders of `path`, remembering them as
    /// known so the next scan does not announce them as new.
    fn make_parents(&mut self, path: &RelPath) -> Step {
        let mut missing = Vec::new();
        let mut parent = path.parent();
        while let Some(dir) = parent {
            if dir.to_local(&self.folder).is_dir() {
                break;
            }
            parent = dir.parent();
            missing.push(dir);
        }
        for dir in missing.into_iter().rev() {
            let local = dir.to_local(&self.folder);
            fs::create_dir(&local).map_err(local_io(&local))?;
            let stat = scan::stat(&self.folder, &dir).map_err(local_io(&local))?;
            self.db
                .put_file(&FileState {
                    path: dir.clone(),
                    kind: StateKind::Dir,
                    size: 0,
                    mtime_ns: stat.map_or(0, |s| s.mtime_ns),
                    inode: 0,
                    executable: false,
                    content: None,
                    chunks: Vec::new(),
                    version: VersionVector::default(),
                    origin: self.me,
                })
                .map_err(Error::from)?;
        }
        Ok(())
    }

    fn apply_dir(&mut self, record: &Record, local: Option<&FileState>) -> Step {
        let target = record.path.to_local(&self.folder);
        if local.is_some_and(|l| l.kind == StateKind::File) {
            return Err(Deferred(
                "type_clash".into(),
                format!(
                    "{} is a file here and a folder elsewhere",
                    record.path.as_str()
                ),
            ));
        }
        self.make_parents(&record.path)?;
        match fs::create_dir(&target) {
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(local_io(&target)(error));
            }
            _ => {}
        }
        let stat = scan::stat(&self.folder, &record.path).map_err(local_io(&target))?;
        self.db
            .put_file(&FileState {
                path: record.path.clone(),
                kind: StateKind::Dir,
                size: 0,
                mtime_ns: stat.as_ref().map_or(0, |s| s.mtime_ns),
                inode: stat.as_ref().map_or(0, |s| s.inode),
                executable: false,
                content: None,
                chunks: Vec::new(),
                version: record.version.clone(),
                origin: record.origin,
            })
            .map_err(Error::from)?;
        self.report.changes_received += 1;
        Ok(())
    }

    fn apply_delete(&mut self, record: &Record, local: Option<&FileState>) -> Step {
        let target = record.path.to_local(&self.folder);
        match local.map(|l| l.kind) {
            Some(StateKind::File) => {
                self.check_unchanged(&record.path, local)?;
                self.work
                    .keep_version(&self.folder, &record.path, now_ns())
                    .map_err(local_io(&target))?;
                self.report.changes_received += 1;
            }
            Some(StateKind::Dir) => match fs::remove_dir(&target) {
                Ok(()) => self.report.changes_received += 1,
                // Not empty: something in it survives, so the folder does too.
                Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    return Ok(());
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(local_io(&target)(error)),
            },
            _ => {}
        }
        self.db
            .put_file(&deleted_state(record))
            .map_err(Error::from)?;
        Ok(())
    }

    fn apply_conflict(
        &mut self,
        record: &Record,
        local: Option<&FileState>,
        plan: &ConflictPlan,
    ) -> Step {
        let copy_target = plan.copy.to_local(&self.folder);
        if plan.remote_wins {
            // The local version moves aside to the conflict copy; the remote
            // one takes the path.
            self.check_unchanged(&record.path, local)?;
            let original = record.path.to_local(&self.folder);
            if copy_target.exists() {
                self.work
                    .keep_version(&self.folder, &record.path, now_ns())
                    .map_err(local_io(&original))?;
            } else {
                self.make_parents(&plan.copy)?;
                fs::rename(&original, &copy_target).map_err(local_io(&original))?;
                // Recorded as the losing version itself (a rename keeps the
                // time and inode), so the scan does not take it for a new
                // file with a version of its own.
                if let Some(lost) = local {
                    let mut copy = lost.clone();
                    copy.path = plan.copy.clone();
                    self.db
                        .transaction(|db| {
                            db.put_file(&copy)?;
                            db.put_announcement(&plan.copy)
                        })
                        .map_err(Error::from)?;
                }
            }
            self.write_version(record, &record.path, None, plan.merged.clone())?;
        } else {
            // The local version stays; the remote one becomes the conflict
            // copy, with the losing version's own vector: every computer
            // makes and announces the same copy (see `announce_copies`).
            if !copy_target.exists() {
                self.write_version(record, &plan.copy, None, record.version.clone())?;
                self.db.put_announcement(&plan.copy).map_err(Error::from)?;
            }
            if let Some(mut state) = local.cloned() {
                state.version = plan.merged.clone();
                self.db.put_file(&state).map_err(Error::from)?;
            }
        }
        self.report.conflicts += 1;
        self.events
            .conflict(record.path.as_str(), plan.copy.as_str());
        Ok(())
    }
}

/// Whether the disk (`now`) still holds what the database says (`expected`).
fn disk_matches(expected: Option<&FileState>, now: Option<&scan::ScannedEntry>) -> bool {
    match (expected.map(|e| (e.kind, e)), now) {
        (None | Some((StateKind::Deleted, _)), None) => true,
        (Some((StateKind::File, e)), Some(n)) => {
            n.kind == EntryKind::File
                && n.size == e.size
                && n.mtime_ns == e.mtime_ns
                && n.inode == e.inode
        }
        (Some((StateKind::Dir, _)), Some(n)) => n.kind == EntryKind::Dir,
        _ => false,
    }
}

fn deleted_state(record: &Record) -> FileState {
    FileState::deleted(record.path.clone(), record.version.clone(), record.origin)
}

fn read_range(path: &PathBuf, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(length).read_to_end(&mut data)?;
    Ok(data)
}

fn to_filetime(mtime_ns: i64) -> filetime::FileTime {
    let seconds = mtime_ns.div_euclid(1_000_000_000);
    let nanos = u32::try_from(mtime_ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    filetime::FileTime::from_unix_time(seconds, nanos)
}

#[cfg(unix)]
fn set_permissions(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_permissions(_path: &Path, _executable: bool) -> std::io::Result<()> {
    Ok(())
}

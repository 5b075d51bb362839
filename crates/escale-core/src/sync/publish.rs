//! Sending: find what changed in the folder, upload new chunks packed into
//! objects, then publish the journal batch and the head that points to it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Read;

use bytes::Bytes;

use crate::chunker;
use std::time::{Duration, Instant};

use crate::crypto::{ChunkId, ContentId};
use crate::error::{Error, Result};
use crate::format::{self, Batch, ChunkPlacement, ObjectEntry, Record, WireRecord};
use crate::ids::{ClientId, ObjectId};
use crate::path::RelPath;
use crate::scan::{self, EntryKind, Scan, ScannedEntry};
use crate::state::{ChunkLocation, ChunkRef, FileState, StateKind};
use crate::sync::relay_io::{RelayIo, Transfer};
use crate::sync::{Problem, Session};
use crate::version::VersionVector;

/// Collects sealed chunks into the object being filled.
struct Packer {
    current: Option<(ObjectId, Vec<u8>, Vec<ChunkPlacement>)>,
    /// Chunks already packed in this publish step, so a repeated chunk is
    /// sent once.
    packed: HashSet<ChunkId>,
    /// An object is closed once it reaches this size.
    target: u64,
}

/// Object uploads started and not yet known to have finished.
///
/// Dropping it (a cycle that fails or stops) waits for them: no upload
/// outlives its cycle, to race with the next cycle's clearing of
/// leftovers or to land after the lock is released.
struct Uploads {
    relay: RelayIo,
    /// Oldest first, each with the entry the batch will carry for it.
    in_flight: VecDeque<(ObjectEntry, Transfer<()>)>,
}

impl Drop for Uploads {
    fn drop(&mut self) {
        for (entry, transfer) in self.in_flight.drain(..) {
            if let Err(error) = self.relay.wait(transfer) {
                tracing::debug!(object = %entry.id, %error, "abandoned upload failed");
            }
        }
    }
}

/// What one publish step has prepared and not announced yet.
pub(crate) struct Outbox {
    /// The number of the batch being prepared.
    pub(crate) seq: u64,
    packer: Packer,
    /// Objects uploaded, to be announced by the batch.
    objects: Vec<ObjectEntry>,
    /// Objects still being uploaded; they join `objects` once on the relay.
    uploads: Uploads,
    /// Whether this client's objects folder was created in this step.
    objects_dir_ready: bool,
    /// The total size of `objects` and of the uploads in flight: both
    /// count as used on the relay.
    uploaded: u64,
    outgoing: Vec<Outgoing>,
    /// Contents this client asks for again.
    pub(crate) requests: Vec<ContentId>,
    /// Requested contents whose chunks the objects carry again.
    supplies: Vec<ContentId>,
    /// Conflict copies whose records `outgoing` carries as recorded.
    announced: Vec<RelPath>,
}

impl Outbox {
    /// An empty outbox for batch `seq`, closing objects at `object_target`
    /// bytes and uploading them through `relay`.
    pub(crate) fn new(seq: u64, object_target: u64, relay: RelayIo) -> Self {
        Outbox {
            seq,
            packer: Packer {
                current: None,
                packed: HashSet::new(),
                target: object_target,
            },
            objects: Vec::new(),
            uploads: Uploads {
                relay,
                in_flight: VecDeque::new(),
            },
            objects_dir_ready: false,
            uploaded: 0,
            outgoing: Vec::new(),
            requests: Vec::new(),
            supplies: Vec::new(),
            announced: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.objects.is_empty()
            && self.uploads.in_flight.is_empty()
            && self.outgoing.is_empty()
            && self.requests.is_empty()
            && self.supplies.is_empty()
    }
}

/// The publication of file `state` (holding `content`) exactly as recorded.
fn file_outgoing(state: FileState, content: ContentId) -> Outgoing {
    Outgoing {
        record: Record {
            path: state.path.clone(),
            change: format::Change::File {
                size: state.size,
                mtime_ns: state.mtime_ns,
                executable: state.executable,
                content,
                chunks: state.chunks.clone(),
            },
            version: state.version.clone(),
            origin: state.origin,
        },
        state,
    }
}

/// A change found by the scan, ready to be published.
struct Outgoing {
    record: Record,
    state: FileState,
}

/// Part of the quota kept free for journal batches and heads: objects may
/// use the rest.
fn metadata_reserve(quota: u64) -> u64 {
    (quota / 20).max(256 * 1024)
}

/// How long (seconds) a computer that holds a requested content but did not
/// make that version waits for its maker to answer before answering itself.
const SUPPLY_GRACE_SECS: i64 = 120;

/// How long a waiting sender sleeps between two looks at the relay.
const ROOM_POLL: Duration = Duration::from_secs(2);

impl Session {
    /// The quota's room for objects, if there is a quota.
    pub(crate) fn object_room(&self) -> Option<u64> {
        self.settings
            .quota
            .map(|quota| quota.0.saturating_sub(metadata_reserve(quota.0)))
    }

    /// The size at which objects are closed: small enough that several fit
    /// under the quota at once, so that transfers overlap.
    pub(crate) fn object_target(&self) -> u64 {
        self.object_room()
            .map_or(format::OBJECT_TARGET_SIZE, |room| {
                (room / 4).clamp(64 * 1024, format::OBJECT_TARGET_SIZE)
            })
    }

    /// Publishes local changes, starting with batch `seq`; returns the
    /// number the next batch will have.
    pub(crate) fn publish(&mut self, seq: u64) -> Result<u64> {
        let view = self.local_view()?;
        // Before anything is uploaded: a paused cycle sends nothing at all.
        self.guard_deletions(&view)?;
        for skipped in &view.scan.skipped {
            self.report.problems.push(Problem::new(
                Some(&skipped.path.display().to_string()),
                "skipped",
                skipped.reason.clone(),
            ));
        }
        let mut outbox = Outbox::new(seq, self.object_target(), self.relay.clone());
        let changed: Vec<&ScannedEntry> = view
            .scan
            .entries
            .iter()
            .filter(|entry| differs(view.known.get(&entry.path), entry))
            .collect();
        self.events.progress_start(
            crate::events::Phase::Sending,
            changed.len() as u64,
            changed.iter().map(|entry| entry.size).sum(),
        );
        for entry in changed {
            self.check_stop()?;
            // Read again rather than from the scan's snapshot: waiting for
            // room under the quota receives meanwhile.
            let previous = self.db.file(&entry.path)?;
            let previous = previous.as_ref();
            let base = previous.map(|p| p.version.clone()).unwrap_or_default();
            self.events.progress_file(entry.path.as_str());
            match entry.kind {
                EntryKind::Dir => {
                    let version = base.bump(self.me, outbox.seq);
                    outbox.outgoing.push(self.dir_change(entry, version));
                }
                EntryKind::File => {
                    let Some((content, chunks)) = self.read_and_pack(entry, &mut outbox, false)?
                    else {
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
                    let version = base.bump(self.me, outbox.seq);
                    outbox
                        .outgoing
                        .push(self.file_change(entry, content, chunks, version));
                }
            }
            self.events.progress_done(1, entry.size);
        }

        self.announce_copies(&mut outbox)?;
        for gone in self.gone(&view) {
            // Skipped if receiving changed it while waiting for room.
            let Some(state) = self.db.file(&gone.path)? else {
                continue;
            };
            if state.kind == StateKind::Deleted || state != *gone {
                continue;
            }
            let version = state.version.bump(self.me, outbox.seq);
            outbox.outgoing.push(Outgoing {
                record: Record {
                    path: state.path.clone(),
                    change: format::Change::Delete,
                    version: version.clone(),
                    origin: self.me,
                },
                state: FileState::deleted(state.path.clone(), version, self.me),
            });
        }
        self.supply_wanted(&mut outbox)?;
        self.finish(outbox)
    }

    /// Uploads what is still packed and announces everything prepared, if
    /// anything; returns the number the next batch will have.
    pub(crate) fn finish(&mut self, mut outbox: Outbox) -> Result<u64> {
        self.upload_current(&mut outbox)?;
        // Every upload is over before the cycle moves on: what follows
        // (receiving, cleaning up) must not find objects half there.
        self.settle_uploads(&mut outbox)?;
        if !outbox.is_empty() {
            self.commit(&mut outbox, false)?;
        }
        Ok(outbox.seq)
    }

    /// Adds a chunk to the object being filled, uploading it once full.
    fn pack(&mut self, outbox: &mut Outbox, id: ChunkId, plain: &[u8]) -> Result<()> {
        if !outbox.packer.packed.insert(id) {
            return Ok(());
        }
        let (object, buffer, placements) = outbox
            .packer
            .current
            .get_or_insert_with(|| (ObjectId::random(), Vec::new(), Vec::new()));
        let sealed = self.codec.seal_chunk(&self.me, object, &id, plain);
        placements.push(ChunkPlacement {
            id,
            offset: buffer.len() as u64,
            length: sealed.len() as u64,
        });
        buffer.extend_from_slice(&sealed);
        if buffer.len() as u64 >= outbox.packer.target {
            self.upload_current(outbox)?;
        }
        Ok(())
    }

    /// Starts uploading the object being filled, after waiting for the
    /// oldest upload if `transfers` are already in flight (which bounds
    /// the sealed objects held in memory). If the quota leaves no room for
    /// it, what is prepared so far is announced first (so that receivers
    /// can take it and the relay can empty), then the upload waits.
    fn upload_current(&mut self, outbox: &mut Outbox) -> Result<()> {
        let Some((id, buffer, chunks)) = outbox.packer.current.take() else {
            return Ok(());
        };
        let size = buffer.len() as u64;
        // Uploaded or in flight but not announced yet: on the relay all the
        // same.
        if !self.has_room(outbox.uploaded + size)? {
            // Nothing may stay in flight: the window below must name only
            // objects already on the relay, and the clean-up run while
            // waiting deletes own objects it has no record of.
            self.settle_uploads(outbox)?;
            if !outbox.objects.is_empty() {
                // Announce the objects alone, as a window: they may hold
                // the first part of a file still being read, or the last
                // chunk of a file sits in the object that waits. Receivers
                // keep their chunks until the records come.
                self.commit(outbox, true)?;
            }
            self.wait_for_room(size)?;
        }
        if !outbox.objects_dir_ready {
            self.relay.create_dir(&format::objects_dir(&self.me))?;
            outbox.objects_dir_ready = true;
        }
        let transfers = usize::from(self.settings.transfers.max(1));
        while outbox.uploads.in_flight.len() >= transfers {
            self.settle_oldest(outbox)?;
        }
        let transfer = self
            .relay
            .spawn_write(format::object_path(&self.me, &id), Bytes::from(buffer));
        outbox.uploaded += size;
        outbox
            .uploads
            .in_flight
            .push_back((ObjectEntry { id, size, chunks }, transfer));
        Ok(())
    }

    /// Waits for the oldest upload in flight; once it is on the relay, the
    /// batch may name it.
    fn settle_oldest(&mut self, outbox: &mut Outbox) -> Result<()> {
        let Some((entry, transfer)) = outbox.uploads.in_flight.pop_front() else {
            return Ok(());
        };
        self.relay.wait(transfer)?;
        outbox.objects.push(entry);
        Ok(())
    }

    /// Waits for every upload in flight. The first failure is returned once
    /// all have ended, so that none is still writing when the cycle fails.
    fn settle_uploads(&mut self, outbox: &mut Outbox) -> Result<()> {
        let mut first_failure = None;
        while let Some((entry, transfer)) = outbox.uploads.in_flight.pop_front() {
            match self.relay.wait(transfer) {
                Ok(()) => outbox.objects.push(entry),
                Err(error) => {
                    tracing::debug!(object = %entry.id, %error, "object upload failed");
                    first_failure.get_or_insert(error);
                }
            }
        }
        match first_failure {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Publishes the prepared batch: its journal file, then the head that
    /// points to it, then the local record of it. The outbox is then ready
    /// for the next batch. A `window` carries the objects only; the records
    /// (whose version vectors may name this batch's number: they stay
    /// increasing, which is all versions need) follow in a later batch.
    fn commit(&mut self, outbox: &mut Outbox, window: bool) -> Result<()> {
        // The batch must never name an object that is not on the relay yet:
        // a receiver would find it missing and ask for its content again.
        self.settle_uploads(outbox)?;
        let seq = outbox.seq;
        let outgoing = if window {
            Vec::new()
        } else {
            std::mem::take(&mut outbox.outgoing)
        };
        let (requests, supplies, announced) = if window {
            (Vec::new(), Vec::new(), Vec::new())
        } else {
            (
                std::mem::take(&mut outbox.requests),
                std::mem::take(&mut outbox.supplies),
                std::mem::take(&mut outbox.announced),
            )
        };
        let me = self.me;
        let objects = std::mem::take(&mut outbox.objects);
        // The objects are on the relay: recorded before the batch that
        // announces them, so that a crash in between cannot make the clean
        // up delete objects a published batch refers to. Unannounced, they
        // are deleted once a batch of this number is acknowledged.
        self.db.transaction(|db| {
            for object in &objects {
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
            Ok(())
        })?;
        let batch = Batch {
            seq,
            objects,
            records: outgoing
                .iter()
                .map(|o| WireRecord::from(&o.record))
                .collect(),
            prefetch: window,
            requests,
            supplies,
        };
        self.relay.create_dir(&format::journal_dir(&self.me))?;
        self.relay.write(
            &format::batch_path(&self.me, seq),
            Bytes::from(self.codec.seal_batch(&self.me, &batch)),
        )?;
        self.db.set_meta("journal", &seq.to_string())?;
        self.write_head(0)?;

        let bytes: u64 = outgoing.iter().map(|o| o.state.size).sum();
        let count = outgoing.len() as u64;
        let now = crate::sync::now_ns() / 1_000_000_000;
        // What the batch says is remembered only once it is out: a request
        // or a supply lost to a crash before would never be repeated.
        self.db.transaction(|db| {
            for change in &outgoing {
                db.put_file(&change.state)?;
            }
            for content in &batch.requests {
                db.put_request(content, now)?;
            }
            for content in &batch.supplies {
                db.remove_wanted(content)?;
            }
            for path in &announced {
                db.remove_announcement(path)?;
            }
            db.put_own_batch(seq, count, bytes)
        })?;
        self.report.changes_sent += count;
        self.report.bytes_uploaded += outbox.uploaded;
        outbox.uploaded = 0;
        outbox.seq += 1;
        Ok(())
    }

    /// Bytes every client keeps on the relay, from the heads (this
    /// client's from its own records). Retired clients' data does not
    /// count: it is cleared.
    pub(crate) fn relay_usage(&self) -> Result<u64> {
        let own: u64 = self.db.own_objects()?.iter().map(|(_, _, size)| size).sum();
        let retired = self.retired_clients()?;
        let others: u64 = self
            .heads
            .iter()
            .filter(|(client, _)| !retired.contains(client))
            .filter_map(|(_, head)| head.as_ref().map(|head| head.stored_bytes))
            .sum();
        Ok(own + others)
    }

    /// Whether `size` more bytes of objects fit under the quota.
    fn has_room(&self, size: u64) -> Result<bool> {
        let Some(room) = self.object_room() else {
            return Ok(true);
        };
        Ok(self.relay_usage()? + size <= room)
    }

    /// Waits until `size` bytes fit under the quota. Meanwhile this client
    /// keeps receiving and acknowledging (two senders waiting for each
    /// other would otherwise wait forever) and deletes what every receiver
    /// has.
    fn wait_for_room(&mut self, size: u64) -> Result<()> {
        let mut announced = false;
        loop {
            self.check_stop()?;
            self.read_heads()?;
            let acks_before = self.acks()?;
            let deleted_before = self.report.objects_deleted;
            self.receive()?;
            self.clean_up()?;
            if self.acks()? != acks_before || self.report.objects_deleted != deleted_before {
                self.write_head(0)?;
            }
            if self.has_room(size)? {
                if announced {
                    self.events.state(crate::events::RepositoryState::Syncing);
                }
                return Ok(());
            }
            if !announced {
                let usage = self.usage_report()?;
                tracing::debug!(
                    used = usage.used,
                    quota = usage.quota,
                    "waiting for relay space"
                );
                self.events.waiting_for_space(usage);
                announced = true;
            }
            let until = Instant::now() + ROOM_POLL;
            while Instant::now() < until {
                self.check_stop()?;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Who holds what on the relay, and who has not received this
    /// client's data yet.
    pub(crate) fn usage_report(&self) -> Result<crate::events::RelayUsage> {
        let names = self.client_names()?;
        let name_of = |client: &ClientId| {
            names
                .get(client)
                .cloned()
                .unwrap_or_else(|| client.to_string())
        };
        let own: u64 = self.db.own_objects()?.iter().map(|(_, _, size)| size).sum();
        let mut holders = vec![crate::events::Holder {
            name: self.name.clone(),
            bytes: own,
        }];
        let mut behind = Vec::new();
        let journal = self.db.meta_u64("journal")?;
        for (client, head) in &self.heads {
            let Some(head) = head else { continue };
            if head.stored_bytes > 0 {
                holders.push(crate::events::Holder {
                    name: name_of(client),
                    bytes: head.stored_bytes,
                });
            }
            if head.acks.get(&self.me).copied().unwrap_or(0) < journal {
                behind.push(name_of(client));
            }
        }
        behind.sort();
        Ok(crate::events::RelayUsage {
            used: self.relay_usage()?,
            quota: self.settings.quota.map(|quota| quota.0),
            holders,
            waiting_for: behind,
        })
    }

    /// Uploads again the contents other clients asked for, when this
    /// client holds them unchanged. The computer that made a version answers
    /// at once; the others only if nobody did within a grace time, so that
    /// a late joiner's requests are not answered by every computer at once.
    pub(crate) fn supply_wanted(&mut self, outbox: &mut Outbox) -> Result<()> {
        let now = crate::sync::now_ns() / 1_000_000_000;
        for (content, seen) in self.db.wanted()? {
            self.check_stop()?;
            let mut held = false;
            for state in self.db.files_with_content(&content)? {
                let Some(entry) = self.stat_now(&state.path)? else {
                    continue;
                };
                // Only the size is compared: a path marked for publishing
                // again (after a crossed edit) differs by its time but may
                // hold the content all the same; reading it tells for sure.
                if entry.size != state.size {
                    continue;
                }
                held = true;
                if state.origin != self.me && now - seen < SUPPLY_GRACE_SECS {
                    break;
                }
                if let Some((found, _)) = self.read_and_pack(&entry, outbox, true)?
                    && found == content
                {
                    // Forgotten when the batch that carries it is committed.
                    outbox.supplies.push(content);
                    break;
                }
                held = false;
            }
            if !held {
                // Not this client's to answer.
                self.db.remove_wanted(&content)?;
            }
        }
        Ok(())
    }

    /// Announces the conflict copies this client made, each exactly as
    /// recorded: the losing version's own content, time and version vector.
    /// Every computer that resolves the same conflict makes and announces
    /// the same copy, so the announcements agree (`Equal`) instead of
    /// crossing, and the copy reaches every computer even when the one whose
    /// version lost has since replaced or lost it. A copy edited since is
    /// left to the scan, which publishes the edit.
    pub(crate) fn announce_copies(&mut self, outbox: &mut Outbox) -> Result<()> {
        for path in self.db.announcements()? {
            let state = self.db.file(&path)?;
            let on_disk = self.stat_now(&path)?;
            let unchanged = state.as_ref().is_some_and(|state| {
                state.kind == StateKind::File
                    && on_disk
                        .as_ref()
                        .is_some_and(|entry| !differs(Some(state), entry))
            });
            match state {
                Some(state) if unchanged => {
                    let Some(content) = state.content else {
                        continue;
                    };
                    outbox.outgoing.push(file_outgoing(state, content));
                    outbox.announced.push(path);
                }
                _ => self.db.remove_announcement(&path)?,
            }
        }
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
        content: ContentId,
        chunks: Vec<ChunkRef>,
        version: VersionVector,
    ) -> Outgoing {
        file_outgoing(
            FileState {
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
            content,
        )
    }

    /// Whether `path` is on disk now, and as what.
    fn stat_now(&self, path: &RelPath) -> Result<Option<ScannedEntry>> {
        scan::stat(&self.folder, path).map_err(|source| Error::LocalIo {
            path: path.to_local(&self.folder),
            source,
        })
    }

    /// Reads a changed file once: chunks it, computes the identifiers, and
    /// packs the chunks the relay has never carried. Returns `None` (and
    /// reports it) if the file changed while being read: it is picked up
    /// again, whole, at the next cycle.
    fn read_and_pack(
        &mut self,
        entry: &ScannedEntry,
        outbox: &mut Outbox,
        every_chunk: bool,
    ) -> Result<Option<(ContentId, Vec<ChunkRef>)>> {
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
        // Read at most one byte more than scanned: growth is detected, and a
        // file appended to without end cannot hold the cycle forever.
        let read = chunker::for_each_chunk(file.take(entry.size.saturating_add(1)), |chunk| {
            let id = self.codec.keys().chunk_id(&chunk.data);
            hashed += chunk.data.len() as u64;
            let step = match self.db.chunk_known(&id) {
                Ok(true) if !every_chunk => Ok(()),
                Ok(_) => self.pack(outbox, id, &chunk.data),
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
    /// The scan, without the paths whose changes are not sent.
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
            .retain(|entry| self.sends(&entry.path, entry.kind == EntryKind::Dir));
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
    /// that could not be read is not gone, nor is what is not sent.
    pub(crate) fn gone<'a>(&self, view: &'a LocalView) -> Vec<&'a FileState> {
        let present: HashSet<&RelPath> = view.scan.entries.iter().map(|e| &e.path).collect();
        let mut gone: Vec<&FileState> = view
            .known
            .values()
            .filter(|state| state.kind != StateKind::Deleted && !present.contains(&state.path))
            .filter(|state| self.sends(&state.path, state.kind == StateKind::Dir))
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

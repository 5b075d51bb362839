//! One sync cycle of one repository: scan, send, receive, acknowledge,
//! clean up.
//!
//! A cycle runs as ordinary sequential code on a blocking thread (hashing,
//! encryption and file copies must not occupy the async threads) and drives
//! the async relay through [`relay_io::RelayIo`]. Each step leaves the relay
//! and the local folder consistent, so a crash at any instant is repaired by
//! the next cycle: see "Recovery" in `docs/relay-format.md`.

pub(crate) mod guard;
pub(crate) mod planner;
pub(crate) mod publish;
mod receive;
pub(crate) mod relay_io;
pub(crate) mod work;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{self, Codec, Head};
use crate::ids::ClientId;
use crate::path::RelPath;
use crate::state::{PeerState, StateDb};
use relay_io::RelayIo;
use work::WorkFolder;

/// What one sync cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Files and folders whose changes were published.
    pub changes_sent: u64,
    /// Bytes uploaded to the relay (sealed object data).
    pub bytes_uploaded: u64,
    /// Files and folders changed here because of other computers.
    pub changes_received: u64,
    /// Bytes downloaded from the relay (sealed chunk data).
    pub bytes_downloaded: u64,
    /// Bytes of local files read to compute their content identifiers.
    /// Zero when nothing changed: unchanged files are not read.
    pub bytes_hashed: u64,
    /// Conflicts resolved by keeping a conflict copy.
    pub conflicts: u64,
    /// Objects of this computer deleted from the relay because every other
    /// computer has their content.
    pub objects_deleted: u64,
    /// What went wrong for individual files; the rest was synced.
    pub problems: Vec<Problem>,
}

/// Something that went wrong for one file or one relay file. A cycle goes
/// on after a problem; the affected item is retried at the next cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    /// The path concerned, when the problem is about one local path.
    pub path: Option<String>,
    /// A stable machine-readable code (see [`crate::ErrorKind::code`]).
    pub code: String,
    /// A plain-language description.
    pub message: String,
}

impl Problem {
    fn new(path: Option<&str>, code: &str, message: impl Into<String>) -> Self {
        Problem {
            path: path.map(str::to_owned),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn from_error(path: Option<&str>, error: &Error) -> Self {
        Problem::new(path, error.code(), error.to_string())
    }
}

/// Everything one cycle works with.
pub(crate) struct Session {
    pub(crate) relay: RelayIo,
    pub(crate) codec: Codec,
    pub(crate) me: ClientId,
    pub(crate) name: String,
    pub(crate) folder: PathBuf,
    pub(crate) work: WorkFolder,
    pub(crate) db: StateDb,
    pub(crate) report: SyncReport,
    /// The other clients' newest heads; `None` where no head could be read.
    pub(crate) heads: HashMap<ClientId, Option<Head>>,
    /// This client's own newest head on the relay.
    pub(crate) own_head: Option<Head>,
    /// Escale's own settings folder, when it lies inside the synced folder
    /// (someone syncing their whole home folder): never synced, since its
    /// state database changes during every cycle.
    pub(crate) settings_inside: Option<RelPath>,
    /// Set to ask the cycle to stop at the next safe point.
    pub(crate) stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What stays on this computer (built-in rules and `.escaleignore`).
    pub(crate) filter: crate::filter::Filter,
    /// The repository's settings.
    pub(crate) settings: crate::config::RepositoryConfig,
    /// Where events go.
    pub(crate) events: crate::events::Events,
    /// Set when a batch read during receiving announced objects.
    pub(crate) learned: bool,
    /// Contents receiving found missing from this computer and the relay:
    /// `(content, path, version of the record that needs it)`.
    pub(crate) needs: Vec<(
        crate::crypto::ContentId,
        RelPath,
        crate::version::VersionVector,
    )>,
}

/// Where `settings` lies inside `folder`, if it does.
pub(crate) fn settings_inside(folder: &Path, settings: &Path) -> Option<RelPath> {
    let folder = folder.canonicalize().ok()?;
    let settings = settings.canonicalize().ok()?;
    let inside = settings.strip_prefix(&folder).ok()?;
    let text: Vec<String> = inside
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    RelPath::new(&text.join("/")).ok()
}

impl Session {
    /// Whether a scanned path belongs to Escale's own settings folder.
    pub(crate) fn is_own_settings(&self, path: &RelPath) -> bool {
        self.settings_inside
            .as_ref()
            .is_some_and(|settings| path == settings || path.is_under(settings))
    }

    /// Whether changes made here to `path` are sent.
    pub(crate) fn sends(&self, path: &RelPath, is_dir: bool) -> bool {
        !self.is_own_settings(path) && self.filter.sends(path, is_dir)
    }

    /// Whether changes made elsewhere to `path` are applied here.
    pub(crate) fn receives(&self, path: &RelPath, is_dir: bool) -> bool {
        !self.is_own_settings(path) && self.filter.receives(path, is_dir)
    }
}

/// A head is rewritten at least this often (seconds), so that the other
/// clients see this one as present even when it has nothing to say.
const HEAD_REFRESH_SECS: i64 = 3600;

/// An unanswered request is repeated after this long (seconds): the
/// clients that could answer may have been away, or have lost track of it.
const REQUEST_AGAIN_SECS: i64 = 600;

/// Staged chunks no record used are deleted after this long (seconds).
const STAGING_KEEP_SECS: i64 = 7 * 86_400;

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
        })
}

impl Session {
    /// Runs one complete cycle.
    pub(crate) fn run(mut self) -> Result<SyncReport> {
        // Leftovers of a cycle that was killed are useless: its downloads
        // are fetched again. Cleared before and after, so none stays, also
        // when the cycle fails or is stopped.
        self.clear_temporaries()?;
        // This process alone syncs this client now (see the lock in
        // `repository::sync_until`): whatever a killed upload left in the
        // client's own folders on the relay can go.
        for dir in [
            format::client_dir(&self.me),
            format::journal_dir(&self.me),
            format::objects_dir(&self.me),
        ] {
            self.relay.clear_leftovers(&dir)?;
        }
        // Read at every cycle: the rules may have changed since the last.
        let (filter, warnings) = crate::filter::Filter::load(&self.settings);
        self.filter = filter;
        for warning in warnings {
            self.report
                .problems
                .push(Problem::new(None, "invalid_ignore_rule", warning));
        }
        self.events.state(crate::events::RepositoryState::Syncing);
        let outcome = self.steps();
        let cleared = self.clear_temporaries();
        let outcome = outcome.and(cleared);
        if outcome.is_ok() {
            self.events.cycle_done(&self.report);
        }
        outcome.map(|()| self.report)
    }

    fn steps(&mut self) -> Result<()> {
        self.read_heads()?;
        let acks_before = self.acks()?;
        let seq = self.next_seq()?;
        let seq = self.publish(seq)?;
        self.deletions_published()?;
        self.receive()?;
        // Asked for and answered at the end, so that what receiving just
        // learned is asked for (and what others asked for is uploaded) in
        // this cycle rather than the next one.
        self.publish_requests(seq)?;
        self.clean_up()?;
        self.clean_staging()?;
        self.prune_versions()?;
        // Every head write makes the other clients' daemons look closer, so
        // a cycle that changed nothing writes none, except to keep this
        // client's last-seen time fresh.
        let stale = self
            .own_head
            .as_ref()
            .is_none_or(|head| now_ns() / 1_000_000_000 - head.updated > HEAD_REFRESH_SECS);
        if stale || self.report.objects_deleted > 0 || self.acks()? != acks_before {
            self.write_head(0)?;
        }
        Ok(())
    }

    /// Asks again for the contents receiving could not find, and uploads
    /// again what others asked for.
    fn publish_requests(&mut self, seq: u64) -> Result<()> {
        let now = now_ns() / 1_000_000_000;
        let open = self.db.requests()?;
        let mut still_needed = std::collections::HashSet::new();
        let mut outbox = publish::Outbox::new(seq, self.object_target(), self.relay.clone());
        for (content, path, version) in std::mem::take(&mut self.needs) {
            // A later change to the path made this version irrelevant.
            if let Some(local) = self.db.file(&path)?
                && matches!(
                    local.version.compare(&version),
                    crate::version::Causality::Equal | crate::version::Causality::Newer
                )
                && local.content != Some(content)
            {
                continue;
            }
            if !still_needed.insert(content) {
                continue;
            }
            let asked_recently = open
                .get(&content)
                .is_some_and(|when| now - when < REQUEST_AGAIN_SECS);
            if !asked_recently {
                // Recorded as asked once the batch is out (see `commit`).
                outbox.requests.push(content);
            }
        }
        for content in open.keys() {
            if !still_needed.contains(content) {
                self.db.remove_request(content)?;
            }
        }
        self.announce_copies(&mut outbox)?;
        self.supply_wanted(&mut outbox)?;
        self.finish(outbox).map(drop)
    }

    /// Deletes staged chunks that a file now holds, or that no record used
    /// for a long time (the file they belonged to was excluded or replaced).
    fn clean_staging(&mut self) -> Result<()> {
        let now = now_ns() / 1_000_000_000;
        for (chunk, added) in self.db.staged_chunks()? {
            let in_a_file = !self.db.local_chunk_sources(&chunk)?.is_empty();
            if in_a_file || now - added > STAGING_KEEP_SECS {
                self.work.unstage(&chunk).map_err(|source| Error::LocalIo {
                    path: self.work.staging_dir(),
                    source,
                })?;
                self.db.remove_staged(&chunk)?;
            }
        }
        Ok(())
    }

    /// Clients retired by this one or by any other.
    pub(crate) fn retired_clients(&self) -> Result<std::collections::HashSet<ClientId>> {
        let mut retired: std::collections::HashSet<ClientId> =
            self.db.retired()?.into_iter().collect();
        for head in self.heads.values().flatten() {
            retired.extend(head.retired.iter().copied());
        }
        Ok(retired)
    }

    /// Whether `head`'s client has been silent for longer than the absence
    /// limit: it then no longer holds data back.
    pub(crate) fn is_absent(&self, head: &Head) -> bool {
        let silent = now_ns() / 1_000_000_000 - head.updated;
        u64::try_from(silent).is_ok_and(|silent| silent > self.settings.absent_after.0.as_secs())
    }

    /// How far this client has processed each other client's journal.
    fn acks(&self) -> Result<std::collections::BTreeMap<ClientId, u64>> {
        Ok(self
            .db
            .peers()?
            .into_iter()
            .map(|(client, peer)| (client, peer.processed))
            .collect())
    }

    /// Fails with [`Error::Stopped`] once a stop was requested. Checked
    /// between files and chunks: every step before it left the relay and
    /// the folder consistent, so the next cycle simply carries on.
    pub(crate) fn check_stop(&self) -> Result<()> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    fn clear_temporaries(&self) -> Result<()> {
        self.work
            .clear_temporaries()
            .map_err(|source| Error::LocalIo {
                path: self.work.tmp_dir(),
                source,
            })
    }

    /// Reads every client's newest head and refreshes what is known of the
    /// other clients.
    pub(crate) fn read_heads(&mut self) -> Result<()> {
        let mut peers = self.db.peers()?;
        self.heads.clear();
        for entry in self.relay.list(&format::clients_dir())? {
            let Ok(client) = entry.name.parse::<ClientId>() else {
                continue;
            };
            if !entry.is_dir {
                continue;
            }
            let head = self.read_head(&client)?;
            if client == self.me {
                self.own_head = head;
                continue;
            }
            if let Some(head) = &head
                && head.retired.contains(&self.me)
            {
                return Err(Error::Retired {
                    repository: self.settings.name.clone(),
                    by: head.name.clone(),
                });
            }
            let known = peers.entry(client).or_insert_with(|| PeerState {
                name: head.as_ref().map(|h| h.name.clone()).unwrap_or_default(),
                processed: 0,
                generation: 0,
                updated: 0,
            });
            let head = match head {
                // An older head than one already seen: the relay served a
                // stale copy (or was rolled back). Do not act on it.
                Some(head) if head.generation < known.generation => {
                    self.report.problems.push(Problem::new(
                        None,
                        "relay_data_invalid",
                        format!(
                            "the relay returned an older head of {} than seen before; \
                             ignoring it for now",
                            known.name
                        ),
                    ));
                    None
                }
                other => other,
            };
            if let Some(head) = &head {
                known.name = head.name.clone();
                known.generation = head.generation;
                known.updated = head.updated;
                self.db.put_peer(&client, known)?;
            }
            self.heads.insert(client, head);
        }
        Ok(())
    }

    /// The newest head of `client` that authenticates; `None` if neither
    /// slot does (being written, torn, or damaged: tried again next cycle).
    fn read_head(&mut self, client: &ClientId) -> Result<Option<Head>> {
        let mut newest: Option<Head> = None;
        for slot in 0..2u8 {
            let Some(sealed) = self.relay.read(&format::head_path(client, slot), None)? else {
                continue;
            };
            match self.codec.open_head(client, slot, &sealed) {
                Ok(head) => {
                    if newest
                        .as_ref()
                        .is_none_or(|n| head.generation > n.generation)
                    {
                        newest = Some(head);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "skipping an unreadable head slot");
                }
            }
        }
        Ok(newest)
    }

    /// The next batch number: never one that was used before, even if the
    /// local state is older than the relay.
    fn next_seq(&self) -> Result<u64> {
        let listed = self
            .relay
            .list(&format::journal_dir(&self.me))?
            .iter()
            .filter_map(|entry| format::parse_batch_name(&entry.name))
            .max()
            .unwrap_or(0);
        let in_head = self.own_head.as_ref().map_or(0, |head| head.journal);
        let local = self.db.meta_u64("journal")?;
        Ok(listed.max(in_head).max(local) + 1)
    }

    /// Writes this client's head. `extra_stored` counts object bytes
    /// uploaded but not yet recorded in the database.
    pub(crate) fn write_head(&mut self, extra_stored: u64) -> Result<()> {
        let relay_generation = self.own_head.as_ref().map_or(0, |head| head.generation);
        let generation = relay_generation.max(self.db.meta_u64("generation")?) + 1;
        let acks = self.acks()?;
        let stored: u64 = self.db.own_objects()?.iter().map(|(_, _, size)| size).sum();
        let head = Head {
            client: self.me,
            name: self.name.clone(),
            generation,
            journal: self.db.meta_u64("journal")?,
            acks,
            stored_bytes: stored + extra_stored,
            updated: now_ns() / 1_000_000_000,
            retired: self.db.retired()?,
        };
        let sealed = self.codec.seal_head(&head);
        self.relay.create_dir(&format::client_dir(&self.me))?;
        self.relay.write(
            &format::head_path(&self.me, format::head_slot(generation)),
            Bytes::from(sealed),
        )?;
        self.db.set_meta("generation", &generation.to_string())?;
        self.own_head = Some(head);
        Ok(())
    }

    /// Deletes this client's objects that every other client has, and
    /// leftovers of interrupted uploads.
    pub(crate) fn clean_up(&mut self) -> Result<()> {
        let retired = self.retired_clients()?;
        // Retired and long-absent clients no longer hold data back; one
        // whose head cannot be read now counts as not having received.
        let receivers: Vec<Option<&Head>> = self
            .heads
            .iter()
            .filter(|(client, _)| !retired.contains(client))
            .map(|(_, head)| head.as_ref())
            .filter(|head| head.is_none_or(|head| !self.is_absent(head)))
            .collect();
        let has_receivers = self.heads.keys().any(|client| !retired.contains(client));
        let published = self.db.own_objects()?;
        for (object, seq, _size) in &published {
            // With no other client yet, nobody has the data: keep it.
            let delivered = has_receivers
                && receivers.iter().all(|head| {
                    head.is_some_and(|head| head.acks.get(&self.me).copied().unwrap_or(0) >= *seq)
                });
            if delivered {
                self.relay.delete(&format::object_path(&self.me, object))?;
                self.db.remove_own_object(object)?;
                self.db.forget_object_locations(&self.me, object)?;
                self.report.objects_deleted += 1;
            }
        }
        let known: std::collections::HashSet<_> = published.iter().map(|(id, _, _)| *id).collect();
        for entry in self.relay.list(&format::objects_dir(&self.me))? {
            if let Ok(object) = entry.name.parse()
                && !known.contains(&object)
            {
                self.relay.delete(&format::object_path(&self.me, &object))?;
            }
        }
        // A retired client's folder may be cleared by the others (the one
        // exception to the single-writer rule): its data would otherwise
        // fill the quota forever.
        for client in &retired {
            let dir = format::objects_dir(client);
            for entry in self.relay.list(&dir)? {
                if let Ok(path) = dir.join(&entry.name) {
                    self.relay.delete(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Display names of every client, this one included.
    pub(crate) fn client_names(&self) -> Result<HashMap<ClientId, String>> {
        let mut names: HashMap<_, _> = self
            .db
            .peers()?
            .into_iter()
            .map(|(client, peer)| (client, peer.name))
            .collect();
        names.insert(self.me, self.name.clone());
        Ok(names)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;

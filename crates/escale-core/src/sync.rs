//! One sync cycle of one repository: scan, send, receive, acknowledge,
//! clean up.
//!
//! A cycle runs as ordinary sequential code on a blocking thread (hashing,
//! encryption and file copies must not occupy the async threads) and drives
//! the async relay through [`relay_io::RelayIo`]. Each step leaves the relay
//! and the local folder consistent, so a crash at any instant is repaired by
//! the next cycle: see "Recovery" in `docs/relay-format.md`.

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    fn from_error(path: Option<&str>, error: &Error) -> Self {
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

    /// Whether a path stays on this computer: Escale's own settings, or
    /// excluded by the rules. Such a path is neither sent nor received, and
    /// its absence is not a deletion.
    pub(crate) fn stays_local(&self, path: &RelPath, is_dir: bool) -> bool {
        self.is_own_settings(path) || self.filter.excludes(path, is_dir)
    }
}

/// A head is rewritten at least this often (seconds), so that the other
/// clients see this one as present even when it has nothing to say.
const HEAD_REFRESH_SECS: i64 = 3600;

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
        // Read at every cycle: the rules may have changed since the last.
        let (filter, warnings) = crate::filter::Filter::load(&self.folder);
        self.filter = filter;
        for warning in warnings {
            self.report
                .problems
                .push(Problem::new(None, "invalid_ignore_rule", warning));
        }
        let outcome = self.steps();
        let cleared = self.clear_temporaries();
        outcome.and(cleared).map(|()| self.report)
    }

    fn steps(&mut self) -> Result<()> {
        self.read_heads()?;
        let acks_before = self.acks()?;
        let seq = self.next_seq()?;
        self.publish(seq)?;
        self.receive()?;
        self.clean_up()?;
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
    fn clean_up(&mut self) -> Result<()> {
        let receivers: Vec<Option<&Head>> = self.heads.values().map(Option::as_ref).collect();
        let published = self.db.own_objects()?;
        for (object, seq, _size) in &published {
            // With no other client yet, nobody has the data: keep it.
            let delivered = !receivers.is_empty()
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

//! The relay format, version 1: what each relay file holds and how it is
//! sealed. `docs/relay-format.md` is the specification; this module is its
//! only implementation, so the two are kept in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{
    Aad, ChunkId, ContentId, CryptoError, KdfParams, Keys, RecordKind, WrappedKey,
};
use crate::ids::{ClientId, ObjectId, RepositoryId};
use crate::path::{PathError, RelPath};
use crate::relay::RelayPath;
use crate::state::ChunkRef;
use crate::version::VersionVector;

/// The header's file name at the relay root.
pub(crate) const HEADER_FILE: &str = "escale-repo.json";
/// The value of the header's `format` field.
const FORMAT_NAME: &str = "escale-relay";
/// The relay format version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The folder holding one folder per client.
pub(crate) const CLIENTS_DIR: &str = "clients";
/// An object is closed once its sealed chunks exceed this size.
pub(crate) const OBJECT_TARGET_SIZE: u64 = 8 * 1024 * 1024;

/// Why a relay file could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The header is not an Escale header.
    #[error("the relay folder does not hold an Escale repository header ({0})")]
    NotARepository(String),
    /// The header has a format version this build does not know.
    #[error(
        "the repository uses relay format version {0}, but this Escale knows only version \
         {FORMAT_VERSION}; install a newer Escale"
    )]
    UnsupportedVersion(u32),
    /// A sealed file failed to open: damaged, tampered with, or caught mid-write.
    #[error(
        "{what} failed its integrity check (damaged, tampered with, or being written): {source}"
    )]
    Integrity {
        /// Which file, in words.
        what: String,
        /// The cryptographic failure.
        #[source]
        source: CryptoError,
    },
    /// A sealed file opened but its content is not what it should be.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// Which file, in words.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// `escale-repo.json`: written once by `init`, in plain JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// Always [`FORMAT_NAME`].
    pub(crate) format: String,
    /// The relay format version.
    pub(crate) version: u32,
    /// The repository's identifier.
    pub(crate) repository: RepositoryId,
    /// How the passphrase key is derived.
    pub(crate) kdf: KdfParams,
    /// The master key, wrapped with the passphrase key.
    pub(crate) master_key: WrappedKey,
}

impl Header {
    /// A header for a new repository.
    pub(crate) fn new(repository: RepositoryId, kdf: KdfParams, master_key: WrappedKey) -> Self {
        Header {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            repository,
            kdf,
            master_key,
        }
    }

    /// Parses and checks a header.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|err| FormatError::NotARepository(format!("not JSON: {err}")))?;
        if probe.format.as_deref() != Some(FORMAT_NAME) {
            return Err(FormatError::NotARepository(
                "its `format` field is not \"escale-relay\"".into(),
            ));
        }
        match probe.version {
            Some(FORMAT_VERSION) => {}
            Some(other) => return Err(FormatError::UnsupportedVersion(other)),
            None => return Err(FormatError::NotARepository("no `version` field".into())),
        }
        serde_json::from_slice(bytes).map_err(|err| FormatError::NotARepository(err.to_string()))
    }

    /// The header as written to the relay.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("headers always serialize");
        text.push(b'\n');
        text
    }
}

/// A client's head: where its journal ends and what it has processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    /// The writer.
    pub(crate) client: ClientId,
    /// The computer's display name.
    pub(crate) name: String,
    /// Increases at every head write.
    pub(crate) generation: u64,
    /// The latest published batch; 0 when none.
    pub(crate) journal: u64,
    /// Per other client: every batch up to this one has been processed.
    pub(crate) acks: BTreeMap<ClientId, u64>,
    /// Bytes of this client's objects still on the relay.
    pub(crate) stored_bytes: u64,
    /// When this head was written, Unix seconds.
    pub(crate) updated: i64,
    /// Clients this one retired: every client stops keeping data for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) retired: Vec<ClientId>,
}

/// One object announced in a batch, with where its chunks lie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectEntry {
    /// The object's identifier (its file name).
    pub(crate) id: ObjectId,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Each sealed chunk inside it.
    pub(crate) chunks: Vec<ChunkPlacement>,
}

/// Where one sealed chunk lies inside an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkPlacement {
    /// The chunk's keyed identifier.
    pub(crate) id: ChunkId,
    /// Offset of the sealed chunk inside the object.
    pub(crate) offset: u64,
    /// Length of the sealed chunk.
    pub(crate) length: u64,
}

/// A record as it travels: its path not yet validated, so that one hostile
/// path refuses that record only, not the whole batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum WireRecord {
    /// A file version.
    File {
        /// Path inside the synced folder.
        path: String,
        /// Size in bytes.
        size: u64,
        /// Modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// Unix execute permission.
        executable: bool,
        /// Keyed content identifier.
        content: ContentId,
        /// The content's chunks in order.
        chunks: Vec<ChunkRef>,
        /// Version vector.
        version: VersionVector,
        /// The client that made this version.
        origin: ClientId,
    },
    /// A folder exists.
    Dir {
        /// Path inside the synced folder.
        path: String,
        /// Version vector.
        version: VersionVector,
        /// The client that made this version.
        origin: ClientId,
    },
    /// A file or empty folder was deleted.
    Delete {
        /// Path inside the synced folder.
        path: String,
        /// Version vector.
        version: VersionVector,
        /// The client that made this version.
        origin: ClientId,
    },
}

/// A record whose path has been validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The path it concerns.
    pub(crate) path: RelPath,
    /// What happened to it.
    pub(crate) change: Change,
    /// Version vector of this version.
    pub(crate) version: VersionVector,
    /// The client that made it.
    pub(crate) origin: ClientId,
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The file has this content and metadata.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// Unix execute permission.
        executable: bool,
        /// Keyed content identifier.
        content: ContentId,
        /// The content's chunks in order.
        chunks: Vec<ChunkRef>,
    },
    /// The folder exists.
    Dir,
    /// The path was deleted.
    Delete,
}

impl WireRecord {
    /// Validates the record's path: a hostile path (`..`, absolute, NUL,
    /// reserved device names…) refuses this record only.
    pub(crate) fn validate(&self) -> Result<Record, (String, PathError)> {
        let (path, version, origin, change) = match self {
            WireRecord::File {
                path,
                size,
                mtime_ns,
                executable,
                content,
                chunks,
                version,
                origin,
            } => (
                path,
                version,
                origin,
                Change::File {
                    size: *size,
                    mtime_ns: *mtime_ns,
                    executable: *executable,
                    content: *content,
                    chunks: chunks.clone(),
                },
            ),
            WireRecord::Dir {
                path,
                version,
                origin,
            } => (path, version, origin, Change::Dir),
            WireRecord::Delete {
                path,
                version,
                origin,
            } => (path, version, origin, Change::Delete),
        };
        let checked = RelPath::new(path).map_err(|err| (path.clone(), err))?;
        Ok(Record {
            path: checked,
            change,
            version: version.clone(),
            origin: *origin,
        })
    }
}

impl From<&Record> for WireRecord {
    fn from(record: &Record) -> Self {
        let path = record.path.as_str().to_owned();
        let version = record.version.clone();
        let origin = record.origin;
        match &record.change {
            Change::File {
                size,
                mtime_ns,
                executable,
                content,
                chunks,
            } => WireRecord::File {
                path,
                size: *size,
                mtime_ns: *mtime_ns,
                executable: *executable,
                content: *content,
                chunks: chunks.clone(),
                version,
                origin,
            },
            Change::Dir => WireRecord::Dir {
                path,
                version,
                origin,
            },
            Change::Delete => WireRecord::Delete {
                path,
                version,
                origin,
            },
        }
    }
}

/// One journal batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The batch number.
    pub(crate) seq: u64,
    /// Objects uploaded for this batch.
    pub(crate) objects: Vec<ObjectEntry>,
    /// What changed.
    pub(crate) records: Vec<WireRecord>,
    /// The objects carry parts of files whose records come in a later
    /// batch (a file larger than the room left under the quota travels in
    /// windows): receivers download all of them before acknowledging.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) prefetch: bool,
    /// Contents this client lacks and asks the others to upload again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) requests: Vec<ContentId>,
    /// Requested contents whose chunks this batch's objects carry again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) supplies: Vec<ContentId>,
}

/// Seals and opens relay files for one repository.
#[derive(Clone)]
pub(crate) struct Codec {
    keys: Keys,
    repository: RepositoryId,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec using `keys`, derived from the repository's master key.
    pub(crate) fn new(keys: Keys, repository: RepositoryId) -> Self {
        Codec { keys, repository }
    }

    /// The repository this codec seals for.
    pub(crate) fn repository(&self) -> RepositoryId {
        self.repository
    }

    /// The repository's keys.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Seals `head` for slot `generation mod 2`.
    pub(crate) fn seal_head(&self, head: &Head) -> Vec<u8> {
        let slot = head_slot(head.generation);
        let aad = Aad::new(&self.repository, &head.client, RecordKind::Head, &[slot]);
        self.keys.seal(
            &aad,
            &serde_json::to_vec(head).expect("heads always serialize"),
        )
    }

    /// Opens a sealed JSON record and parses it; `what` names it in errors.
    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        aad: &Aad,
        sealed: &[u8],
        what: &str,
    ) -> Result<T, FormatError> {
        let plain = self
            .keys
            .open(aad, sealed)
            .map_err(|source| FormatError::Integrity {
                what: what.to_owned(),
                source,
            })?;
        serde_json::from_slice(&plain).map_err(|err| FormatError::Malformed {
            what: what.to_owned(),
            reason: err.to_string(),
        })
    }

    /// Opens the head of `client` read from `slot`.
    pub(crate) fn open_head(
        &self,
        client: &ClientId,
        slot: u8,
        sealed: &[u8],
    ) -> Result<Head, FormatError> {
        let what = format!("the head (slot {slot}) of client {client}");
        let aad = Aad::new(&self.repository, client, RecordKind::Head, &[slot]);
        let head: Head = self.open_json(&aad, sealed, &what)?;
        if head.client != *client || head_slot(head.generation) != slot {
            return Err(FormatError::Malformed {
                what,
                reason: "it names another client or slot".into(),
            });
        }
        Ok(head)
    }

    /// Seals a journal batch.
    pub(crate) fn seal_batch(&self, client: &ClientId, batch: &Batch) -> Vec<u8> {
        let aad = Aad::new(
            &self.repository,
            client,
            RecordKind::Journal,
            &batch.seq.to_be_bytes(),
        );
        self.keys.seal(
            &aad,
            &serde_json::to_vec(batch).expect("batches always serialize"),
        )
    }

    /// Opens batch `seq` of `client`.
    pub(crate) fn open_batch(
        &self,
        client: &ClientId,
        seq: u64,
        sealed: &[u8],
    ) -> Result<Batch, FormatError> {
        let what = format!("journal batch {seq} of client {client}");
        let aad = Aad::new(
            &self.repository,
            client,
            RecordKind::Journal,
            &seq.to_be_bytes(),
        );
        let batch: Batch = self.open_json(&aad, sealed, &what)?;
        if batch.seq != seq {
            return Err(FormatError::Malformed {
                what,
                reason: format!("it says it is batch {}", batch.seq),
            });
        }
        Ok(batch)
    }

    fn chunk_aad(&self, owner: &ClientId, object: &ObjectId, chunk: &ChunkId) -> Aad {
        let mut position = Vec::with_capacity(48);
        position.extend_from_slice(object.as_bytes());
        position.extend_from_slice(chunk.as_bytes());
        Aad::new(&self.repository, owner, RecordKind::Chunk, &position)
    }

    /// Seals one chunk for its place in `object` of `owner`.
    pub(crate) fn seal_chunk(
        &self,
        owner: &ClientId,
        object: &ObjectId,
        chunk: &ChunkId,
        plain: &[u8],
    ) -> Vec<u8> {
        self.keys.seal(&self.chunk_aad(owner, object, chunk), plain)
    }

    /// Opens one chunk and checks that its content matches its identifier.
    pub(crate) fn open_chunk(
        &self,
        owner: &ClientId,
        object: &ObjectId,
        chunk: &ChunkId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        let what = || format!("chunk {chunk} in object {object} of client {owner}");
        let plain = self
            .keys
            .open(&self.chunk_aad(owner, object, chunk), sealed)
            .map_err(|source| FormatError::Integrity {
                what: what(),
                source,
            })?;
        if self.keys.chunk_id(&plain) != *chunk {
            return Err(FormatError::Malformed {
                what: what(),
                reason: "its content does not match its identifier".into(),
            });
        }
        Ok(plain)
    }
}

/// The head slot a generation is written to.
pub(crate) fn head_slot(generation: u64) -> u8 {
    u8::from(generation % 2 == 1)
}

fn relay_path(text: &str) -> RelayPath {
    RelayPath::new(text).expect("the relay format's own paths are valid")
}

/// The header's relay path.
pub(crate) fn header_path() -> RelayPath {
    relay_path(HEADER_FILE)
}

/// The folder of all clients.
pub(crate) fn clients_dir() -> RelayPath {
    relay_path(CLIENTS_DIR)
}

/// The folder of one client.
pub(crate) fn client_dir(client: &ClientId) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}"))
}

/// One head slot of a client.
pub(crate) fn head_path(client: &ClientId, slot: u8) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}/head.{slot}"))
}

/// A client's journal folder.
pub(crate) fn journal_dir(client: &ClientId) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}/journal"))
}

/// One journal batch.
pub(crate) fn batch_path(client: &ClientId, seq: u64) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}/journal/{seq:016x}"))
}

/// The batch number of a journal file name, if it is one.
pub(crate) fn parse_batch_name(name: &str) -> Option<u64> {
    (name.len() == 16)
        .then(|| u64::from_str_radix(name, 16).ok())
        .flatten()
}

/// A client's objects folder.
pub(crate) fn objects_dir(client: &ClientId) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}/objects"))
}

/// One object.
pub(crate) fn object_path(client: &ClientId, object: &ObjectId) -> RelayPath {
    relay_path(&format!("{CLIENTS_DIR}/{client}/objects/{object}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn codec() -> Codec {
        let repository = RepositoryId::random();
        Codec::new(MasterKey::generate().keys(&repository), repository)
    }

    fn record(path: &str) -> WireRecord {
        WireRecord::Delete {
            path: path.to_owned(),
            version: VersionVector::default(),
            origin: ClientId([1; 16]),
        }
    }

    #[test]
    fn hostile_record_paths_are_refused_one_by_one() {
        for path in [
            "../x",
            "/abs",
            "a/../../b",
            "nul\0byte",
            "CON",
            "aux.txt",
            "C:\\x",
            ".escale/x",
        ] {
            let (echo, _) = record(path).validate().unwrap_err();
            assert_eq!(echo, path);
        }
        assert_eq!(
            record("ok/fine.txt").validate().unwrap().path.as_str(),
            "ok/fine.txt"
        );
    }

    #[test]
    fn a_batch_opens_only_for_its_client_and_number() {
        let codec = codec();
        let client = ClientId::random();
        let batch = Batch {
            seq: 7,
            objects: vec![],
            records: vec![record("a")],
            prefetch: false,
            requests: Vec::new(),
            supplies: Vec::new(),
        };
        let sealed = codec.seal_batch(&client, &batch);
        assert_eq!(codec.open_batch(&client, 7, &sealed).unwrap(), batch);
        assert!(matches!(
            codec.open_batch(&client, 8, &sealed),
            Err(FormatError::Integrity { .. })
        ));
        assert!(matches!(
            codec.open_batch(&ClientId::random(), 7, &sealed),
            Err(FormatError::Integrity { .. })
        ));
        let mut flipped = sealed.clone();
        flipped[20] ^= 4;
        assert!(matches!(
            codec.open_batch(&client, 7, &flipped),
            Err(FormatError::Integrity { .. })
        ));
    }

    #[test]
    fn a_head_opens_only_from_its_slot_and_a_torn_one_is_refused() {
        let codec = codec();
        let client = ClientId::random();
        let head = Head {
            client,
            name: "a".into(),
            generation: 3,
            journal: 2,
            acks: BTreeMap::new(),
            stored_bytes: 0,
            updated: 0,
            retired: Vec::new(),
        };
        let sealed = codec.seal_head(&head);
        assert_eq!(codec.open_head(&client, 1, &sealed).unwrap(), head);
        assert!(codec.open_head(&client, 0, &sealed).is_err());
        assert!(
            codec
                .open_head(&client, 1, &sealed[..sealed.len() / 2])
                .is_err()
        );
    }

    #[test]
    fn headers_of_other_formats_and_versions_are_refused_clearly() {
        assert!(matches!(
            Header::parse(b"{}"),
            Err(FormatError::NotARepository(_))
        ));
        assert!(matches!(
            Header::parse(b"not json"),
            Err(FormatError::NotARepository(_))
        ));
        assert!(matches!(
            Header::parse(br#"{"format":"escale-relay","version":2}"#),
            Err(FormatError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn batch_names_round_trip() {
        let path = batch_path(&ClientId([0; 16]), 42);
        assert!(path.as_str().ends_with("/journal/000000000000002a"));
        assert_eq!(parse_batch_name("000000000000002a"), Some(42));
        assert_eq!(parse_batch_name("2a"), None);
    }
}

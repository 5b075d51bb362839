//! Keys, envelopes and keyed identifiers: everything that makes the relay
//! see only opaque bytes.
//!
//! `docs/crypto.md` is the specification; this module is its one
//! implementation, and the two must change together.
//!
//! The key hierarchy exists so that a passphrase change touches one small
//! header field instead of every file on the relay:
//!
//! ```text
//! passphrase ──Argon2id(KdfParams)──▶ PassphraseKey ──wraps──▶ MasterKey (random)
//!                                                              │ HKDF-SHA256, salt = repository id
//!                                          ┌───────────────────┼────────────────────┐
//!                                    envelope key        chunk-id key        content-id key
//!                                 (AES-256-GCM: seal)  (HMAC: ChunkId)   (HMAC: ContentId)
//! ```
//!
//! Every sealed record carries associated data ([`Aad`]) naming its
//! repository, its writer, its kind and its position, so a record moved to
//! any other place on the relay no longer opens.
//!
//! Secret key bytes live on the heap (so moving a key value does not leave
//! copies behind on the stack) and are zeroized when dropped. That is best
//! effort: the key schedules the AES, HMAC and Argon2 implementations derive
//! internally are erased only if those crates' `zeroize` features are
//! enabled, and the operating system may have swapped a page out meanwhile.

use std::fmt;
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::ids::{ClientId, RepositoryId, random_bytes};

#[cfg(test)]
mod tests;

/// Length of every symmetric key: AES-256 and the HMAC-SHA256 keys.
const KEY_LEN: usize = 32;
/// AES-GCM's native nonce length; other lengths cost an extra GHASH pass.
const NONCE_LEN: usize = 12;
/// Full-length GCM tag: truncated tags weaken forgery resistance.
const TAG_LEN: usize = 16;
/// Argon2 salt length; 16 random bytes never repeat in practice.
const SALT_LEN: usize = 16;
/// Length of [`WrappedKey`]'s single byte string.
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// First byte of every envelope, so a future algorithm can be told apart
/// from this one before anything is decrypted.
const ENVELOPE_FORMAT: u8 = 0x01;
/// Domain separator at the head of every envelope's associated data.
const AAD_PREFIX: &[u8] = b"escale/v1";
/// Associated-data prefix of the master-key wrap. The wrap already uses
/// another key than envelopes; a distinct prefix keeps the two constructions
/// apart even if that ever changed.
const WRAP_AAD_PREFIX: &[u8] = b"escale/v1/master-key";

/// HKDF info string of the AES-256-GCM key that seals records.
const INFO_ENVELOPE: &[u8] = b"escale/v1/envelope";
/// HKDF info string of the HMAC key behind [`ChunkId`]s.
const INFO_CHUNK_ID: &[u8] = b"escale/v1/chunk-id";
/// HKDF info string of the HMAC key behind [`ContentId`]s.
const INFO_CONTENT_ID: &[u8] = b"escale/v1/content-id";

/// The only key-derivation algorithm version 1 knows.
const KDF_ALGORITHM: &str = "argon2id";
/// A floor against headers written with a broken configuration: below a
/// few MiB, Argon2id's memory cost stops hindering guessing hardware.
const MIN_MEMORY_KIB: u32 = 8 * 1024;
/// Above 4 GiB an ordinary office PC could not open the repository at all,
/// so a header asking for more is hostile or broken.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Bounds the time a hostile header can make a client spend before it
/// reports a wrong passphrase.
const MAX_ITERATIONS: u32 = 16;
/// A bound like the others; this build computes lanes one after another,
/// so more lanes would not make anything faster.
const MAX_PARALLELISM: u32 = 16;

/// Why a cryptographic operation refused its input.
///
/// Messages are plain sentences because the desktop app shows them as they
/// are; none of them ever contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The master key did not unwrap. AES-GCM cannot tell a wrong passphrase
    /// from an altered header, and a wrong passphrase is by far the likelier.
    #[error("wrong passphrase: it does not unlock this repository")]
    WrongPassphrase,

    /// A sealed record failed authentication: altered, damaged, written for
    /// another place, or read while its writer was still writing it.
    #[error(
        "a file on the relay failed its integrity check: it is damaged, was modified, \
         or was still being written"
    )]
    Tampered,

    /// A sealed record is too short to be an envelope, or starts with a
    /// format byte this version does not know.
    #[error(
        "a file on the relay is incomplete or in a format this version of Escale \
         does not understand"
    )]
    Truncated,

    /// The repository header's key-derivation settings are refused, or this
    /// computer cannot run them.
    #[error("the repository's key-derivation settings cannot be used: {0}")]
    BadKdfParams(String),
}

/// Secret key bytes, kept on the heap and zeroized when dropped.
///
/// The box means a key value can be moved around (returned, stored in a
/// struct) without leaving copies of the bytes in old stack frames.
struct SecretBytes(Box<[u8; KEY_LEN]>);

impl SecretBytes {
    /// An all-zero buffer, to be filled in place so the secret never exists
    /// outside the box.
    fn zeroed() -> Self {
        SecretBytes(Box::new([0; KEY_LEN]))
    }

    /// Fresh key material from the operating system.
    ///
    /// # Panics
    ///
    /// If the operating system has no random source (see
    /// [`crate::ids::random_bytes`]).
    fn random() -> Self {
        let mut secret = Self::zeroed();
        getrandom::fill(&mut secret.0[..]).expect("the operating system provides random bytes");
        secret
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // `zeroize` rather than `fill(0)`: the compiler may remove a plain
        // write to memory that is about to be freed.
        self.0.zeroize();
    }
}

/// A random 16-byte Argon2 salt, written in the header as base64.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Salt([u8; SALT_LEN]);

impl Salt {
    /// A fresh salt: every repository and every passphrase change gets one,
    /// so one guessing effort never serves two of them.
    pub(crate) fn random() -> Self {
        Salt(random_bytes())
    }

    /// The raw bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({})", BASE64.encode(self.0))
    }
}

impl Serialize for Salt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode_base64_exact(&text, "salt")
            .map(Salt)
            .map_err(serde::de::Error::custom)
    }
}

/// Decodes standard base64 that must hold exactly `N` bytes.
fn decode_base64_exact<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| format!("the {what} is not valid base64"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("the {what} must be {N} bytes long, not {}", bytes.len()))
}

/// Argon2id parameters, stored in the relay header (JSON).
///
/// They travel with the repository so a later version can raise the cost
/// for new repositories while still opening old ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KdfParams {
    /// Always `"argon2id"` in version 1.
    pub(crate) algorithm: String,
    /// Memory cost in KiB (Argon2's `m`).
    pub(crate) memory_kib: u32,
    /// Number of passes (Argon2's `t`).
    pub(crate) iterations: u32,
    /// Number of lanes (Argon2's `p`).
    pub(crate) parallelism: u32,
    /// Random per repository, renewed on each passphrase change.
    pub(crate) salt: Salt,
}

impl KdfParams {
    /// Parameters for a new repository or a new passphrase: 64 MiB, 3 passes,
    /// 1 lane, fresh salt.
    ///
    /// That is RFC 9106's second recommended option with one lane instead of
    /// four: the derivation runs single-threaded here, and a fraction of a
    /// second on one core is affordable once per start even on old office PCs.
    pub(crate) fn recommended() -> Self {
        KdfParams {
            algorithm: KDF_ALGORITHM.to_owned(),
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
            salt: Salt::random(),
        }
    }

    /// Refuses parameters a sane `init` never writes.
    ///
    /// The header is on the relay and anyone with write access there can
    /// edit it: without bounds a hostile header could make a client allocate
    /// terabytes or compute for weeks before it could even report a wrong
    /// passphrase.
    pub(crate) fn validate(&self) -> Result<(), CryptoError> {
        let bad = |reason: String| Err(CryptoError::BadKdfParams(reason));
        if self.algorithm != KDF_ALGORITHM {
            return bad(format!(
                "the algorithm is {:?}, but only {KDF_ALGORITHM:?} is supported",
                self.algorithm
            ));
        }
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return bad(format!(
                "the memory cost is {} KiB, outside the accepted {MIN_MEMORY_KIB}..={MAX_MEMORY_KIB} KiB",
                self.memory_kib
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return bad(format!(
                "the number of iterations is {}, outside the accepted 1..={MAX_ITERATIONS}",
                self.iterations
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return bad(format!(
                "the parallelism is {}, outside the accepted 1..={MAX_PARALLELISM}",
                self.parallelism
            ));
        }
        Ok(())
    }

    /// Derives the key that wraps the master key.
    ///
    /// Slow on purpose (a fraction of a second with the recommended
    /// parameters): every passphrase guess costs an attacker the same. Run
    /// it off the async threads. The passphrase is used as its UTF-8 bytes,
    /// with no trimming or Unicode normalization; callers decide what the
    /// passphrase is.
    pub(crate) fn derive(&self, passphrase: &str) -> Result<PassphraseKey, CryptoError> {
        self.validate()?;
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|err| CryptoError::BadKdfParams(err.to_string()))?;
        let mut key = SecretBytes::zeroed();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), self.salt.as_bytes(), &mut key.0[..])
            .map_err(|err| match err {
                argon2::Error::OutOfMemory => CryptoError::BadKdfParams(format!(
                    "this computer could not set aside the {} MiB of memory it needs",
                    self.memory_kib / 1024
                )),
                other => CryptoError::BadKdfParams(other.to_string()),
            })?;
        Ok(PassphraseKey(key))
    }
}

/// The key derived from the passphrase; it only wraps and unwraps the
/// master key, so changing the passphrase never re-encrypts the relay.
pub(crate) struct PassphraseKey(SecretBytes);

impl fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphraseKey(..)")
    }
}

/// The repository's root secret: 32 random bytes chosen at `init` and never
/// changed, from which every working key is derived.
pub(crate) struct MasterKey(SecretBytes);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new master key, for `init`.
    ///
    /// Random rather than derived from the passphrase, so that the passphrase
    /// can change without re-encrypting anything and the working keys are
    /// full-strength whatever the passphrase.
    pub(crate) fn generate() -> Self {
        MasterKey(SecretBytes::random())
    }

    /// Encrypts the master key for the header.
    ///
    /// The associated data names the repository so a header's wrapped key
    /// cannot be transplanted into another repository's header.
    pub(crate) fn wrap(&self, with: &PassphraseKey, repository: &RepositoryId) -> WrappedKey {
        self.wrap_with_nonce(with, repository, random_bytes())
    }

    /// [`MasterKey::wrap`] with a chosen nonce, so tests can check the
    /// output against independently computed vectors.
    fn wrap_with_nonce(
        &self,
        with: &PassphraseKey,
        repository: &RepositoryId,
        nonce: [u8; NONCE_LEN],
    ) -> WrappedKey {
        // Encrypt in place inside an erasable box, so the plaintext key is
        // not left behind in a stack buffer.
        let mut body = SecretBytes::zeroed();
        body.0.copy_from_slice(&self.0.0[..]);
        let tag = Aes256Gcm::new((&*with.0.0).into())
            .encrypt_inout_detached(
                (&nonce).into(),
                &wrap_aad(repository),
                (&mut body.0[..]).into(),
            )
            .expect("AES-GCM encrypts 32 bytes");
        WrappedKey {
            nonce,
            body: *body.0,
            tag: tag.into(),
        }
    }

    /// Derives the repository's working keys.
    ///
    /// HKDF's salt is the repository id so that even a master key reused
    /// across repositories (which `init` never does) would yield unrelated
    /// keys; each subkey has its own info string so no key ever serves two
    /// algorithms.
    pub(crate) fn keys(&self, repository: &RepositoryId) -> Keys {
        let hkdf = Hkdf::<Sha256>::new(Some(repository.as_bytes()), &self.0.0[..]);
        let subkey = |info: &[u8]| {
            let mut key = SecretBytes::zeroed();
            hkdf.expand(info, &mut key.0[..])
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            key
        };
        let hmac = |key: SecretBytes| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0[..])
                .expect("HMAC accepts keys of any length")
        };
        Keys(Arc::new(Subkeys {
            envelope: Aes256Gcm::new((&*subkey(INFO_ENVELOPE).0).into()),
            chunk_id: hmac(subkey(INFO_CHUNK_ID)),
            content_id: hmac(subkey(INFO_CONTENT_ID)),
        }))
    }
}

/// Associated data of the master-key wrap.
fn wrap_aad(repository: &RepositoryId) -> [u8; WRAP_AAD_PREFIX.len() + 16] {
    let mut aad = [0; WRAP_AAD_PREFIX.len() + 16];
    let (prefix, id) = aad.split_at_mut(WRAP_AAD_PREFIX.len());
    prefix.copy_from_slice(WRAP_AAD_PREFIX);
    id.copy_from_slice(repository.as_bytes());
    aad
}

/// The master key encrypted under the passphrase key, as stored in the
/// header: one base64 string of nonce (12) ‖ ciphertext (32) ‖ tag (16).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct WrappedKey {
    nonce: [u8; NONCE_LEN],
    body: [u8; KEY_LEN],
    tag: [u8; TAG_LEN],
}

impl WrappedKey {
    /// Recovers the master key; fails if the passphrase (or the repository)
    /// is not the one the key was wrapped for.
    pub(crate) fn unwrap(
        &self,
        with: &PassphraseKey,
        repository: &RepositoryId,
    ) -> Result<MasterKey, CryptoError> {
        // Decrypt in place inside the key's own box, so the plaintext key is
        // never held anywhere that is not erased on drop.
        let mut key = SecretBytes::zeroed();
        *key.0 = self.body;
        Aes256Gcm::new((&*with.0.0).into())
            .decrypt_inout_detached(
                (&self.nonce).into(),
                &wrap_aad(repository),
                (&mut key.0[..]).into(),
                (&self.tag).into(),
            )
            .map_err(|_| CryptoError::WrongPassphrase)?;
        Ok(MasterKey(key))
    }

    /// The single byte string the header stores.
    fn to_bytes(&self) -> [u8; WRAPPED_LEN] {
        let mut bytes = [0; WRAPPED_LEN];
        let (nonce, rest) = bytes.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(KEY_LEN);
        nonce.copy_from_slice(&self.nonce);
        body.copy_from_slice(&self.body);
        tag.copy_from_slice(&self.tag);
        bytes
    }

    /// Splits the header's byte string into its parts.
    fn from_bytes(bytes: &[u8; WRAPPED_LEN]) -> Self {
        let mut key = WrappedKey {
            nonce: [0; NONCE_LEN],
            body: [0; KEY_LEN],
            tag: [0; TAG_LEN],
        };
        key.nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        key.body
            .copy_from_slice(&bytes[NONCE_LEN..NONCE_LEN + KEY_LEN]);
        key.tag.copy_from_slice(&bytes[NONCE_LEN + KEY_LEN..]);
        key
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({})", BASE64.encode(self.to_bytes()))
    }
}

impl Serialize for WrappedKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(self.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for WrappedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode_base64_exact::<WRAPPED_LEN>(&text, "wrapped master key")
            .map(|bytes| WrappedKey::from_bytes(&bytes))
            .map_err(serde::de::Error::custom)
    }
}

/// Subkeys of one repository.
///
/// Cloning is cheap (a reference count) so every task that seals or opens
/// can hold its own handle; the cipher and MAC states are keyed once here
/// rather than once per chunk.
#[derive(Clone)]
pub(crate) struct Keys(Arc<Subkeys>);

/// The keyed primitives behind [`Keys`].
struct Subkeys {
    /// Seals and opens every record on the relay.
    envelope: Aes256Gcm,
    /// Keyed state for [`ChunkId`]s, cloned for each chunk.
    chunk_id: Hmac<Sha256>,
    /// Keyed state for [`ContentId`]s, cloned for each file.
    content_id: Hmac<Sha256>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Bytes [`Keys::seal`] adds: format byte, nonce and tag.
    pub(crate) const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

    /// Identifies a chunk by its content.
    ///
    /// Keyed, so that someone who can see chunk ids (on the relay, or in the
    /// local state database) cannot confirm a guess of what a chunk holds by
    /// hashing the guess.
    pub(crate) fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        let mut mac = self.0.chunk_id.clone();
        mac.update(plaintext);
        ChunkId(mac.finalize().into_bytes().into())
    }

    /// Identifies a whole file's content from its chunk list.
    ///
    /// The size comes first and has a fixed width, and chunk ids have a fixed
    /// width, so no two different inputs hash the same bytes. Its own key
    /// keeps a content id from ever equalling a chunk id.
    pub(crate) fn content_id(&self, chunks: &[ChunkId], size: u64) -> ContentId {
        let mut mac = self.0.content_id.clone();
        mac.update(&size.to_be_bytes());
        for chunk in chunks {
            mac.update(chunk.as_bytes());
        }
        ContentId(mac.finalize().into_bytes().into())
    }

    /// Encrypts and authenticates one record for the place `aad` names.
    ///
    /// Output: format byte `0x01` ‖ random nonce (12) ‖ ciphertext ‖ tag
    /// (16). The nonce is random rather than a counter because clients share
    /// the key and keep no common state; `docs/crypto.md` bounds how many
    /// messages that allows.
    ///
    /// # Panics
    ///
    /// If `plaintext` exceeds AES-GCM's limit of 64 GiB; records are at most
    /// tens of MiB.
    pub(crate) fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
        self.seal_with_nonce(aad, plaintext, random_bytes())
    }

    /// [`Keys::seal`] with a chosen nonce, so tests can check the output
    /// against independently computed vectors. A nonce must never be reused
    /// under one key: everything outside tests goes through `seal`.
    fn seal_with_nonce(&self, aad: &Aad, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let mut sealed = Vec::with_capacity(Self::OVERHEAD + plaintext.len());
        sealed.push(ENVELOPE_FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .0
            .envelope
            .encrypt_inout_detached(
                (&nonce).into(),
                &aad.0,
                (&mut sealed[1 + NONCE_LEN..]).into(),
            )
            .expect("records are far below AES-GCM's 64 GiB limit");
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// Authenticates and decrypts a record read from the place `aad` names.
    ///
    /// Nothing is returned unless the whole record is authentic, so a
    /// half-written file or one copied from elsewhere is refused, never
    /// partly used. Any input, however malformed, gives an error rather than
    /// a panic.
    pub(crate) fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < Self::OVERHEAD {
            return Err(CryptoError::Truncated);
        }
        let Some((&ENVELOPE_FORMAT, rest)) = sealed.split_first() else {
            return Err(CryptoError::Truncated);
        };
        let Some((nonce, rest)) = rest.split_first_chunk::<NONCE_LEN>() else {
            return Err(CryptoError::Truncated);
        };
        let Some((ciphertext, tag)) = rest.split_last_chunk::<TAG_LEN>() else {
            return Err(CryptoError::Truncated);
        };
        let mut plaintext = ciphertext.to_vec();
        self.0
            .envelope
            .decrypt_inout_detached(
                nonce.into(),
                &aad.0,
                plaintext.as_mut_slice().into(),
                tag.into(),
            )
            .map_err(|_| CryptoError::Tampered)?;
        Ok(plaintext)
    }
}

/// What a sealed record is, as bound into its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    /// One of a client's two head slots.
    Head = 1,
    /// One batch of a client's journal.
    Journal = 2,
    /// One chunk inside an object.
    Chunk = 3,
}

/// Associated data: binds a sealed record to its place so it cannot be
/// swapped, replayed, reordered or truncated unnoticed.
///
/// It is never stored: the reader rebuilds it from where it found the
/// record, so a record moved anywhere else fails to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aad(Vec<u8>);

impl Aad {
    /// The canonical associated data: `b"escale/v1"` ‖ repository (16) ‖
    /// client (16) ‖ kind (1) ‖ position length (u32 big-endian) ‖ position.
    ///
    /// Every field has a fixed width or a length prefix, so two different
    /// places never produce the same bytes. `position` is what locates the
    /// record among those of its kind (see `docs/crypto.md`).
    ///
    /// # Panics
    ///
    /// If `position` is 4 GiB or longer; positions are a few dozen bytes.
    pub(crate) fn new(
        repository: &RepositoryId,
        client: &ClientId,
        kind: RecordKind,
        position: &[u8],
    ) -> Self {
        let length = u32::try_from(position.len()).expect("a record position is a few bytes long");
        let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 16 + 16 + 1 + 4 + position.len());
        aad.extend_from_slice(AAD_PREFIX);
        aad.extend_from_slice(repository.as_bytes());
        aad.extend_from_slice(client.as_bytes());
        aad.push(kind as u8);
        aad.extend_from_slice(&length.to_be_bytes());
        aad.extend_from_slice(position);
        Aad(aad)
    }
}

/// Keyed-hash identifiers can also be rebuilt from stored bytes.
macro_rules! from_bytes {
    ($($name:ident),*) => {$(
        impl $name {
            /// Wraps raw bytes, as read back from storage.
            #[cfg_attr(not(test), allow(dead_code))]
            pub(crate) const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }
        }
    )*};
}

crate::ids::hex_bytes!(
    /// Identifies a chunk by its content: HMAC-SHA256 of the chunk under the
    /// repository's chunk-id key. Equal chunks in one repository get equal
    /// ids, which is what lets unchanged parts of a file go unsent.
    pub(crate) ChunkId,
    32
);
crate::ids::hex_bytes!(
    /// Identifies a whole file's content: HMAC-SHA256 over its size and chunk
    /// ids under the repository's content-id key. Two files with equal
    /// content ids in one repository have the same bytes.
    pub(crate) ContentId,
    32
);
from_bytes!(ChunkId, ContentId);

//! The other computers of a repository: who they are, when they were last
//! seen, what they still lack, and retiring one that is gone for good.

use std::sync::Arc;

use serde::Serialize;

use crate::config::ConfigDir;
use crate::error::{Error, Result};
use crate::ids::ClientId;
use crate::repository::{Passphrase, blocking, open_session};
use crate::sync::Session;

/// Whether a client still holds data back on the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Presence {
    /// Seen within the absence limit: the relay keeps data until it has it.
    Active,
    /// Silent for longer than the absence limit: data is no longer kept for
    /// it; when it comes back, it asks again for what it missed.
    Absent,
    /// Retired: it will never be waited for again, and its own data on the
    /// relay is cleared.
    Retired,
    /// Its head could not be read just now (being written, or damaged).
    Unreadable,
}

/// One computer of the repository, seen from this one.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ClientInfo {
    /// Its identifier.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Whether this is the computer asking.
    pub this_computer: bool,
    /// When it last wrote its head (Unix seconds).
    pub last_seen: Option<i64>,
    /// Whether it holds data back.
    pub presence: Presence,
    /// Bytes of its own data on the relay.
    pub stored_bytes: u64,
    /// Changes this computer sent that it has not received yet.
    pub lacks_files: u64,
    /// Bytes of those changes.
    pub lacks_bytes: u64,
}

/// Every computer of repository `name`, this one first, then by name.
pub async fn clients(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Passphrase,
) -> Result<Vec<ClientInfo>> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    blocking(move |runtime| {
        let mut session = open_session(&config_dir, &name, &passphrase, runtime, None)?;
        session.read_heads()?;
        describe(&session)
    })
    .await
}

/// Retires the computer `who` (its name, or its identifier or the start of
/// it) from repository `name`: no computer waits for it any more, and its
/// data on the relay is cleared. If it comes back, it must join again.
pub async fn retire(
    config_dir: &ConfigDir,
    name: &str,
    passphrase: Passphrase,
    who: &str,
) -> Result<ClientInfo> {
    let config_dir = config_dir.clone();
    let name = name.to_owned();
    let who = who.to_owned();
    blocking(move |runtime| {
        let mut session = open_session(&config_dir, &name, &passphrase, runtime, None)?;
        session.stop = Arc::default();
        session.read_heads()?;
        let target = find(&session, &name, &who)?;
        session.db.retire(&target)?;
        // The head tells the others; clearing frees the relay at once.
        session.write_head(0)?;
        session.clean_up()?;
        session.write_head(0)?;
        describe(&session)?
            .into_iter()
            .find(|info| info.id == target.to_string())
            .ok_or_else(|| Error::Internal("the retired computer vanished".into()))
    })
    .await
}

/// The client `who` designates, refusing this computer and ambiguity.
fn find(session: &Session, repository: &str, who: &str) -> Result<ClientId> {
    let invalid = |reason: String| Error::InvalidRepository {
        repository: repository.to_owned(),
        reason,
    };
    let names = session.client_names()?;
    let by_name: Vec<ClientId> = session
        .heads
        .keys()
        .filter(|client| names.get(client).is_some_and(|n| n == who))
        .copied()
        .collect();
    let matches = if by_name.is_empty() && who.len() >= 4 {
        session
            .heads
            .keys()
            .filter(|client| client.to_string().starts_with(&who.to_ascii_lowercase()))
            .copied()
            .collect()
    } else {
        by_name
    };
    if who == session.name || session.me.to_string().starts_with(who) {
        return Err(invalid(
            "a computer cannot retire itself; remove the synced folder instead".into(),
        ));
    }
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(invalid(format!(
            "no other computer is called {who:?}; `escale clients {repository}` lists them"
        ))),
        _ => Err(invalid(format!(
            "several computers are called {who:?}; give the identifier shown by \
             `escale clients {repository}` instead"
        ))),
    }
}

fn describe(session: &Session) -> Result<Vec<ClientInfo>> {
    let retired = session.retired_clients()?;
    let names = session.client_names()?;
    let own_stored: u64 = session
        .db
        .own_objects()?
        .iter()
        .map(|(_, _, size)| size)
        .sum();
    let mut list = vec![ClientInfo {
        id: session.me.to_string(),
        name: session.name.clone(),
        this_computer: true,
        last_seen: session.own_head.as_ref().map(|head| head.updated),
        presence: Presence::Active,
        stored_bytes: own_stored,
        lacks_files: 0,
        lacks_bytes: 0,
    }];
    let mut others = Vec::new();
    for (client, head) in &session.heads {
        let acked = head
            .as_ref()
            .and_then(|head| head.acks.get(&session.me).copied())
            .unwrap_or(0);
        let (lacks_files, lacks_bytes) = session.db.own_batches_after(acked)?;
        let presence = if retired.contains(client) {
            Presence::Retired
        } else {
            match head {
                None => Presence::Unreadable,
                Some(head) if session.is_absent(head) => Presence::Absent,
                Some(_) => Presence::Active,
            }
        };
        others.push(ClientInfo {
            id: client.to_string(),
            name: names.get(client).cloned().unwrap_or_default(),
            this_computer: false,
            last_seen: head.as_ref().map(|head| head.updated),
            presence,
            stored_bytes: head.as_ref().map_or(0, |head| head.stored_bytes),
            lacks_files,
            lacks_bytes,
        });
    }
    others.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    list.extend(others);
    Ok(list)
}

//! Deciding what a remote record means for this computer's copy.
//!
//! A pure function of what the database knows about the path and what the
//! record says, so it can be tested exhaustively. Every client applies the
//! same rules to the same records, which is why conflicts end the same way
//! everywhere: the same winner, the same conflict-copy name.

use std::collections::HashMap;

use crate::format::{Change, Record};
use crate::ids::ClientId;
use crate::path::RelPath;
use crate::state::{FileState, StateKind};
use crate::version::{Causality, VersionVector};

/// What to do with one remote record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// This computer already has this version or a newer one.
    Ignore,
    /// The record is newer: make the local path match it.
    Apply,
    /// Made independently but identical (same content, or both deleted):
    /// only remember that the versions are now merged.
    Merge(VersionVector),
    /// A local edit and a remote deletion crossed: the edit wins, and is
    /// published again so the other computers get the file back.
    KeepLocal(VersionVector),
    /// Two different edits crossed: the loser is kept as a conflict copy.
    Conflict(ConflictPlan),
}

/// How a conflict between two file versions is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConflictPlan {
    /// Whether the remote version wins the original path (the local one
    /// then moves to the conflict copy), or the local one stays.
    pub(crate) remote_wins: bool,
    /// Where the losing version goes.
    pub(crate) copy: RelPath,
    /// The version the original path ends with.
    pub(crate) merged: VersionVector,
}

/// The facts about one version that decide who wins a conflict.
struct Contender {
    mtime_ns: i64,
    origin: ClientId,
}

/// Decides what `remote` means given what is known locally about its path.
/// `names` gives client display names, for conflict-copy names.
pub(crate) fn decide(
    local: Option<&FileState>,
    remote: &Record,
    names: &HashMap<ClientId, String>,
) -> Decision {
    let Some(local) = local else {
        return match remote.change {
            // Nothing here: a deletion still has to be remembered so that an
            // older copy of the file arriving later is recognised as older.
            Change::Delete => Decision::Merge(remote.version.clone()),
            _ => Decision::Apply,
        };
    };
    match remote.version.compare(&local.version) {
        Causality::Equal | Causality::Older => Decision::Ignore,
        // Already identical here (the same edit arrived by another way, or a
        // conflict copy this computer made itself): just adopt the version.
        Causality::Newer if same_file(local, remote) => Decision::Merge(remote.version.clone()),
        Causality::Newer => Decision::Apply,
        Causality::Concurrent => concurrent(local, remote, names),
    }
}

fn same_file(local: &FileState, remote: &Record) -> bool {
    match &remote.change {
        Change::File {
            mtime_ns,
            executable,
            content,
            ..
        } => {
            local.kind == StateKind::File
                && local.content.as_ref() == Some(content)
                && local.mtime_ns == *mtime_ns
                && local.executable == *executable
        }
        Change::Dir => local.kind == StateKind::Dir,
        Change::Delete => local.kind == StateKind::Deleted,
    }
}

fn concurrent(local: &FileState, remote: &Record, names: &HashMap<ClientId, String>) -> Decision {
    let merged = local.version.merge(&remote.version);
    match (&local.kind, &remote.change) {
        (StateKind::Deleted, Change::Delete) | (StateKind::Dir, Change::Dir) => {
            Decision::Merge(merged)
        }
        // Nothing is lost when a folder or an edit survives a deletion.
        (StateKind::Dir | StateKind::File, Change::Delete) => Decision::KeepLocal(merged),
        (StateKind::Deleted, _) => Decision::Apply,
        (StateKind::File, Change::File { content, .. })
            if Some(content) == local.content.as_ref() =>
        {
            Decision::Merge(merged)
        }
        (StateKind::File, Change::File { mtime_ns, .. }) => {
            let mine = Contender {
                mtime_ns: local.mtime_ns,
                origin: local.origin,
            };
            let theirs = Contender {
                mtime_ns: *mtime_ns,
                origin: remote.origin,
            };
            let remote_wins = wins(&theirs, &mine);
            let loser = if remote_wins { &mine } else { &theirs };
            let loser_name = names
                .get(&loser.origin)
                .cloned()
                .unwrap_or_else(|| short_id(&loser.origin));
            Decision::Conflict(ConflictPlan {
                remote_wins,
                copy: conflict_copy_path(&remote.path, loser.mtime_ns, &loser_name),
                merged,
            })
        }
        // A folder against a file at the same path: the file wins the path;
        // the folder's contents stay where they are as their own records.
        (StateKind::Dir, Change::File { .. }) => Decision::Apply,
        (StateKind::File, Change::Dir) => Decision::KeepLocal(merged),
    }
}

/// The newer modification time wins; the client identifier breaks ties so
/// that every computer picks the same winner.
fn wins(a: &Contender, b: &Contender) -> bool {
    (a.mtime_ns, a.origin) > (b.mtime_ns, b.origin)
}

fn short_id(client: &ClientId) -> String {
    client.to_string()[..8].to_owned()
}

/// `dir/report (conflict 2026-11-24 1530 from laptop-b).docx`: the time is
/// the losing version's modification time in UTC, so the name is the same
/// on every computer whatever its time zone.
pub(crate) fn conflict_copy_path(path: &RelPath, mtime_ns: i64, loser: &str) -> RelPath {
    let name = path.file_name();
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let when = format_utc_minute(mtime_ns);
    let who = safe_name(loser);
    let copy = format!("{stem} (conflict {when} from {who}){extension}");
    let joined = match path.parent() {
        Some(parent) => parent.join(&copy),
        None => RelPath::new(&copy),
    };
    // The pieces are a valid name, a date and a sanitised client name, so
    // this only fails if the result is too long; fall back to a short form.
    joined.unwrap_or_else(|_| {
        let short = format!("conflict {when} from {who}{extension}");
        path.parent()
            .map_or_else(|| RelPath::new(&short), |parent| parent.join(&short))
            .unwrap_or_else(|_| path.clone())
    })
}

/// Keeps a client name usable inside a file name on every system.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"/\\|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(40)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c == ' ');
    if trimmed.is_empty() {
        "unnamed".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `YYYY-MM-DD HHMM` in UTC for a time in nanoseconds since the epoch.
pub(crate) fn format_utc_minute(time_ns: i64) -> String {
    let seconds = time_ns.div_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}{:02}",
        of_day / 3600,
        (of_day % 3600) / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), so no date library is needed for one format.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ChunkId, ContentId};
    use crate::state::ChunkRef;
    use proptest::prelude::*;

    fn client(n: u8) -> ClientId {
        ClientId([n; 16])
    }

    fn vv(entries: &[(u8, u64)]) -> VersionVector {
        entries
            .iter()
            .fold(VersionVector::default(), |v, &(c, s)| v.bump(client(c), s))
    }

    fn local_file(version: VersionVector, content: u8, mtime_ns: i64, origin: u8) -> FileState {
        FileState {
            path: RelPath::new("docs/report.docx").unwrap(),
            kind: StateKind::File,
            size: 1,
            mtime_ns,
            inode: 1,
            executable: false,
            content: Some(ContentId::from_bytes([content; 32])),
            chunks: vec![ChunkRef {
                id: ChunkId::from_bytes([content; 32]),
                size: 1,
            }],
            version,
            origin: client(origin),
        }
    }

    fn remote_file(version: VersionVector, content: u8, mtime_ns: i64, origin: u8) -> Record {
        Record {
            path: RelPath::new("docs/report.docx").unwrap(),
            change: Change::File {
                size: 1,
                mtime_ns,
                executable: false,
                content: ContentId::from_bytes([content; 32]),
                chunks: vec![ChunkRef {
                    id: ChunkId::from_bytes([content; 32]),
                    size: 1,
                }],
            },
            version,
            origin: client(origin),
        }
    }

    fn names() -> HashMap<ClientId, String> {
        HashMap::from([
            (client(1), "laptop-a".to_owned()),
            (client(2), "laptop-b".to_owned()),
        ])
    }

    // 2026-11-24 15:30:00 UTC
    const T: i64 = 1_795_534_200_000_000_000;

    #[test]
    fn conflict_copy_name_is_the_documented_one() {
        let path = RelPath::new("docs/report.docx").unwrap();
        assert_eq!(
            conflict_copy_path(&path, T, "laptop-b").as_str(),
            "docs/report (conflict 2026-11-24 1530 from laptop-b).docx"
        );
        let bare = RelPath::new("Makefile").unwrap();
        assert_eq!(
            conflict_copy_path(&bare, T, "a/b:c").as_str(),
            "Makefile (conflict 2026-11-24 1530 from a_b_c)"
        );
        let dotfile = RelPath::new(".bashrc").unwrap();
        assert_eq!(
            conflict_copy_path(&dotfile, T, "x").as_str(),
            ".bashrc (conflict 2026-11-24 1530 from x)"
        );
    }

    #[test]
    fn dates_before_the_epoch_and_leap_days() {
        assert_eq!(format_utc_minute(0), "1970-01-01 0000");
        assert_eq!(format_utc_minute(-60_000_000_000), "1969-12-31 2359");
        assert_eq!(
            format_utc_minute(951_782_400_000_000_000),
            "2000-02-29 0000"
        );
    }

    #[test]
    fn newer_remote_is_applied_older_is_ignored() {
        let local = local_file(vv(&[(1, 3)]), 1, T, 1);
        assert_eq!(
            decide(
                Some(&local),
                &remote_file(vv(&[(1, 3), (2, 1)]), 2, T, 2),
                &names()
            ),
            Decision::Apply
        );
        assert_eq!(
            decide(Some(&local), &remote_file(vv(&[(1, 2)]), 2, T, 1), &names()),
            Decision::Ignore
        );
        assert_eq!(
            decide(Some(&local), &remote_file(vv(&[(1, 3)]), 1, T, 1), &names()),
            Decision::Ignore
        );
        assert_eq!(
            decide(None, &remote_file(vv(&[(2, 1)]), 2, T, 2), &names()),
            Decision::Apply
        );
    }

    #[test]
    fn crossed_edits_with_equal_content_merge_silently() {
        let local = local_file(vv(&[(1, 3)]), 7, T, 1);
        let remote = remote_file(vv(&[(2, 5)]), 7, T + 5, 2);
        assert_eq!(
            decide(Some(&local), &remote, &names()),
            Decision::Merge(vv(&[(1, 3), (2, 5)]))
        );
    }

    #[test]
    fn an_edit_survives_a_crossed_deletion() {
        let local = local_file(vv(&[(1, 3)]), 7, T, 1);
        let remote = Record {
            path: local.path.clone(),
            change: Change::Delete,
            version: vv(&[(2, 5)]),
            origin: client(2),
        };
        assert_eq!(
            decide(Some(&local), &remote, &names()),
            Decision::KeepLocal(vv(&[(1, 3), (2, 5)]))
        );
    }

    proptest! {
        /// Whichever side a computer is on, a conflict ends with the same
        /// version at the original path and the same conflict-copy name.
        #[test]
        fn both_sides_resolve_a_conflict_identically(
            mtime_a in 0i64..3, mtime_b in 0i64..3, seq_a in 1u64..5, seq_b in 1u64..5,
        ) {
            let a_local = local_file(vv(&[(1, seq_a)]), 1, T + mtime_a, 1);
            let b_local = local_file(vv(&[(2, seq_b)]), 2, T + mtime_b, 2);
            let a_record = remote_file(vv(&[(1, seq_a)]), 1, T + mtime_a, 1);
            let b_record = remote_file(vv(&[(2, seq_b)]), 2, T + mtime_b, 2);
            let on_a = decide(Some(&a_local), &b_record, &names());
            let on_b = decide(Some(&b_local), &a_record, &names());
            let (Decision::Conflict(on_a), Decision::Conflict(on_b)) = (on_a, on_b) else {
                panic!("crossed edits must conflict");
            };
            // On A, "remote wins" means B's version wins; on B it means A's.
            prop_assert_eq!(on_a.remote_wins, !on_b.remote_wins);
            prop_assert_eq!(on_a.copy, on_b.copy);
            prop_assert_eq!(on_a.merged, on_b.merged);
        }
    }
}

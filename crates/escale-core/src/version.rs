//! Version vectors: which edits a file version has seen.
//!
//! Each client numbers its journal batches 1, 2, 3…; a version vector maps
//! a client to the batch number in which that client last changed the
//! file. Batch numbers never repeat (a client continues after the highest
//! batch on the relay, even after losing its local state), so two different
//! versions never carry the same vector. Comparing vectors tells whether one
//! version includes the other or whether they were made independently — a
//! conflict, where Escale keeps both.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::ClientId;

/// How two versions of the same path relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Causality {
    /// Both have seen exactly the same edits.
    Equal,
    /// The left one includes every edit of the right one, and more.
    Newer,
    /// The right one includes every edit of the left one, and more.
    Older,
    /// Each has edits the other has not seen.
    Concurrent,
}

/// A version vector: client → the batch of its latest edit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct VersionVector(BTreeMap<ClientId, u64>);

impl VersionVector {
    /// The vector after `client` publishes an edit in batch `seq`, on top of
    /// everything this vector has seen.
    pub(crate) fn bump(&self, client: ClientId, seq: u64) -> Self {
        let mut next = self.clone();
        let entry = next.0.entry(client).or_insert(0);
        *entry = (*entry).max(seq);
        next
    }

    /// Everything either vector has seen.
    pub(crate) fn merge(&self, other: &Self) -> Self {
        let mut merged = self.clone();
        for (client, &seq) in &other.0 {
            let entry = merged.0.entry(*client).or_insert(0);
            *entry = (*entry).max(seq);
        }
        merged
    }

    /// How `self` relates to `other`.
    pub(crate) fn compare(&self, other: &Self) -> Causality {
        let mut self_ahead = false;
        let mut other_ahead = false;
        let clients = self.0.keys().chain(other.0.keys());
        for client in clients {
            let mine = self.0.get(client).copied().unwrap_or(0);
            let theirs = other.0.get(client).copied().unwrap_or(0);
            match mine.cmp(&theirs) {
                Ordering::Greater => self_ahead = true,
                Ordering::Less => other_ahead = true,
                Ordering::Equal => {}
            }
        }
        match (self_ahead, other_ahead) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Newer,
            (false, true) => Causality::Older,
            (true, true) => Causality::Concurrent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn client(n: u8) -> ClientId {
        ClientId([n; 16])
    }

    fn vector() -> impl Strategy<Value = VersionVector> {
        proptest::collection::btree_map(0u8..4, 0u64..5, 0..4)
            .prop_map(|map| VersionVector(map.into_iter().map(|(c, s)| (client(c), s)).collect()))
    }

    #[test]
    fn independent_edits_are_concurrent() {
        let base = VersionVector::default().bump(client(1), 1);
        let a = base.bump(client(1), 2);
        let b = base.bump(client(2), 1);
        assert_eq!(a.compare(&b), Causality::Concurrent);
        let merged = a.merge(&b);
        assert_eq!(merged.compare(&a), Causality::Newer);
        assert_eq!(b.compare(&merged), Causality::Older);
    }

    proptest! {
        #[test]
        fn compare_is_antisymmetric(a in vector(), b in vector()) {
            let expected = match a.compare(&b) {
                Causality::Equal => Causality::Equal,
                Causality::Newer => Causality::Older,
                Causality::Older => Causality::Newer,
                Causality::Concurrent => Causality::Concurrent,
            };
            prop_assert_eq!(b.compare(&a), expected);
        }

        #[test]
        fn merge_includes_both(a in vector(), b in vector()) {
            let merged = a.merge(&b);
            prop_assert!(matches!(merged.compare(&a), Causality::Newer | Causality::Equal));
            prop_assert!(matches!(merged.compare(&b), Causality::Newer | Causality::Equal));
            prop_assert_eq!(merged.clone(), b.merge(&a));
        }

        #[test]
        fn bump_with_a_new_batch_is_strictly_newer(a in vector(), c in 0u8..4) {
            let seq = a.0.values().copied().max().unwrap_or(0) + 1;
            prop_assert_eq!(a.bump(client(c), seq).compare(&a), Causality::Newer);
        }
    }
}

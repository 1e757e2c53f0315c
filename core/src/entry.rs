//! What the log and the state machine are made of: entries, and the
//! snapshot that stands in for the entries it covers (§7).

use bytes::Bytes;

use crate::membership::Membership;
use crate::types::{LogIndex, Term};

/// One log entry: an opaque command stamped with the term of the leader
/// that created it and its position in the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Position in the log (the first entry has index 1).
    pub index: LogIndex,
    /// Term of the leader that created the entry.
    pub term: Term,
    /// What the entry is for.
    pub kind: EntryKind,
    /// The command, opaque to the core; empty for other kinds.
    ///
    /// A shared, immutable buffer: the copies of an entry that go to the
    /// log, the persist output, every follower's append and the apply
    /// output all point at the one allocation made for the proposal.
    pub data: Bytes,
}

/// What a log entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// An application command: apply `data` to the state machine.
    Command,
    /// The empty entry a new leader appends to commit its term's entries
    /// quickly (§8); the application skips it.
    Noop,
    /// A new cluster configuration, in force on every node from the moment
    /// it appends the entry (dissertation §4.1); `data` is its encoding
    /// ([`wire::decode_membership`](crate::wire::decode_membership) reads
    /// it). The application may note it (to learn a new member's address,
    /// for example) and otherwise skips it.
    Membership,
}

impl Entry {
    /// An application command entry. `data` may be a `Vec<u8>`, a
    /// `&'static [u8]` or [`Bytes`]; a `Vec` is taken over without copying.
    #[must_use]
    pub fn command(index: LogIndex, term: Term, data: impl Into<Bytes>) -> Entry {
        Entry {
            index,
            term,
            kind: EntryKind::Command,
            data: data.into(),
        }
    }

    /// A no-op entry.
    #[must_use]
    pub fn noop(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            kind: EntryKind::Noop,
            data: Bytes::new(),
        }
    }
}

/// The application's state as of the committed entry at `index`, whose term
/// is `term`, in whatever encoding the application chose, together with
/// the cluster's configuration as of that entry.
///
/// The core never looks inside `data`: it stores the latest snapshot (a
/// shared buffer, so holding it costs no copy), sends it to followers that
/// need entries it has dropped, and hands it back through
/// [`Persist::Snapshot`](crate::Persist::Snapshot),
/// [`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot) and
/// [`Output::InstallSnapshot`](crate::Output::InstallSnapshot).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The configuration in force at `index`: the latest membership entry
    /// at or before it (or the voters the cluster started with). The node
    /// fills it in when it takes a snapshot; a stored snapshot whose
    /// membership is empty predates membership changes, and a node started
    /// on it uses the voters it was started with.
    pub membership: Membership,
    /// The state machine's state after applying entries `1..=index`.
    pub data: Bytes,
}

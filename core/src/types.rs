//! The small value types every other module speaks in: node ids, terms and
//! log indices. Each is a distinct newtype so that a term can never be passed
//! where an index is expected.

use core::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw number.
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// Identifies one Raft peer. Any `u64` is a valid id; the voter set given
    /// to [`Node::new`](crate::Node::new) decides which ids are members.
    NodeId
);

id_type!(
    /// A Raft term: a logical clock that only ever grows. Term 0 is the state
    /// of a node that has never seen an election; every message carries a
    /// term of at least 1.
    Term
);

id_type!(
    /// A position in the replicated log. The first entry has index 1; index 0
    /// stands for "before the first entry" (its term is 0).
    LogIndex
);

impl Term {
    /// The largest term, which no node reaches: messages and persisted
    /// state that carry it are refused, so that a node always has a next
    /// term to campaign in (and never votes twice in a saturated one).
    pub const MAX: Term = Term(u64::MAX);

    /// The term after this one.
    #[must_use]
    pub const fn next(self) -> Term {
        Term(self.0.saturating_add(1))
    }
}

impl LogIndex {
    /// The largest index, which no log reaches: messages and persisted
    /// state that put an entry there are refused, so that `next` never
    /// saturates on a real log.
    pub const MAX: LogIndex = LogIndex(u64::MAX);

    /// The index after this one.
    #[must_use]
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0.saturating_add(1))
    }
}

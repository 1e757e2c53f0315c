//! What the node's task does with each output the core drains, by kind.
//!
//! Writes go to the [writer](crate::writer), which holds back whatever
//! the core's ordering rule says must follow a write not yet durable;
//! everything else is performed in the order drained, in one round:
//!
//! 1. **sends** — handed to the peer links, flushed once per round;
//! 2. **the writes** — started as one write (one fsync), unless one is in
//!    flight: then they make the next;
//! 3. **applies** — committed entries, snapshot restores and read answers,
//!    in the order the core asked (a read is answered only after the
//!    entries before it are applied);
//! 4. **the `Persisted` report** — once a write completes: its last entry,
//!    which a follower acknowledges and a leader counts toward commitment
//!    only then.

use kontiki::{Entry, Instant, Message, NodeId, Output, Persist, Snapshot};
use tracing::debug;

/// What is done with the state machine, in the order the core asked.
pub(crate) enum ToApply {
    Entry(Entry),
    Snapshot(Snapshot),
    ReadsReady(u64),
    ReadsFailed(u64),
}

/// One output, by what the node's task does with it.
pub(crate) enum Step {
    Write(Persist),
    Send(NodeId, Message),
    Apply(ToApply),
    /// Arm the timer for this deadline.
    Timer(Instant),
    /// Nothing to perform (a role change, logged here).
    None,
}

impl Step {
    pub(crate) fn of(output: Output) -> Step {
        match output {
            Output::Persist(write) => Step::Write(write),
            Output::Send { to, message } => Step::Send(to, message),
            Output::Apply(entry) => Step::Apply(ToApply::Entry(entry)),
            Output::RestoreSnapshot(snapshot) | Output::InstallSnapshot(snapshot) => {
                Step::Apply(ToApply::Snapshot(snapshot))
            }
            Output::ReadReady { round, .. } => Step::Apply(ToApply::ReadsReady(round)),
            Output::ReadsFailed { round } => Step::Apply(ToApply::ReadsFailed(round)),
            Output::SetTimer { deadline } => Step::Timer(deadline),
            Output::RoleChanged { role, term, leader } => {
                debug!(%role, %term, ?leader, "role changed");
                Step::None
            }
        }
    }
}

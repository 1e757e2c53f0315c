//! One round's outputs, sorted into the steps the node's task performs
//! them in.
//!
//! The core's ordering rule is that nothing drained after a persist is
//! performed before that persist is durable. The driver keeps it with one
//! durable write per round:
//!
//! 1. **early sends** — the sends drained before the first persist (a
//!    leader's appends of its new entries, when it writes in parallel with
//!    its followers): they depend on nothing unwritten;
//! 2. **the durable write** — every persist of the round, in order, as one
//!    `Storage::write` (one fsync);
//! 3. **late sends** — every other send (those that came before a later
//!    persist merely wait a little, which Raft tolerates);
//! 4. **applies** — committed entries, snapshot restores and read answers,
//!    in the order the core asked (a read is answered only after the
//!    entries before it are applied);
//! 5. **the `Persisted` report** — the last entry written, which a leader
//!    that writes in parallel counts toward commitment.

use kontiki::{Entry, LogIndex, Message, NodeId, Output, Persist, Snapshot, Term};
use tracing::debug;

/// What is done with the state machine, in the order the core asked.
pub(crate) enum ToApply {
    Entry(Entry),
    Snapshot(Snapshot),
    ReadsReady(u64),
    ReadsFailed(u64),
}

/// One round's outputs, by step.
#[derive(Default)]
pub(crate) struct RoundOutputs {
    pub(crate) early_sends: Vec<(NodeId, Message)>,
    pub(crate) writes: Vec<Persist>,
    pub(crate) late_sends: Vec<(NodeId, Message)>,
    pub(crate) applies: Vec<ToApply>,
    /// The last entry the durable write appends, to report once it is done.
    pub(crate) written: Option<(LogIndex, Term)>,
    /// The timer's latest deadline, if the round set one.
    pub(crate) timer: Option<kontiki::Instant>,
}

impl RoundOutputs {
    /// Sorts `outputs`, drained in the core's order, into the steps.
    pub(crate) fn sort(outputs: impl Iterator<Item = Output>) -> RoundOutputs {
        let mut round = RoundOutputs::default();
        for output in outputs {
            match output {
                Output::Persist(write) => {
                    if let Persist::Entries(entries) = &write {
                        if let Some(last) = entries.last() {
                            round.written = Some((last.index, last.term));
                        }
                    }
                    round.writes.push(write);
                }
                Output::Send { to, message } if round.writes.is_empty() => {
                    round.early_sends.push((to, message));
                }
                Output::Send { to, message } => round.late_sends.push((to, message)),
                Output::Apply(entry) => round.applies.push(ToApply::Entry(entry)),
                Output::RestoreSnapshot(snapshot) | Output::InstallSnapshot(snapshot) => {
                    round.applies.push(ToApply::Snapshot(snapshot));
                }
                Output::ReadReady { round: read, .. } => {
                    round.applies.push(ToApply::ReadsReady(read));
                }
                Output::ReadsFailed { round: read } => {
                    round.applies.push(ToApply::ReadsFailed(read));
                }
                Output::SetTimer { deadline } => round.timer = Some(deadline),
                Output::RoleChanged { role, term, leader } => {
                    debug!(%role, %term, ?leader, "role changed");
                }
            }
        }
        round
    }
}

#[cfg(test)]
mod tests {
    use kontiki::{AppendEntriesResponse, HardState, Instant};

    use super::*;

    fn answer(index: u64) -> Output {
        Output::Send {
            to: NodeId(2),
            message: Message::AppendEntriesResponse(AppendEntriesResponse {
                term: Term(1),
                success: true,
                index: LogIndex(index),
                conflict_term: Term(0),
            }),
        }
    }

    #[test]
    fn sends_before_the_first_persist_go_early_and_the_rest_wait() {
        let entry = Entry::command(LogIndex(4), Term(2), vec![1]);
        let round = RoundOutputs::sort(
            [
                answer(1),
                Output::Persist(Persist::HardState(HardState::default())),
                answer(2),
                Output::Persist(Persist::Entries(vec![entry.clone()])),
                Output::Apply(entry),
                Output::ReadReady {
                    round: 3,
                    index: LogIndex(4),
                },
                Output::SetTimer {
                    deadline: Instant::from_micros(5),
                },
            ]
            .into_iter(),
        );
        assert_eq!(round.early_sends.len(), 1);
        assert_eq!(round.writes.len(), 2);
        assert_eq!(round.late_sends.len(), 1);
        assert!(matches!(
            round.applies.as_slice(),
            [ToApply::Entry(_), ToApply::ReadsReady(3)]
        ));
        assert_eq!(round.written, Some((LogIndex(4), Term(2))));
        assert_eq!(round.timer, Some(Instant::from_micros(5)));
    }
}

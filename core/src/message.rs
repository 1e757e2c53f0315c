//! Messages between peers, and the sanity checks applied to every message
//! that arrives.
//!
//! Each message carries the sender's term; the sender's id travels beside
//! the message ([`Input::Message`](crate::Input::Message),
//! [`Output::Send`](crate::Output::Send)) because the transport, not the
//! message, knows who is on the other end.

use core::fmt;

use alloc::vec::Vec;

use crate::entry::{Entry, Snapshot};
use crate::types::{LogIndex, Term};

/// A Raft message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Message {
    /// A candidate (or pre-candidate) asks for a vote.
    RequestVote(RequestVote),
    /// The answer to a [`RequestVote`].
    RequestVoteResponse(RequestVoteResponse),
    /// A leader's append; with no entries it is a heartbeat.
    AppendEntries(AppendEntries),
    /// The answer to an [`AppendEntries`], and to an [`InstallSnapshot`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// A leader's snapshot, for a follower that needs entries the leader
    /// has compacted away.
    InstallSnapshot(InstallSnapshot),
    /// A leader asks its followers to confirm that it still leads, so that
    /// it can serve the reads waiting on `round` (dissertation §6.4).
    LeadershipCheck(LeadershipCheck),
    /// The answer to a [`LeadershipCheck`].
    LeadershipCheckResponse(LeadershipCheckResponse),
    /// A leader hands its leadership over (dissertation §3.10): the
    /// follower, brought up to date, starts an election at once.
    TimeoutNow(TimeoutNow),
}

/// A request for a vote (§5.2), or for a pre-vote (dissertation §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestVote {
    /// The candidate's term. For a pre-vote, the term the candidate would
    /// campaign in (its current term plus one), which it has not adopted.
    pub term: Term,
    /// Index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
    /// Whether this is a pre-vote: granting it changes nothing on the voter.
    pub pre_vote: bool,
    /// The candidate campaigns because the leader handed it the leadership
    /// ([`TimeoutNow`]): voters answer even while they hear from that
    /// leader (leader stickiness would otherwise ignore the request).
    pub transfer: bool,
}

/// The answer to a [`RequestVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestVoteResponse {
    /// The voter's current term; for a granted pre-vote, the term of the
    /// request it grants.
    pub term: Term,
    /// Whether the vote (or pre-vote) is granted.
    pub granted: bool,
    /// Whether this answers a pre-vote.
    pub pre_vote: bool,
}

/// A leader's AppendEntries (§5.3): new entries, or none as a heartbeat,
/// and the leader's commit index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppendEntries {
    /// The leader's term.
    pub term: Term,
    /// Index of the log entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
    /// Entries `prev_log_index + 1 ..`, in order; empty for a heartbeat.
    pub entries: Vec<Entry>,
}

/// A leader's InstallSnapshot (§7), sent whole: the follower replaces its
/// state machine with the snapshot and keeps only log entries after it
/// that agree with it. It answers with an [`AppendEntriesResponse`] whose
/// `index` is the snapshot's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The snapshot, covering committed entries only.
    pub snapshot: Snapshot,
}

/// A leader's request to confirm that it still leads its term. Reads
/// handed to the leader since its previous check wait on `round`; a
/// follower that still follows this leader answers and also counts the
/// check as hearing from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeadershipCheck {
    /// The leader's term.
    pub term: Term,
    /// The leader's read round, counted up from 1 over the node's life.
    pub round: u64,
}

/// The answer to a [`LeadershipCheck`]: in `term`, the follower has seen
/// the check of `round`. An answer of the leader's own term means the
/// follower had not moved to a later term when it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeadershipCheckResponse {
    /// The follower's current term.
    pub term: Term,
    /// The round of the check answered.
    pub round: u64,
}

/// A leader's request that the follower start an election now, without
/// a pre-vote: the leader has brought it up to date and hands it the
/// leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
}

/// The answer to an [`AppendEntries`] or an [`InstallSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendEntriesResponse {
    /// The follower's current term.
    pub term: Term,
    /// Whether the follower's log held the entry at `prev_log_index` with
    /// `prev_log_term` (and so now holds the entries sent).
    pub success: bool,
    /// On success, the index of the last entry the follower now shares with
    /// the leader. On failure, where the leader should retry from: the
    /// first index of `conflict_term` in the follower's log, or the
    /// follower's log length plus one when its log is too short.
    pub index: LogIndex,
    /// On failure, the term of the follower's entry at `prev_log_index`
    /// (0 when it has none), so the leader can skip the whole term.
    pub conflict_term: Term,
}

/// A field of a message that no correct peer would send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// The term is 0, which no node sends: a node adopts at least term 1
    /// before it sends anything.
    ZeroTerm,
    /// A log position names index 0 with a non-zero term, or an index above
    /// 0 with term 0.
    InconsistentLogPosition,
    /// A log position's term is above the message's term: no leader of a
    /// later term could have written it.
    LogTermAboveMessageTerm,
    /// Appended entries do not continue the log at `prev_log_index + 1`
    /// one by one, or their terms decrease or exceed the message's term.
    MalformedEntries,
    /// A snapshot at index 0, which covers nothing.
    EmptySnapshot,
    /// An entry or a snapshot at index `u64::MAX`, which no log reaches:
    /// a log ending there could not grow.
    IndexTooLarge,
    /// A leadership check (or its answer) of read round 0, which no leader
    /// sends: rounds count from 1.
    ZeroReadRound,
    /// The term is `u64::MAX`, which no node reaches: a node that adopted it
    /// would have no next term to campaign in.
    TermTooLarge,
    /// A membership entry whose data is not a well-formed configuration
    /// with at least one voter (checked by the node before it changes
    /// anything), or a snapshot without a configuration.
    BadMembership,
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidMessage::TermTooLarge => "message has term u64::MAX, which no node reaches",
            InvalidMessage::ZeroTerm => "message has term 0",
            InvalidMessage::InconsistentLogPosition => {
                "log index and term disagree about being empty"
            }
            InvalidMessage::LogTermAboveMessageTerm => "log term is above the message's term",
            InvalidMessage::MalformedEntries => {
                "appended entries are not contiguous or their terms are out of order"
            }
            InvalidMessage::EmptySnapshot => "a snapshot at index 0",
            InvalidMessage::IndexTooLarge => "a log index of u64::MAX",
            InvalidMessage::ZeroReadRound => "a leadership check of read round 0",
            InvalidMessage::BadMembership => {
                "a membership entry or snapshot without a valid configuration"
            }
        })
    }
}

impl Message {
    /// The sender's term carried by the message.
    #[must_use]
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::LeadershipCheck(m) => m.term,
            Message::LeadershipCheckResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
        }
    }

    /// Checks the fields no correct peer could get wrong. A message that
    /// fails is dropped before it touches any state.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if self.term() == Term(0) {
            return Err(InvalidMessage::ZeroTerm);
        }
        if self.term() == Term::MAX {
            return Err(InvalidMessage::TermTooLarge);
        }
        match self {
            Message::RequestVote(m) => {
                check_log_position(m.term, m.last_log_index, m.last_log_term)
            }
            Message::AppendEntries(m) => {
                check_log_position(m.term, m.prev_log_index, m.prev_log_term)?;
                check_entries(m)
            }
            Message::InstallSnapshot(m) => {
                if m.snapshot.index == LogIndex(0) {
                    return Err(InvalidMessage::EmptySnapshot);
                }
                if m.snapshot.index == LogIndex::MAX {
                    return Err(InvalidMessage::IndexTooLarge);
                }
                if m.snapshot.membership.is_empty() {
                    return Err(InvalidMessage::BadMembership);
                }
                check_log_position(m.term, m.snapshot.index, m.snapshot.term)
            }
            Message::LeadershipCheck(m) if m.round == 0 => Err(InvalidMessage::ZeroReadRound),
            Message::LeadershipCheckResponse(m) if m.round == 0 => {
                Err(InvalidMessage::ZeroReadRound)
            }
            Message::RequestVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::LeadershipCheck(_)
            | Message::LeadershipCheckResponse(_)
            | Message::TimeoutNow(_) => Ok(()),
        }
    }
}

fn check_log_position(term: Term, index: LogIndex, log_term: Term) -> Result<(), InvalidMessage> {
    if (index == LogIndex(0)) != (log_term == Term(0)) {
        return Err(InvalidMessage::InconsistentLogPosition);
    }
    if log_term > term {
        return Err(InvalidMessage::LogTermAboveMessageTerm);
    }
    Ok(())
}

/// Entries must continue the log one index at a time after
/// `prev_log_index`, with terms never decreasing from `prev_log_term` and
/// never above the leader's term.
fn check_entries(append: &AppendEntries) -> Result<(), InvalidMessage> {
    let mut expected_index = append.prev_log_index;
    let mut previous_term = append.prev_log_term;
    for entry in &append.entries {
        if entry.index == LogIndex::MAX {
            return Err(InvalidMessage::IndexTooLarge);
        }
        expected_index = expected_index.next();
        if entry.index != expected_index
            || entry.term < previous_term
            || entry.term > append.term
            || entry.term == Term(0)
        {
            return Err(InvalidMessage::MalformedEntries);
        }
        previous_term = entry.term;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_vote(term: u64, last_log_index: u64, last_log_term: u64) -> Message {
        Message::RequestVote(RequestVote {
            term: Term(term),
            last_log_index: LogIndex(last_log_index),
            last_log_term: Term(last_log_term),
            pre_vote: false,
            transfer: false,
        })
    }

    #[test]
    fn entries_must_continue_the_log_in_order() {
        let append = |entries: &[(u64, u64)]| {
            Message::AppendEntries(AppendEntries {
                term: Term(3),
                prev_log_index: LogIndex(4),
                prev_log_term: Term(2),
                leader_commit: LogIndex(0),
                entries: entries
                    .iter()
                    .map(|&(index, term)| Entry::command(LogIndex(index), Term(term), Vec::new()))
                    .collect(),
            })
            .validate()
        };
        assert_eq!(append(&[(5, 2), (6, 3)]), Ok(()));
        assert_eq!(append(&[(6, 2)]), Err(InvalidMessage::MalformedEntries));
        assert_eq!(
            append(&[(5, 3), (6, 2)]),
            Err(InvalidMessage::MalformedEntries)
        );
        assert_eq!(append(&[(5, 1)]), Err(InvalidMessage::MalformedEntries));
        assert_eq!(append(&[(5, 4)]), Err(InvalidMessage::MalformedEntries));
    }

    #[test]
    fn term_zero_is_invalid() {
        let heartbeat_response = Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(0),
            success: true,
            index: LogIndex(0),
            conflict_term: Term(0),
        });
        assert_eq!(heartbeat_response.validate(), Err(InvalidMessage::ZeroTerm));
    }

    #[test]
    fn empty_log_position_must_have_term_zero() {
        assert_eq!(request_vote(2, 0, 0).validate(), Ok(()));
        assert_eq!(
            request_vote(2, 0, 1).validate(),
            Err(InvalidMessage::InconsistentLogPosition)
        );
        assert_eq!(
            request_vote(2, 4, 0).validate(),
            Err(InvalidMessage::InconsistentLogPosition)
        );
    }

    #[test]
    fn log_term_cannot_exceed_message_term() {
        assert_eq!(request_vote(3, 7, 3).validate(), Ok(()));
        assert_eq!(
            request_vote(3, 7, 4).validate(),
            Err(InvalidMessage::LogTermAboveMessageTerm)
        );
        let append = Message::AppendEntries(AppendEntries {
            term: Term(2),
            prev_log_index: LogIndex(1),
            prev_log_term: Term(5),
            leader_commit: LogIndex(0),
            entries: Vec::new(),
        });
        assert_eq!(
            append.validate(),
            Err(InvalidMessage::LogTermAboveMessageTerm)
        );
    }
}

//! A bounded record of the latest simulation events, printed when an
//! invariant fails so that a failing seed reads as a story.

use std::collections::VecDeque;
use std::fmt;

use kontiki::{HardState, Instant, Message, NodeId, Role, Term};

/// How many events a failure report shows.
const TRACE_CAPACITY: usize = 400;

/// One thing that happened in the simulation.
#[derive(Clone, Debug)]
pub enum TraceEvent {
    /// A node put a message on the wire.
    Send {
        from: NodeId,
        to: NodeId,
        message: Message,
    },
    /// A message reached its receiver.
    Deliver {
        from: NodeId,
        to: NodeId,
        message: Message,
    },
    /// The network did not deliver a message.
    Lost {
        from: NodeId,
        to: NodeId,
        why: &'static str,
    },
    /// A node refused a message.
    Refused { node: NodeId, why: String },
    /// A node's timer fired.
    Timer { node: NodeId },
    /// A node made its hard state durable.
    Persist { node: NodeId, hard_state: HardState },
    /// A node reported a new role.
    RoleChanged {
        node: NodeId,
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
    /// A node crashed after performing `performed` of its `pending` outputs.
    Crash {
        node: NodeId,
        performed: usize,
        pending: usize,
    },
    /// A node restarted from its persisted state.
    Restart { node: NodeId, hard_state: HardState },
    /// The test changed the world (network faults, commands).
    Note(String),
}

/// Displays a message compactly, e.g. `RequestVote(t3 last 0@0)`.
pub struct ShowMessage<'a>(pub &'a Message);

impl fmt::Display for ShowMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Message::RequestVote(m) => write!(
                f,
                "{}(t{} last {}@t{})",
                match (m.pre_vote, m.transfer) {
                    (true, _) => "PreVote",
                    (false, true) => "RequestVote[transfer]",
                    (false, false) => "RequestVote",
                },
                m.term,
                m.last_log_index,
                m.last_log_term
            ),
            Message::RequestVoteResponse(m) => write!(
                f,
                "{}Response(t{} {})",
                if m.pre_vote { "PreVote" } else { "Vote" },
                m.term,
                if m.granted { "granted" } else { "refused" }
            ),
            Message::AppendEntries(m) => write!(
                f,
                "AppendEntries(t{} prev {}@t{} commit {} +{} entries)",
                m.term,
                m.prev_log_index,
                m.prev_log_term,
                m.leader_commit,
                m.entries.len()
            ),
            Message::AppendEntriesResponse(m) => write!(
                f,
                "AppendEntriesResponse(t{} {} {}{})",
                m.term,
                if m.success {
                    "ok to"
                } else {
                    "mismatch, retry from"
                },
                m.index,
                if m.success || m.conflict_term.get() == 0 {
                    String::new()
                } else {
                    format!(" conflict t{}", m.conflict_term)
                }
            ),
            Message::InstallSnapshot(m) => write!(
                f,
                "InstallSnapshot(t{} through {}@t{}, {} bytes)",
                m.term,
                m.snapshot.index,
                m.snapshot.term,
                m.snapshot.data.len()
            ),
            other => write!(f, "{other:?}"),
        }
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Send { from, to, message } => {
                write!(f, "n{from} -> n{to}  send {}", ShowMessage(message))
            }
            TraceEvent::Deliver { from, to, message } => {
                write!(f, "n{from} => n{to}  deliver {}", ShowMessage(message))
            }
            TraceEvent::Lost { from, to, why } => write!(f, "n{from} -x n{to}  {why}"),
            TraceEvent::Refused { node, why } => write!(f, "n{node} refused: {why}"),
            TraceEvent::Timer { node } => write!(f, "n{node} timer fired"),
            TraceEvent::Persist { node, hard_state } => write!(
                f,
                "n{node} persists term {} vote {}",
                hard_state.term,
                hard_state
                    .voted_for
                    .map_or("none".to_string(), |v| format!("n{v}"))
            ),
            TraceEvent::RoleChanged {
                node,
                role,
                term,
                leader,
            } => write!(
                f,
                "n{node} is {role} in term {term}{}",
                leader.map_or(String::new(), |l| format!(" (leader n{l})"))
            ),
            TraceEvent::Crash {
                node,
                performed,
                pending,
            } => {
                write!(f, "n{node} CRASHES after {performed} of {pending} outputs")
            }
            TraceEvent::Restart { node, hard_state } => write!(
                f,
                "n{node} RESTARTS at term {} vote {:?}",
                hard_state.term, hard_state.voted_for
            ),
            TraceEvent::Note(text) => f.write_str(text),
        }
    }
}

/// The latest events (`TRACE_CAPACITY` of them, private to this module)
/// with their times.
#[derive(Default)]
pub struct Trace {
    events: VecDeque<(Instant, TraceEvent)>,
}

impl Trace {
    pub(crate) fn record(&mut self, at: Instant, event: TraceEvent) {
        if self.events.len() == TRACE_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back((at, event));
    }

    /// The recorded events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &(Instant, TraceEvent)> {
        self.events.iter()
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, event) in &self.events {
            writeln!(f, "  [{at}] {event}")?;
        }
        Ok(())
    }
}

//! Raft's election-time safety properties, checked by the cluster after
//! every event. Each check returns a description of the violation, which
//! the cluster turns into a failure report with the seed and the trace.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use kontiki::{
    wire, Entry, EntryKind, HardState, LogIndex, Membership, Message, Node, NodeId, PersistedState,
    Role, Snapshot, Term,
};
use rand_chacha::ChaCha8Rng;

/// The entry at `index` in `entries`, a run of consecutive entries that
/// may start anywhere (after a snapshot).
pub(crate) fn entry_at(entries: &[Entry], index: LogIndex) -> Option<&Entry> {
    let first = entries.first()?.index.get();
    let position = usize::try_from(index.get().checked_sub(first)?).ok()?;
    entries.get(position)
}

/// Whether a store durably holds `entry`: in its log, or under its
/// snapshot (which covers committed entries only).
pub(crate) fn holds_durably(storage: &PersistedState, entry: &Entry) -> bool {
    entry.index <= storage.snapshot_index()
        || entry_at(&storage.entries, entry.index) == Some(entry)
}

/// A node's configuration is the latest membership entry of its log, or
/// else its snapshot's, or else the voters it was started with; and the
/// voters it reports are that configuration's. Entries the node held at
/// its previous commit index (`commit_before`) were checked when they came,
/// so only the log above it is searched for a later membership entry.
pub(crate) fn check_configuration(
    node: &Node<ChaCha8Rng>,
    initial_voters: &[NodeId],
    commit_before: LogIndex,
) -> Result<(), String> {
    let id = node.id();
    let index = node.membership_index();
    let expected = if index > node.snapshot_index() {
        match entry_at(node.entries(), index) {
            Some(entry) if entry.kind == EntryKind::Membership => {
                wire::decode_membership(&entry.data).map_err(|error| {
                    format!("n{id}: the membership entry at {index} does not decode: {error}")
                })?
            }
            other => {
                return Err(format!(
                    "n{id}: its configuration comes from index {index}, which holds {other:?}"
                ))
            }
        }
    } else {
        match node.snapshot() {
            Some(snapshot) if index == snapshot.index && !snapshot.membership.is_empty() => {
                snapshot.membership.clone()
            }
            _ if index == LogIndex(0) => {
                if initial_voters.is_empty() {
                    Membership::default()
                } else {
                    Membership::with_voters(initial_voters).expect("valid starting voters")
                }
            }
            _ => {
                return Err(format!(
                    "n{id}: its configuration comes from index {index}, below its log, \
                     which is not its snapshot's"
                ))
            }
        }
    };
    if node.membership() != &expected {
        return Err(format!(
            "n{id}: uses configuration {:?}, but its log says {expected:?}",
            node.membership()
        ));
    }
    let from = index.get().max(commit_before.get()) + 1;
    let entries = node.entries();
    let above = entries.partition_point(|entry| entry.index.get() < from);
    if let Some(later) = entries[above..]
        .iter()
        .find(|entry| entry.kind == EntryKind::Membership)
    {
        return Err(format!(
            "n{id}: uses the configuration of index {index}, but its log holds a later one at {}",
            later.index
        ));
    }
    let mut voters: Vec<NodeId> = expected
        .voters()
        .iter()
        .chain(expected.outgoing_voters())
        .copied()
        .collect();
    voters.sort_unstable();
    voters.dedup();
    if node.voters() != voters {
        return Err(format!(
            "n{id}: counts the voters {:?}, but its configuration's are {voters:?}",
            node.voters()
        ));
    }
    Ok(())
}

/// The simulated state machine's state after applying `entry` to `state`:
/// a running digest of every entry applied, which is what a snapshot
/// carries.
pub(crate) fn apply_to_digest(state: u64, entry: &Entry) -> u64 {
    let mut hasher = DefaultHasher::new();
    (state, entry).hash(&mut hasher);
    hasher.finish()
}

/// What the checker remembers of the whole run, across crashes.
#[derive(Default)]
pub struct Checker {
    /// The leader of each term that had one (election safety).
    leaders: BTreeMap<Term, NodeId>,
    /// Each vote ever given or persisted: (voter, term) -> candidate.
    votes: BTreeMap<(NodeId, Term), NodeId>,
    /// The highest term each node was seen at, across restarts.
    highest_term: BTreeMap<NodeId, Term>,
    /// The one history every state machine applies a prefix of: entry
    /// `i` is the first entry any node applied at index `i + 1`.
    applied_history: Vec<Entry>,
    /// The state machine's digest after each entry of `applied_history`.
    history_digests: Vec<u64>,
    /// For each entry of `applied_history`: the lowest term any node was in
    /// when it applied it. The entry was committed in that term or an
    /// earlier one, so every leader of a later term must hold it.
    committed_by: Vec<Term>,
    /// Per node: the last index it applied in its current life, and its
    /// commit index as last seen in that life.
    applied_upto: BTreeMap<NodeId, LogIndex>,
    commit_seen: BTreeMap<NodeId, LogIndex>,
    /// The highest commit index any node ever had.
    highest_commit: LogIndex,
    /// Reads handed to a node in its current life and not yet answered:
    /// (node, round) -> the highest index committed anywhere when the read
    /// arrived, which its read index must reach (linearizability).
    reads_waiting: BTreeMap<(NodeId, u64), LogIndex>,
    /// Reads served, and failed, over the whole run.
    reads_served: u64,
    reads_failed: u64,
}

impl Checker {
    /// Leaders seen per term over the whole run.
    pub fn leaders(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders
    }

    /// A node is leader in `term`: no other node may ever lead that term.
    pub(crate) fn check_leader(&mut self, node: NodeId, term: Term) -> Result<(), String> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(format!(
                "election safety: n{other} and n{node} are both leaders of term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// A node (at the end of a step) is in `term` with role `role`;
    /// `durable` when its storage holds everything it asked for.
    pub(crate) fn check_node(
        &mut self,
        node: NodeId,
        term: Term,
        role: Role,
        durable: bool,
    ) -> Result<(), String> {
        // Only a term the node made durable counts: one adopted while its
        // write is still in flight may be lost to a crash, harmlessly, as
        // nothing that depends on it has left the node.
        if durable {
            let highest = self.highest_term.entry(node).or_default();
            if term < *highest {
                return Err(format!(
                    "term went backwards on n{node}: from {highest} to {term}"
                ));
            }
            *highest = term;
        }
        if role == Role::Leader {
            self.check_leader(node, term)?;
        }
        Ok(())
    }

    /// The entries every state machine agrees on, in order.
    pub fn applied_history(&self) -> &[Entry] {
        &self.applied_history
    }

    /// A node starts a new life: its state machine starts from scratch.
    pub(crate) fn restarted(&mut self, node: NodeId) {
        self.applied_upto.remove(&node);
        self.commit_seen.remove(&node);
        // Reads of its earlier life are lost with it (their clients time
        // out); its read rounds count from 1 again.
        self.reads_waiting.retain(|(reader, _), _| *reader != node);
    }

    /// A node accepted a read in `round`, now.
    pub(crate) fn read_asked(&mut self, node: NodeId, round: u64) {
        let committed = self
            .highest_commit
            .max(LogIndex(self.applied_history.len() as u64));
        self.reads_waiting.insert((node, round), committed);
    }

    /// A node serves its reads up to `round` at read index `index`, with
    /// its state machine applied up to `applied`: each read must see every
    /// entry committed before it arrived, and the state machine must hold
    /// the read index already.
    pub(crate) fn check_read_ready(
        &mut self,
        node: NodeId,
        round: u64,
        index: LogIndex,
        applied: LogIndex,
    ) -> Result<(), String> {
        if applied < index {
            return Err(format!(
                "n{node} served reads at index {index} with its state machine applied only to {applied}"
            ));
        }
        let answered: Vec<(u64, LogIndex)> = self
            .reads_waiting
            .range((node, 0)..=(node, round))
            .map(|(&(_, read_round), &committed)| (read_round, committed))
            .collect();
        if answered.is_empty() {
            return Err(format!(
                "n{node} served read rounds up to {round}, but no read of those rounds waits"
            ));
        }
        for (read_round, committed) in answered {
            if index < committed {
                return Err(format!(
                    "linearizability: n{node} served the read of round {read_round} at index {index}, \
                     but index {committed} was committed before that read arrived"
                ));
            }
            self.reads_waiting.remove(&(node, read_round));
            self.reads_served += 1;
        }
        Ok(())
    }

    /// A node stopped leading: its reads up to `round` fail.
    pub(crate) fn reads_failed(&mut self, node: NodeId, round: u64) {
        let failed: Vec<(NodeId, u64)> = self
            .reads_waiting
            .range((node, 0)..=(node, round))
            .map(|(&key, _)| key)
            .collect();
        for key in failed {
            self.reads_waiting.remove(&key);
            self.reads_failed += 1;
        }
    }

    /// Reads served and failed so far, over the whole run.
    pub fn read_outcomes(&self) -> (u64, u64) {
        (self.reads_served, self.reads_failed)
    }

    /// A node applies `entry`: the next index of its life, and the same
    /// entry every other state machine applied there (state machine safety).
    pub(crate) fn check_apply(
        &mut self,
        node: NodeId,
        node_term: Term,
        entry: &Entry,
    ) -> Result<(), String> {
        let upto = self.applied_upto.entry(node).or_default();
        if entry.index != upto.next() {
            return Err(format!(
                "n{node} applied entry {} after {}: applies must be in order, once each",
                entry.index, upto
            ));
        }
        *upto = entry.index;
        let position = (entry.index.get() - 1) as usize;
        match self.applied_history.get(position) {
            Some(agreed) if agreed != entry => Err(format!(
                "state machine safety: n{node} applied {entry:?} at {} where another applied {agreed:?}",
                entry.index
            )),
            Some(_) => {
                let committed_by = &mut self.committed_by[position];
                *committed_by = (*committed_by).min(node_term);
                Ok(())
            }
            None => {
                let previous = self.history_digests.last().copied().unwrap_or(0);
                self.history_digests.push(apply_to_digest(previous, entry));
                self.applied_history.push(entry.clone());
                self.committed_by.push(node_term);
                Ok(())
            }
        }
    }

    /// A node replaces its state machine with `snapshot`: it must be the
    /// state every state machine had after the agreed entries up to its
    /// index, and the node's applies go on after it.
    pub(crate) fn check_restore(
        &mut self,
        node: NodeId,
        snapshot: &Snapshot,
    ) -> Result<(), String> {
        let index = snapshot.index;
        let position = (index.get() - 1) as usize;
        let Some(agreed) = self.applied_history.get(position) else {
            return Err(format!(
                "n{node} restored a snapshot through {index}, beyond anything applied anywhere"
            ));
        };
        let expected = self.history_digests[position].to_le_bytes();
        if agreed.term != snapshot.term || snapshot.data[..] != expected[..] {
            return Err(format!(
                "state machine safety: n{node} restored a snapshot through {index}@t{} \
                 that is not the state after the agreed entries",
                snapshot.term
            ));
        }
        let upto = self.applied_upto.entry(node).or_default();
        if index <= *upto {
            return Err(format!(
                "n{node} restored a snapshot through {index} after applying up to {upto}"
            ));
        }
        *upto = index;
        Ok(())
    }

    /// A running node's commit and applied indices after a step.
    pub(crate) fn check_commit(
        &mut self,
        node: NodeId,
        commit: LogIndex,
        applied: LogIndex,
        last: LogIndex,
    ) -> Result<(), String> {
        let seen = self.commit_seen.entry(node).or_default();
        if commit < *seen {
            return Err(format!(
                "n{node}'s commit index went back from {seen} to {commit}"
            ));
        }
        *seen = commit;
        self.highest_commit = self.highest_commit.max(commit);
        if applied > commit || commit > last {
            return Err(format!(
                "n{node} has applied {applied}, committed {commit}, last log index {last}: \
                 must be applied <= committed <= last"
            ));
        }
        Ok(())
    }

    /// The commit index node `node` had at the end of the latest step.
    pub(crate) fn commit_seen(&self, node: NodeId) -> LogIndex {
        self.commit_seen.get(&node).copied().unwrap_or_default()
    }

    /// A node in `role` truncates its persisted log from `from`, removing
    /// `removed` (consecutive entries): a leader never does, nor below `commit`, the commit index
    /// the node had before the step that decided the truncation, and no
    /// removed entry may be one that was committed.
    pub(crate) fn check_truncate(
        &self,
        node: NodeId,
        from: LogIndex,
        role: Role,
        removed: &[Entry],
        commit: LogIndex,
    ) -> Result<(), String> {
        if role == Role::Leader {
            return Err(format!(
                "leader append-only: leader n{node} truncated its log from {from}"
            ));
        }
        if from <= commit {
            return Err(format!(
                "n{node} truncated from {from} below its commit index {commit}"
            ));
        }
        for entry in removed {
            if self.applied_history.get((entry.index.get() - 1) as usize) == Some(entry) {
                return Err(format!("n{node} truncated committed entry {}", entry.index));
            }
        }
        Ok(())
    }

    /// A node became leader of `term` with `log`: it must hold every entry
    /// committed in an earlier term (leader completeness, §5.4). An entry
    /// committed only in a later term need not be there: a candidate whose
    /// last vote arrives late may still lead its own, older term.
    pub(crate) fn check_leader_log(
        &self,
        node: NodeId,
        term: Term,
        log: &[Entry],
    ) -> Result<(), String> {
        // Entries up to the base of the log were committed and are under
        // the node's snapshot.
        let base = log
            .first()
            .map_or(LogIndex(u64::MAX), |e| LogIndex(e.index.get() - 1));
        let history = self.applied_history.iter().zip(&self.committed_by);
        for (agreed, &committed_by) in history {
            if agreed.index <= base {
                continue;
            }
            if committed_by < term && entry_at(log, agreed.index) != Some(agreed) {
                return Err(format!(
                    "leader completeness: n{node}, leader of term {term}, lacks committed entry {}",
                    agreed.index
                ));
            }
        }
        Ok(())
    }

    /// A node persists `new` over `old`.
    pub(crate) fn check_persist(
        &mut self,
        node: NodeId,
        old: HardState,
        new: HardState,
    ) -> Result<(), String> {
        if new.term < old.term {
            return Err(format!(
                "persisted term went backwards on n{node}: from {} to {}",
                old.term, new.term
            ));
        }
        if new.term == old.term && old.voted_for.is_some() && new.voted_for != old.voted_for {
            return Err(format!(
                "n{node} overwrote its vote in term {}: {:?} -> {:?}",
                new.term, old.voted_for, new.voted_for
            ));
        }
        if let Some(candidate) = new.voted_for {
            self.record_vote(node, new.term, candidate)?;
        }
        Ok(())
    }

    fn record_vote(&mut self, voter: NodeId, term: Term, candidate: NodeId) -> Result<(), String> {
        match self.votes.insert((voter, term), candidate) {
            Some(previous) if previous != candidate => Err(format!(
                "n{voter} voted twice in term {term}: for n{previous} and for n{candidate}"
            )),
            _ => Ok(()),
        }
    }

    /// A node sends `message` to `to` while its storage holds `storage`:
    /// whatever the message vouches for must already be durable — but for
    /// what `rules` lets run ahead of the node's writes.
    pub(crate) fn check_send(
        &mut self,
        from: NodeId,
        to: NodeId,
        message: &Message,
        storage: &PersistedState,
        rules: SendRules<'_>,
    ) -> Result<(), String> {
        let durable = storage.hard_state;
        let unpersisted = |what: &str| {
            Err(format!(
                "n{from} sent {what} to n{to} before persisting it (durable: term {}, vote {:?})",
                durable.term, durable.voted_for
            ))
        };
        match message {
            Message::RequestVote(request) if request.pre_vote => {
                // A pre-vote asks about the next term without adopting it.
                if request.term.get() > durable.term.get() + 1 {
                    return unpersisted("a pre-vote beyond its next term");
                }
            }
            Message::RequestVote(request) => {
                if durable.term != request.term || durable.voted_for != Some(from) {
                    return unpersisted("a vote request");
                }
            }
            Message::RequestVoteResponse(response) if response.granted && !response.pre_vote => {
                if durable.term != response.term || durable.voted_for != Some(to) {
                    return unpersisted("a granted vote");
                }
                self.record_vote(from, response.term, to)?;
            }
            Message::RequestVoteResponse(response) if response.granted => {
                // A granted pre-vote carries the requester's proposed term.
            }
            Message::AppendEntries(append) => {
                if append.term > durable.term {
                    return unpersisted("a message of a newer term");
                }
                let entries = if rules.entries_may_precede_persist {
                    &[][..]
                } else {
                    &append.entries[..]
                };
                for entry in entries {
                    if !holds_durably(storage, entry) {
                        return unpersisted("an entry");
                    }
                }
            }
            Message::AppendEntriesResponse(response) if response.success => {
                if response.term > durable.term {
                    return unpersisted("a message of a newer term");
                }
                // The entry acknowledged must be durable, and the very
                // one the node holds there (not an older write at the
                // same index); one compacted away in memory must at least
                // be within the stored log.
                let durable = match rules.acknowledged {
                    Some(entry) => holds_durably(storage, entry),
                    None => response.index <= storage.last_index(),
                };
                if !durable {
                    return unpersisted("an acknowledgement of entries");
                }
            }
            Message::InstallSnapshot(install) => {
                if install.term > durable.term {
                    return unpersisted("a message of a newer term");
                }
                if !rules.snapshots_may_precede_persist
                    && storage.snapshot_index() < install.snapshot.index
                {
                    return unpersisted("a snapshot");
                }
            }
            other => {
                if other.term() > durable.term {
                    return unpersisted("a message of a newer term");
                }
            }
        }
        Ok(())
    }
}

/// What a node's messages may run ahead of its writes, and what they
/// vouch for (see [`Checker::check_send`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendRules<'a> {
    /// A leader's appends may carry entries it has not yet made durable
    /// (it persists in parallel with its followers).
    pub(crate) entries_may_precede_persist: bool,
    /// A leader may send a snapshot it has not yet made durable: it
    /// covers committed entries only (asynchronous writes).
    pub(crate) snapshots_may_precede_persist: bool,
    /// For a success answer to an append: the entry the sender holds at
    /// the index it acknowledges, unless compacted away in memory.
    pub(crate) acknowledged: Option<&'a Entry>,
}

/// Log matching (§5.3): if two logs hold an entry with the same index and
/// term, they are identical up to that index.
pub(crate) fn check_log_matching(
    a: (NodeId, &[Entry]),
    b: (NodeId, &[Entry]),
) -> Result<(), String> {
    // Entries below either log's first were compacted into a snapshot
    // (committed): only the indices both logs hold are compared.
    let (Some(a_first), Some(b_first)) = (a.1.first(), b.1.first()) else {
        return Ok(());
    };
    let first = a_first.index.max(b_first.index).get();
    let (left, right) = (aligned_from(a.1, first), aligned_from(b.1, first));
    let shared = left.len().min(right.len());
    let Some(last_agreeing) = (0..shared).rev().find(|&i| left[i].term == right[i].term) else {
        return Ok(());
    };
    if left[..=last_agreeing] != right[..=last_agreeing] {
        let first_difference = (0..=last_agreeing)
            .find(|&i| left[i] != right[i])
            .expect("prefixes differ somewhere");
        return Err(format!(
            "log matching: n{} and n{} agree on the term of entry {} but differ at entry {}",
            a.0, b.0, left[last_agreeing].index, left[first_difference].index
        ));
    }
    Ok(())
}

/// The entries of `log` (which starts at or before `first`) from `first` on.
fn aligned_from(log: &[Entry], first: u64) -> &[Entry] {
    let skip = (first - log[0].index.get()) as usize;
    log.get(skip..).unwrap_or(&[])
}

//! Raft paper §5.3 (log replication) and §5.4 (safety), sentence by
//! sentence, on one node whose peers are played by the test.

use kontiki::{
    Command, Entry, EntryKind, HandleError, Handled, HardState, Input, LogIndex, Message, NodeId,
    Output, Persist, PersistedState, Term,
};
use kontiki_tests::probe::{append, append_response, plain_config, Probe};

fn log(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry::command(LogIndex(i as u64 + 1), Term(term), vec![i as u8 + 1]))
        .collect()
}

fn restored(term: u64, terms: &[u64]) -> PersistedState {
    PersistedState {
        snapshot: None,
        hard_state: HardState {
            term: Term(term),
            voted_for: None,
            log_lost_at_term: None,
        },
        entries: log(terms),
    }
}

fn propose(probe: &mut Probe, data: &[u8]) -> Result<Handled, HandleError> {
    probe.input(Input::Command(Command::Propose(data.to_vec().into())))
}

fn appends(probe: &Probe) -> Vec<(NodeId, kontiki::AppendEntries)> {
    probe
        .sent()
        .into_iter()
        .filter_map(|(to, message)| match message {
            Message::AppendEntries(append) => Some((to, append)),
            _ => None,
        })
        .collect()
}

// §5.3 "The leader appends the command to its log as a new entry, then
// issues AppendEntries RPCs in parallel to each of the other servers to
// replicate the entry."
#[test]
fn leader_appends_the_command_then_sends_it_to_every_follower() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    // Let both followers catch up, so they stream.
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    probe.receive(3, append_response(1, true, 0, 0)).unwrap();
    let handled = propose(&mut probe, b"x").unwrap();
    assert_eq!(
        handled,
        Handled::Proposed {
            index: LogIndex(1),
            term: Term(1)
        }
    );
    assert!(
        matches!(&probe.outputs[0], Output::Persist(Persist::Entries(entries)) if entries.len() == 1)
    );
    let sent = appends(&probe);
    assert_eq!(sent.len(), 2);
    for (_, append) in sent {
        assert_eq!(
            append.entries,
            vec![Entry::command(LogIndex(1), Term(1), b"x".to_vec())]
        );
        assert_eq!(append.prev_log_index, LogIndex(0));
    }
}

// Beyond the paper: a caller that hands the leader several proposals
// before draining gets one write and one AppendEntries per follower for
// all of them, with the write ordered before the sends.
#[test]
fn proposals_handled_between_two_drains_travel_together() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    probe.receive(3, append_response(1, true, 0, 0)).unwrap();
    for data in [b"a", b"b", b"c"] {
        probe
            .node
            .handle(
                probe.now,
                Input::Command(Command::Propose(data.to_vec().into())),
            )
            .unwrap();
    }
    // The fourth goes through the probe, which then drains the outputs.
    probe
        .input(Input::Command(Command::Propose(b"d".to_vec().into())))
        .unwrap();
    let persisted: Vec<usize> = probe
        .outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist(Persist::Entries(entries)) => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(persisted, vec![4], "one write for four proposals");
    let first_send = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Send { .. }))
        .unwrap();
    let persist_at = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Persist(Persist::Entries(_))))
        .unwrap();
    assert!(persist_at < first_send, "persist before any send");
    let sent = appends(&probe);
    assert_eq!(sent.len(), 2, "one append per follower");
    for (_, append) in sent {
        let data: Vec<&[u8]> = append.entries.iter().map(|e| &e.data[..]).collect();
        assert_eq!(data, vec![&b"a"[..], b"b", b"c", b"d"]);
    }
}

// Beyond the paper: a barrier is a no-op entry proposed like a command;
// once it is applied, everything committed before it has been applied
// (the driver's linearizable read point). A follower refuses it.
#[test]
fn a_barrier_commits_as_a_no_op_after_the_commands_before_it() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    propose(&mut probe, b"x").unwrap();
    let handled = probe.input(Input::Command(Command::Barrier)).unwrap();
    assert_eq!(
        handled,
        Handled::Proposed {
            index: LogIndex(2),
            term: Term(1)
        }
    );
    assert!(probe.applied.is_empty());
    probe.receive(2, append_response(1, true, 2, 0)).unwrap();
    let applied: Vec<(LogIndex, EntryKind)> = probe
        .applied
        .iter()
        .map(|entry| (entry.index, entry.kind))
        .collect();
    assert_eq!(
        applied,
        vec![
            (LogIndex(1), EntryKind::Command),
            (LogIndex(2), EntryKind::Noop)
        ]
    );

    let mut follower = Probe::new(3, plain_config());
    follower.receive(2, append(1, 0, 0, 0, &[])).unwrap();
    assert_eq!(
        follower.input(Input::Command(Command::Barrier)),
        Err(HandleError::NotLeader {
            leader_hint: Some(NodeId(2))
        })
    );
}

// Any input other than a proposal first hands out the leader's unpersisted
// entries, so nothing it does next can outrun their persist output: here a
// new leader's append overwrites an entry the deposed leader had not yet
// handed out for persisting.
#[test]
fn pending_proposals_are_persisted_before_the_next_message_is_handled() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    probe
        .node
        .handle(
            probe.now,
            Input::Command(Command::Propose(b"a".to_vec().into())),
        )
        .unwrap();
    probe.receive(2, append(2, 0, 0, 0, &[2])).unwrap();
    let log_changes: Vec<&Output> = probe
        .outputs
        .iter()
        .filter(|output| {
            matches!(
                output,
                Output::Persist(Persist::Entries(_)) | Output::Persist(Persist::TruncateLog { .. })
            )
        })
        .collect();
    assert_eq!(
        log_changes,
        vec![
            &Output::Persist(Persist::Entries(vec![Entry::command(
                LogIndex(1),
                Term(1),
                b"a".to_vec()
            )])),
            &Output::Persist(Persist::TruncateLog { from: LogIndex(1) }),
            &Output::Persist(Persist::Entries(vec![Entry::command(
                LogIndex(1),
                Term(2),
                vec![1]
            )])),
        ]
    );
    assert_eq!(probe.durable.entries, probe.node.entries());
}

// §5.3 "A log entry is committed once the leader that created the entry
// has replicated it on a majority of the servers ... the leader applies
// the entry to its state machine."
#[test]
fn an_entry_on_a_majority_is_committed_and_applied_once() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    propose(&mut probe, b"x").unwrap();
    assert!(probe.applied.is_empty(), "one copy of three is no majority");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(1));
    assert_eq!(probe.applied.len(), 1);
    probe.receive(3, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.applied.len(), 1, "applied exactly once");
}

// §5.4.2 "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed
// by counting replicas" (Figure 8).
#[test]
fn leader_never_commits_an_earlier_terms_entry_by_counting_replicas() {
    let mut probe = Probe::restore(3, plain_config(), restored(2, &[1, 2]));
    probe.elect();
    assert_eq!(probe.node.term(), Term(3));
    probe.receive(2, append_response(3, true, 2, 0)).unwrap();
    assert_eq!(
        probe.node.commit_index(),
        LogIndex(0),
        "entry 2 is of term 2"
    );
    propose(&mut probe, b"x").unwrap();
    probe.receive(2, append_response(3, true, 3, 0)).unwrap();
    assert_eq!(
        probe.node.commit_index(),
        LogIndex(3),
        "entries 1 and 2 commit with entry 3"
    );
    assert_eq!(probe.applied.len(), 3);
}

#[test]
fn a_no_op_on_election_commits_earlier_terms_entries_without_a_client() {
    let config = kontiki::Config {
        noop_on_election: true,
        ..plain_config()
    };
    let mut probe = Probe::restore(3, config, restored(2, &[1, 2]));
    probe.elect();
    assert_eq!(probe.node.last_log_index(), LogIndex(3));
    probe.receive(2, append_response(3, true, 3, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(3));
}

// §5.3 "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it;
// append any new entries not already in the log."
#[test]
fn follower_replaces_a_conflicting_suffix() {
    let mut probe = Probe::restore(3, plain_config(), restored(2, &[1, 2, 2]));
    probe.receive(2, append(3, 1, 1, 0, &[3, 3])).unwrap();
    assert_eq!(
        probe.outputs[0],
        Output::Persist(Persist::TruncateLog { from: LogIndex(2) })
    );
    let terms: Vec<u64> = probe.node.entries().iter().map(|e| e.term.get()).collect();
    assert_eq!(terms, vec![1, 3, 3]);
    assert_eq!(probe.durable.entries, probe.node.entries());
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), append_response(3, true, 3, 0))]
    );
}

#[test]
fn follower_keeps_entries_it_already_has() {
    let mut probe = Probe::restore(3, plain_config(), restored(2, &[1, 2, 2]));
    // A delayed, shorter append of the same entries changes nothing.
    probe.receive(2, append(2, 1, 1, 0, &[2])).unwrap();
    assert_eq!(probe.node.last_log_index(), LogIndex(3));
    assert!(!probe.outputs.iter().any(|output| matches!(
        output,
        Output::Persist(Persist::TruncateLog { .. }) | Output::Persist(Persist::Entries(_))
    )));
}

// §5.3 "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
// index of last new entry)."
#[test]
fn follower_commits_only_what_it_knows_matches_the_leader() {
    let mut probe = Probe::restore(3, plain_config(), restored(2, &[1, 2, 2, 2]));
    // A heartbeat that only vouches for entry 2: entries 3 and 4 may
    // differ from the leader's, so they must not commit, whatever the
    // leader's commit index.
    probe.receive(2, append(2, 2, 2, 9, &[])).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(2));
    assert_eq!(probe.applied.len(), 2);
}

// §5.3 "If a follower's log is inconsistent with the leader's, the
// AppendEntries consistency check will fail ... After a rejection, the
// leader decrements nextIndex and retries" — and with the conflict hint it
// skips a whole term at once.
#[test]
fn follower_rejecting_an_append_names_the_start_of_the_conflicting_term() {
    let mut terms = vec![1; 10];
    terms.extend([2; 50]);
    let mut probe = Probe::restore(3, plain_config(), restored(2, &terms));
    probe.receive(2, append(3, 60, 3, 0, &[])).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), append_response(3, false, 11, 2))]
    );
    // A log that is too short names its end.
    probe.receive(2, append(3, 80, 3, 0, &[])).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), append_response(3, false, 61, 0))]
    );
}

#[test]
fn a_fifty_entry_divergent_tail_is_repaired_in_two_round_trips() {
    // Leader: 10 entries of term 1 then 50 of term 3. Follower: the same 10
    // then 50 of term 2.
    let mut leader_terms = vec![1; 10];
    leader_terms.extend([3; 50]);
    let mut follower_terms = vec![1; 10];
    follower_terms.extend([2; 50]);
    let mut leader = Probe::restore(3, plain_config(), restored(3, &leader_terms));
    leader.elect();
    let mut follower =
        Probe::restore_as(NodeId(2), 3, plain_config(), restored(3, &follower_terms));
    let mut round_trips = 0;
    let mut to_follower: Vec<Message> = appends(&leader)
        .into_iter()
        .filter(|(to, _)| *to == NodeId(2))
        .map(|(_, append)| Message::AppendEntries(append))
        .collect();
    while let Some(message) = to_follower.pop() {
        round_trips += 1;
        assert!(round_trips <= 3, "too many round trips");
        follower.receive(1, message).unwrap();
        for (_, reply) in follower.sent() {
            leader.receive(2, reply).unwrap();
            to_follower.extend(
                appends(&leader)
                    .into_iter()
                    .filter(|(to, _)| *to == NodeId(2))
                    .map(|(_, append)| Message::AppendEntries(append)),
            );
        }
    }
    let leader_log: Vec<u64> = leader.node.entries().iter().map(|e| e.term.get()).collect();
    let follower_log: Vec<u64> = follower
        .node
        .entries()
        .iter()
        .map(|e| e.term.get())
        .collect();
    assert_eq!(follower_log, leader_log);
    assert_eq!(round_trips, 2);
}

#[test]
fn a_follower_refuses_proposals_and_names_the_leader() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, append(1, 0, 0, 0, &[])).unwrap();
    assert_eq!(
        propose(&mut probe, b"x"),
        Err(HandleError::NotLeader {
            leader_hint: Some(NodeId(2))
        })
    );
}

#[test]
fn proposals_beyond_the_uncommitted_bytes_bound_are_refused() {
    let config = kontiki::Config {
        max_uncommitted_bytes: 10,
        ..plain_config()
    };
    let mut probe = Probe::new(3, config);
    probe.elect();
    propose(&mut probe, &[0; 6]).unwrap();
    assert_eq!(
        propose(&mut probe, &[0; 6]),
        Err(HandleError::TooManyUncommittedBytes)
    );
    propose(&mut probe, &[0; 4]).unwrap();
    // Commit everything: room again.
    probe.receive(2, append_response(1, true, 2, 0)).unwrap();
    propose(&mut probe, &[0; 6]).unwrap();
}

#[test]
fn an_append_that_would_overwrite_a_committed_entry_is_dropped() {
    let mut probe = Probe::restore(3, plain_config(), restored(2, &[1, 2]));
    probe.receive(2, append(2, 2, 2, 2, &[])).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(2));
    assert_eq!(
        probe.receive(3, append(3, 1, 1, 0, &[3])),
        Err(HandleError::Dropped(
            kontiki::DropReason::OverwritesCommitted
        ))
    );
    assert_eq!(probe.node.entries()[1].term, Term(2));
}

//! Raft paper §5.1, §5.2 and §5.4.1, sentence by sentence, on one node
//! whose peers are played by the test. Each test is named after the
//! sentence it checks.

use std::time::Duration;

use kontiki::{
    Entry, HardState, LogIndex, Message, NodeId, Output, Persist, PersistedState, Role, Term,
};
use kontiki_tests::probe::{heartbeat, plain_config, request_vote, vote_response, Probe};

fn entries(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry::command(LogIndex(i as u64 + 1), Term(term), vec![]))
        .collect()
}

fn at_term(term: u64, log_terms: &[u64]) -> PersistedState {
    PersistedState {
        snapshot: None,
        hard_state: HardState {
            term: Term(term),
            voted_for: None,
            log_lost_at_term: None,
        },
        entries: entries(log_terms),
    }
}

// §5.1 "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value."
#[test]
fn follower_updates_its_term_to_a_larger_one_it_sees() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, heartbeat(5, 0, 0)).unwrap();
    assert_eq!(probe.node.term(), Term(5));
    assert_eq!(probe.node.leader(), Some(NodeId(2)));
    assert_eq!(
        probe.durable.hard_state.term,
        Term(5),
        "the new term is persisted"
    );
}

// §5.1 "If a candidate or leader discovers that its term is out of date, it
// immediately reverts to follower state."
#[test]
fn candidate_reverts_to_follower_when_its_term_is_out_of_date() {
    let mut probe = Probe::new(3, plain_config());
    probe.campaign().unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    probe.receive(2, vote_response(9, false, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.term(), Term(9));
}

#[test]
fn leader_reverts_to_follower_when_its_term_is_out_of_date() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    let term = probe.node.term().get();
    probe
        .receive(3, request_vote(term + 1, 0, 0, false))
        .unwrap();
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.term(), Term(term + 1));
    assert!(probe.outputs.iter().any(|output| matches!(
        output,
        Output::RoleChanged {
            role: Role::Follower,
            ..
        }
    )));
}

// §5.1 "If a server receives a request with a stale term number, it rejects
// the request."
#[test]
fn server_rejects_a_request_with_a_stale_term() {
    let mut probe = Probe::restore(3, plain_config(), at_term(4, &[]));
    probe.receive(2, request_vote(3, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(4, false, false))]
    );
    probe.receive(3, heartbeat(2, 0, 0)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(
            NodeId(3),
            Message::AppendEntriesResponse(kontiki::AppendEntriesResponse {
                term: Term(4),
                success: false,
                index: LogIndex(1),
                conflict_term: Term(0),
            })
        )]
    );
    assert_eq!(probe.node.leader(), None, "a stale leader is not followed");
}

// §5.2 "If a follower receives no communication over a period of time
// called the election timeout, then it assumes there is no viable leader
// and begins an election to choose a new leader."
#[test]
fn follower_begins_an_election_when_the_election_timeout_elapses() {
    let mut probe = Probe::new(3, plain_config());
    probe.fire_timer();
    assert_eq!(probe.node.role(), Role::Candidate);
}

#[test]
fn follower_does_not_begin_an_election_while_heartbeats_arrive() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, heartbeat(1, 0, 0)).unwrap();
    for _ in 0..100 {
        probe.advance(Duration::from_millis(50));
        probe.receive(2, heartbeat(1, 0, 0)).unwrap();
        // A timer that fires early is harmless: the node re-arms it.
        if probe.timer.is_some_and(|deadline| deadline <= probe.now) {
            probe.fire_timer();
        }
    }
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.term(), Term(1));
}

// §5.2 "To begin an election, a follower increments its current term and
// transitions to candidate state. It then votes for itself and issues
// RequestVote RPCs in parallel to each of the other servers in the cluster."
#[test]
fn candidate_increments_its_term_votes_for_itself_and_asks_every_peer() {
    let mut probe = Probe::restore(5, plain_config(), at_term(2, &[1, 2]));
    probe.fire_timer();
    assert_eq!(probe.node.term(), Term(3));
    assert_eq!(probe.node.hard_state().voted_for, Some(NodeId(1)));
    let requests = probe.sent();
    assert_eq!(
        requests.iter().map(|(to, _)| to.get()).collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    for (_, request) in &requests {
        assert_eq!(*request, request_vote(3, 2, 2, false));
    }
    // The term and self-vote are persisted before the first request.
    let first_persist = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Persist(Persist::HardState(_))))
        .expect("persisted");
    let first_send = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Send { .. }))
        .expect("sent");
    assert!(first_persist < first_send);
    assert_eq!(
        probe.durable.hard_state,
        HardState {
            term: Term(3),
            voted_for: Some(NodeId(1)),
            log_lost_at_term: None,
        }
    );
}

// §5.2 "A candidate wins an election if it receives votes from a majority
// of the servers in the full cluster for the same term."
#[test]
fn candidate_wins_with_votes_from_a_majority_for_the_same_term() {
    let mut probe = Probe::new(5, plain_config());
    probe.campaign().unwrap();
    probe.receive(2, vote_response(1, true, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate, "2 of 5 is no majority");
    // A repeated vote from the same voter is not counted twice.
    probe.receive(2, vote_response(1, true, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    probe.receive(4, vote_response(1, true, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Leader);
}

#[test]
fn candidate_returns_to_follower_when_a_majority_refuses() {
    let mut probe = Probe::new(3, plain_config());
    probe.campaign().unwrap();
    probe.receive(2, vote_response(1, false, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    probe.receive(3, vote_response(1, false, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.term(), Term(1));
}

// §5.2 "Each server will vote for at most one candidate in a given term, on
// a first-come-first-served basis."
#[test]
fn server_votes_for_at_most_one_candidate_per_term() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, request_vote(1, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(1, true, false))]
    );
    probe.receive(3, request_vote(1, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(3), vote_response(1, false, false))]
    );
    // The first candidate asking again gets the same answer.
    probe.receive(2, request_vote(1, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(1, true, false))]
    );
}

#[test]
fn a_vote_survives_a_restart() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, request_vote(1, 0, 0, false)).unwrap();
    probe.crash_and_restart();
    probe.receive(3, request_vote(1, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(3), vote_response(1, false, false))]
    );
    assert_eq!(probe.node.term(), Term(1));
}

#[test]
fn granting_a_vote_persists_it_before_the_response() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, request_vote(1, 0, 0, false)).unwrap();
    assert_eq!(
        probe.outputs[0],
        Output::Persist(Persist::HardState(HardState {
            term: Term(1),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        }))
    );
    assert!(matches!(probe.outputs[1], Output::Send { .. }));
}

// §5.2 "Once a candidate wins an election, it becomes leader. It then sends
// heartbeat messages to all of the other servers to establish its authority
// and prevent new elections."
#[test]
fn new_leader_sends_heartbeats_at_once_and_every_heartbeat_interval() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    let heartbeats = probe.sent();
    assert_eq!(heartbeats.len(), 2);
    assert!(heartbeats
        .iter()
        .all(|(_, message)| *message == heartbeat(1, 0, 0)));
    let elected_at = probe.now;
    probe.fire_timer();
    assert_eq!(
        probe.now.saturating_duration_since(elected_at),
        Duration::from_millis(50)
    );
    assert_eq!(probe.sent().len(), 2);
    assert!(probe
        .outputs
        .iter()
        .any(|output| matches!(output, Output::SetTimer { .. })));
}

// §5.2 "If the leader's term (included in its RPC) is at least as large as
// the candidate's current term, then the candidate recognizes the leader as
// legitimate and returns to follower state."
#[test]
fn candidate_recognizes_a_leader_of_its_own_term() {
    let mut probe = Probe::new(3, plain_config());
    probe.campaign().unwrap();
    probe.receive(2, heartbeat(1, 0, 0)).unwrap();
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.leader(), Some(NodeId(2)));
    assert_eq!(probe.node.term(), Term(1));
}

// §5.2 "If the term in the RPC is smaller than the candidate's current
// term, then the candidate rejects the RPC and continues in candidate
// state."
#[test]
fn candidate_rejects_an_append_from_an_older_term_and_stays_candidate() {
    let mut probe = Probe::restore(3, plain_config(), at_term(4, &[]));
    probe.campaign().unwrap();
    probe.receive(2, heartbeat(4, 0, 0)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    assert_eq!(probe.node.term(), Term(5));
}

// §5.2 "When this happens, each candidate will time out and start a new
// election by incrementing its term and initiating another round of
// RequestVote RPCs."
#[test]
fn candidate_starts_a_new_election_when_it_times_out() {
    let mut probe = Probe::new(3, plain_config());
    probe.fire_timer();
    assert_eq!(probe.node.term(), Term(1));
    probe.fire_timer();
    assert_eq!(probe.node.role(), Role::Candidate);
    assert_eq!(probe.node.term(), Term(2));
    assert_eq!(probe.sent().len(), 2);
}

// §5.2 "election timeouts are chosen randomly from a fixed interval (e.g.,
// 150–300ms)."
#[test]
fn election_timeouts_are_chosen_randomly_from_the_configured_interval() {
    let mut probe = Probe::new(3, plain_config());
    let mut timeouts = std::collections::BTreeSet::new();
    for _ in 0..200 {
        probe.fire_timer();
        let timeout = probe.timer.unwrap().saturating_duration_since(probe.now);
        assert!(timeout >= Duration::from_millis(150) && timeout < Duration::from_millis(300));
        timeouts.insert(timeout);
    }
    assert!(
        timeouts.len() > 150,
        "timeouts should differ: {} distinct",
        timeouts.len()
    );
    let below_middle = timeouts
        .iter()
        .filter(|&&timeout| timeout < Duration::from_millis(225))
        .count();
    assert!(
        (50..150).contains(&below_middle),
        "timeouts spread over the interval"
    );
}

// §5.4.1 "The voter denies its vote if its own log is more up-to-date than
// that of the candidate." / "If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs
// end with the same term, then whichever log is longer is more up-to-date."
#[test]
fn voter_denies_a_candidate_whose_last_term_is_earlier() {
    let mut probe = Probe::restore(3, plain_config(), at_term(3, &[1, 3]));
    probe.receive(2, request_vote(4, 5, 2, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(4, false, false))]
    );
}

#[test]
fn voter_denies_a_candidate_with_the_same_last_term_and_a_shorter_log() {
    let mut probe = Probe::restore(3, plain_config(), at_term(3, &[1, 3, 3]));
    probe.receive(2, request_vote(4, 2, 3, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(4, false, false))]
    );
    probe.receive(3, request_vote(4, 3, 3, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(3), vote_response(4, true, false))]
    );
}

#[test]
fn voter_grants_a_candidate_with_a_later_last_term_despite_a_shorter_log() {
    let mut probe = Probe::restore(3, plain_config(), at_term(2, &[1, 1, 1, 1]));
    probe.receive(2, request_vote(3, 1, 2, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(3, true, false))]
    );
}

#[test]
fn a_single_node_cluster_elects_itself_at_once() {
    let probe = Probe::new(1, plain_config());
    assert_eq!(probe.node.role(), Role::Leader);
    assert_eq!(probe.node.term(), Term(1));
    assert_eq!(probe.durable.hard_state.voted_for, Some(NodeId(1)));
    assert!(probe.outputs.contains(&Output::RoleChanged {
        role: Role::Leader,
        term: Term(1),
        leader: Some(NodeId(1))
    }));
}

#[test]
fn a_restarted_single_node_cluster_elects_itself_in_a_new_term() {
    let mut probe = Probe::new(1, plain_config());
    probe.crash_and_restart();
    assert_eq!(probe.node.role(), Role::Leader);
    assert_eq!(probe.node.term(), Term(2));
}

// Votes belong to the term, not to the candidate role: a candidate whose
// timer ran out before its votes arrived (a slow network) and went back to
// pre-voting in the same term still wins that term with them.
#[test]
fn late_votes_of_the_current_term_still_elect_a_returning_pre_candidate() {
    let config = kontiki::Config {
        pre_vote: true,
        ..plain_config()
    };
    let mut probe = Probe::new(3, config);
    probe.fire_timer();
    probe.receive(2, vote_response(1, true, true)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    probe.fire_timer_until(Role::PreCandidate);
    assert_eq!(probe.node.term(), Term(1));
    probe.receive(3, vote_response(1, true, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Leader);
    assert_eq!(probe.node.term(), Term(1));
}

#[test]
fn votes_of_an_earlier_term_do_not_count() {
    let mut probe = Probe::new(3, plain_config());
    probe.fire_timer();
    while probe.node.term() < Term(2) {
        probe.fire_timer();
    }
    probe.receive(2, vote_response(1, true, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
}

#[test]
fn a_follower_remembers_when_it_last_heard_from_its_leader() {
    let mut probe = Probe::new(3, plain_config());
    assert_eq!(probe.node.leader_contact_at(), None, "no leader known yet");
    probe.advance(Duration::from_millis(30));
    probe.receive(2, heartbeat(1, 0, 0)).unwrap();
    let first = probe.now;
    assert_eq!(probe.node.leader_contact_at(), Some(first));
    probe.advance(Duration::from_millis(40));
    probe.receive(2, heartbeat(1, 0, 0)).unwrap();
    assert_eq!(probe.node.leader_contact_at(), Some(probe.now));
    // A new term without a known leader forgets the contact.
    probe.receive(3, request_vote(2, 0, 0, false)).unwrap();
    assert_eq!(probe.node.leader_contact_at(), None);
    // And a leader has no leader to hear from.
    probe.elect();
    assert_eq!(probe.node.role(), Role::Leader);
    assert_eq!(probe.node.leader_contact_at(), None);
}

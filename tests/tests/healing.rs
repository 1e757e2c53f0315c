//! Replication that heals in one round trip: a leader that learns a
//! follower lacks something acts on the answer that says so, instead of
//! waiting for a heartbeat or an election timeout. One node, its peers
//! played by the test.

use std::time::Duration;

use kontiki::{AppendEntries, Command, Config, Input, LogIndex, Message, NodeId, Role};
use kontiki_tests::probe::{append_response, plain_config, Probe};

fn propose(probe: &mut Probe, data: &[u8]) {
    probe
        .input(Input::Command(Command::Propose(data.to_vec().into())))
        .expect("the leader takes proposals");
}

fn appends_to(probe: &Probe, peer: u64) -> Vec<AppendEntries> {
    probe
        .sent()
        .into_iter()
        .filter_map(|(to, message)| match message {
            Message::AppendEntries(append) if to == NodeId(peer) => Some(append),
            _ => None,
        })
        .collect()
}

fn indexes(append: &AppendEntries) -> Vec<u64> {
    append
        .entries
        .iter()
        .map(|entry| entry.index.get())
        .collect()
}

/// Node 1 leads a cluster of three and both followers stream (they
/// answered its first heartbeat).
fn streaming_leader() -> Probe {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    probe.receive(3, append_response(1, true, 0, 0)).unwrap();
    probe
}

// Two appends to one follower arrive in the opposite order: the follower
// rejects the second (its log ends before it) and drops its entries. The
// leader resends from what the follower holds at once, not a heartbeat
// later.
#[test]
fn an_append_overtaken_by_the_next_is_resent_on_the_rejection() {
    let mut probe = streaming_leader();
    propose(&mut probe, b"a");
    assert_eq!(indexes(&appends_to(&probe, 2)[0]), [1]);
    propose(&mut probe, b"b");
    assert_eq!(indexes(&appends_to(&probe, 2)[0]), [2]);

    // Follower 2 got entry 2's append first: its log ends at 0.
    probe.receive(2, append_response(1, false, 1, 0)).unwrap();
    let resent = appends_to(&probe, 2);
    assert_eq!(resent.len(), 1, "the rejection is answered at once");
    assert_eq!(resent[0].prev_log_index, LogIndex(0));
    assert_eq!(indexes(&resent[0]), [1, 2]);

    // The first append arrives after all; its answer moves the follower
    // on, and the resent one's answer completes it.
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    probe.receive(2, append_response(1, true, 2, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(2));
}

// A rejection that predates what the follower is known to hold is stale
// and changes nothing, so the follower keeps streaming.
#[test]
fn a_rejection_older_than_an_acknowledgement_changes_nothing() {
    let mut probe = streaming_leader();
    propose(&mut probe, b"a");
    propose(&mut probe, b"b");
    probe.receive(2, append_response(1, true, 2, 0)).unwrap();
    // An answer from before entry 1 arrived, overtaken by the one above.
    probe.receive(2, append_response(1, false, 1, 0)).unwrap();
    assert!(probe.sent().is_empty());
    propose(&mut probe, b"c");
    let streamed = appends_to(&probe, 2);
    assert_eq!(streamed[0].prev_log_index, LogIndex(2));
    assert_eq!(indexes(&streamed[0]), [3]);
}

// Many appends overtaking one lost append cost one resend, not one per
// rejection.
#[test]
fn a_burst_of_rejections_costs_one_resend() {
    let mut probe = streaming_leader();
    for data in [b"a", b"b", b"c", b"d"] {
        propose(&mut probe, data);
    }
    let mut resends = 0;
    for _ in 0..3 {
        probe.receive(2, append_response(1, false, 1, 0)).unwrap();
        resends += appends_to(&probe, 2).len();
    }
    assert_eq!(resends, 1);
}

// A gap wider than one append is resent one append at a time: what is
// waited for is what was resent, so the rest is resent as soon as the
// follower shows it still lacks it.
#[test]
fn a_gap_wider_than_one_append_is_resent_an_append_at_a_time() {
    let mut probe = Probe::new(
        3,
        Config {
            max_append_bytes: 1,
            ..plain_config()
        },
    );
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    for data in [b"a", b"b", b"c"] {
        propose(&mut probe, data);
    }
    probe.receive(2, append_response(1, false, 1, 0)).unwrap();
    assert_eq!(indexes(&appends_to(&probe, 2)[0]), [1]);
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    // Entries 2 and 3 were lost too: the next refusal resends entry 2.
    probe.receive(2, append_response(1, false, 2, 0)).unwrap();
    assert_eq!(indexes(&appends_to(&probe, 2)[0]), [2]);
}

// A follower learns that entries it holds are committed one round trip
// after its leader does, not with the next heartbeat: once its answer
// leaves it with nothing in flight, an empty append carries the news.
#[test]
fn followers_hear_of_a_commit_without_waiting_for_a_heartbeat() {
    let mut probe = streaming_leader();
    propose(&mut probe, b"a");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(1));
    let news = appends_to(&probe, 2);
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0].leader_commit, LogIndex(1));
    assert_eq!(news[0].prev_log_index, LogIndex(1));
    assert!(news[0].entries.is_empty());
    // Node 3 has not answered: it holds nothing it could commit yet.
    assert!(appends_to(&probe, 3).is_empty());
    probe.receive(3, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(appends_to(&probe, 3)[0].leader_commit, LogIndex(1));
    // Answers to the news tell nothing new, and bring no more messages.
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    probe.receive(3, append_response(1, true, 1, 0)).unwrap();
    assert!(probe.sent().is_empty());
}

// News waits for the last answer to a burst of appends: one message per
// follower, not one per answer, so a busy leader is not chattier.
#[test]
fn a_burst_of_appends_brings_one_piece_of_commit_news() {
    let mut probe = streaming_leader();
    for data in [b"a", b"b", b"c"] {
        propose(&mut probe, data);
    }
    let mut news = Vec::new();
    for index in 1..=3 {
        probe
            .receive(2, append_response(1, true, index, 0))
            .unwrap();
        news.extend(appends_to(&probe, 2));
    }
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0].leader_commit, LogIndex(3));
    // A proposal's append carries the commit index too.
    probe.receive(3, append_response(1, true, 3, 0)).unwrap();
    propose(&mut probe, b"d");
    let sent = appends_to(&probe, 3);
    assert_eq!(sent.len(), 1);
    assert_eq!(indexes(&sent[0]), [4]);
}

// Check-quorum waits for answers that can arrive: with a round trip
// longer than the minimum election timeout, a new leader's first answers
// come back after that timeout, and a leader judging over it alone would
// step down before they could. (The Raft paper's 12–24 ms line with
// 6–9 ms each way, scaled: 150–300 ms timeouts, answers 180 ms after
// each heartbeat.)
#[test]
fn check_quorum_waits_for_answers_slower_than_the_minimum_timeout() {
    let config = Config {
        check_quorum: true,
        ..plain_config()
    };
    let mut probe = Probe::new(3, config);
    probe.elect();
    let elected_at = probe.now;
    let round_trip = Duration::from_millis(180);
    // Heartbeats every 50 ms; each is answered a round trip later.
    let mut answers_due = vec![elected_at + round_trip];
    while probe.now < elected_at + Duration::from_secs(2) {
        let next_timer = probe.timer.expect("a leader's heartbeat timer");
        if answers_due.first().is_some_and(|&due| due <= next_timer) {
            probe.now = answers_due.remove(0);
            probe.receive(2, append_response(1, true, 0, 0)).unwrap();
            probe.receive(3, append_response(1, true, 0, 0)).unwrap();
        } else {
            probe.fire_timer();
            answers_due.push(probe.now + round_trip);
        }
        assert_eq!(
            probe.node.role(),
            Role::Leader,
            "stepped down {:?} after winning",
            probe.now.saturating_duration_since(elected_at)
        );
    }
}

// A leader committing entry after entry tells each follower at most once
// per commit-news interval: news due sooner waits for the interval's end
// (or rides on an append), and the timer brings it then.
#[test]
fn commit_news_within_its_interval_waits_for_the_interval_to_end() {
    let mut probe = streaming_leader();
    propose(&mut probe, b"a");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(appends_to(&probe, 2)[0].leader_commit, LogIndex(1));
    let told_at = probe.now;
    propose(&mut probe, b"b");
    probe.receive(2, append_response(1, true, 2, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(2));
    assert!(appends_to(&probe, 2).is_empty(), "news waits");
    let interval = plain_config().commit_news_interval;
    assert_eq!(probe.node.next_deadline(), told_at + interval);
    probe.fire_timer();
    let news = appends_to(&probe, 2);
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0].leader_commit, LogIndex(2));
    assert!(appends_to(&probe, 3).is_empty(), "node 3 holds nothing new");
}

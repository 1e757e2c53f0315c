//! The follower-progress transitions, one scenario each.

use core::time::Duration;

use super::*;

const HEARTBEAT: Duration = Duration::from_millis(50);

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

#[test]
fn a_probe_sends_one_append_and_waits_for_its_answer() {
    let mut progress = Progress::new(at(0), LogIndex(6));
    assert!(progress.may_send_entries(4, usize::MAX));
    progress.on_entries_sent(at(1), LogIndex(8), 1);
    assert!(!progress.may_send_entries(4, usize::MAX));
    // A probe does not move its next index until it hears back.
    assert_eq!(progress.next_index(), LogIndex(6));
    progress.on_ack(at(2), LogIndex(8));
    assert_eq!(progress.state(), ReplicationState::Replicate);
    assert_eq!(progress.in_flight(), (0, 0));
    assert_eq!(
        (progress.match_index(), progress.next_index()),
        (LogIndex(8), LogIndex(9))
    );
    progress.check_invariants(at(2), LogIndex(8), 4, usize::MAX);
}

#[test]
fn replication_streams_up_to_the_in_flight_limits() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    for last in 1..=2 {
        assert!(progress.may_send_entries(2, usize::MAX));
        progress.on_entries_sent(at(1), LogIndex(last), 1);
    }
    assert!(!progress.may_send_entries(2, usize::MAX));
    assert_eq!(progress.next_index(), LogIndex(3));
    progress.on_ack(at(2), LogIndex(1));
    assert!(progress.may_send_entries(2, usize::MAX));
    progress.check_invariants(at(2), LogIndex(2), 2, usize::MAX);
}

#[test]
fn a_rejection_probes_again_but_never_below_what_the_follower_holds() {
    let mut progress = Progress::new(at(0), LogIndex(10));
    progress.on_ack(at(0), LogIndex(4));
    progress.on_reject(LogIndex(2), LogIndex(9));
    assert_eq!(progress.next_index(), LogIndex(5));
    assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
    progress.on_reject(LogIndex(50), LogIndex(9));
    assert_eq!(progress.next_index(), LogIndex(10));
}

#[test]
fn a_short_log_is_news_only_between_match_and_next() {
    let mut progress = Progress::new(at(0), LogIndex(10));
    assert!(progress.is_short_log_news(LogIndex(5)));
    assert!(!progress.is_short_log_news(LogIndex(10)));
    progress.on_ack(at(0), LogIndex(7));
    assert!(!progress.is_short_log_news(LogIndex(5)));
    // Streaming: an end short of what was sent means an append went
    // missing (overtaken or lost); the end it acknowledged does not.
    progress.on_entries_sent(at(1), LogIndex(12), 1);
    assert!(progress.is_short_log_news(LogIndex(8)));
    assert!(progress.is_short_log_news(LogIndex(12)));
    assert!(!progress.is_short_log_news(LogIndex(7)));
    assert!(!progress.is_short_log_news(LogIndex(13)));
    progress.become_snapshot(at(2), LogIndex(20));
    assert!(!progress.is_short_log_news(LogIndex(8)));
}

#[test]
fn a_gap_in_a_stream_is_resent_once_until_acknowledged() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    for last in [2, 4, 6] {
        progress.on_entries_sent(at(1), LogIndex(last), 1);
    }
    // The append of 1..=2 went missing: every later one is refused.
    assert_eq!(progress.gap_to_resend(LogIndex(1)), Some(LogIndex(6)));
    progress.on_gap_resent(LogIndex(6));
    assert_eq!(progress.gap_to_resend(LogIndex(1)), None);
    progress.on_ack(at(2), LogIndex(2));
    assert!(progress.is_short_log_news(LogIndex(3)));
    assert_eq!(progress.gap_to_resend(LogIndex(3)), None);
    progress.check_invariants(at(2), LogIndex(6), 4, usize::MAX);
    // Once the resend is acknowledged, a new gap is resent again.
    progress.on_ack(at(3), LogIndex(6));
    progress.on_entries_sent(at(4), LogIndex(9), 1);
    assert_eq!(progress.gap_to_resend(LogIndex(7)), Some(LogIndex(9)));
    progress.check_invariants(at(4), LogIndex(9), 4, usize::MAX);
}

#[test]
fn a_snapshot_ends_the_resent_gap_of_the_stream_it_replaces() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    for last in [2, 4, 6] {
        progress.on_entries_sent(at(1), LogIndex(last), 1);
    }
    progress.on_gap_resent(LogIndex(6));
    // The log was compacted past what the stream needs: the snapshot
    // through 20 replaces the stream, and its answer starts a new one
    // from 21, with no gap of the old stream still pending.
    progress.become_snapshot(at(2), LogIndex(20));
    progress.check_invariants(at(2), LogIndex(20), 4, usize::MAX);
    progress.on_ack(at(3), LogIndex(20));
    progress.check_invariants(at(3), LogIndex(20), 4, usize::MAX);
    progress.on_entries_sent(at(4), LogIndex(23), 1);
    assert_eq!(progress.gap_to_resend(LogIndex(21)), Some(LogIndex(23)));
}

#[test]
fn commit_news_waits_for_the_last_answer_and_is_sent_once() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    progress.on_entries_sent(at(1), LogIndex(2), 1);
    progress.on_entries_sent(at(1), LogIndex(4), 1);
    progress.on_ack(at(2), LogIndex(2));
    // An append is still out: its answer brings the chance to tell.
    assert_eq!(progress.commit_news_at(LogIndex(2), HEARTBEAT), None);
    progress.on_ack(at(3), LogIndex(4));
    assert_eq!(
        progress.commit_news_at(LogIndex(4), HEARTBEAT),
        Some(Instant::ZERO)
    );
    // Only what the follower holds can be news to it.
    progress.on_commit_sent(LogIndex(3));
    assert!(progress.commit_news_at(LogIndex(9), HEARTBEAT).is_some());
    progress.on_commit_sent(LogIndex(4));
    assert_eq!(progress.commit_news_at(LogIndex(9), HEARTBEAT), None);
    // Further news waits for the interval since the last to end.
    progress.on_commit_news_sent(at(5));
    progress.on_entries_sent(at(6), LogIndex(5), 1);
    progress.on_ack(at(7), LogIndex(5));
    assert_eq!(
        progress.commit_news_at(LogIndex(5), HEARTBEAT),
        Some(at(55))
    );
}

#[test]
fn only_the_snapshot_s_answer_ends_the_wait_for_it() {
    let mut progress = Progress::new(at(0), LogIndex(3));
    progress.become_snapshot(at(1), LogIndex(20));
    assert!(!progress.may_send_entries(4, usize::MAX));
    assert!(!progress.is_answer_current(true, LogIndex(19)));
    assert!(!progress.is_answer_current(false, LogIndex(25)));
    assert!(progress.is_answer_current(true, LogIndex(20)));
    progress.on_ack(at(2), LogIndex(20));
    assert_eq!(progress.next_index(), LogIndex(21));
}

#[test]
fn the_heartbeat_tick_restarts_stalled_streams_but_not_snapshots() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    progress.on_entries_sent(at(10), LogIndex(5), 1);
    progress.on_heartbeat_tick(at(40), LogIndex(5), HEARTBEAT);
    assert_eq!(progress.state(), ReplicationState::Replicate);
    assert_eq!(progress.in_flight(), (1, 1));
    progress.on_heartbeat_tick(at(60), LogIndex(5), HEARTBEAT);
    assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
    assert_eq!(progress.next_index(), LogIndex(1));

    // A large snapshot may take long: time alone never resends it.
    progress.become_snapshot(at(100), LogIndex(9));
    progress.on_heartbeat_tick(at(10_000), LogIndex(9), HEARTBEAT);
    assert!(matches!(
        progress.state(),
        ReplicationState::Snapshot { .. }
    ));
    assert_eq!(progress.heartbeat_prev_index(LogIndex(4)), LogIndex(9));
}

#[test]
fn a_snapshot_is_presumed_lost_only_on_an_answer_a_heartbeat_after_it_left() {
    let mut progress = Progress::new(at(0), LogIndex(3));
    progress.become_snapshot(at(100), LogIndex(9));
    // A heartbeat within the interval cannot tell; one after it can,
    // and the leader needs to send no other.
    assert_eq!(progress.snapshot_probe_at(HEARTBEAT), Some(at(150)));
    progress.on_heartbeat_sent(at(120), HEARTBEAT);
    assert_eq!(progress.snapshot_probe_at(HEARTBEAT), Some(at(150)));
    progress.on_heartbeat_sent(at(150), HEARTBEAT);
    assert_eq!(progress.snapshot_probe_at(HEARTBEAT), None);
    assert!(!progress.is_snapshot_overdue(at(149), HEARTBEAT));
    assert!(progress.is_snapshot_overdue(at(150), HEARTBEAT));
    progress.on_snapshot_lost();
    assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
    assert_eq!(progress.next_index(), LogIndex(1));
    assert!(!progress.is_snapshot_overdue(at(1_000), HEARTBEAT));
}

#[test]
fn an_unreachable_follower_is_probed_again_from_the_next_heartbeat() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(3));
    progress.on_entries_sent(at(1), LogIndex(8), 1);
    progress.on_unreachable();
    assert_eq!(progress.state(), ReplicationState::Probe { paused: true });
    assert_eq!(progress.next_index(), LogIndex(4));
    assert!(!progress.may_send_entries(4, usize::MAX));
    progress.on_heartbeat_tick(at(50), LogIndex(8), HEARTBEAT);
    assert!(progress.may_send_entries(4, usize::MAX));

    progress.become_snapshot(at(60), LogIndex(20));
    progress.on_unreachable();
    assert_eq!(progress.state(), ReplicationState::Probe { paused: true });
    assert_eq!(progress.next_index(), LogIndex(4));
    // A snapshot waits until the follower answers.
    assert!(!progress.may_send_snapshot());
    assert!(progress.record_contact(at(70)));
    assert!(progress.may_send_snapshot());
    assert!(!progress.record_contact(at(71)));
}

#[test]
fn one_answer_frees_every_append_it_covers() {
    // A follower that acknowledges only what its disk made durable may
    // answer several appends with one.
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    for last in [2, 4, 6] {
        progress.on_entries_sent(at(1), LogIndex(last), 100);
    }
    assert!(!progress.may_send_entries(3, usize::MAX));
    progress.on_ack(at(2), LogIndex(6));
    assert_eq!(progress.in_flight(), (0, 0));
    assert!(progress.may_send_entries(3, usize::MAX));
}

#[test]
fn a_stream_stops_at_the_byte_limit_but_always_sends_one_append() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.on_ack(at(0), LogIndex(0));
    assert!(progress.may_send_entries(64, 1_000));
    progress.on_entries_sent(at(1), LogIndex(1), 5_000);
    assert!(!progress.may_send_entries(64, 1_000), "5,000 bytes out");
    progress.on_ack(at(2), LogIndex(1));
    progress.on_entries_sent(at(3), LogIndex(2), 600);
    assert!(progress.may_send_entries(64, 1_000));
    progress.on_entries_sent(at(3), LogIndex(3), 600);
    assert!(!progress.may_send_entries(64, 1_000));
    assert_eq!(progress.in_flight(), (2, 1_200));
    // Probing again forgets the stream's appends.
    progress.on_reject(LogIndex(2), LogIndex(3));
    assert_eq!(progress.in_flight(), (0, 0));
    progress.check_invariants(at(3), LogIndex(3), 64, usize::MAX);
}

#[test]
fn compaction_waits_for_a_follower_sent_a_snapshot_or_streaming_in_contact() {
    let window = Duration::from_millis(450);
    let mut progress = Progress::new(at(0), LogIndex(6));
    // Probed: what it needs is not known.
    assert_eq!(progress.compaction_hold(at(0), window), None);
    progress.on_ack(at(0), LogIndex(4));
    assert_eq!(progress.compaction_hold(at(449), window), Some(LogIndex(4)));
    // Silent for the window: not waited for.
    assert_eq!(progress.compaction_hold(at(450), window), None);
    // Sent a snapshot: waited for, however long it takes to install.
    progress.become_snapshot(at(450), LogIndex(30));
    assert_eq!(
        progress.compaction_hold(at(10_000), window),
        Some(LogIndex(30))
    );
    progress.check_invariants(at(10_000), LogIndex(40), 4, usize::MAX);
}

#[test]
fn the_snapshot_sent_is_remembered_until_it_is_held_or_the_follower_unreachable() {
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.become_snapshot(at(0), LogIndex(10));
    // Presumed lost, the follower is probed again: still the one sent.
    progress.on_snapshot_lost();
    assert_eq!(progress.snapshot_sent(), Some(LogIndex(10)));
    progress.check_invariants(at(1), LogIndex(20), 4, usize::MAX);
    // An answer short of it leaves it remembered.
    progress.on_ack(at(2), LogIndex(3));
    assert_eq!(progress.snapshot_sent(), Some(LogIndex(10)));
    progress.on_ack(at(3), LogIndex(10));
    assert_eq!(progress.snapshot_sent(), None);
    progress.check_invariants(at(3), LogIndex(20), 4, usize::MAX);
    // The transfer may die with the connection: forgotten.
    let mut progress = Progress::new(at(0), LogIndex(1));
    progress.become_snapshot(at(0), LogIndex(10));
    progress.on_unreachable();
    assert_eq!(progress.snapshot_sent(), None);
    progress.check_invariants(at(1), LogIndex(20), 4, usize::MAX);
}

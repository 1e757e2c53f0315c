//! Snapshots and log compaction (§7): one core at a time — taking a
//! snapshot, a leader sending one to a follower that needs compacted
//! entries, a follower installing one, a restart from one — and then the
//! driver, which takes snapshots of the state machine, compacts its store,
//! restores a snapshot when a node starts again, brings a follower that
//! missed compacted entries up to date with the leader's snapshot, and
//! encodes a slow snapshot off the node's task.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kontiki::{
    Config, HandleError, HardState, Input, InstallSnapshot, LogIndex, Membership, Message, NodeId,
    Output, Persist, PersistedState, Snapshot, StartError, Term,
};
use kontiki_driver::{
    Handle, LocalNetwork, MemoryStorage, NodeConfig, SnapshotWriter, StateMachine,
};
use kontiki_tests::live::{
    agreed_leader, all_applied, cluster_configs, free_addresses, propose_all, wait_for, Recorder,
};
use kontiki_tests::probe::{append, append_response, plain_config, Probe};
use kontiki_tokio::TokioRuntime;

fn config(compaction_lag: u64) -> Config {
    Config {
        compaction_lag,
        ..plain_config()
    }
}

/// A snapshot of the probes' three-voter cluster.
fn snapshot(index: u64, term: u64, data: &'static [u8]) -> Snapshot {
    Snapshot {
        index: LogIndex(index),
        term: Term(term),
        membership: Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)])
            .expect("three voters"),
        data: Bytes::from_static(data),
    }
}

fn install(term: u64, snapshot: Snapshot) -> Message {
    Message::InstallSnapshot(InstallSnapshot {
        term: Term(term),
        snapshot,
    })
}

/// What the latest input sent to node `peer`.
fn sent_to(probe: &Probe, peer: u64) -> Vec<(NodeId, Message)> {
    let mut sent = probe.sent();
    sent.retain(|(to, _)| *to == NodeId(peer));
    sent
}

fn take_snapshot(probe: &mut Probe, index: u64) -> Result<(), HandleError> {
    probe
        .input(Input::SnapshotTaken {
            index: LogIndex(index),
            data: Bytes::from_static(b"state"),
        })
        .map(drop)
}

/// A follower of node 2 in term 1 that holds and has applied entries
/// `1..=count`.
fn follower_with_applied(count: u64, compaction_lag: u64) -> Probe {
    let mut probe = Probe::new(3, config(compaction_lag));
    let terms = vec![1; count as usize];
    probe.receive(2, append(1, 0, 0, count, &terms)).unwrap();
    assert_eq!(probe.node.applied_index(), LogIndex(count));
    probe
}

#[test]
fn a_snapshot_is_persisted_and_compacts_the_log_but_the_lag() {
    let mut probe = follower_with_applied(10, 3);
    take_snapshot(&mut probe, 8).unwrap();
    assert_eq!(
        probe.outputs,
        vec![Output::Persist(Persist::Snapshot(snapshot(8, 1, b"state")))]
    );
    let first = probe.node.entries().first().map(|e| e.index);
    assert_eq!(first, Some(LogIndex(6)), "entries 6..=8 kept as the lag");
    assert_eq!(
        probe.durable.entries.first().map(|e| e.index),
        Some(LogIndex(9))
    );
}

#[test]
fn a_snapshot_must_cover_applied_entries_and_be_newer() {
    let mut probe = follower_with_applied(5, 0);
    assert_eq!(
        take_snapshot(&mut probe, 6),
        Err(HandleError::SnapshotBeyondApplied {
            applied_index: LogIndex(5)
        })
    );
    take_snapshot(&mut probe, 4).unwrap();
    assert_eq!(
        take_snapshot(&mut probe, 4),
        Err(HandleError::SnapshotNotNewer {
            snapshot_index: LogIndex(4)
        })
    );
    assert!(
        probe.outputs.is_empty(),
        "a refused snapshot changes nothing"
    );
}

/// A leader of term 1 with entries 1..=10 committed on a majority (node
/// 2), snapshotted through 10 with nothing kept; node 3 never answered.
fn leader_with_compacted_log() -> Probe {
    let mut probe = Probe::new(3, config(0));
    probe.elect();
    propose(&mut probe, 10);
    probe.receive(2, append_response(1, true, 10, 0)).unwrap();
    assert_eq!(probe.node.applied_index(), LogIndex(10));
    take_snapshot(&mut probe, 10).unwrap();
    assert!(probe.node.entries().is_empty());
    probe
}

/// The latest input sent node 3 the leader's snapshot through `index`,
/// and nothing else.
fn assert_snapshot_sent_to_3(probe: &Probe, index: u64) {
    assert_eq!(
        sent_to(probe, 3),
        vec![(NodeId(3), install(1, snapshot(index, 1, b"state")))]
    );
}

fn snapshots_sent(probe: &Probe) -> usize {
    probe
        .sent()
        .iter()
        .filter(|(_, message)| matches!(message, Message::InstallSnapshot(_)))
        .count()
}

#[test]
fn a_snapshot_is_sent_again_once_an_answer_a_heartbeat_later_shows_it_lost() {
    let mut probe = leader_with_compacted_log();
    // Node 3's probe from index 1 went unanswered; at the next heartbeat
    // it is probed again, and what it needs is gone.
    probe.fire_timer();
    assert_snapshot_sent_to_3(&probe, 10);
    let sent_at = probe.now;
    // An answer sent before the snapshot arrived says nothing about it.
    probe.advance(Duration::from_millis(5));
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_eq!(snapshots_sent(&probe), 0);
    // Time alone never sends it again (it may be large and on its way):
    // heartbeats go on, naming the snapshot's last entry.
    probe.fire_timer();
    assert_eq!(snapshots_sent(&probe), 0);
    let heartbeat = sent_to(&probe, 3);
    assert!(
        matches!(&heartbeat[..], [(_, Message::AppendEntries(a))] if a.prev_log_index == LogIndex(10) && a.entries.is_empty()),
        "{heartbeat:?}"
    );
    // Its answer, a heartbeat interval after the snapshot left, says the
    // follower still lacks it: the snapshot is sent again at once.
    probe.now = sent_at + Duration::from_millis(50);
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_snapshot_sent_to_3(&probe, 10);
    // The answer moves the follower to streaming past the snapshot.
    probe.receive(3, append_response(1, true, 10, 0)).unwrap();
    probe
        .input(Input::Command(kontiki::Command::Propose(
            Bytes::from_static(b"d"),
        )))
        .unwrap();
    let appends = sent_to(&probe, 3);
    assert!(
        matches!(&appends[..], [(_, Message::AppendEntries(a))] if a.prev_log_index == LogIndex(10) && a.prev_log_term == Term(1)),
        "{appends:?}"
    );
}

// Whatever the phase of the heartbeats, a snapshot sent between two of
// them is checked on one heartbeat interval after it left, by a heartbeat
// to its follower alone, so a lost one costs an interval and a round trip.
#[test]
fn a_snapshot_sent_between_heartbeats_is_checked_on_one_interval_later() {
    let mut probe = leader_with_compacted_log();
    probe.fire_timer();
    let first_sent_at = probe.now;
    assert_eq!(snapshots_sent(&probe), 1);
    probe.fire_timer();
    assert_eq!(probe.now, first_sent_at + Duration::from_millis(50));
    // An answer 10 ms after that heartbeat shows the snapshot lost: it
    // goes again, off the heartbeats' beat.
    probe.now = probe.now + Duration::from_millis(10);
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_eq!(snapshots_sent(&probe), 1);
    let resent_at = probe.now;
    // The next heartbeat, 40 ms later, is too early to tell; 10 ms after
    // it, one interval after the resend, node 3 alone is asked.
    probe.fire_timer();
    assert_eq!(probe.now, resent_at + Duration::from_millis(40));
    probe.fire_timer();
    assert_eq!(probe.now, resent_at + Duration::from_millis(50));
    let asked = probe.sent();
    assert!(
        matches!(&asked[..], [(NodeId(3), Message::AppendEntries(a))] if a.entries.is_empty()),
        "{asked:?}"
    );
    // Its answer, a round trip later, sends the snapshot a third time.
    probe.now = probe.now + Duration::from_millis(1);
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_eq!(snapshots_sent(&probe), 1);
}

#[test]
fn a_lost_acknowledgement_of_a_snapshot_is_made_good_by_the_next_heartbeat() {
    let mut probe = leader_with_compacted_log();
    probe.fire_timer();
    assert_eq!(snapshots_sent(&probe), 1);
    // The follower installed it, but its answer was lost. It answers the
    // next heartbeat (naming entry 10) with success: no second snapshot.
    probe.fire_timer();
    probe.receive(3, append_response(1, true, 10, 0)).unwrap();
    assert_eq!(snapshots_sent(&probe), 0);
    probe
        .input(Input::Command(kontiki::Command::Propose(
            Bytes::from_static(b"d"),
        )))
        .unwrap();
    assert!(
        matches!(&sent_to(&probe, 3)[..], [(_, Message::AppendEntries(a))] if a.prev_log_index == LogIndex(10))
    );
}

#[test]
fn a_snapshot_the_driver_could_not_deliver_goes_again_once_the_follower_answers() {
    let mut probe = leader_with_compacted_log();
    probe.fire_timer();
    assert_eq!(snapshots_sent(&probe), 1);
    probe.input(Input::Unreachable { peer: NodeId(3) }).unwrap();
    assert!(probe.sent().is_empty(), "nothing is resent at once");
    // While the follower is unreachable it gets heartbeats, not the whole
    // snapshot every heartbeat.
    for _ in 0..3 {
        probe.fire_timer();
        assert_eq!(snapshots_sent(&probe), 0);
        assert!(
            matches!(&sent_to(&probe, 3)[..], [(_, Message::AppendEntries(a))] if a.entries.is_empty())
        );
    }
    // Its first answer shows it back: the snapshot goes at once.
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_snapshot_sent_to_3(&probe, 10);
}

fn propose(probe: &mut Probe, count: usize) {
    for _ in 0..count {
        probe
            .input(Input::Command(kontiki::Command::Propose(
                Bytes::from_static(b"c"),
            )))
            .unwrap();
    }
}

/// Entries 11..=20 proposed, committed with node 2, and snapshotted.
fn snapshot_ten_more_through_20(probe: &mut Probe) {
    propose(probe, 10);
    probe.receive(2, append_response(1, true, 20, 0)).unwrap();
    take_snapshot(probe, 20).unwrap();
}

fn first_entry(probe: &Probe) -> Option<LogIndex> {
    probe.node.entries().first().map(|entry| entry.index)
}

// A follower catching up from the log when the leader takes a snapshot
// goes on from the log instead of needing that snapshot; but the log
// never holds what the previous snapshot covered, so a follower that
// stays behind costs at most one snapshot interval of entries.
#[test]
fn a_leader_keeps_the_entries_a_follower_catching_up_needs_back_to_its_previous_snapshot() {
    let mut probe = Probe::new(3, config(0));
    probe.elect();
    propose(&mut probe, 10);
    probe.receive(2, append_response(1, true, 10, 0)).unwrap();
    probe.receive(3, append_response(1, true, 4, 0)).unwrap();
    take_snapshot(&mut probe, 10).unwrap();
    assert_eq!(first_entry(&probe), Some(LogIndex(5)), "node 3 needs 5..");
    // Node 3 missed an append: it is sent entries, not the snapshot.
    probe.receive(3, append_response(1, false, 5, 0)).unwrap();
    let resent = sent_to(&probe, 3);
    assert!(
        matches!(&resent[..], [(_, Message::AppendEntries(a))] if a.prev_log_index == LogIndex(4) && !a.entries.is_empty()),
        "{resent:?}"
    );
    // Still at 4 at the next snapshot: the log keeps nothing the first
    // snapshot covered, and node 3 now needs the second.
    snapshot_ten_more_through_20(&mut probe);
    assert_eq!(first_entry(&probe), Some(LogIndex(11)));
    // A heartbeat interval without progress: probed again, it gets the
    // snapshot.
    for _ in 0..4 {
        probe.fire_timer();
        if !sent_to(&probe, 3).is_empty() {
            break;
        }
    }
    assert_snapshot_sent_to_3(&probe, 20);
}

// A follower silent for the leader's check-quorum window is not waited for.
#[test]
fn a_leader_does_not_keep_entries_for_a_silent_follower() {
    let mut probe = Probe::new(3, config(0));
    probe.elect();
    propose(&mut probe, 10);
    probe.receive(3, append_response(1, true, 4, 0)).unwrap();
    probe.advance(Duration::from_millis(450));
    probe.receive(2, append_response(1, true, 10, 0)).unwrap();
    take_snapshot(&mut probe, 10).unwrap();
    assert_eq!(first_entry(&probe), None, "everything compacted");
}

// A leader takes a newer snapshot while a follower is still being sent
// the previous one (a large snapshot streams for seconds): the follower
// is sent the same one again when it seems lost, and goes on from the log
// after it, instead of starting over with the newer snapshot.
#[test]
fn a_follower_being_sent_a_snapshot_gets_the_same_one_again_after_a_newer_is_taken() {
    let mut probe = leader_with_compacted_log();
    probe.fire_timer();
    let sent_at = probe.now;
    assert_snapshot_sent_to_3(&probe, 10);
    snapshot_ten_more_through_20(&mut probe);
    assert_eq!(first_entry(&probe), Some(LogIndex(11)), "kept for node 3");
    // An answer an interval later shows the follower still lacks it.
    probe.now = sent_at + Duration::from_millis(50);
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_snapshot_sent_to_3(&probe, 10);
    // Installed: it streams from the log after it.
    probe.receive(3, append_response(1, true, 10, 0)).unwrap();
    let appends = sent_to(&probe, 3);
    assert!(
        matches!(&appends[..], [(_, Message::AppendEntries(a))] if a.prev_log_index == LogIndex(10) && a.entries.len() == 10),
        "{appends:?}"
    );
}

// Should the transfer die with the connection, the follower gets the
// newest snapshot: the driver may no longer have the one it was sent.
#[test]
fn a_follower_reported_unreachable_is_sent_the_newest_snapshot() {
    let mut probe = leader_with_compacted_log();
    probe.fire_timer();
    assert_eq!(snapshots_sent(&probe), 1);
    snapshot_ten_more_through_20(&mut probe);
    probe.input(Input::Unreachable { peer: NodeId(3) }).unwrap();
    probe.fire_timer();
    probe.receive(3, append_response(1, false, 1, 0)).unwrap();
    assert_snapshot_sent_to_3(&probe, 20);
}

#[test]
fn a_follower_installs_a_snapshot_and_drops_a_conflicting_log() {
    let mut probe = Probe::new(3, config(0));
    // Entries 1..=3 of term 1, only the first committed.
    probe.receive(2, append(1, 0, 0, 1, &[1, 1, 1])).unwrap();
    // The leader of term 2 committed another history through 5.
    probe
        .receive(3, install(2, snapshot(5, 2, b"five")))
        .unwrap();
    let expected = vec![
        Output::Persist(Persist::HardState(HardState {
            term: Term(2),
            voted_for: None,
            log_lost_at_term: None,
        })),
        Output::Persist(Persist::Snapshot(snapshot(5, 2, b"five"))),
        Output::InstallSnapshot(snapshot(5, 2, b"five")),
    ];
    let persists_and_restores: Vec<_> = probe
        .outputs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Persist(Persist::HardState(_))
                    | Output::Persist(Persist::Snapshot(_))
                    | Output::InstallSnapshot(_)
            )
        })
        .cloned()
        .collect();
    assert_eq!(persists_and_restores, expected);
    assert_eq!(
        probe.sent(),
        vec![(NodeId(3), append_response(2, true, 5, 0))]
    );
    assert_eq!(probe.node.commit_index(), LogIndex(5));
    assert_eq!(probe.node.applied_index(), LogIndex(5));
    assert!(probe.node.entries().is_empty());
    assert!(probe.durable.entries.is_empty());
    // The log goes on after the snapshot.
    probe.receive(3, append(2, 5, 2, 6, &[2])).unwrap();
    assert_eq!(probe.applied.last().map(|e| e.index), Some(LogIndex(6)));
}

#[test]
fn a_follower_keeps_the_entries_after_a_snapshot_its_log_agrees_with() {
    let mut probe = Probe::new(3, config(0));
    probe.receive(2, append(1, 0, 0, 0, &[1, 1, 1, 1])).unwrap();
    probe
        .receive(2, install(1, snapshot(2, 1, b"two")))
        .unwrap();
    assert!(!probe
        .outputs
        .iter()
        .any(|o| matches!(o, Output::Persist(Persist::TruncateLog { .. }))));
    let kept: Vec<_> = probe.node.entries().iter().map(|e| e.index).collect();
    assert_eq!(kept, vec![LogIndex(3), LogIndex(4)]);
    // A commit index carried later applies the kept entries.
    probe.receive(2, append(1, 4, 1, 4, &[])).unwrap();
    assert_eq!(probe.node.applied_index(), LogIndex(4));
}

#[test]
fn a_snapshot_the_follower_already_committed_is_acknowledged_only() {
    let mut probe = follower_with_applied(6, 0);
    probe
        .receive(2, install(1, snapshot(4, 1, b"old")))
        .unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), append_response(1, true, 4, 0))]
    );
    assert!(
        !probe.outputs.iter().any(|o| matches!(
            o,
            Output::Persist(Persist::Snapshot(_)) | Output::InstallSnapshot(_)
        )),
        "{:?}",
        probe.outputs
    );
    assert_eq!(probe.node.applied_index(), LogIndex(6));
}

#[test]
fn an_append_reaching_below_the_snapshot_is_matched_past_it() {
    let mut probe = follower_with_applied(6, 0);
    take_snapshot(&mut probe, 6).unwrap();
    // The leader still thinks the follower needs entries from 4 on.
    probe.receive(2, append(1, 3, 1, 7, &[1, 1, 1, 1])).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), append_response(1, true, 7, 0))]
    );
    assert_eq!(probe.node.last_log_index(), LogIndex(7));
    assert_eq!(probe.node.applied_index(), LogIndex(7));
}

/// Found by the `node` fuzz target: an append reaching below the snapshot
/// whose entry at the snapshot's index has another term contradicts a
/// committed entry, and is dropped before it changes anything.
#[test]
fn an_append_contradicting_the_snapshot_is_dropped() {
    let mut probe = Probe::new(3, config(0));
    probe
        .receive(2, append(2, 0, 0, 6, &[1, 1, 1, 1, 2, 2]))
        .unwrap();
    take_snapshot(&mut probe, 6).unwrap();
    // A leader of term 3 whose entries 5..=7 are all of term 1: entry 6
    // is committed here with term 2.
    let contradicting = probe.receive(3, append(3, 4, 1, 7, &[1, 1, 1]));
    assert!(
        matches!(contradicting, Err(HandleError::Dropped(_))),
        "{contradicting:?}"
    );
    assert_eq!(probe.node.last_log_index(), LogIndex(6));
}

#[test]
fn a_restarted_node_restores_its_snapshot_first_and_applies_after_it() {
    let mut probe = follower_with_applied(6, 0);
    take_snapshot(&mut probe, 4).unwrap();
    probe.crash_and_restart();
    assert_eq!(
        probe.outputs.first(),
        Some(&Output::RestoreSnapshot(snapshot(4, 1, b"state")))
    );
    assert_eq!(probe.node.applied_index(), LogIndex(4));
    assert_eq!(probe.node.last_log_index(), LogIndex(6));
    // Entries 5 and 6 apply once the leader's commit index arrives.
    probe.receive(2, append(1, 6, 1, 6, &[])).unwrap();
    let applied: Vec<_> = probe.applied.iter().map(|e| e.index.get()).collect();
    assert!(applied.ends_with(&[5, 6]), "{applied:?}");
}

#[test]
fn a_node_refuses_to_start_on_a_snapshot_that_cannot_be() {
    let start = |persisted: PersistedState| {
        kontiki::Node::new(
            NodeId(1),
            &[NodeId(1), NodeId(2), NodeId(3)],
            Config::default(),
            <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::from_seed([0; 32]),
            persisted,
            kontiki::Instant::ZERO,
        )
        .map(drop)
    };
    let hard_state = HardState {
        term: Term(2),
        voted_for: None,
        log_lost_at_term: None,
    };
    assert_eq!(
        start(PersistedState {
            hard_state,
            snapshot: Some(snapshot(0, 1, b"")),
            entries: Vec::new(),
        }),
        Err(StartError::InvalidSnapshot)
    );
    assert_eq!(
        start(PersistedState {
            hard_state,
            snapshot: Some(snapshot(3, 3, b"")),
            entries: Vec::new(),
        }),
        Err(StartError::LogTermAboveCurrentTerm)
    );
    assert_eq!(
        start(PersistedState {
            hard_state,
            snapshot: Some(snapshot(3, 2, b"")),
            entries: vec![kontiki::Entry::command(LogIndex(5), Term(2), vec![])],
        }),
        Err(StartError::Log(kontiki::LogError::NotContiguous {
            expected: LogIndex(4),
            found: LogIndex(5)
        }))
    );
}

#[test]
fn a_snapshot_at_index_zero_is_dropped_as_invalid() {
    let mut probe = Probe::new(3, config(0));
    let refused = probe.receive(2, install(1, snapshot(0, 0, b"")));
    assert!(
        matches!(refused, Err(HandleError::Dropped(_))),
        "{refused:?}"
    );
}

/// Found by the `node` fuzz target: a snapshot near `u64::MAX` made the
/// log's base so high that an append after it overflowed its index
/// arithmetic. No log reaches `u64::MAX`, so a message that puts an entry
/// or a snapshot there is refused, and one just below it is harmless.
#[test]
fn indices_at_the_top_of_the_range_are_refused_or_harmless() {
    let mut probe = Probe::new(3, config(0));
    let top = u64::MAX;
    assert_eq!(
        probe.receive(2, install(1, snapshot(top, 1, b""))),
        Err(HandleError::Dropped(kontiki::DropReason::Invalid(
            kontiki::InvalidMessage::IndexTooLarge
        )))
    );
    probe
        .receive(2, install(1, snapshot(top - 2, 1, b"")))
        .unwrap();
    assert_eq!(
        probe.receive(2, append(1, top - 2, 1, top, &[1, 1])),
        Err(HandleError::Dropped(kontiki::DropReason::Invalid(
            kontiki::InvalidMessage::IndexTooLarge
        )))
    );
    probe
        .receive(2, append(1, top - 3, 1, top, &[1, 1]))
        .unwrap();
    assert_eq!(probe.node.last_log_index(), LogIndex(top - 1));
    assert_eq!(probe.node.applied_index(), LogIndex(top - 1));
}

/// Applied entries between the driver's snapshots in the driver test.
const SNAPSHOT_INTERVAL: u64 = 50;

/// Three nodes on a [`LocalNetwork`] that snapshot every
/// [`SNAPSHOT_INTERVAL`] entries, each with a store that outlives its
/// restarts.
struct Cluster {
    runtime: TokioRuntime,
    network: LocalNetwork,
    configs: Vec<NodeConfig>,
    stores: Vec<MemoryStorage>,
}

impl Cluster {
    fn new(cluster_id: &str) -> Cluster {
        let mut configs = cluster_configs(&free_addresses(3), cluster_id);
        for config in &mut configs {
            config.snapshot_interval = SNAPSHOT_INTERVAL;
            config.raft.compaction_lag = 0;
        }
        Cluster {
            runtime: TokioRuntime::current(),
            network: LocalNetwork::new(),
            stores: configs.iter().map(|_| MemoryStorage::new()).collect(),
            configs,
        }
    }

    /// Starts (or restarts) the node at `position` on its store.
    async fn start<M: StateMachine>(&self, position: usize, machine: M) -> Handle<M> {
        kontiki_driver::start_local(
            self.runtime.clone(),
            &self.network,
            self.configs[position].clone(),
            self.stores[position].clone(),
            machine,
        )
        .await
        .expect("the node starts")
    }

    /// Starts every node, each with a fresh state machine, which is
    /// returned beside it (a clone sharing its state).
    async fn start_all<M: StateMachine + Clone + Default>(&self) -> (Vec<M>, Vec<Handle<M>>) {
        let machines: Vec<M> = self.configs.iter().map(|_| M::default()).collect();
        let mut nodes = Vec::new();
        for (position, machine) in machines.iter().enumerate() {
            nodes.push(self.start(position, machine.clone()).await);
        }
        (machines, nodes)
    }

    /// The index of the snapshot in the store at `position`, if any.
    fn snapshot_index(&self, position: usize) -> Option<LogIndex> {
        self.stores[position].contents().snapshot.map(|s| s.index)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_back_after_compaction_catches_up_from_the_snapshot() {
    let cluster = Cluster::new("driver-snapshots");
    let runtime = cluster.runtime.clone();
    let (recorders, mut nodes) = cluster.start_all::<Recorder>().await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let follower = (leader + 1) % 3;
    nodes[follower].shutdown().await;

    let commands = (0..300u32).map(|n| n.to_le_bytes().to_vec());
    let indices = propose_all(&nodes[leader], commands).await.unwrap();
    let last = *indices.iter().max().unwrap();
    // The leader snapshots once it applied SNAPSHOT_INTERVAL entries past
    // its last snapshot, in the round that answered the last proposers:
    // wait for that round to finish.
    let leader_snapshot = || cluster.snapshot_index(leader);
    let floor = Some(LogIndex(last.get() - SNAPSHOT_INTERVAL));
    let compacted = wait_for(
        &runtime,
        "the leader snapshots within SNAPSHOT_INTERVAL of its last entry",
        || (leader_snapshot() >= floor).then_some(()),
    )
    .await;
    let compacted_to = leader_snapshot();
    assert!(
        compacted.is_ok(),
        "the leader snapshotted every {SNAPSHOT_INTERVAL} entries: {compacted_to:?}"
    );
    let leader_store = cluster.stores[leader].contents();
    assert!(
        leader_store.entries.len() < 2 * SNAPSHOT_INTERVAL as usize,
        "its store dropped what the snapshot covers: {} entries left",
        leader_store.entries.len()
    );

    // The follower's store ends long before the leader's log begins.
    let rejoined = Recorder::default();
    nodes[follower] = cluster.start(follower, rejoined.clone()).await;
    all_applied(&runtime, &nodes, last).await.unwrap();
    let installed = cluster.snapshot_index(follower);
    assert!(
        installed >= compacted_to,
        "the follower took the leader's snapshot: {installed:?}"
    );
    let reported = nodes[follower].status().snapshot_index;
    assert!(Some(reported) >= compacted_to, "status reports {reported}");
    assert_eq!(
        rejoined.applied(),
        recorders[leader].applied(),
        "restored and applied, the follower holds the leader's state"
    );

    // The leader, restarted on its store, restores its snapshot first.
    nodes[leader].shutdown().await;
    let restarted = Recorder::default();
    nodes[leader] = cluster.start(leader, restarted.clone()).await;
    all_applied(&runtime, &nodes, last).await.unwrap();
    assert_eq!(restarted.applied(), recorders[leader].applied());
    for node in &nodes {
        node.shutdown().await;
    }
}

/// How long [`SlowToEncode`] takes to encode a snapshot.
const ENCODING: Duration = Duration::from_millis(1000);

/// What a [`Wrapped`] recorder does around writing its snapshot.
trait AroundSnapshot: Clone + Default + Send + 'static {
    fn around(write: SnapshotWriter) -> SnapshotWriter;
}

/// A [`Recorder`] whose snapshot writes go through `W`.
#[derive(Clone, Default)]
struct Wrapped<W>(Recorder, std::marker::PhantomData<W>);

impl<W: AroundSnapshot> StateMachine for Wrapped<W> {
    type Output = LogIndex;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> LogIndex {
        self.0.apply(index, command)
    }

    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        Some(W::around(self.0.snapshot()?))
    }

    fn restore(&mut self, index: LogIndex, reader: &mut dyn std::io::Read) -> std::io::Result<()> {
        self.0.restore(index, reader)
    }
}

/// Snapshots take [`ENCODING`] to write: the state is taken when the
/// driver asks, and the wait happens in the work handed back.
#[derive(Clone, Default)]
struct Slow;

impl AroundSnapshot for Slow {
    fn around(write: SnapshotWriter) -> SnapshotWriter {
        Box::new(move |out| {
            std::thread::sleep(ENCODING);
            write(out)
        })
    }
}

type SlowToEncode = Wrapped<Slow>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_snapshot_is_encoded_while_the_node_goes_on_committing() {
    let cluster = Cluster::new("background-snapshots");
    let runtime = cluster.runtime.clone();
    let (recorders, mut nodes) = cluster.start_all::<SlowToEncode>().await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let leader_snapshot = || cluster.snapshot_index(leader);

    // One writer, one write at a time, across the leader's first encoding
    // and on past it: no write waits for an encoding.
    let started = Instant::now();
    let mut last_answer = Instant::now();
    let mut longest_wait = Duration::ZERO;
    let mut written = 0u32;
    while leader_snapshot().is_none() || started.elapsed() < 2 * ENCODING {
        assert!(
            started.elapsed() < 20 * ENCODING,
            "the leader never snapshots"
        );
        nodes[leader]
            .propose(written.to_le_bytes().to_vec())
            .await
            .expect("the leader commits");
        written += 1;
        longest_wait = longest_wait.max(last_answer.elapsed());
        last_answer = Instant::now();
    }
    assert!(
        longest_wait < ENCODING / 2,
        "a write waited {longest_wait:?}, while encoding takes {ENCODING:?}"
    );
    assert!(
        written as u64 > SNAPSHOT_INTERVAL * 4,
        "only {written} writes"
    );
    let taken = leader_snapshot().expect("the leader snapshotted");
    let last = nodes[leader].status().applied_index;
    assert!(
        taken < last,
        "the snapshot ({taken}) is of the state when it was asked for, before the last write ({last})"
    );

    // The snapshot holds exactly the state at its index: restarted on its
    // store, the leader restores it, applies the rest, and ends where it
    // was.
    all_applied(&runtime, &nodes, last).await.unwrap();
    nodes[leader].shutdown().await;
    let restarted = SlowToEncode::default();
    nodes[leader] = cluster.start(leader, restarted.clone()).await;
    all_applied(&runtime, &nodes, last).await.unwrap();
    let (held, holds) = (recorders[leader].0.applied(), restarted.0.applied());
    let first_difference = held.iter().zip(&holds).position(|(a, b)| a != b);
    assert!(
        held == holds,
        "restarted, the leader holds {} commands, not its {} (first difference at {first_difference:?})",
        holds.len(),
        held.len()
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

/// How many times [`FailsFirstSnapshot`] was asked to write a snapshot,
/// across every node of a test.
static SNAPSHOT_WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The first snapshot write fails (a full disk, say), on whichever node
/// asks first.
#[derive(Clone, Default)]
struct FailsFirst;

impl AroundSnapshot for FailsFirst {
    fn around(write: SnapshotWriter) -> SnapshotWriter {
        Box::new(move |out| {
            let attempt = SNAPSHOT_WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if attempt == 0 {
                return Err(std::io::Error::other("no space left"));
            }
            write(out)
        })
    }
}

type FailsFirstSnapshot = Wrapped<FailsFirst>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_fails_to_be_written_is_asked_for_again_later() {
    let cluster = Cluster::new("failing-snapshots");
    let runtime = cluster.runtime.clone();
    let (_, nodes) = cluster.start_all::<FailsFirstSnapshot>().await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    // Writes in batches, until every node has a snapshot: the node whose
    // first write failed asks again once another interval was applied.
    let mut written = 0u32;
    while (0..3).any(|position| cluster.snapshot_index(position).is_none()) {
        assert!(
            written < 20 * SNAPSHOT_INTERVAL as u32,
            "a node never snapshots again"
        );
        let commands = (written..written + 10).map(|n| n.to_le_bytes().to_vec());
        let indices = propose_all(&nodes[leader], commands)
            .await
            .expect("the node commits on, whatever its snapshots do");
        all_applied(&runtime, &nodes, *indices.iter().max().unwrap())
            .await
            .unwrap();
        written += 10;
    }
    assert!(SNAPSHOT_WRITES.load(std::sync::atomic::Ordering::SeqCst) > 3);
    for node in &nodes {
        node.shutdown().await;
    }
}

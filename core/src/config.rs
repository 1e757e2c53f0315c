//! Tunables of a node, and their validation.
//!
//! A [`Config`] is checked once, when a [`Node`](crate::Node) is built; a
//! node never runs with a configuration that could not work.

use core::fmt;
use core::time::Duration;

use crate::time::duration_as_micros;

/// Timing and protocol options of one node.
///
/// All nodes of a cluster should use the same values. The defaults suit a
/// LAN: election timeouts of 150–300 ms and a heartbeat every 50 ms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Lower bound (inclusive) of the randomized election timeout.
    ///
    /// Also the window of leader stickiness: a follower that heard from its
    /// leader less than this long ago ignores vote requests.
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomized election timeout. Must be
    /// greater than `election_timeout_min`, so that timeouts differ between
    /// nodes and split votes resolve.
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats. Must be below
    /// `election_timeout_min`, or followers would start elections against a
    /// healthy leader.
    pub heartbeat_interval: Duration,
    /// Run a pre-vote round (Raft dissertation §9.6) before raising the
    /// term, so that a node that cannot win an election (for example one
    /// rejoining after a partition) does not disrupt the cluster.
    pub pre_vote: bool,
    /// Check-quorum (dissertation §6.2): a leader steps down when it has
    /// not heard from a majority within `election_timeout_min +
    /// election_timeout_max`, so that a leader cut off from the cluster
    /// stops acting as one. The window is longer than a follower's
    /// patience so that answers slow to return, as a new leader's first
    /// ones on a network whose round trip is a large part of the timeout,
    /// arrive before the leader judges.
    pub check_quorum: bool,
    /// Leader stickiness (dissertation §4.2.3): a follower that heard from
    /// a live leader within `election_timeout_min` ignores vote requests
    /// (and a leader ignores them always), so that a server that cannot
    /// hear the leader — or was removed from the cluster — cannot depose
    /// it. Pair it with `check_quorum`: without that, a leader cut off
    /// from a majority keeps its followers' loyalty only as long as it
    /// reaches them.
    pub leader_stickiness: bool,
    /// A new leader appends an empty entry of its term, so that entries of
    /// earlier terms commit without waiting for a client (§8). With it
    /// off, the first command of a fresh cluster lands at index 1.
    pub noop_on_election: bool,
    /// Bytes of entries per AppendEntries, at most, counted as the wire
    /// encodes them (a payload and a few bytes per entry), so that it
    /// bounds the message whatever the entries' sizes; one entry is always
    /// sent, however large.
    pub max_append_bytes: usize,
    /// AppendEntries messages in flight to one follower while it keeps up,
    /// at most; a follower that falls behind is probed one message at a
    /// time.
    pub max_inflight_appends: usize,
    /// Payload bytes a leader may have out to one streaming follower in
    /// appends not yet acknowledged, at most (etcd's `MaxInflightBytes`);
    /// the limit is soft by one append, so that an entry larger than it
    /// still goes, alone. With `max_inflight_appends` and
    /// `max_append_bytes` it bounds what a slow follower costs its
    /// leader's connection queues and its own memory.
    pub max_inflight_bytes: usize,
    /// Payload bytes of entries proposed but not yet settled — committed,
    /// and written on the leader's own disk — at most: a leader refuses
    /// further proposals beyond it (back-pressure). With writes in
    /// parallel, followers may commit entries the leader's disk has not
    /// yet written; this bounds that backlog too.
    pub max_uncommitted_bytes: usize,
    /// A leader sends its new entries to followers before its own
    /// `Persist::Entries` output, so that its disk write and theirs overlap
    /// (dissertation §10.2.1): a durable commit costs the slower of the two
    /// writes plus a round trip, not both writes in series. On by default.
    ///
    /// The leader then counts its own log toward a majority only up to
    /// what the caller has reported durable with
    /// [`Input::Persisted`](crate::Input::Persisted), which the caller
    /// **must** send after performing each `Persist::Entries`: a leader
    /// that never hears it commits only through its followers — so never
    /// alone, and not while a follower of three is down. Off, a leader
    /// persists first and counts its whole log, and no report is needed;
    /// turn it off for a driver that performs writes at once and reports
    /// nothing.
    pub leader_persists_in_parallel: bool,
    /// Storage writes of the log may still be in flight while the node
    /// goes on: the caller performs log writes (`Persist::Entries`,
    /// `TruncateLog`, `Snapshot`) in order on a writer of its own, reports
    /// each once it is durable with
    /// [`Input::Persisted`](crate::Input::Persisted), and meanwhile keeps
    /// handing the node messages and timers and performing its other
    /// outputs (etcd calls this asynchronous storage writes). Off by
    /// default.
    ///
    /// The node then never sends anything that vouches for a log write
    /// not yet reported: a follower acknowledges an append, or a leader's
    /// snapshot, only once it is reported durable, and a leader counts
    /// its own log only as far as reported (as with
    /// `leader_persists_in_parallel`, which this implies). What may run
    /// ahead of a pending log write, and what may not, is the ordering
    /// rule on [`Output`](crate::Output). A hard state write still holds
    /// back every send drained after it: a vote or a term must be durable
    /// before a peer hears of it.
    pub asynchronous_writes: bool,
    /// How often a leader may send followers a message carrying nothing
    /// but news of a higher commit index, at most. A follower that holds
    /// entries it does not know are committed, and has no append out, is
    /// told at once, so it applies a round trip after its leader rather
    /// than at the next heartbeat; within this interval of the last such
    /// message the news waits for its end (or for an append, which carries
    /// it anyway). So a leader committing entry after entry sends one news
    /// message per follower per interval, not one per entry. Zero sends
    /// news on every commit.
    pub commit_news_interval: Duration,
    /// Log entries a node keeps behind its latest snapshot when it takes
    /// one ([`Input::SnapshotTaken`](crate::Input::SnapshotTaken)), so
    /// that a follower slightly behind catches up from the log instead of
    /// needing the whole snapshot. 0 drops everything the snapshot covers.
    ///
    /// A leader keeps more for a follower it is sending a snapshot to, and
    /// for one catching up that answered within the check-quorum window
    /// (`election_timeout_min + election_timeout_max`): the entries after
    /// what that follower holds (or is being sent), but never any the
    /// previous snapshot covered. So such a follower goes on from the log
    /// rather than needing the new snapshot too, and the log holds at most
    /// two snapshots' worth of entries (plus this lag) for a follower that
    /// stays behind. A follower still being sent the previous snapshot is
    /// sent that one again, should it seem lost, so that a transfer under
    /// way is not replaced by the newer one. A transfer that outlasts two
    /// snapshot intervals does start over with the newest snapshot: take
    /// snapshots less often than a transfer takes.
    pub compaction_lag: u64,
    /// How many entries a learner may be behind the leader's log and still
    /// be promoted to voter; it must also be streaming and have answered
    /// within `election_timeout_min`. A learner further behind is refused
    /// ([`MembershipError::LearnerBehind`](crate::MembershipError::LearnerBehind)):
    /// as a voter it could hold back every commit until it caught up.
    pub max_learner_lag_entries: u64,
    /// A deliberate flaw, for kontiki's model checks only: a leader takes
    /// membership changes before it has committed an entry of its term,
    /// which makes single-server changes unsafe. Never set it.
    #[cfg(feature = "flawed-variants")]
    #[doc(hidden)]
    pub flaw_skip_own_term_rule: bool,
    /// A deliberate flaw, for kontiki's simulator checks only: with
    /// asynchronous writes, a follower acknowledges entries before they
    /// are reported durable. Never set it.
    #[cfg(feature = "flawed-variants")]
    #[doc(hidden)]
    pub flaw_acknowledge_before_durable: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            leader_stickiness: true,
            noop_on_election: true,
            max_append_bytes: 64 * 1024,
            max_inflight_appends: 64,
            max_inflight_bytes: 4 * 1024 * 1024,
            max_uncommitted_bytes: 16 * 1024 * 1024,
            leader_persists_in_parallel: true,
            asynchronous_writes: false,
            commit_news_interval: Duration::from_millis(1),
            compaction_lag: 1000,
            max_learner_lag_entries: 1000,
            #[cfg(feature = "flawed-variants")]
            flaw_skip_own_term_rule: false,
            #[cfg(feature = "flawed-variants")]
            flaw_acknowledge_before_durable: false,
        }
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `heartbeat_interval` is zero.
    ZeroHeartbeatInterval,
    /// `election_timeout_min` is zero.
    ZeroElectionTimeout,
    /// `election_timeout_max` is not greater than `election_timeout_min`, so
    /// timeouts could not be randomized.
    EmptyElectionTimeoutRange,
    /// `heartbeat_interval` is not below `election_timeout_min`, so
    /// followers would time out between heartbeats.
    HeartbeatNotBelowElectionTimeout,
    /// `max_inflight_appends` is zero, so nothing could be replicated.
    ZeroInflightAppends,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroHeartbeatInterval => "the heartbeat interval must not be zero",
            ConfigError::ZeroElectionTimeout => "the minimum election timeout must not be zero",
            ConfigError::EmptyElectionTimeoutRange => {
                "the maximum election timeout must be greater than the minimum"
            }
            ConfigError::HeartbeatNotBelowElectionTimeout => {
                "the heartbeat interval must be below the minimum election timeout"
            }
            ConfigError::ZeroInflightAppends => "max_inflight_appends must not be zero",
        })
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// Checks that this configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::ZeroHeartbeatInterval);
        }
        if self.election_timeout_min.is_zero() {
            return Err(ConfigError::ZeroElectionTimeout);
        }
        // Compare whole microseconds: that is the resolution the node works in.
        let min = duration_as_micros(self.election_timeout_min);
        if duration_as_micros(self.election_timeout_max) <= min {
            return Err(ConfigError::EmptyElectionTimeoutRange);
        }
        if duration_as_micros(self.heartbeat_interval) >= min {
            return Err(ConfigError::HeartbeatNotBelowElectionTimeout);
        }
        if self.max_inflight_appends == 0 {
            return Err(ConfigError::ZeroInflightAppends);
        }
        Ok(())
    }

    /// Whether a leader sends its new entries before its own write of
    /// them, counting its own log only as far as reported durable.
    pub(crate) fn leader_writes_in_parallel(&self) -> bool {
        self.leader_persists_in_parallel || self.asynchronous_writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_ms: u64, max_ms: u64, heartbeat_ms: u64) -> Config {
        Config {
            election_timeout_min: Duration::from_millis(min_ms),
            election_timeout_max: Duration::from_millis(max_ms),
            heartbeat_interval: Duration::from_millis(heartbeat_ms),
            ..Config::default()
        }
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn heartbeat_must_be_below_minimum_election_timeout() {
        assert_eq!(
            config(100, 200, 100).validate(),
            Err(ConfigError::HeartbeatNotBelowElectionTimeout)
        );
        assert_eq!(config(100, 200, 99).validate(), Ok(()));
    }

    #[test]
    fn election_timeout_range_must_not_be_empty() {
        assert_eq!(
            config(300, 300, 50).validate(),
            Err(ConfigError::EmptyElectionTimeoutRange)
        );
        assert_eq!(
            config(300, 200, 50).validate(),
            Err(ConfigError::EmptyElectionTimeoutRange)
        );
    }

    #[test]
    fn zero_durations_are_refused() {
        assert_eq!(
            config(150, 300, 0).validate(),
            Err(ConfigError::ZeroHeartbeatInterval)
        );
        assert_eq!(
            config(0, 300, 50).validate(),
            Err(ConfigError::ZeroElectionTimeout)
        );
    }
}

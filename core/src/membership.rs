//! Cluster membership (Raft dissertation, chapter 4): which nodes vote,
//! which only learn, and the changes a leader may make to them.
//!
//! A configuration is a [`Membership`]. It changes through log entries of
//! kind [`EntryKind::Membership`](crate::EntryKind::Membership), and a node
//! uses the latest one in its log (or snapshot) from the moment it appends
//! it, committed or not (§4.1). This module holds the value and the pure
//! rules of what a [`MembershipChange`] makes of it; the rules that depend
//! on the cluster's state (one change at a time, a learner must have caught
//! up, ...) live with the node in `reconfigure.rs`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::quorum::{is_sorted_set, JointConfig, MajorityConfig};
use crate::types::{LogIndex, NodeId};

/// A cluster configuration: its voters and its learners.
///
/// While a joint change is under way (dissertation §4.3) two voter sets
/// decide together: every election and every commit needs a majority of
/// the incoming set ([`voters`](Membership::voters)) and one of the
/// outgoing set ([`outgoing_voters`](Membership::outgoing_voters)).
/// Learners receive the log and snapshots but never vote and are never
/// counted.
///
/// Each member may have an address, opaque to the core (a driver's
/// `host:port`, for example), so that every member learns how to reach a
/// new one from the log itself.
///
/// The default value is the empty configuration: a node that has none
/// waits to be added to a cluster and never campaigns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership {
    /// Boxed: a snapshot holds a configuration, and every message and
    /// output that can hold a snapshot is moved on each send and drain, so
    /// it must stay small (inline, the sets made every message 100 bytes
    /// larger and cost a fifth more instructions per replicated entry).
    sets: Box<MemberSets>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct MemberSets {
    /// Invariant: sorted, without duplicates.
    voters: Vec<NodeId>,
    /// Invariant: sorted, without duplicates; empty unless joint.
    outgoing_voters: Vec<NodeId>,
    /// Invariant: sorted, without duplicates, disjoint from `voters` (a
    /// voter of the outgoing set only may be a learner of the incoming
    /// one: it is being demoted).
    learners: Vec<NodeId>,
    /// Invariant: sorted by id, unique, only members', none empty.
    addresses: Vec<(NodeId, Bytes)>,
    /// Invariant: only while joint.
    auto_leave: bool,
}

/// A change a leader may be asked to make to its configuration, with
/// [`Command::ChangeMembership`](crate::Command::ChangeMembership).
///
/// A new node always joins as a learner, so that it catches up before it
/// counts toward any majority: it is then promoted, in one step
/// ([`Promote`](MembershipChange::Promote)) or as part of a joint change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipChange {
    /// Add `id` as a learner, reachable at `address` (opaque to the core;
    /// may be empty).
    AddLearner {
        /// The new member.
        id: NodeId,
        /// How to reach it, in the caller's encoding.
        address: Bytes,
    },
    /// Make learner `id` a voter: a single-server change, refused unless
    /// the learner has caught up with the leader's log (see
    /// [`Config::max_learner_lag_entries`](crate::Config::max_learner_lag_entries)).
    Promote {
        /// The learner to promote.
        id: NodeId,
    },
    /// Remove member `id`, voter or learner (one voter at most per change:
    /// a single-server change). The leader itself may be removed: it leads
    /// until the change commits, then steps down.
    Remove {
        /// The member to remove.
        id: NodeId,
    },
    /// Enter a joint configuration whose incoming half is `voters` and
    /// `learners` (each a current member; the outgoing half is the current
    /// voter set), then leave it for the incoming half: by itself once the
    /// joint configuration commits when `auto_leave` is set, otherwise on
    /// [`LeaveJoint`](MembershipChange::LeaveJoint). Any number of voters
    /// may change at once.
    EnterJoint {
        /// The voters of the new configuration.
        voters: Vec<NodeId>,
        /// The learners of the new configuration.
        learners: Vec<NodeId>,
        /// Leave the joint configuration as soon as it commits.
        auto_leave: bool,
    },
    /// Leave the joint configuration for its incoming half.
    LeaveJoint,
}

/// Why a membership change was refused. A refused change changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipError {
    /// An earlier change, at `index`, has not committed yet: one change at
    /// a time.
    ChangePending {
        /// Where the pending change is in the log.
        index: LogIndex,
    },
    /// The leader has not yet committed an entry of its own term, so it
    /// cannot know that no earlier leader's change is still pending (the
    /// rule that makes single-server changes safe); retry shortly.
    LeaderNotSettled,
    /// A joint configuration is in force: the only change allowed is
    /// leaving it.
    Joint,
    /// [`MembershipChange::LeaveJoint`] outside a joint configuration.
    NotJoint,
    /// The node is already a member.
    AlreadyMember(NodeId),
    /// The node is not a member (new nodes join as learners first).
    NotAMember(NodeId),
    /// [`MembershipChange::Promote`] of a node that is not a learner.
    NotALearner(NodeId),
    /// The learner is more entries behind the leader's log than
    /// [`Config::max_learner_lag_entries`](crate::Config::max_learner_lag_entries)
    /// allows, or has not answered within the minimum election timeout:
    /// as a voter it would stall commits.
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// The last index it is known to hold.
        match_index: LogIndex,
    },
    /// The change would leave no voter (or the configuration has none:
    /// the empty one of a node waiting to be added).
    NoVoters,
    /// A node is named twice in a joint change.
    Duplicate(NodeId),
    /// A joint change whose voters are the current ones.
    SameVoters,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::ChangePending { index } => write!(
                f,
                "the membership change at index {index} has not committed yet"
            ),
            MembershipError::LeaderNotSettled => {
                f.write_str("the leader has not committed an entry of its term yet; retry shortly")
            }
            MembershipError::Joint => {
                f.write_str("a joint configuration is in force; only leaving it is allowed")
            }
            MembershipError::NotJoint => f.write_str("no joint configuration is in force"),
            MembershipError::AlreadyMember(id) => write!(f, "node {id} is already a member"),
            MembershipError::NotAMember(id) => write!(f, "node {id} is not a member"),
            MembershipError::NotALearner(id) => write!(f, "node {id} is not a learner"),
            MembershipError::LearnerBehind { id, match_index } => write!(
                f,
                "learner {id} has not caught up (it holds the log up to {match_index})"
            ),
            MembershipError::NoVoters => f.write_str("the change would leave no voter"),
            MembershipError::Duplicate(id) => write!(f, "node {id} is named twice"),
            MembershipError::SameVoters => f.write_str("a joint change must change the voters"),
        }
    }
}

impl core::error::Error for MembershipError {}

impl Membership {
    /// A configuration of `voters` alone, sorted here.
    ///
    /// # Errors
    ///
    /// [`MembershipError::NoVoters`] for an empty list,
    /// [`MembershipError::Duplicate`] for an id listed twice.
    pub fn with_voters(voters: &[NodeId]) -> Result<Membership, MembershipError> {
        let voters = sorted_unique(voters)?;
        if voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        Ok(Membership {
            sets: Box::new(MemberSets {
                voters,
                ..MemberSets::default()
            }),
        })
    }

    /// This configuration with member `id` reachable at `address`
    /// (replacing the address it had; an empty one removes it). For the
    /// configuration a cluster starts with, so that the first change
    /// replicates every founding member's address; later members get
    /// theirs with [`MembershipChange::AddLearner`].
    ///
    /// # Errors
    ///
    /// [`MembershipError::NotAMember`] when `id` is not a member.
    pub fn with_address(
        mut self,
        id: NodeId,
        address: Bytes,
    ) -> Result<Membership, MembershipError> {
        if !self.is_member(id) {
            return Err(MembershipError::NotAMember(id));
        }
        let addresses = &mut self.sets.addresses;
        match addresses.binary_search_by_key(&id, |(member, _)| *member) {
            Ok(position) if address.is_empty() => {
                addresses.remove(position);
            }
            Ok(position) => addresses[position].1 = address,
            Err(_) if address.is_empty() => {}
            Err(position) => addresses.insert(position, (id, address)),
        }
        Ok(self)
    }

    /// Builds a configuration from its parts, checking every invariant;
    /// `None` if one does not hold. The decoder's constructor.
    pub(crate) fn from_parts(
        voters: Vec<NodeId>,
        outgoing_voters: Vec<NodeId>,
        learners: Vec<NodeId>,
        addresses: Vec<(NodeId, Bytes)>,
        auto_leave: bool,
    ) -> Option<Membership> {
        let membership = Membership {
            sets: Box::new(MemberSets {
                voters,
                outgoing_voters,
                learners,
                addresses,
                auto_leave,
            }),
        };
        membership.is_well_formed().then_some(membership)
    }

    fn is_well_formed(&self) -> bool {
        let ids_sorted = self
            .sets
            .addresses
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0);
        is_sorted_set(&self.sets.voters)
            && is_sorted_set(&self.sets.outgoing_voters)
            && is_sorted_set(&self.sets.learners)
            && self.sets.learners.iter().all(|id| !contains(&self.sets.voters, *id))
            // Without voters there is no configuration at all.
            && (!self.sets.voters.is_empty() || (self.sets.outgoing_voters.is_empty() && self.sets.learners.is_empty()))
            && (!self.sets.outgoing_voters.is_empty() || !self.sets.auto_leave)
            && ids_sorted
            && self
                .sets.addresses
                .iter()
                .all(|(id, address)| self.is_member(*id) && !address.is_empty())
    }

    /// Whether this is the empty configuration (of a node waiting to be
    /// added to a cluster).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sets.voters.is_empty() && self.sets.learners.is_empty()
    }

    /// The voters (of the incoming half, while joint), sorted.
    #[must_use]
    pub fn voters(&self) -> &[NodeId] {
        &self.sets.voters
    }

    /// The voters of the outgoing half while joint, sorted; empty
    /// otherwise.
    #[must_use]
    pub fn outgoing_voters(&self) -> &[NodeId] {
        &self.sets.outgoing_voters
    }

    /// The learners, sorted.
    #[must_use]
    pub fn learners(&self) -> &[NodeId] {
        &self.sets.learners
    }

    /// Whether a joint change is under way (two voter sets decide).
    #[must_use]
    pub fn is_joint(&self) -> bool {
        !self.sets.outgoing_voters.is_empty()
    }

    /// Whether the joint configuration is left as soon as it commits.
    #[must_use]
    pub fn auto_leave(&self) -> bool {
        self.sets.auto_leave
    }

    /// Whether `id` votes, in either half.
    #[must_use]
    pub fn is_voter(&self, id: NodeId) -> bool {
        contains(&self.sets.voters, id) || contains(&self.sets.outgoing_voters, id)
    }

    /// Whether `id` is a learner (and not a voter of either half).
    #[must_use]
    pub fn is_learner(&self, id: NodeId) -> bool {
        contains(&self.sets.learners, id) && !self.is_voter(id)
    }

    /// Whether `id` is a member: a voter of either half or a learner.
    #[must_use]
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || contains(&self.sets.learners, id)
    }

    /// Every member, sorted, each once.
    #[must_use]
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .sets
            .voters
            .iter()
            .chain(&self.sets.outgoing_voters)
            .chain(&self.sets.learners)
            .copied()
            .collect();
        sort_ids(&mut all);
        all.dedup();
        all
    }

    /// The number of members (without building their list).
    #[must_use]
    pub fn member_count(&self) -> usize {
        let outgoing_only = self
            .sets
            .outgoing_voters
            .iter()
            .filter(|id| !contains(&self.sets.voters, **id))
            .count();
        let learners_only = self
            .sets
            .learners
            .iter()
            .filter(|id| !contains(&self.sets.outgoing_voters, **id))
            .count();
        self.sets.voters.len() + outgoing_only + learners_only
    }

    /// Whether `quorum` counts exactly this configuration's voters.
    pub(crate) fn is_counted_by(&self, quorum: &JointConfig) -> bool {
        quorum.halves() == (&self.sets.voters[..], &self.sets.outgoing_voters[..])
    }

    /// `id`'s address, if it was given one.
    #[must_use]
    pub fn address(&self, id: NodeId) -> Option<&Bytes> {
        self.sets
            .addresses
            .binary_search_by_key(&id, |(member, _)| *member)
            .ok()
            .map(|position| &self.sets.addresses[position].1)
    }

    /// Every address known, by member id.
    #[must_use]
    pub fn addresses(&self) -> &[(NodeId, Bytes)] {
        &self.sets.addresses
    }

    /// The voter sets as quorum arithmetic decides by them.
    pub(crate) fn quorum(&self) -> JointConfig {
        JointConfig::new(
            MajorityConfig::new(self.sets.voters.clone()),
            MajorityConfig::new(self.sets.outgoing_voters.clone()),
        )
    }

    /// What `change` makes of this configuration, by the structural rules
    /// alone. A leader asked for the change also checks that the cluster
    /// is ready for it (no other change pending, a learner caught up, ...).
    ///
    /// # Errors
    ///
    /// The [`MembershipError`] that says why the change does not fit.
    pub fn with_change(&self, change: &MembershipChange) -> Result<Membership, MembershipError> {
        if self.sets.voters.is_empty() {
            // The empty configuration of a node waiting to be added.
            return Err(MembershipError::NoVoters);
        }
        if self.is_joint() && *change != MembershipChange::LeaveJoint {
            return Err(MembershipError::Joint);
        }
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner { id, address } => {
                if self.is_member(*id) {
                    return Err(MembershipError::AlreadyMember(*id));
                }
                insert(&mut next.sets.learners, *id);
                if !address.is_empty() {
                    let position = next
                        .sets
                        .addresses
                        .partition_point(|(member, _)| member < id);
                    next.sets.addresses.insert(position, (*id, address.clone()));
                }
            }
            MembershipChange::Promote { id } => {
                if self.is_voter(*id) {
                    return Err(MembershipError::NotALearner(*id));
                }
                if !self.is_learner(*id) {
                    return Err(MembershipError::NotAMember(*id));
                }
                next.sets.learners.retain(|learner| learner != id);
                insert(&mut next.sets.voters, *id);
            }
            MembershipChange::Remove { id } => {
                if !self.is_member(*id) {
                    return Err(MembershipError::NotAMember(*id));
                }
                next.sets.voters.retain(|voter| voter != id);
                next.sets.learners.retain(|learner| learner != id);
                if next.sets.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
            }
            MembershipChange::EnterJoint {
                voters,
                learners,
                auto_leave,
            } => {
                let mut named = voters.clone();
                named.extend_from_slice(learners);
                sorted_unique(&named)?;
                if let Some(stranger) = named.iter().find(|id| !self.is_member(**id)) {
                    return Err(MembershipError::NotAMember(*stranger));
                }
                let voters = sorted_unique(voters)?;
                if voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
                if voters == self.sets.voters {
                    return Err(MembershipError::SameVoters);
                }
                next.sets.outgoing_voters = core::mem::replace(&mut next.sets.voters, voters);
                next.sets.learners = sorted_unique(learners)?;
                next.sets.auto_leave = *auto_leave;
            }
            MembershipChange::LeaveJoint => {
                if !self.is_joint() {
                    return Err(MembershipError::NotJoint);
                }
                next.sets.outgoing_voters.clear();
                next.sets.auto_leave = false;
            }
        }
        // Members that left take their addresses with them.
        let kept = next.members();
        next.sets.addresses.retain(|(id, _)| contains(&kept, *id));
        debug_assert!(next.is_well_formed(), "{next:?}");
        Ok(next)
    }

    /// The voters that `next` adds: nodes that vote there and not here.
    pub(crate) fn new_voters<'a>(
        &'a self,
        next: &'a Membership,
    ) -> impl Iterator<Item = NodeId> + 'a {
        next.sets
            .voters
            .iter()
            .copied()
            .filter(move |id| !self.is_voter(*id))
    }
}

/// Sorts a handful of ids by insertion: configurations are small, and the
/// standard library's sort costs kilobytes of flash on a Cortex-M.
fn sort_ids(ids: &mut [NodeId]) {
    for sorted in 1..ids.len() {
        let mut position = sorted;
        while position > 0 && ids[position - 1] > ids[position] {
            ids.swap(position - 1, position);
            position -= 1;
        }
    }
}

fn contains(sorted: &[NodeId], id: NodeId) -> bool {
    sorted.binary_search(&id).is_ok()
}

fn insert(sorted: &mut Vec<NodeId>, id: NodeId) {
    if let Err(position) = sorted.binary_search(&id) {
        sorted.insert(position, id);
    }
}

/// `ids` sorted, or the first id listed twice.
fn sorted_unique(ids: &[NodeId]) -> Result<Vec<NodeId>, MembershipError> {
    let mut sorted = ids.to_vec();
    sort_ids(&mut sorted);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(MembershipError::Duplicate(pair[0]));
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn ids(raw: &[u64]) -> Vec<NodeId> {
        raw.iter().map(|&id| NodeId(id)).collect()
    }

    fn three() -> Membership {
        Membership::with_voters(&ids(&[3, 1, 2])).expect("valid")
    }

    #[test]
    fn a_learner_joins_then_is_promoted() {
        let added = three()
            .with_change(&MembershipChange::AddLearner {
                id: NodeId(4),
                address: Bytes::from_static(b"10.0.0.4:7000"),
            })
            .expect("a new member");
        assert_eq!(added.learners(), ids(&[4]));
        assert!(added.is_learner(NodeId(4)) && !added.is_voter(NodeId(4)));
        assert_eq!(
            added.address(NodeId(4)).map(|a| &a[..]),
            Some(&b"10.0.0.4:7000"[..])
        );
        let promoted = added
            .with_change(&MembershipChange::Promote { id: NodeId(4) })
            .expect("a learner");
        assert_eq!(promoted.voters(), ids(&[1, 2, 3, 4]));
        assert!(promoted.learners().is_empty());
        assert!(promoted.address(NodeId(4)).is_some(), "the address stays");
        assert_eq!(promoted.new_voters(&added).count(), 0);
        assert_eq!(added.new_voters(&promoted).collect::<Vec<_>>(), ids(&[4]));
    }

    #[test]
    fn founding_members_addresses_are_set_replaced_and_cleared() {
        let addressed = three()
            .with_address(NodeId(2), Bytes::from_static(b"b:1"))
            .and_then(|m| m.with_address(NodeId(1), Bytes::from_static(b"a:1")))
            .and_then(|m| m.with_address(NodeId(2), Bytes::from_static(b"b:2")))
            .expect("members");
        let listed: Vec<(u64, &[u8])> = addressed
            .addresses()
            .iter()
            .map(|(id, address)| (id.get(), &address[..]))
            .collect();
        assert_eq!(listed, [(1, &b"a:1"[..]), (2, &b"b:2"[..])]);
        assert!(addressed.is_well_formed());
        let cleared = addressed
            .with_address(NodeId(1), Bytes::new())
            .expect("a member");
        assert_eq!(cleared.address(NodeId(1)), None);
        assert_eq!(
            three().with_address(NodeId(9), Bytes::from_static(b"x:1")),
            Err(MembershipError::NotAMember(NodeId(9)))
        );
        // The addresses travel on with every change.
        let grown = cleared
            .with_change(&MembershipChange::AddLearner {
                id: NodeId(4),
                address: Bytes::from_static(b"d:1"),
            })
            .expect("a new member");
        assert_eq!(grown.address(NodeId(2)).map(|a| &a[..]), Some(&b"b:2"[..]));
    }

    #[test]
    fn structural_mistakes_are_refused() {
        let three = three();
        let add = |id| MembershipChange::AddLearner {
            id: NodeId(id),
            address: Bytes::new(),
        };
        assert_eq!(
            three.with_change(&add(2)),
            Err(MembershipError::AlreadyMember(NodeId(2)))
        );
        assert_eq!(
            three.with_change(&MembershipChange::Promote { id: NodeId(2) }),
            Err(MembershipError::NotALearner(NodeId(2)))
        );
        assert_eq!(
            three.with_change(&MembershipChange::Promote { id: NodeId(9) }),
            Err(MembershipError::NotAMember(NodeId(9)))
        );
        assert_eq!(
            three.with_change(&MembershipChange::Remove { id: NodeId(9) }),
            Err(MembershipError::NotAMember(NodeId(9)))
        );
        let one = Membership::with_voters(&ids(&[1])).expect("valid");
        assert_eq!(
            one.with_change(&MembershipChange::Remove { id: NodeId(1) }),
            Err(MembershipError::NoVoters)
        );
        assert_eq!(
            Membership::default().with_change(&add(1)),
            Err(MembershipError::NoVoters),
            "nothing is added to the empty configuration"
        );
        assert_eq!(
            three.with_change(&MembershipChange::LeaveJoint),
            Err(MembershipError::NotJoint)
        );
        let joint = |voters: &[u64], learners: &[u64]| MembershipChange::EnterJoint {
            voters: ids(voters),
            learners: ids(learners),
            auto_leave: true,
        };
        assert_eq!(
            three.with_change(&joint(&[1, 2, 3], &[])),
            Err(MembershipError::SameVoters)
        );
        assert_eq!(
            three.with_change(&joint(&[], &[1])),
            Err(MembershipError::NoVoters)
        );
        assert_eq!(
            three.with_change(&joint(&[1, 2], &[2])),
            Err(MembershipError::Duplicate(NodeId(2)))
        );
        assert_eq!(
            three.with_change(&joint(&[1, 7], &[])),
            Err(MembershipError::NotAMember(NodeId(7)))
        );
        assert_eq!(
            Membership::with_voters(&ids(&[1, 1])),
            Err(MembershipError::Duplicate(NodeId(1)))
        );
    }

    #[test]
    fn a_joint_change_decides_by_both_halves_until_it_is_left() {
        let four = three()
            .with_change(&MembershipChange::AddLearner {
                id: NodeId(4),
                address: Bytes::from_static(b"four"),
            })
            .expect("valid");
        // Replace 1 by 4, and keep 1 as a learner.
        let joint = four
            .with_change(&MembershipChange::EnterJoint {
                voters: ids(&[4, 2, 3]),
                learners: ids(&[1]),
                auto_leave: false,
            })
            .expect("valid");
        assert!(joint.is_joint());
        assert_eq!(joint.voters(), ids(&[2, 3, 4]));
        assert_eq!(joint.outgoing_voters(), ids(&[1, 2, 3]));
        assert!(
            joint.is_voter(NodeId(1)),
            "1 still votes in the outgoing half"
        );
        assert!(!joint.is_learner(NodeId(1)));
        assert_eq!(joint.quorum().all_voters(), ids(&[1, 2, 3, 4]));
        assert_eq!(
            joint.with_change(&MembershipChange::Promote { id: NodeId(1) }),
            Err(MembershipError::Joint)
        );
        let left = joint
            .with_change(&MembershipChange::LeaveJoint)
            .expect("joint");
        assert!(!left.is_joint());
        assert!(left.is_learner(NodeId(1)));
        assert_eq!(left.members(), ids(&[1, 2, 3, 4]));
        assert_eq!(left.address(NodeId(4)).map(|a| &a[..]), Some(&b"four"[..]));
        // Removing a member drops its address.
        let removed = left
            .with_change(&MembershipChange::Remove { id: NodeId(4) })
            .expect("a member");
        assert_eq!(removed.address(NodeId(4)), None);
        assert_eq!(removed.members(), ids(&[1, 2, 3]));
        assert_eq!(vec![NodeId(2), NodeId(3)], removed.voters());
    }

    #[test]
    fn parts_that_break_an_invariant_are_refused() {
        let bytes = |s: &'static [u8]| Bytes::from_static(s);
        assert!(Membership::from_parts(ids(&[1, 2]), vec![], ids(&[3]), vec![], false).is_some());
        assert!(Membership::from_parts(ids(&[2, 1]), vec![], vec![], vec![], false).is_none());
        assert!(Membership::from_parts(ids(&[1]), vec![], ids(&[1]), vec![], false).is_none());
        assert!(Membership::from_parts(ids(&[1]), vec![], vec![], vec![], true).is_none());
        assert!(Membership::from_parts(vec![], ids(&[1]), vec![], vec![], false).is_none());
        assert!(
            Membership::from_parts(
                ids(&[1]),
                vec![],
                vec![],
                vec![(NodeId(2), bytes(b"x"))],
                false
            )
            .is_none(),
            "an address of a non-member"
        );
        assert!(
            Membership::from_parts(
                ids(&[1]),
                vec![],
                vec![],
                vec![(NodeId(1), bytes(b""))],
                false
            )
            .is_none(),
            "an empty address"
        );
    }
}

//! The node's task's side of membership changes and leadership transfers:
//! hands the requests to the core and answers them when the cluster has
//! done what was asked, and publishes the members for the handles.

use std::time::Instant as StdInstant;

use kontiki::{Command, HandleError, Handled, Input, LogIndex, MembershipChange, NodeId};

use crate::address::MemberAddress;
use crate::error::{ChangeError, TransferError};
use crate::event_loop::EventLoop;
use crate::handle::{Member, MemberRole, StateMachine};
use crate::runtime::Runtime;
use crate::storage::Storage;
use crate::waiters::{ChangeReply, EntryReply, PendingTransfer, Waiter};

impl<R: Runtime, S: Storage, M: StateMachine> EventLoop<R, S, M> {
    /// Hands a membership change to the core; the requester hears back
    /// once its entry is applied (and, with `settled`, once the joint
    /// configuration it enters is left).
    pub(crate) fn request_change(
        &mut self,
        now: kontiki::Instant,
        change: MembershipChange,
        settled: bool,
        reply: ChangeReply,
    ) {
        let result = self
            .node
            .handle(now, Input::Command(Command::ChangeMembership(change)));
        let refusal = match result {
            Ok(Handled::Proposed { index, term }) => {
                let reply = EntryReply::Change { reply, settled };
                self.waiters.add(index, Waiter { term, reply });
                return;
            }
            Ok(other) => {
                debug_assert!(false, "unexpected answer to a change: {other:?}");
                ChangeError::NotLeader { leader: None }
            }
            Err(HandleError::NotLeader { leader_hint }) => ChangeError::NotLeader {
                leader: leader_hint,
            },
            Err(HandleError::Membership(error)) => ChangeError::Refused(error),
            Err(HandleError::TransferInProgress { target }) => {
                ChangeError::TransferInProgress { target }
            }
            Err(other) => {
                debug_assert!(false, "unexpected refusal of a change: {other:?}");
                ChangeError::NotLeader { leader: None }
            }
        };
        let _ = reply.send(Err(refusal));
    }

    /// A membership change's entry was applied at `index`: its requester
    /// hears so now, or once the joint configuration it entered is left.
    pub(crate) fn change_applied(&mut self, index: LogIndex, reply: ChangeReply, settled: bool) {
        if settled {
            self.settling.push(reply);
            self.answer_settled();
        } else {
            let _ = reply.send(Ok(index));
        }
    }

    /// Answers the requesters waiting for a joint configuration to be
    /// left, once this node knows a configuration that is not joint is
    /// committed. A leader that entered it with `auto_leave` leaves it by
    /// itself, and so does any leader after it.
    pub(crate) fn answer_settled(&mut self) {
        if self.settling.is_empty()
            || self.node.membership().is_joint()
            || self.node.commit_index() < self.node.membership_index()
        {
            return;
        }
        let index = self.node.membership_index();
        for reply in self.settling.drain(..) {
            let _ = reply.send(Ok(index));
        }
    }

    /// Hands a leadership transfer to the core; the requester hears back
    /// once the outcome is known (see [`EventLoop::check_transfer`]).
    pub(crate) fn request_transfer(
        &mut self,
        now: kontiki::Instant,
        runtime_now: StdInstant,
        target: NodeId,
        reply: oneshot::Sender<Result<(), TransferError>>,
    ) {
        if target == self.node.id() && self.node.leader() == Some(target) {
            // Already where it was asked to go.
            let _ = reply.send(Ok(()));
            return;
        }
        let result = self
            .node
            .handle(now, Input::Command(Command::TransferLeadership(target)));
        let refusal = match result {
            Ok(_) => {
                let timeout = self.transfer_timeout;
                if let Some(earlier) = self.transfer.replace(PendingTransfer {
                    target,
                    deadline: runtime_now + timeout,
                    reply,
                }) {
                    // The core takes one transfer at a time, so the earlier
                    // one has ended, and this node leads again.
                    let _ = earlier.reply.send(Err(TransferError::Abandoned));
                }
                return;
            }
            Err(HandleError::NotLeader { leader_hint }) => TransferError::NotLeader {
                leader: leader_hint,
            },
            Err(HandleError::TransferInProgress { target }) => TransferError::InProgress { target },
            Err(HandleError::TransferRefused(error)) => TransferError::Refused(error),
            Err(other) => {
                debug_assert!(false, "unexpected refusal of a transfer: {other:?}");
                TransferError::NotLeader { leader: None }
            }
        };
        let _ = reply.send(Err(refusal));
    }

    /// Answers a pending transfer once its outcome is known: the target
    /// leads; another node does; or this node leads again (the core gave
    /// up) or knows no leader past the deadline.
    pub(crate) fn check_transfer(&mut self, runtime_now: StdInstant) {
        let Some(pending) = &self.transfer else {
            return;
        };
        let outcome = match self.node.leader() {
            Some(leader) if leader == pending.target => Ok(()),
            Some(leader) if leader == self.node.id() => {
                if self.node.transfer_target() == Some(pending.target) {
                    return;
                }
                Err(TransferError::Abandoned)
            }
            Some(leader) => Err(TransferError::OtherLeader { leader }),
            None if runtime_now >= pending.deadline => Err(TransferError::Abandoned),
            None => return,
        };
        if let Some(pending) = self.transfer.take() {
            let _ = pending.reply.send(outcome);
        }
    }

    /// Fails whoever waits for a transfer or a joint configuration to end.
    pub(crate) fn fail_membership_waiters(&mut self) {
        if let Some(pending) = self.transfer.take() {
            let _ = pending.reply.send(Err(TransferError::Stopped));
        }
        for reply in self.settling.drain(..) {
            let _ = reply.send(Err(ChangeError::Stopped));
        }
    }

    /// Brings `members` up to date with the configuration in force and
    /// with what the leader knows each member holds, by id. Every round
    /// does this: the list is rebuilt only when the configuration changed
    /// (parsing addresses costs more than the rest of a small round), and
    /// otherwise only the match indexes are read again.
    pub(crate) fn refresh_members(&mut self, members: &mut Vec<Member>) {
        let membership = self.node.membership();
        if *membership != self.members_of {
            self.members_of = membership.clone();
            list_members(membership, members);
        }
        for member in members.iter_mut() {
            member.match_index = self.node.match_index(member.id);
        }
    }
}

/// Rewrites `members` as `membership`'s, by id, reusing the list's memory.
fn list_members(membership: &kontiki::Membership, members: &mut Vec<Member>) {
    members.clear();
    let voters = membership.voters();
    let outgoing = membership.outgoing_voters();
    let leaving = outgoing.iter().filter(|id| !voters.contains(id));
    let learners = membership
        .learners()
        .iter()
        .filter(|id| !outgoing.contains(id));
    let roles = voters
        .iter()
        .map(|id| (*id, MemberRole::Voter))
        .chain(leaving.map(|id| (*id, MemberRole::Leaving)))
        .chain(learners.map(|id| (*id, MemberRole::Learner)));
    for (id, role) in roles {
        let address = membership
            .address(id)
            .and_then(|address| MemberAddress::decode(address));
        members.push(Member {
            id,
            role,
            address: address.map(|address| address.peer),
            client_address: address.and_then(|address| address.client),
            match_index: None,
        });
    }
    members.sort_unstable_by_key(|member| member.id);
}

//! The encoding of a [`Membership`]: the data of a membership log entry,
//! and part of an InstallSnapshot (see `WIRE.md`, "Membership").
//!
//! `flags` (bit 0: auto-leave), then three id lists — voters, outgoing
//! voters, learners — each a varint count and that many varint ids in
//! increasing order, then the addresses: a varint count and, for each, a
//! varint id and a length-prefixed byte string. The decoder accepts only
//! what the encoder writes for a well-formed configuration.

use alloc::vec::Vec;

use bytes::Bytes;

use super::codec::{put_varint, varint_len, DecodeError, Reader};
use crate::entry::Entry;
use crate::membership::Membership;
use crate::types::NodeId;

const AUTO_LEAVE: u8 = 0b1;

/// Appends the encoding of `membership` to `buffer`.
pub fn encode_membership(membership: &Membership, buffer: &mut Vec<u8>) {
    buffer.push(if membership.auto_leave() {
        AUTO_LEAVE
    } else {
        0
    });
    for ids in [
        membership.voters(),
        membership.outgoing_voters(),
        membership.learners(),
    ] {
        put_varint(buffer, ids.len() as u64);
        for id in ids {
            put_varint(buffer, id.get());
        }
    }
    put_varint(buffer, membership.addresses().len() as u64);
    for (id, address) in membership.addresses() {
        put_varint(buffer, id.get());
        put_varint(buffer, address.len() as u64);
        buffer.extend_from_slice(address);
    }
}

/// The number of bytes [`encode_membership`] writes for `membership`.
#[must_use]
pub fn membership_encoded_len(membership: &Membership) -> usize {
    let list_len = |ids: &[NodeId]| {
        varint_len(ids.len() as u64) + ids.iter().map(|id| varint_len(id.get())).sum::<usize>()
    };
    1 + list_len(membership.voters())
        + list_len(membership.outgoing_voters())
        + list_len(membership.learners())
        + varint_len(membership.addresses().len() as u64)
        + membership
            .addresses()
            .iter()
            .map(|(id, address)| {
                varint_len(id.get()) + varint_len(address.len() as u64) + address.len()
            })
            .sum::<usize>()
}

/// Decodes a membership from exactly `bytes` (a membership entry's data).
///
/// Accepts any input: malformed bytes, or a configuration that breaks one
/// of [`Membership`]'s rules, give an error, never a panic.
pub fn decode_membership(bytes: &[u8]) -> Result<Membership, DecodeError> {
    let mut reader = Reader { bytes, frame: None };
    let membership = reader.membership()?;
    if !reader.bytes.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(membership)
}

/// The configuration a membership entry holds, if its data is one with
/// voters (every membership entry a leader writes is).
pub(crate) fn entry_membership(entry: &Entry) -> Option<Membership> {
    decode_membership(&entry.data)
        .ok()
        .filter(|membership| !membership.is_empty())
}

impl Reader<'_> {
    /// One membership, as [`encode_membership`] writes it.
    pub(super) fn membership(&mut self) -> Result<Membership, DecodeError> {
        let flags = self.flags(AUTO_LEAVE)?;
        let voters = self.ids()?;
        let outgoing_voters = self.ids()?;
        let learners = self.ids()?;
        let count = self.varint()?;
        // An address takes at least three bytes (id, length, one byte).
        if count > (self.bytes.len() / 3) as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut addresses = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let id = NodeId(self.varint()?);
            addresses.push((id, Bytes::copy_from_slice(&self.payload()?)));
        }
        Membership::from_parts(
            voters,
            outgoing_voters,
            learners,
            addresses,
            flags & AUTO_LEAVE != 0,
        )
        .ok_or(DecodeError::InvalidMembership)
    }

    /// A count and that many ids.
    fn ids(&mut self) -> Result<Vec<NodeId>, DecodeError> {
        let count = self.varint()?;
        // Every id takes at least a byte.
        if count > self.bytes.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            ids.push(NodeId(self.varint()?));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;
    use crate::membership::MembershipChange;

    fn sample() -> Membership {
        Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(300)])
            .and_then(|m| {
                m.with_change(&MembershipChange::AddLearner {
                    id: NodeId(4),
                    address: Bytes::from_static(b"127.0.0.1:7004"),
                })
            })
            .and_then(|m| {
                m.with_change(&MembershipChange::EnterJoint {
                    voters: vec![NodeId(1), NodeId(4)],
                    learners: vec![NodeId(2)],
                    auto_leave: true,
                })
            })
            .expect("valid")
    }

    #[test]
    fn a_membership_round_trips() {
        for membership in [sample(), Membership::default()] {
            let mut bytes = Vec::new();
            encode_membership(&membership, &mut bytes);
            assert_eq!(bytes.len(), membership_encoded_len(&membership));
            assert_eq!(decode_membership(&bytes), Ok(membership));
        }
    }

    #[test]
    fn voters_one_two_three_take_eight_bytes() {
        let three = Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).expect("valid");
        let mut bytes = Vec::new();
        encode_membership(&three, &mut bytes);
        assert_eq!(bytes, [0, 3, 1, 2, 3, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_and_every_broken_rule_is_refused() {
        let mut bytes = Vec::new();
        encode_membership(&sample(), &mut bytes);
        for end in 0..bytes.len() {
            assert!(
                decode_membership(&bytes[..end]).is_err(),
                "truncated at {end}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode_membership(&trailing),
            Err(DecodeError::TrailingBytes)
        );
        // Voters out of order; a learner that votes; auto-leave unjoint.
        for broken in [
            &[0, 2, 2, 1, 0, 0, 0][..],
            &[0, 1, 1, 0, 1, 1, 0][..],
            &[1, 1, 1, 0, 0, 0][..],
        ] {
            assert_eq!(
                decode_membership(broken),
                Err(DecodeError::InvalidMembership)
            );
        }
        assert_eq!(
            decode_membership(&[4, 0, 0, 0, 0]),
            Err(DecodeError::UnknownFlags(4))
        );
    }
}

//! How the driver writes a member's addresses into the configuration,
//! which carries them as bytes the core does not read.
//!
//! The text `PEER` or `PEER,CLIENT`: where the member accepts peer
//! connections, and optionally where it serves the application's clients
//! (so that any node can send a client to the leader), each a socket
//! address as Rust prints it (`10.0.0.4:7000`, `[::1]:7000`).

use std::net::SocketAddr;

use bytes::Bytes;

/// A member's addresses as the configuration records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemberAddress {
    /// Where it accepts peer connections.
    pub(crate) peer: SocketAddr,
    /// Where it serves clients, if it said.
    pub(crate) client: Option<SocketAddr>,
}

impl MemberAddress {
    /// The bytes the configuration holds.
    pub(crate) fn encode(self) -> Bytes {
        match self.client {
            None => Bytes::from(self.peer.to_string()),
            Some(client) => Bytes::from(format!("{},{client}", self.peer)),
        }
    }

    /// Reads what [`encode`](MemberAddress::encode) wrote; `None` for
    /// anything else (a configuration written by another driver).
    pub(crate) fn decode(bytes: &[u8]) -> Option<MemberAddress> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (peer, client) = match text.split_once(',') {
            Some((peer, client)) => (peer, Some(client.parse().ok()?)),
            None => (text, None),
        };
        Some(MemberAddress {
            peer: peer.parse().ok()?,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_anything_else_is_none() {
        let peer: SocketAddr = "10.0.0.4:7000".parse().unwrap();
        let client: SocketAddr = "[::1]:6379".parse().unwrap();
        for address in [
            MemberAddress { peer, client: None },
            MemberAddress {
                peer,
                client: Some(client),
            },
        ] {
            assert_eq!(MemberAddress::decode(&address.encode()), Some(address));
        }
        assert_eq!(
            &MemberAddress {
                peer,
                client: Some(client)
            }
            .encode()[..],
            b"10.0.0.4:7000,[::1]:6379"
        );
        for bad in [
            &b""[..],
            b"host:7000",
            b"10.0.0.4:7000,",
            b"10.0.0.4:7000,x",
            b"\xff",
            b"10.0.0.4",
        ] {
            assert_eq!(MemberAddress::decode(bad), None, "{bad:?}");
        }
    }
}

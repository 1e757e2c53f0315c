//! Framing on a peer connection, and the handshake that opens it.
//!
//! A frame is a 4-byte big-endian length and that many bytes. The first
//! frame each way is a [`Hello`]; every later frame starts with its
//! [`Kind`]: one message in the core's wire format (`kontiki::wire`), or a
//! piece of a snapshot stream (`snapshot_stream`).

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use kontiki::{Message, NodeId};

use crate::error::HandshakeError;

/// The peer protocol version this build speaks: framing, handshake, and
/// which messages a peer may send (the wire format of each message carries
/// its own version). Version 2 adds the leadership checks of linearizable
/// reads (wire tags 6 and 7), which a version-1 build cannot decode, so the
/// handshake refuses a version-1 peer with a clear reason instead. Version
/// 3 carries wire format 2 (membership entries, and the configuration in
/// an InstallSnapshot), which no earlier build reads. Version 4 adds the
/// sender's advertised peer address to the hello, so that a node can
/// answer a peer it has no address for (a leader adding it, a candidate
/// not yet in its configuration). Version 5 starts every later frame with
/// its kind, and streams a snapshot larger than a chunk (which an older
/// build would refuse as an oversized frame) in chunks, answered on the
/// same connection.
pub(crate) const PROTOCOL_VERSION: u8 = 5;

/// What a frame after the handshake carries: its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A message in the core's wire format.
    Message = 0,
    /// A snapshot stream's offer (dialer to acceptor).
    SnapshotOffer = 1,
    /// A piece of a snapshot's data (dialer to acceptor).
    SnapshotChunk = 2,
    /// Where the receiver stands on a stream (acceptor to dialer).
    SnapshotProgress = 3,
}

impl Kind {
    /// Splits a frame into its kind and body; `None` for an empty frame or
    /// an unknown kind.
    pub(crate) fn split(frame: &Bytes) -> Option<(Kind, Bytes)> {
        let kind = match frame.first()? {
            0 => Kind::Message,
            1 => Kind::SnapshotOffer,
            2 => Kind::SnapshotChunk,
            3 => Kind::SnapshotProgress,
            _ => return None,
        };
        Some((kind, frame.slice(1..)))
    }
}

const HELLO_MAGIC: &[u8; 4] = b"KNTK";
const REFUSAL_MAGIC: &[u8; 4] = b"KNTR";
const LENGTH_BYTES: usize = 4;
/// Handshake frames are small; a longer one is refused unread.
pub(crate) const MAX_HANDSHAKE_BYTES: usize = 512;

/// Reads one frame: `Ok(None)` when the peer closed the connection
/// between frames. A frame longer than `max_bytes` is refused
/// before its body is read, and the body is read as it arrives rather than
/// reserved up front, so a peer that only announces a large frame costs
/// nothing.
pub(crate) async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    max_bytes: usize,
) -> io::Result<Option<Bytes>> {
    let mut header = [0u8; LENGTH_BYTES];
    let mut filled = 0;
    while filled < LENGTH_BYTES {
        let read = match reader.read(&mut header[filled..]).await {
            Ok(read) => read,
            // TLS reports a peer that vanished without closing TLS (a
            // crash, a kill) as an unexpected end; between frames that
            // loses nothing, as a plain close does not.
            Err(error) if filled == 0 && error.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(error) => return Err(error),
        };
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(invalid(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a frame header",
            ));
        }
        filled += read;
    }
    let length = u32::from_be_bytes(header) as usize;
    if length > max_bytes {
        return Err(invalid(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes exceeds the limit of {max_bytes}"),
        ));
    }
    let mut body = Vec::new();
    reader.take(length as u64).read_to_end(&mut body).await?;
    if body.len() != length {
        return Err(invalid(
            io::ErrorKind::UnexpectedEof,
            format!(
                "connection closed after {} of a {length}-byte frame",
                body.len()
            ),
        ));
    }
    Ok(Some(Bytes::from(body)))
}

/// Appends `message` to `buffer` as one frame.
pub(crate) fn encode_message_frame(message: &Message, buffer: &mut Vec<u8>) {
    encode_frame(Kind::Message, buffer, |body| {
        kontiki::wire::encode(message, body)
    });
}

/// Appends one frame of `kind` to `buffer`, its body written by `body`.
pub(crate) fn encode_frame(kind: Kind, buffer: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; LENGTH_BYTES]);
    buffer.push(kind as u8);
    body(buffer);
    let length = (buffer.len() - start - LENGTH_BYTES) as u32;
    buffer[start..start + LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
}

/// Writes `body` as one frame and flushes.
pub(crate) async fn write_frame(
    writer: &mut (impl AsyncWrite + Unpin),
    body: &[u8],
) -> io::Result<()> {
    let mut frame = Vec::with_capacity(LENGTH_BYTES + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    writer.write_all(&frame).await?;
    writer.flush().await
}

/// How a peer introduces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The peer protocol version it speaks.
    pub(crate) version: u8,
    /// Its node id.
    pub(crate) node: NodeId,
    /// The cluster it belongs to.
    pub(crate) cluster_id: String,
    /// Where it accepts peer connections, if it says.
    pub(crate) address: Option<SocketAddr>,
}

impl Hello {
    /// The handshake body.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let cluster = self.cluster_id.as_bytes();
        let cluster = &cluster[..cluster.len().min(255)];
        let address = self.address.map(|address| address.to_string());
        let address = address.as_deref().unwrap_or("").as_bytes();
        let mut body = Vec::with_capacity(15 + cluster.len() + address.len());
        body.extend_from_slice(HELLO_MAGIC);
        body.push(self.version);
        body.extend_from_slice(&self.node.get().to_be_bytes());
        body.push(cluster.len() as u8);
        body.extend_from_slice(cluster);
        // A socket address prints in at most 47 bytes.
        body.push(address.len() as u8);
        body.extend_from_slice(address);
        body
    }

    /// Reads a handshake body; a refusal from the other side comes back
    /// as an error carrying its reason.
    pub(crate) fn decode(body: &[u8]) -> Result<Hello, HandshakeError> {
        if let Some(reason) = body.strip_prefix(REFUSAL_MAGIC) {
            return Err(HandshakeError::RefusedByPeer(
                String::from_utf8_lossy(reason).into_owned(),
            ));
        }
        let Some(rest) = body.strip_prefix(HELLO_MAGIC) else {
            return Err(HandshakeError::BadMagic);
        };
        let [version, rest @ ..] = rest else {
            return Err(HandshakeError::Truncated);
        };
        if *version != PROTOCOL_VERSION {
            // An older hello ends differently: only its version is read,
            // so that the refusal names it.
            return Ok(Hello {
                version: *version,
                node: NodeId(0),
                cluster_id: String::new(),
                address: None,
            });
        }
        let (node, rest) = rest.split_at_checked(8).ok_or(HandshakeError::Truncated)?;
        let node = NodeId(u64::from_be_bytes(node.try_into().expect("eight bytes")));
        let (cluster, rest) = length_prefixed(rest)?;
        let cluster_id =
            String::from_utf8(cluster.to_vec()).map_err(|_| HandshakeError::ClusterIdNotUtf8)?;
        let (address, rest) = length_prefixed(rest)?;
        if !rest.is_empty() {
            return Err(HandshakeError::TrailingBytes);
        }
        let address = if address.is_empty() {
            None
        } else {
            let text = std::str::from_utf8(address).map_err(|_| HandshakeError::BadAddress)?;
            Some(text.parse().map_err(|_| HandshakeError::BadAddress)?)
        };
        Ok(Hello {
            version: *version,
            node,
            cluster_id,
            address,
        })
    }

    /// Checks a peer's hello against what node `own_id` expects: the same
    /// protocol version and cluster, and another node's id. Any other id
    /// is admitted: a member added to the configuration after this node
    /// started, or a leader whose configuration has not reached it yet,
    /// must be heard (the core decides what a sender's messages count
    /// for).
    pub(crate) fn check(&self, cluster_id: &str, own_id: NodeId) -> Result<(), HandshakeError> {
        if self.version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion {
                found: self.version,
                speaks: PROTOCOL_VERSION,
            });
        }
        if self.cluster_id != cluster_id {
            return Err(HandshakeError::OtherCluster {
                found: self.cluster_id.clone(),
                expected: cluster_id.to_owned(),
            });
        }
        if self.node == own_id {
            return Err(HandshakeError::OwnId(self.node));
        }
        Ok(())
    }
}

/// Splits a one-byte length and that many bytes off `bytes`.
fn length_prefixed(bytes: &[u8]) -> Result<(&[u8], &[u8]), HandshakeError> {
    let [length, rest @ ..] = bytes else {
        return Err(HandshakeError::Truncated);
    };
    rest.split_at_checked(usize::from(*length))
        .ok_or(HandshakeError::Truncated)
}

/// The body of a refusal frame.
pub(crate) fn refusal(reason: &HandshakeError) -> Vec<u8> {
    let mut body = REFUSAL_MAGIC.to_vec();
    body.extend_from_slice(reason.to_string().as_bytes());
    body.truncate(MAX_HANDSHAKE_BYTES);
    body
}

fn invalid(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn hello(node: u64, cluster: &str) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            node: NodeId(node),
            cluster_id: cluster.into(),
            address: Some("[::1]:7001".parse().unwrap()),
        }
    }

    #[test]
    fn hello_round_trips_and_is_checked() {
        let sent = hello(3, "prod");
        let received = Hello::decode(&sent.encode()).unwrap();
        assert_eq!(received, sent);
        let anonymous = Hello {
            address: None,
            ..sent.clone()
        };
        assert_eq!(Hello::decode(&anonymous.encode()).unwrap(), anonymous);
        assert!(received.check("prod", NodeId(1)).is_ok());
        assert!(received
            .check("test", NodeId(1))
            .unwrap_err()
            .to_string()
            .contains("cluster"));
        assert!(received
            .check("prod", NodeId(3))
            .unwrap_err()
            .to_string()
            .contains("own id"));
        // A build of the previous protocol is told why it is refused.
        let mut old = hello(3, "prod").encode();
        old[4] = 4;
        let error = Hello::decode(&old)
            .unwrap()
            .check("prod", NodeId(1))
            .unwrap_err();
        assert!(error.to_string().contains("version 4"), "{error}");
    }

    #[test]
    fn garbage_and_refusals_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"KNTK",
            b"KNTK\x05\x00",
            b"GET / HTTP/1.1",
            b"KNTK\x05\0\0\0\0\0\0\0\x01\x09ab",
            b"KNTK\x05\0\0\0\0\0\0\0\x01\x02ab\x03a:1",
            b"KNTK\x05\0\0\0\0\0\0\0\x01\x02ab\x00\x00",
            b"KNTK\x05\0\0\0\0\0\0\0\x01\x02ab",
        ] {
            assert!(Hello::decode(body).is_err(), "{body:?}");
        }
        let reason = HandshakeError::OtherCluster {
            found: "a".into(),
            expected: "b".into(),
        };
        let refused = Hello::decode(&refusal(&reason)).unwrap_err();
        assert_eq!(refused, HandshakeError::RefusedByPeer(reason.to_string()));
    }

    #[test]
    fn a_frame_says_its_kind_first() {
        let mut buffer = Vec::new();
        encode_frame(Kind::SnapshotProgress, &mut buffer, |body| {
            body.extend_from_slice(b"abc")
        });
        assert_eq!(buffer, b"\0\0\0\x04\x03abc");
        let frame = block_on(read_frame(&mut Cursor::new(buffer), 16))
            .unwrap()
            .unwrap();
        assert_eq!(
            Kind::split(&frame),
            Some((Kind::SnapshotProgress, Bytes::from_static(b"abc")))
        );
        assert_eq!(Kind::split(&Bytes::new()), None, "an empty frame");
        assert_eq!(Kind::split(&Bytes::from_static(b"\x04")), None, "no kind 4");
        let mut message = Vec::new();
        let heartbeat = Message::TimeoutNow(kontiki::TimeoutNow {
            term: kontiki::Term(3),
        });
        encode_message_frame(&heartbeat, &mut message);
        let (kind, body) = Kind::split(&Bytes::from(message[4..].to_vec())).unwrap();
        assert_eq!(kind, Kind::Message);
        assert_eq!(kontiki::wire::decode(&body).unwrap(), heartbeat);
    }

    #[test]
    fn frames_are_read_back_and_limits_enforced() {
        let mut stream = Vec::new();
        block_on(write_frame(&mut stream, b"hello")).unwrap();
        block_on(write_frame(&mut stream, b"")).unwrap();
        let mut reader = Cursor::new(stream);
        assert_eq!(
            block_on(read_frame(&mut reader, 16)).unwrap().unwrap(),
            &b"hello"[..]
        );
        assert_eq!(
            block_on(read_frame(&mut reader, 16)).unwrap().unwrap(),
            &b""[..]
        );
        assert!(block_on(read_frame(&mut reader, 16)).unwrap().is_none());

        let oversized = [0u8, 0, 1, 0];
        let error = block_on(read_frame(&mut Cursor::new(oversized), 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let truncated = [0u8, 0, 0, 9, 1, 2];
        let error = block_on(read_frame(&mut Cursor::new(truncated), 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let half_header = [0u8, 0];
        let error = block_on(read_frame(&mut Cursor::new(half_header), 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Reads `bytes`, then fails as TLS does when its peer vanishes
    /// without closing TLS.
    fn vanishing(bytes: &[u8]) -> impl AsyncRead + Unpin + '_ {
        let end = futures::io::AllowStdIo::new(Vanished);
        AsyncReadExt::chain(Cursor::new(bytes), end)
    }

    struct Vanished;

    impl std::io::Read for Vanished {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    #[test]
    fn a_peer_that_vanishes_between_frames_closed_its_connection() {
        let mut stream = Vec::new();
        block_on(write_frame(&mut stream, b"last")).unwrap();
        let mut reader = vanishing(&stream);
        assert_eq!(
            block_on(read_frame(&mut reader, 16)).unwrap().unwrap(),
            &b"last"[..]
        );
        assert!(block_on(read_frame(&mut reader, 16)).unwrap().is_none());
        // Inside a frame it is an error: part of a frame was lost.
        let error = block_on(read_frame(&mut vanishing(&[0, 0]), 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let error = block_on(read_frame(&mut vanishing(&[0, 0, 0, 4, 1]), 16)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}

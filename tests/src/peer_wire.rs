//! Peer-protocol bytes written from WIRE.md's description, not with the
//! driver's own encoder, for the tests that play a stranger on a peer
//! port: if the driver's format drifted from the document, they would
//! notice.

/// The peer protocol version WIRE.md describes.
pub const PROTOCOL_VERSION: u8 = 5;

/// `body` as one frame: its length (4 bytes, big-endian), then itself.
#[must_use]
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A hello frame: magic, `version`, `node`'s id, `cluster`'s id and the
/// advertised `address` (empty for none).
#[must_use]
pub fn hello(node: u64, cluster: &str, version: u8, address: &str) -> Vec<u8> {
    let mut body = b"KNTK".to_vec();
    body.push(version);
    body.extend_from_slice(&node.to_be_bytes());
    body.push(cluster.len() as u8);
    body.extend_from_slice(cluster.as_bytes());
    body.push(address.len() as u8);
    body.extend_from_slice(address.as_bytes());
    frame(&body)
}

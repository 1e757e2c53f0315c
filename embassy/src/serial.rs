//! A Raft peer link over a serial line: kontiki messages in
//! [frames](crate::frame), over any `embedded-io-async` reader and writer
//! (a UART's halves, say).
//!
//! A frame's body is `[format: 1][sender's node id: 8, big-endian][the
//! message in the core's wire format]`. There is no handshake and no
//! connection to lose: a board that restarts simply starts sending, and a
//! receiver that starts in the middle of a frame drops it and reads the
//! next. Messages lost to noise are lost as on any network; Raft resends
//! what matters.

use alloc::vec::Vec;

use embedded_io_async::{ErrorType, Read, Write};
use kontiki::{Message, NodeId};

use crate::frame::{self, Decoder, LinkStats};

/// The frame body's format, its first byte.
const FORMAT: u8 = 1;
/// The bytes before the message: the format and the sender's id.
const HEADER_BYTES: usize = 9;
/// Bytes read from the line at a time.
const CHUNK_BYTES: usize = 64;

/// Why a link stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkError<E> {
    /// The reader or writer failed.
    Io(E),
    /// The reader reached its end (a line that cannot end, such as a
    /// UART, never does).
    Closed,
}

/// One end of a serial link: sends and receives messages.
pub struct SerialLink<R, W> {
    receiver: LinkReceiver<R>,
    sender: LinkSender<W>,
}

impl<R: Read, W: Write> SerialLink<R, W> {
    /// A link reading frames from `reader` and writing to `writer`,
    /// taking messages whose encoding is at most `max_message` bytes
    /// (longer ones are dropped and counted as oversized).
    pub fn new(reader: R, writer: W, max_message: usize) -> SerialLink<R, W> {
        SerialLink {
            receiver: LinkReceiver::new(reader, max_message),
            sender: LinkSender::new(writer),
        }
    }

    /// The reader and writer back.
    pub fn into_parts(self) -> (R, W) {
        (self.receiver.reader, self.sender.writer)
    }

    /// The receiving and the sending half, to be used apart (a task
    /// receiving while another sends).
    pub fn split(self) -> (LinkReceiver<R>, LinkSender<W>) {
        (self.receiver, self.sender)
    }

    /// What the receiving side has seen.
    pub fn stats(&self) -> LinkStats {
        self.receiver.stats()
    }

    /// Sends `message` from node `from`, whole, and flushes.
    pub async fn send(
        &mut self,
        from: NodeId,
        message: &Message,
    ) -> Result<(), LinkError<<W as ErrorType>::Error>> {
        self.sender.send(from, message).await
    }

    /// The next message that arrives intact, with its sender. Frames that
    /// are damaged, too long or do not hold a message are dropped and
    /// counted ([`stats`](SerialLink::stats)).
    pub async fn receive(
        &mut self,
    ) -> Result<(NodeId, Message), LinkError<<R as ErrorType>::Error>> {
        self.receiver.receive().await
    }
}

/// The receiving half of a [`SerialLink`].
pub struct LinkReceiver<R> {
    reader: R,
    decoder: Decoder,
    /// Bytes read from the line and not yet given to the decoder.
    chunk: [u8; CHUNK_BYTES],
    unread: core::ops::Range<usize>,
}

impl<R: Read> LinkReceiver<R> {
    fn new(reader: R, max_message: usize) -> LinkReceiver<R> {
        LinkReceiver {
            reader,
            decoder: Decoder::new(HEADER_BYTES + max_message),
            chunk: [0; CHUNK_BYTES],
            unread: 0..0,
        }
    }

    /// What it has seen.
    pub fn stats(&self) -> LinkStats {
        self.decoder.stats()
    }

    /// The next message that arrives intact, with its sender (see
    /// [`SerialLink::receive`]). A read error is returned as it is; the
    /// receiver can go on after one (a UART reports noise and overruns
    /// as errors, and the frame they hit fails its checksum).
    pub async fn receive(
        &mut self,
    ) -> Result<(NodeId, Message), LinkError<<R as ErrorType>::Error>> {
        loop {
            for at in self.unread.by_ref() {
                let Some(body) = self.decoder.push(self.chunk[at]) else {
                    continue;
                };
                match parse(body) {
                    Some(received) => return Ok(received),
                    None => self.decoder.count_malformed(),
                }
            }
            let read = self
                .reader
                .read(&mut self.chunk)
                .await
                .map_err(LinkError::Io)?;
            if read == 0 {
                return Err(LinkError::Closed);
            }
            self.unread = 0..read;
        }
    }
}

/// The sending half of a [`SerialLink`].
pub struct LinkSender<W> {
    writer: W,
    /// The frame being written, reused from message to message.
    out: Vec<u8>,
    body: Vec<u8>,
}

impl<W: Write> LinkSender<W> {
    fn new(writer: W) -> LinkSender<W> {
        LinkSender {
            writer,
            out: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sends `message` from node `from`, whole, and flushes.
    pub async fn send(
        &mut self,
        from: NodeId,
        message: &Message,
    ) -> Result<(), LinkError<<W as ErrorType>::Error>> {
        self.body.clear();
        self.body.push(FORMAT);
        self.body.extend_from_slice(&from.get().to_be_bytes());
        kontiki::wire::encode(message, &mut self.body);
        self.out.clear();
        frame::encode(&self.body, &mut self.out);
        self.writer
            .write_all(&self.out)
            .await
            .map_err(LinkError::Io)?;
        self.writer.flush().await.map_err(LinkError::Io)
    }
}

/// The sender and message a frame's body holds, if it holds one.
fn parse(body: &[u8]) -> Option<(NodeId, Message)> {
    let (header, message) = body.split_at_checked(HEADER_BYTES)?;
    if header[0] != FORMAT {
        return None;
    }
    let from = NodeId(u64::from_be_bytes(header[1..].try_into().ok()?));
    let message = kontiki::wire::decode(message).ok()?;
    Some((from, message))
}

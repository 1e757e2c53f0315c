//! A snapshot too large for one frame travels as a stream of chunks.
//!
//! The leader's link offers the snapshot (its header: everything but the
//! data, and the data's length), the follower answers how much of it it
//! already holds, and the link sends the rest in chunks of
//! [`TransportConfig::snapshot_chunk_bytes`](crate::TransportConfig), no
//! more than [`TransportConfig::snapshot_window_bytes`](crate::TransportConfig)
//! ahead of the follower's last acknowledgement. Messages queued meanwhile
//! (heartbeats above all) go out between chunks, so they wait for one
//! chunk at most, never for the snapshot. The follower keeps what arrived
//! across connections: after a reconnection the offer is made again and
//! the stream resumes where the follower stands. When the last chunk
//! arrives, the follower's node receives the whole `InstallSnapshot`, as
//! if it had come in one frame.
//!
//! Neither end holds the snapshot in memory: the sending link reads each
//! chunk from its node's snapshot store as it goes, and the receiving
//! node writes each chunk into its own store as it comes.
//!
//! Both ends are plain state here, with no IO but the snapshot stores:
//! the sending link ([`SnapshotSend`]) and the receiving node
//! ([`SnapshotReceive`]); the frames are [`Offer`], [`Chunk`] and
//! [`Progress`] (WIRE.md gives their layout).

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};

use bytes::Bytes;
use kontiki::{InstallSnapshot, LogIndex, Message, NodeId, Term};

use crate::snapshot_store::{SnapshotReader, SnapshotSink, SnapshotStore};

/// Which snapshot a stream carries: the leader's term and the snapshot's
/// position, and its data's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamId {
    pub(crate) term: Term,
    pub(crate) index: LogIndex,
    pub(crate) snapshot_term: Term,
    pub(crate) data_len: u64,
}

impl StreamId {
    fn of(install: &InstallSnapshot, data_len: u64) -> StreamId {
        StreamId {
            term: install.term,
            index: install.snapshot.index,
            snapshot_term: install.snapshot.term,
            data_len,
        }
    }

    /// Whether a chunk or a progress report names this stream.
    fn is_named_by(&self, name: &StreamName) -> bool {
        self.term == name.term
            && self.index == name.index
            && self.snapshot_term == name.snapshot_term
    }

    fn name(&self) -> StreamName {
        StreamName {
            term: self.term,
            index: self.index,
            snapshot_term: self.snapshot_term,
        }
    }
}

/// How chunks and progress reports name their stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamName {
    pub(crate) term: Term,
    pub(crate) index: LogIndex,
    pub(crate) snapshot_term: Term,
}

const NAME_BYTES: usize = 24;

impl StreamName {
    fn encode(&self, body: &mut Vec<u8>) {
        body.extend_from_slice(&self.term.get().to_be_bytes());
        body.extend_from_slice(&self.index.get().to_be_bytes());
        body.extend_from_slice(&self.snapshot_term.get().to_be_bytes());
    }

    fn decode(body: &[u8]) -> Result<(StreamName, &[u8]), StreamError> {
        let (term, rest) = take_u64(body)?;
        let (index, rest) = take_u64(rest)?;
        let (snapshot_term, rest) = take_u64(rest)?;
        Ok((
            StreamName {
                term: Term(term),
                index: LogIndex(index),
                snapshot_term: Term(snapshot_term),
            },
            rest,
        ))
    }
}

/// What is wrong with a stream frame. It costs the connection that sent
/// it, never the receiver's state: what the follower already holds of the
/// snapshot stays, and the stream resumes on the next connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The frame ends early or runs on.
    Malformed(&'static str),
    /// The offer's header is not an InstallSnapshot without data.
    BadHeader(String),
    /// A chunk names no stream this node is receiving from its sender.
    UnknownStream,
    /// A chunk does not start where the received data ends.
    OutOfOrder { expected: u64, found: u64 },
    /// A chunk runs past the snapshot's announced length.
    PastTheEnd,
    /// A chunk's checksum does not match its data.
    BadChecksum,
    /// A progress report the sender cannot make sense of.
    BadProgress,
    /// The receiver's snapshot store failed (what was received of this
    /// snapshot is dropped).
    Storage(String),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Malformed(what) => write!(f, "malformed snapshot stream frame: {what}"),
            StreamError::BadHeader(why) => write!(f, "snapshot offer with a bad header: {why}"),
            StreamError::UnknownStream => f.write_str("snapshot chunk of no stream being received"),
            StreamError::OutOfOrder { expected, found } => {
                write!(f, "snapshot chunk at offset {found}, expected {expected}")
            }
            StreamError::PastTheEnd => f.write_str("snapshot chunk past the snapshot's length"),
            StreamError::BadChecksum => f.write_str("snapshot chunk with a wrong checksum"),
            StreamError::BadProgress => f.write_str("snapshot progress report out of range"),
            StreamError::Storage(error) => write!(f, "storing a snapshot chunk failed: {error}"),
        }
    }
}

impl std::error::Error for StreamError {}

fn take_u64(body: &[u8]) -> Result<(u64, &[u8]), StreamError> {
    let (head, rest) = body
        .split_at_checked(8)
        .ok_or(StreamError::Malformed("truncated"))?;
    Ok((
        u64::from_be_bytes(head.try_into().expect("eight bytes")),
        rest,
    ))
}

fn take_u32(body: &[u8]) -> Result<(u32, &[u8]), StreamError> {
    let (head, rest) = body
        .split_at_checked(4)
        .ok_or(StreamError::Malformed("truncated"))?;
    Ok((
        u32::from_be_bytes(head.try_into().expect("four bytes")),
        rest,
    ))
}

/// The leader's offer: the snapshot's data length and the
/// `InstallSnapshot` message without its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub(crate) data_len: u64,
    /// The wire encoding of the message, its data empty.
    pub(crate) header: Bytes,
}

impl Offer {
    /// Appends the offer's body (after the frame kind).
    pub(crate) fn encode(&self, body: &mut Vec<u8>) {
        body.extend_from_slice(&self.data_len.to_be_bytes());
        body.extend_from_slice(&self.header);
    }

    /// Reads an offer's body.
    pub(crate) fn decode(body: &Bytes) -> Result<Offer, StreamError> {
        let (data_len, _) = take_u64(body)?;
        Ok(Offer {
            data_len,
            header: body.slice(8..),
        })
    }

    /// The message the offer announces, its data still empty, checked as
    /// the core would check it; and the stream it starts.
    fn message(&self) -> Result<(InstallSnapshot, StreamId), StreamError> {
        let message = kontiki::wire::decode_shared(&self.header)
            .map_err(|error| StreamError::BadHeader(error.to_string()))?;
        message
            .validate()
            .map_err(|error| StreamError::BadHeader(error.to_string()))?;
        let Message::InstallSnapshot(install) = message else {
            return Err(StreamError::BadHeader("not an InstallSnapshot".into()));
        };
        if !install.snapshot.data.is_empty() {
            return Err(StreamError::BadHeader("the header carries data".into()));
        }
        let id = StreamId::of(&install, self.data_len);
        Ok((install, id))
    }
}

/// A piece of a snapshot's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) stream: StreamName,
    /// Where in the data the chunk starts.
    pub(crate) offset: u64,
    /// The CRC-32 (IEEE) of `data`.
    pub(crate) checksum: u32,
    pub(crate) data: Bytes,
}

impl Chunk {
    /// Appends the body of a chunk of `data` at `offset` (after the frame
    /// kind), with its checksum.
    pub(crate) fn encode(stream: StreamName, offset: u64, data: &[u8], body: &mut Vec<u8>) {
        stream.encode(body);
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&crc32fast::hash(data).to_be_bytes());
        body.extend_from_slice(data);
    }

    /// Reads a chunk's body; its data is a slice of `body`.
    pub(crate) fn decode(body: &Bytes) -> Result<Chunk, StreamError> {
        let (stream, rest) = StreamName::decode(body)?;
        let (offset, rest) = take_u64(rest)?;
        let (checksum, rest) = take_u32(rest)?;
        let start = body.len() - rest.len();
        Ok(Chunk {
            stream,
            offset,
            checksum,
            data: body.slice(start..),
        })
    }
}

/// The follower's answer to an offer and to each chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) stream: StreamName,
    pub(crate) status: ProgressStatus,
}

/// Where the follower stands on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressStatus {
    /// It holds the data's first `received` bytes.
    Receiving { received: u64 },
    /// It holds the whole snapshot and handed it to its node.
    Complete,
    /// It will not take this snapshot (too large, or a stale leader's).
    Refused,
}

/// The frame body of a progress report is this long.
pub(crate) const PROGRESS_BYTES: usize = NAME_BYTES + 9;

impl Progress {
    /// Appends the report's body (after the frame kind).
    pub(crate) fn encode(&self, body: &mut Vec<u8>) {
        self.stream.encode(body);
        let (status, received) = match self.status {
            ProgressStatus::Receiving { received } => (0, received),
            ProgressStatus::Complete => (1, 0),
            ProgressStatus::Refused => (2, 0),
        };
        body.push(status);
        body.extend_from_slice(&received.to_be_bytes());
    }

    /// Reads a report's body.
    pub(crate) fn decode(body: &[u8]) -> Result<Progress, StreamError> {
        let (stream, rest) = StreamName::decode(body)?;
        let [status, rest @ ..] = rest else {
            return Err(StreamError::Malformed("truncated"));
        };
        let (received, rest) = take_u64(rest)?;
        if !rest.is_empty() {
            return Err(StreamError::Malformed("bytes after the report"));
        }
        let status = match status {
            0 => ProgressStatus::Receiving { received },
            1 if received == 0 => ProgressStatus::Complete,
            2 if received == 0 => ProgressStatus::Refused,
            _ => return Err(StreamError::Malformed("unknown status")),
        };
        Ok(Progress { stream, status })
    }
}

/// How a link streams snapshots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamLimits {
    /// Data bytes per chunk; a snapshot with no more data than this goes
    /// in one frame, as a message.
    pub(crate) chunk_bytes: usize,
    /// Data bytes sent and not yet acknowledged, at most (one chunk more
    /// when a chunk straddles the limit).
    pub(crate) window_bytes: usize,
}

impl StreamLimits {
    /// Whether a snapshot of `data_len` bytes goes as a stream rather than
    /// in one frame.
    pub(crate) fn streams(&self, data_len: u64) -> bool {
        data_len > self.chunk_bytes as u64
    }
}

/// What a link's sending side has to do next for its snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendState {
    /// Offer it on the connection.
    Offer,
    /// Offered; wait for the follower to say where it stands.
    AwaitingProgress,
    /// Send the data from `sent` on; the follower acknowledged `acked`.
    Streaming { acked: u64, sent: u64 },
    /// The follower holds it all.
    Complete,
}

/// A link's snapshot on its way to the peer.
pub(crate) struct SnapshotSend {
    id: StreamId,
    offer: Offer,
    /// The data, read a chunk at a time; `None` once the peer holds it.
    data: Option<Box<dyn SnapshotReader>>,
    /// Where `data` stands.
    position: u64,
    /// The chunk being read (kept for its memory).
    chunk: Vec<u8>,
    state: SendState,
}

impl fmt::Debug for SnapshotSend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotSend")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What the sending side makes of a progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Nothing changes (it names another stream, or says nothing new).
    None,
    /// Room opened: more may go out.
    MayContinue,
    /// The follower holds the whole snapshot.
    Complete,
    /// The follower refused it: stop streaming it.
    Refused,
}

impl SnapshotSend {
    /// A stream of `install`'s snapshot, whose `data_len` bytes of data
    /// `data` reads, to be offered first.
    pub(crate) fn new(
        install: &InstallSnapshot,
        data_len: u64,
        data: Box<dyn SnapshotReader>,
    ) -> SnapshotSend {
        let mut header_only = install.clone();
        header_only.snapshot.data = Bytes::new();
        let mut header = Vec::new();
        kontiki::wire::encode(&Message::InstallSnapshot(header_only), &mut header);
        SnapshotSend {
            id: StreamId::of(install, data_len),
            offer: Offer {
                data_len,
                header: Bytes::from(header),
            },
            data: Some(data),
            position: 0,
            chunk: Vec::new(),
            state: SendState::Offer,
        }
    }

    /// Whether this stream carries `install`'s snapshot, of `data_len`
    /// bytes (a resend of it changes nothing).
    pub(crate) fn carries(&self, install: &InstallSnapshot, data_len: u64) -> bool {
        self.id == StreamId::of(install, data_len)
    }

    /// The leader's term the stream belongs to.
    pub(crate) fn term(&self) -> Term {
        self.id.term
    }

    /// Whether the follower holds it all.
    pub(crate) fn is_complete(&self) -> bool {
        self.state == SendState::Complete
    }

    /// A new connection: offer again (the follower says where to resume).
    pub(crate) fn reconnected(&mut self) {
        if self.state != SendState::Complete {
            self.state = SendState::Offer;
        }
    }

    /// Appends the next frame the stream may send now — the offer, or a
    /// chunk within the window — to `pending` as a whole frame; false when
    /// it waits for the follower. An error is the snapshot store's: the
    /// stream cannot go on.
    pub(crate) fn write_next(
        &mut self,
        limits: StreamLimits,
        pending: &mut Vec<u8>,
    ) -> io::Result<bool> {
        match self.state {
            SendState::Offer => {
                super::frame::encode_frame(super::frame::Kind::SnapshotOffer, pending, |body| {
                    self.offer.encode(body)
                });
                self.state = SendState::AwaitingProgress;
                Ok(true)
            }
            SendState::Streaming { acked, sent } => {
                let total = self.id.data_len;
                let in_flight = sent - acked;
                if sent >= total || in_flight >= limits.window_bytes as u64 {
                    return Ok(false);
                }
                let end = total.min(sent + limits.chunk_bytes.max(1) as u64);
                self.read_chunk(sent, end)?;
                let name = self.id.name();
                let data = &self.chunk;
                super::frame::encode_frame(super::frame::Kind::SnapshotChunk, pending, |body| {
                    Chunk::encode(name, sent, data, body)
                });
                self.state = SendState::Streaming { acked, sent: end };
                Ok(true)
            }
            SendState::AwaitingProgress | SendState::Complete => Ok(false),
        }
    }

    /// Reads the data from `start` to `end` into `chunk`.
    fn read_chunk(&mut self, start: u64, end: u64) -> io::Result<()> {
        let data = self.data.as_mut().ok_or(io::ErrorKind::NotFound)?;
        if self.position != start {
            data.seek(SeekFrom::Start(start))?;
        }
        // Within a chunk's length, which fits the frame limit (a usize).
        let len = usize::try_from(end - start).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.chunk.resize(len, 0);
        self.position = end;
        data.read_exact(&mut self.chunk).inspect_err(|_| {
            // Wherever the failed read left the reader, seek next time.
            self.position = u64::MAX;
        })
    }

    /// Takes the follower's report. A report of a data length the stream
    /// has not reached (or beyond the snapshot) is an error: no follower
    /// that follows the protocol sends it.
    pub(crate) fn on_progress(&mut self, progress: &Progress) -> Result<Reaction, StreamError> {
        if !self.id.is_named_by(&progress.stream) {
            return Ok(Reaction::None);
        }
        match progress.status {
            ProgressStatus::Refused => Ok(Reaction::Refused),
            ProgressStatus::Complete => {
                self.state = SendState::Complete;
                // The file and buffer are no longer needed here.
                self.data = None;
                self.chunk = Vec::new();
                Ok(Reaction::Complete)
            }
            ProgressStatus::Receiving { received } => {
                if received > self.id.data_len {
                    return Err(StreamError::BadProgress);
                }
                match self.state {
                    SendState::AwaitingProgress => {
                        self.state = SendState::Streaming {
                            acked: received,
                            sent: received,
                        };
                        Ok(Reaction::MayContinue)
                    }
                    SendState::Streaming { acked, sent } => {
                        if received > sent {
                            return Err(StreamError::BadProgress);
                        }
                        if received <= acked {
                            return Ok(Reaction::None);
                        }
                        self.state = SendState::Streaming {
                            acked: received,
                            sent,
                        };
                        Ok(Reaction::MayContinue)
                    }
                    // A report from an earlier connection's offer.
                    SendState::Offer | SendState::Complete => Ok(Reaction::None),
                }
            }
        }
    }
}

/// The snapshot a node is receiving, kept across connections.
struct Partial {
    from: NodeId,
    id: StreamId,
    header: InstallSnapshot,
    /// Where the data goes, in the node's snapshot store.
    sink: Box<dyn SnapshotSink>,
    received: u64,
}

/// A node's receiving side: at most one snapshot at a time (a follower
/// takes snapshots from its leader only), kept across connections so that
/// a stream resumes where it broke.
#[derive(Default)]
pub(crate) struct SnapshotReceive {
    partial: Option<Partial>,
}

/// What the receiving side makes of a chunk.
pub(crate) struct Received {
    /// The report to send back.
    pub(crate) progress: Progress,
    /// The whole snapshot, when this chunk completed it.
    pub(crate) complete: Option<Completed>,
}

/// A snapshot received whole: its message, data still empty, and the
/// sink holding the data, to be finished (made durable) before the node
/// hears of it.
pub(crate) struct Completed {
    pub(crate) header: InstallSnapshot,
    pub(crate) sink: Box<dyn SnapshotSink>,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("progress", &self.progress)
            .field(
                "complete",
                &self.complete.as_ref().map(|complete| &complete.header),
            )
            .finish()
    }
}

impl SnapshotReceive {
    /// Answers `from`'s offer: where to resume when this node holds part
    /// of that very snapshot, else from the start (dropping any other
    /// partial snapshot, unless it is a later term's: an offer from a
    /// stale leader is refused, as is one larger than `max_bytes`).
    pub(crate) fn offer(
        &mut self,
        from: NodeId,
        offer: &Offer,
        max_bytes: u64,
        store: &dyn SnapshotStore,
    ) -> Result<Progress, StreamError> {
        let (header, id) = offer.message()?;
        if id.data_len == 0 {
            return Err(StreamError::Malformed(
                "an empty snapshot goes as a message, not a stream",
            ));
        }
        let refused = Progress {
            stream: id.name(),
            status: ProgressStatus::Refused,
        };
        if id.data_len > max_bytes {
            return Ok(refused);
        }
        match &self.partial {
            Some(partial) if partial.from == from && partial.id == id => {
                return Ok(Progress {
                    stream: id.name(),
                    status: ProgressStatus::Receiving {
                        received: partial.received,
                    },
                });
            }
            Some(partial) if partial.id.term > id.term => return Ok(refused),
            _ => {}
        }
        // Any other partial snapshot goes first (its sink, dropped, leaves
        // nothing behind). Nothing is reserved from the announced length:
        // a peer that only announces costs nothing.
        self.partial = None;
        let sink = store
            .create()
            .map_err(|error| StreamError::Storage(error.to_string()))?;
        self.partial = Some(Partial {
            from,
            id,
            header,
            sink,
            received: 0,
        });
        Ok(Progress {
            stream: id.name(),
            status: ProgressStatus::Receiving { received: 0 },
        })
    }

    /// Takes `from`'s chunk. Any error leaves what was received as it
    /// was.
    pub(crate) fn chunk(&mut self, from: NodeId, chunk: &Chunk) -> Result<Received, StreamError> {
        let partial = self
            .partial
            .as_mut()
            .filter(|partial| partial.from == from && partial.id.is_named_by(&chunk.stream))
            .ok_or(StreamError::UnknownStream)?;
        if chunk.data.is_empty() {
            return Err(StreamError::Malformed("an empty chunk"));
        }
        let received = partial.received;
        if chunk.offset != received {
            return Err(StreamError::OutOfOrder {
                expected: received,
                found: chunk.offset,
            });
        }
        let end = received
            .checked_add(chunk.data.len() as u64)
            .filter(|&end| end <= partial.id.data_len)
            .ok_or(StreamError::PastTheEnd)?;
        if crc32fast::hash(&chunk.data) != chunk.checksum {
            return Err(StreamError::BadChecksum);
        }
        if let Err(error) = partial.sink.write_all(&chunk.data) {
            // The sink is in no known state: start over.
            self.partial = None;
            return Err(StreamError::Storage(error.to_string()));
        }
        partial.received = end;
        let stream = partial.id.name();
        if end < partial.id.data_len {
            return Ok(Received {
                progress: Progress {
                    stream,
                    status: ProgressStatus::Receiving { received: end },
                },
                complete: None,
            });
        }
        let Partial { header, sink, .. } = self.partial.take().expect("a partial snapshot");
        Ok(Received {
            progress: Progress {
                stream,
                status: ProgressStatus::Complete,
            },
            complete: Some(Completed { header, sink }),
        })
    }

    /// How many bytes of a snapshot this node holds, received so far.
    #[cfg(test)]
    fn received(&self) -> Option<u64> {
        self.partial.as_ref().map(|partial| partial.received)
    }
}

#[cfg(test)]
#[path = "snapshot_stream_tests.rs"]
mod tests;

//! The TCP transport: peer connections over TCP.
//!
//! Messages to a peer travel on one outbound connection this node dials
//! and keeps (reconnecting with jittered exponential backoff); messages
//! from a peer arrive on the connection the peer dialed. Each direction
//! opens with a handshake. Whatever a connection does wrong — garbage,
//! an oversized or truncated frame, silence, a flood of connections —
//! costs that connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use futures::FutureExt;
use kontiki::NodeId;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tracing::{debug, info, warn, Instrument};

use super::admission::{Admission, AdmissionLimits, Admitted};
use super::frame::{self, Hello, Kind, MAX_HANDSHAKE_BYTES, PROTOCOL_VERSION};
use super::links::{Advertised, Inbound, LinkOpener, PeerLink};
use super::outbound::{self, LinkSide};
use super::snapshot_stream::{Chunk, Completed, Offer, SnapshotReceive, StreamError, StreamLimits};
use super::stream::PeerStream;
use crate::config::TransportConfig;
use crate::error::{HandshakeError, StartError};
use crate::metrics;
use crate::runtime::Runtime;
use crate::shutdown::Shutdown;
use crate::snapshot_store::{store_whole, SnapshotStore};
use crate::sync::lock;
use crate::tls::{self, PeerTls};

/// Everything a link task needs to know about its own node.
#[derive(Clone)]
pub(crate) struct LinkContext<R> {
    pub(crate) runtime: R,
    pub(crate) id: NodeId,
    pub(crate) cluster_id: Arc<str>,
    /// Where this node says peers reach it, in its handshakes.
    pub(crate) advertise: Option<SocketAddr>,
    /// What peers said of their own addresses in their handshakes.
    pub(crate) advertised: Advertised,
    pub(crate) limits: Arc<TransportConfig>,
    pub(crate) shutdown: Shutdown,
    /// The snapshot this node is receiving, whichever connection brings
    /// the rest of it.
    pub(crate) receiving: Arc<std::sync::Mutex<SnapshotReceive>>,
    /// Where the node's snapshots are: read from when sent, written to
    /// when received.
    pub(crate) store: Arc<dyn SnapshotStore>,
    /// The node's TLS: with it, every link is mutually authenticated TLS
    /// and plaintext is refused.
    pub(crate) tls: Option<PeerTls>,
    /// The node's span, which the link tasks carry.
    pub(crate) span: tracing::Span,
}

impl<R: Runtime> LinkContext<R> {
    fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            node: self.id,
            cluster_id: self.cluster_id.to_string(),
            address: self.advertise,
        }
    }

    fn check(&self, hello: &Hello) -> Result<(), HandshakeError> {
        hello.check(&self.cluster_id, self.id)
    }

    /// Opens outbound links: each runs a task that dials its peer and
    /// sends what the node queues, until the node drops the link.
    pub(crate) fn opener(self, seed: u64) -> TcpOpener<R> {
        TcpOpener {
            context: self,
            seed,
        }
    }

    /// Listens on `address`; returns the listener and the address bound.
    pub(crate) async fn bind(
        &self,
        address: SocketAddr,
    ) -> Result<(R::Listener, SocketAddr), StartError> {
        let bind_error = |error| StartError::Bind { address, error };
        let listener = self.runtime.bind(address).await.map_err(bind_error)?;
        let local_addr = R::local_addr(&listener).map_err(bind_error)?;
        Ok((listener, local_addr))
    }

    /// Starts accepting peers on `listener`; messages go to `inbound`.
    pub(crate) fn start_inbound(
        &self,
        listener: R::Listener,
        inbound: async_channel::Sender<Inbound>,
    ) {
        let task = accept_loop(self.clone(), listener, inbound);
        let task = task.instrument(self.span.clone());
        self.runtime.spawn(self.shutdown.clone().stop(task));
    }
}

/// Opens the links of a node on TCP.
pub(crate) struct TcpOpener<R> {
    context: LinkContext<R>,
    seed: u64,
}

impl<R: Runtime> LinkOpener for TcpOpener<R> {
    fn open(&mut self, peer: NodeId, address: Option<SocketAddr>) -> Option<Box<dyn PeerLink>> {
        let address = address?;
        let context = &self.context;
        let limits = StreamLimits {
            chunk_bytes: context.limits.snapshot_chunk_bytes,
            window_bytes: context.limits.snapshot_window_bytes,
        };
        let (node_side, link_side) = outbound::link(
            context.limits.peer_queue_messages,
            limits,
            Arc::clone(&context.store),
        );
        let rng = ChaCha8Rng::seed_from_u64(self.seed ^ peer.get().rotate_left(32));
        let task = run_outbound(context.clone(), peer, address, link_side, rng)
            .instrument(context.span.clone());
        context.runtime.spawn(context.shutdown.clone().stop(task));
        Some(Box::new(node_side))
    }
}

/// Dials `peer` and sends it what is queued, reconnecting with backoff,
/// until the node drops the link (the peer left the configuration, or
/// moved to another address).
async fn run_outbound<R: Runtime>(
    context: LinkContext<R>,
    peer: NodeId,
    address: SocketAddr,
    link: LinkSide<futures::io::WriteHalf<PeerStream<R::Stream>>>,
    mut rng: ChaCha8Rng,
) {
    let mut backoff = context.limits.reconnect_backoff_min;
    let mut failures = 0u32;
    while !link.is_abandoned() {
        match open_outbound(&context, peer, address).await {
            Ok(stream) => {
                info!(%peer, %address, "connected to peer");
                failures = 0;
                backoff = context.limits.reconnect_backoff_min;
                // The peer answers snapshot chunks on this connection.
                let (reader, writer) = stream.split();
                let mut reader = BufReader::new(reader);
                link.connected(writer);
                let sending = link.send_until_closed();
                let receiving = link.receive_progress(peer, &mut reader);
                let ended = match future::select(Box::pin(sending), Box::pin(receiving)).await {
                    Either::Left((ended, _)) | Either::Right((ended, _)) => ended,
                };
                match ended {
                    // The node dropped its link: it is shutting down.
                    Ok(()) => return,
                    Err(error) => info!(%peer, %error, "connection to peer lost"),
                }
            }
            Err(error) => {
                failures += 1;
                // A peer that is down is normal; say so once, then quietly.
                if failures == 1 {
                    info!(%peer, %address, %error, "cannot reach peer; retrying");
                } else {
                    debug!(%peer, %address, %error, failures, "cannot reach peer");
                }
            }
        }
        let wait = jittered(backoff, &mut rng);
        backoff = (backoff * 2).min(context.limits.reconnect_backoff_max);
        link.disconnected();
        let deadline = context.runtime.now() + wait;
        context.runtime.sleep_until(deadline).await;
    }
}

/// A wait of `backoff` ± 50%, so that nodes do not reconnect in lockstep.
fn jittered(backoff: Duration, rng: &mut ChaCha8Rng) -> Duration {
    let micros = backoff.as_micros() as u64;
    let spread = micros.max(2);
    Duration::from_micros(micros / 2 + rng.next_u64() % spread)
}

/// Connects to `peer` and completes the handshake both ways (TLS first,
/// if the node has it).
async fn open_outbound<R: Runtime>(
    context: &LinkContext<R>,
    peer: NodeId,
    address: SocketAddr,
) -> Result<PeerStream<R::Stream>, HandshakeError> {
    let deadline = context.runtime.now() + context.limits.handshake_timeout;
    let handshake = async {
        let stream = context.runtime.connect(address).await?;
        let mut stream = match &context.tls {
            Some(tls) => PeerStream::Tls(Box::new(
                tls.dial(stream, peer).await.map_err(HandshakeError::tls)?,
            )),
            None => PeerStream::Plain(stream),
        };
        frame::write_frame(&mut stream, &context.hello().encode()).await?;
        let reply = frame::read_frame(&mut stream, MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or(HandshakeError::ClosedEarly)?;
        let hello = Hello::decode(&reply)?;
        context.check(&hello)?;
        if hello.node != peer {
            return Err(HandshakeError::UnexpectedNode {
                expected: peer,
                found: hello.node,
                address,
            });
        }
        Ok(stream)
    };
    let timeout = context.runtime.sleep_until(deadline);
    match future::select(Box::pin(handshake), Box::pin(timeout)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(HandshakeError::TimedOut),
    }
}

/// Accepts peer connections, each served by its own task in a place that
/// [`Admission`] gives it.
async fn accept_loop<R: Runtime>(
    context: LinkContext<R>,
    listener: R::Listener,
    inbound: async_channel::Sender<Inbound>,
) {
    let limits = &context.limits;
    let admission = Arc::new(Admission::new(AdmissionLimits {
        pending: limits.max_pending_handshakes,
        pending_per_address: limits.max_pending_per_address,
        established: limits.max_inbound_connections,
    }));
    let mut displacements = DisplacementReport::default();
    loop {
        let (stream, remote) = match R::accept(&listener).await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly.
                warn!(%error, "accepting a peer connection failed");
                let deadline = context.runtime.now() + Duration::from_millis(50);
                context.runtime.sleep_until(deadline).await;
                continue;
            }
        };
        let (Admitted { ticket, displaced }, displaced_another) = admission.arrive(remote.ip());
        if displaced_another {
            metrics::peer_connection_refused(context.id, "displaced");
            displacements.count(context.runtime.now(), remote);
        }
        let serve = serve_inbound(
            context.clone(),
            stream,
            remote,
            inbound.clone(),
            Arc::clone(&admission),
            ticket,
        );
        let admission = Arc::clone(&admission);
        // A displaced connection's task ends here, closing it.
        let task = future::select(Box::pin(serve), displaced)
            .map(move |_| admission.leave(ticket))
            .instrument(context.span.clone());
        context.runtime.spawn(context.shutdown.clone().stop(task));
    }
}

/// Logs connections displaced in their handshake at most once a second,
/// with how many, so that a flood does not flood the log too.
#[derive(Default)]
struct DisplacementReport {
    last: Option<Instant>,
    unreported: u64,
}

impl DisplacementReport {
    fn count(&mut self, now: Instant, latest: SocketAddr) {
        self.unreported += 1;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return;
        }
        warn!(
            displaced = self.unreported,
            %latest,
            "peer connections still in their handshake displaced by newer ones (a flood of connections?)"
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

/// Reads one peer's connection: the handshake, then message frames.
async fn serve_inbound<R: Runtime>(
    context: LinkContext<R>,
    stream: R::Stream,
    remote: SocketAddr,
    inbound: async_channel::Sender<Inbound>,
    admission: Arc<Admission>,
    ticket: u64,
) {
    let establish = |node| {
        admission
            .establish(ticket, node)
            .map_err(HandshakeError::from)
    };
    let (mut reader, peer) = match accept_handshake(&context, stream, establish).await {
        Ok((reader, hello)) => {
            if let Some(address) = hello.address {
                lock(&context.advertised).insert(hello.node, address);
            }
            (reader, hello.node)
        }
        Err(reason) => {
            metrics::peer_connection_refused(context.id, reason.kind());
            warn!(%remote, %reason, "peer connection refused");
            return;
        }
    };
    debug!(%peer, %remote, "peer connected");
    loop {
        let frame = match frame::read_frame(&mut reader, context.limits.max_frame_bytes).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                debug!(%peer, "peer closed its connection");
                return;
            }
            Err(error) => {
                warn!(%peer, %remote, %error, "closing peer connection");
                return;
            }
        };
        let message = match Kind::split(&frame) {
            Some((Kind::Message, body)) => match kontiki::wire::decode_shared(&body) {
                Ok(mut message) => {
                    if let kontiki::Message::InstallSnapshot(install) = &mut message {
                        if let Err(error) = store_snapshot(&context, install).await {
                            warn!(%peer, %error, "storing a snapshot failed; closing peer connection");
                            return;
                        }
                    }
                    message
                }
                Err(error) => {
                    warn!(%peer, %remote, %error, "undecodable message; closing peer connection");
                    return;
                }
            },
            Some((kind @ (Kind::SnapshotOffer | Kind::SnapshotChunk), body)) => {
                match receive_snapshot(&context, peer, kind, &body, &mut reader).await {
                    Ok(Some(message)) => message,
                    Ok(None) => continue,
                    Err(error) => {
                        warn!(%peer, %remote, %error, "closing peer connection");
                        return;
                    }
                }
            }
            Some((Kind::SnapshotProgress, _)) | None => {
                warn!(%peer, %remote, "unexpected frame kind; closing peer connection");
                return;
            }
        };
        if inbound.send((peer, message)).await.is_err() {
            return; // the node stopped
        }
    }
}

/// Writes the data of a snapshot that came in one message into the node's
/// store, off the async threads; the message then carries its reference,
/// as every snapshot inside the node does.
async fn store_snapshot<R: Runtime>(
    context: &LinkContext<R>,
    install: &mut kontiki::InstallSnapshot,
) -> std::io::Result<()> {
    let store = Arc::clone(&context.store);
    let data = std::mem::take(&mut install.snapshot.data);
    let stored = context
        .runtime
        .run_blocking(move || store_whole(&*store, &data))
        .await?;
    install.snapshot.data = stored.encode();
    Ok(())
}

/// Takes a snapshot offer or chunk from `peer` and answers it on the
/// connection; returns the whole snapshot once its last chunk arrived.
/// An error (a malformed, out-of-order or corrupt frame) costs the
/// connection and leaves what was received as it was.
async fn receive_snapshot<R: Runtime>(
    context: &LinkContext<R>,
    peer: NodeId,
    kind: Kind,
    body: &bytes::Bytes,
    reader: &mut BufReader<PeerStream<R::Stream>>,
) -> Result<Option<kontiki::Message>, SnapshotFrameError> {
    let (progress, complete) = {
        let mut snapshots = lock(&context.receiving);
        if kind == Kind::SnapshotOffer {
            let offer = Offer::decode(body)?;
            let progress = snapshots.offer(
                peer,
                &offer,
                context.limits.max_snapshot_bytes,
                &*context.store,
            )?;
            (Some(progress), None)
        } else {
            let chunk = Chunk::decode(body)?;
            match snapshots.chunk(peer, &chunk) {
                Ok(received) => (Some(received.progress), received.complete),
                // A chunk of a stream this node no longer receives (the
                // sender replaced it, or another leader's replaced it
                // here) is dropped: its sender learns where things stand
                // from the answer to its next offer.
                Err(StreamError::UnknownStream) => {
                    debug!(%peer, "snapshot chunk of no stream being received; dropped");
                    (None, None)
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    // The last chunk: the data is made durable before the peer hears it
    // is complete and before the node hears of the snapshot.
    let message = match complete {
        Some(Completed { mut header, sink }) => {
            let stored = context.runtime.run_blocking(move || sink.finish()).await?;
            header.snapshot.data = stored.encode();
            Some(kontiki::Message::InstallSnapshot(header))
        }
        None => None,
    };
    if let Some(progress) = progress {
        let mut answer = vec![Kind::SnapshotProgress as u8];
        progress.encode(&mut answer);
        frame::write_frame(reader.get_mut(), &answer).await?;
    }
    Ok(message)
}

/// Why a snapshot frame closed the connection.
#[derive(Debug, thiserror::Error)]
enum SnapshotFrameError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("answering a snapshot frame failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Within the handshake timeout: accepts TLS, if the node has it, then
/// reads and checks the peer's hello — with TLS, its certificate must
/// name the node the hello claims — has `establish` give the connection
/// its place as that node, and answers with ours (or a refusal carrying
/// the reason).
async fn accept_handshake<R: Runtime>(
    context: &LinkContext<R>,
    stream: R::Stream,
    establish: impl FnOnce(NodeId) -> Result<(), HandshakeError>,
) -> Result<(BufReader<PeerStream<R::Stream>>, Hello), HandshakeError> {
    let deadline = context.runtime.now() + context.limits.handshake_timeout;
    let timeout = context.runtime.sleep_until(deadline);
    let handshake = async {
        let stream = match &context.tls {
            Some(tls) => PeerStream::Tls(Box::new(
                tls.accept(stream).await.map_err(HandshakeError::tls)?,
            )),
            None => PeerStream::Plain(stream),
        };
        let mut reader = BufReader::new(stream);
        let body = frame::read_frame(&mut reader, MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or(HandshakeError::ClosedEarly)?;
        Ok::<_, HandshakeError>((reader, body))
    };
    let (mut reader, body) = match future::select(Box::pin(handshake), Box::pin(timeout)).await {
        Either::Left((result, _)) => result?,
        Either::Right(((), _)) => return Err(HandshakeError::TimedOut),
    };
    let checked = Hello::decode(&body).and_then(|hello| {
        context.check(&hello)?;
        if let PeerStream::Tls(stream) = reader.get_ref() {
            if !tls::certifies(stream, hello.node) {
                return Err(HandshakeError::NotCertified(hello.node));
            }
        }
        establish(hello.node)?;
        Ok(hello)
    });
    let stream = reader.get_mut();
    match checked {
        Ok(hello) => {
            frame::write_frame(stream, &context.hello().encode()).await?;
            Ok((reader, hello))
        }
        Err(reason) => {
            // Closing ends TLS properly (close_notify), so the peer reads
            // the refusal rather than a truncated stream.
            let _ = frame::write_frame(stream, &frame::refusal(&reason)).await;
            let _ = stream.close().await;
            Err(reason)
        }
    }
}

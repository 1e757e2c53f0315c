//! A runtime whose network is in-process: the driver's real peer links,
//! framing and wire format, over in-memory pipes instead of TCP. T1 of
//! The T1 benchmark runs on it, and tests can use it to leave the kernel out.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::channel::mpsc;
use futures::lock::Mutex as AsyncMutex;
use futures::StreamExt;
use kontiki_driver::Runtime;
use tokio::io::DuplexStream;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// Bytes a pipe buffers each way before the writer waits.
const PIPE_BYTES: usize = 1 << 20;

type Incoming = (Compat<DuplexStream>, SocketAddr);

/// `R`'s clock, timers, tasks and blocking pool, with connections made of
/// in-memory pipes (`tokio::io::duplex`, which needs no tokio runtime).
/// Clones share one address space.
#[derive(Clone)]
pub struct InProcess<R> {
    inner: R,
    listeners: Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Incoming>>>>,
}

impl<R> InProcess<R> {
    /// `inner` with an in-process network.
    pub fn new(inner: R) -> InProcess<R> {
        InProcess {
            inner,
            listeners: Arc::default(),
        }
    }
}

/// A bound in-process address.
pub struct InProcessListener {
    address: SocketAddr,
    incoming: AsyncMutex<mpsc::UnboundedReceiver<Incoming>>,
}

// Like the adapters: the returned futures must not borrow `self`.
#[allow(clippy::manual_async_fn)]
impl<R: Runtime> Runtime for InProcess<R> {
    type Stream = Compat<DuplexStream>;
    type Listener = InProcessListener;

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        self.inner.sleep_until(deadline)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.spawn(task);
    }

    fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        self.inner.run_blocking(work)
    }

    fn connect(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static {
        let listener = self
            .listeners
            .lock()
            .expect("listener table")
            .get(&address)
            .cloned();
        async move {
            let listener = listener.ok_or(io::ErrorKind::ConnectionRefused)?;
            let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
            let remote = SocketAddr::from(([127, 0, 0, 1], 0));
            listener
                .unbounded_send((theirs.compat(), remote))
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(ours.compat())
        }
    }

    fn bind(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send + 'static {
        let (sender, incoming) = mpsc::unbounded();
        let mut listeners = self.listeners.lock().expect("listener table");
        let result = match listeners.entry(address) {
            Entry::Occupied(_) => Err(io::Error::from(io::ErrorKind::AddrInUse)),
            Entry::Vacant(vacant) => {
                vacant.insert(sender);
                Ok(InProcessListener {
                    address,
                    incoming: AsyncMutex::new(incoming),
                })
            }
        };
        std::future::ready(result)
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        Ok(listener.address)
    }

    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_ {
        async move {
            let mut incoming = listener.incoming.lock().await;
            incoming
                .next()
                .await
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
        }
    }
}

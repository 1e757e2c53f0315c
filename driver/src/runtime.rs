//! The little an async runtime must provide: a clock, timers, tasks, a
//! blocking pool and TCP. Each adapter crate implements [`Runtime`] once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};

/// An async runtime, as the driver sees it.
///
/// Implementations are cheap handles (`Clone`); every future they return
/// is `Send + 'static` so the driver can run it on any task.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP stream (with `TCP_NODELAY` set by the runtime).
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;

    /// The runtime's monotonic clock.
    fn now(&self) -> Instant;

    /// Completes at or after `deadline`. The driver checks the clock when
    /// it completes, so firing early is harmless.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;

    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// Runs `work`, which may block the thread (disk IO), off the async
    /// threads, and completes with its result.
    fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static;

    /// Opens a TCP connection to `address`, with `TCP_NODELAY`.
    fn connect(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// Binds a TCP listener to `address`.
    fn bind(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send + 'static;

    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Accepts the next connection on `listener`, with `TCP_NODELAY`.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_;
}

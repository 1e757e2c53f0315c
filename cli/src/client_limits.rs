//! Limits on the client port, so that no client, and no crowd of them,
//! can take a node's memory or file descriptors:
//! - **At most `max_clients` connections** at once. One more is answered
//!   `-ERR max number of clients reached` and closed, as Redis answers.
//!   The limit is kept below the process's file limit (raised to its hard
//!   limit at start), with room for the peer links and the store's files,
//!   so accepting never fails for want of a descriptor.
//! - **An idle timeout** (off unless set): a connection that sends nothing
//!   for that long is closed, as Redis's `timeout`.
//! - **A bounded reply buffer**: a connection's replies are written out
//!   whenever they pass [`FLUSH_REPLIES_AT`] bytes, before more of its
//!   requests run; a client that does not take a write for
//!   [`STALLED_WRITE`] is cut off rather than buffered for without end.
//!   With the request limit, a connection holds at most a request, this
//!   buffer and one reply.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use kontiki_driver::Runtime;

/// The reply `max_clients + 1`th connection gets.
pub const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// Replies are written out once a batch's pass this many bytes.
pub const FLUSH_REPLIES_AT: usize = 1024 * 1024;

/// A client whose socket takes no byte of a pending write for this long
/// is cut off.
pub const STALLED_WRITE: Duration = Duration::from_secs(30);

/// The default limit on client connections, Redis's `maxclients`.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// File descriptors kept back from clients: the listeners, the peer links
/// (two per peer at most), the store's database and snapshot files, the
/// log and some slack.
fn reserved_descriptors(peers: usize) -> u64 {
    64 + 2 * peers as u64
}

/// The client port's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Connections at once.
    pub max_clients: usize,
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
}

impl ClientLimits {
    /// `requested` connections at most, lowered to fit under the process's
    /// file limit (first raised to its hard limit) with room for `peers`
    /// peer links; the second value says why it was lowered, if it was.
    pub fn fitted(
        requested: usize,
        peers: usize,
        idle_timeout: Option<Duration>,
    ) -> (ClientLimits, Option<String>) {
        // Raising the soft limit to the hard one is what the hard limit is
        // for; if it cannot be read (not a Unix), trust the request.
        let file_limit = rlimit::increase_nofile_limit(u64::MAX).ok();
        let room = file_limit.map(|limit| limit.saturating_sub(reserved_descriptors(peers)));
        let max_clients = match room {
            Some(room) if (requested as u64) > room => room as usize,
            _ => requested,
        };
        let lowered = (max_clients < requested).then(|| {
            format!(
                "--max-clients {requested} lowered to {max_clients}: the process may open {} files",
                file_limit.unwrap_or_default()
            )
        });
        let limits = ClientLimits {
            max_clients,
            idle_timeout,
        };
        (limits, lowered)
    }
}

/// The connections open now, and the refusals logged.
#[derive(Debug, Default)]
pub struct OpenClients {
    count: AtomicUsize,
    refusals: Mutex<Refusals>,
}

/// Refused connections since the last log line: a flood logs one line a
/// second, not one per connection.
#[derive(Debug, Default)]
struct Refusals {
    since_logged: u64,
    logged_at: Option<Instant>,
}

/// A connection's place among the open ones, given back when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    clients: Arc<OpenClients>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.clients.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OpenClients {
    /// A place for one more connection, if fewer than `max` are open; a
    /// refusal is counted and logged (at most once a second).
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<ClientSlot> {
        let admitted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok();
        if admitted {
            return Some(ClientSlot {
                clients: Arc::clone(self),
            });
        }
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        refusals.since_logged += 1;
        let now = Instant::now();
        if refusals
            .logged_at
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            tracing::warn!(
                refused = refusals.since_logged,
                max_clients = max,
                "client connections refused: max number of clients reached"
            );
            refusals.since_logged = 0;
            refusals.logged_at = Some(now);
        }
        None
    }

    /// The connections open now.
    pub fn open(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// `work`, unless `limit` passes first (then `None`).
pub async fn within<R: Runtime, T>(
    runtime: &R,
    limit: Duration,
    work: impl Future<Output = T>,
) -> Option<T> {
    let deadline = runtime.sleep_until(runtime.now() + limit);
    let work = std::pin::pin!(work);
    let deadline = std::pin::pin!(deadline);
    match select(work, deadline).await {
        Either::Left((done, _)) => Some(done),
        Either::Right(((), _)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_past_the_limit_are_refused_until_one_closes() {
        let clients = Arc::new(OpenClients::default());
        let first = clients.admit(2).expect("room for two");
        let _second = clients.admit(2).expect("room for two");
        assert!(clients.admit(2).is_none());
        assert_eq!(clients.open(), 2);
        drop(first);
        assert!(clients.admit(2).is_some(), "a closed one makes room");
    }

    #[test]
    fn the_limit_fits_under_the_file_limit() {
        let (limits, lowered) = ClientLimits::fitted(usize::MAX / 2, 3, None);
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(limits.max_clients as u64 <= soft - reserved_descriptors(3));
        assert!(lowered.unwrap().contains("lowered"));
        let (limits, lowered) = ClientLimits::fitted(10, 3, Some(Duration::from_secs(5)));
        assert_eq!(limits.max_clients, 10);
        assert_eq!(limits.idle_timeout, Some(Duration::from_secs(5)));
        assert!(lowered.is_none());
    }
}

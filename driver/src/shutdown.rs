//! One signal that stops every task of a node.

use std::future::Future;

use futures::future::{self, FutureExt, Shared};

/// A clonable view of the node's stop signal.
#[derive(Clone)]
pub(crate) struct Shutdown {
    signal: Shared<oneshot::Receiver<()>>,
}

/// Fires the signal when dropped (or when the node stops on purpose).
pub(crate) struct ShutdownTrigger {
    _sender: oneshot::Sender<()>,
}

/// A new signal and its trigger.
pub(crate) fn shutdown_signal() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = oneshot::channel();
    (
        ShutdownTrigger { _sender: sender },
        Shutdown {
            signal: receiver.shared(),
        },
    )
}

impl Shutdown {
    /// Runs `task` until it completes or the node stops, whichever is first.
    pub(crate) async fn stop(self, task: impl Future<Output = ()> + Send + 'static) {
        let _ = future::select(Box::pin(task), self.signal).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn dropping_the_trigger_stops_every_task() {
        let (trigger, shutdown) = shutdown_signal();
        let never = future::pending::<()>();
        let stopped = shutdown.clone().stop(never);
        drop(trigger);
        block_on(stopped);
        block_on(shutdown.stop(future::pending()));
    }
}

//! An in-process network: nodes in one process that hand each other the
//! core's messages through channels, with no sockets, framing or encoding.
//!
//! It is for tests, examples and benchmarks of a whole cluster in one
//! process, and for applications that embed several replicas in one
//! process on purpose. Nodes on TCP and nodes on a [`LocalNetwork`] cannot
//! reach each other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kontiki::NodeId;

use crate::transport::Inbound;

/// A set of nodes in this process that reach each other by id. Clones
/// share one network. Start nodes on it with
/// [`start_local`](crate::start_local).
#[derive(Clone, Default)]
pub struct LocalNetwork {
    /// Each running node's inbox: the channel its task reads messages
    /// from, the same one that TCP connections feed.
    inboxes: Arc<Mutex<BTreeMap<NodeId, async_channel::Sender<Inbound>>>>,
}

impl LocalNetwork {
    /// An empty network.
    #[must_use]
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// Makes `inbox` the way to reach `node`. A node that stopped (its
    /// inbox closed) may be replaced by a restarted one; a running one
    /// may not.
    pub(crate) fn join(
        &self,
        node: NodeId,
        inbox: async_channel::Sender<Inbound>,
    ) -> Result<(), String> {
        let mut inboxes = self.inboxes.lock().expect("local network lock");
        if inboxes
            .get(&node)
            .is_some_and(|running| !running.is_closed())
        {
            return Err(format!("node {node} is already running on this network"));
        }
        inboxes.insert(node, inbox);
        Ok(())
    }

    /// The inbox of `node`, if it has joined and has not stopped.
    pub(crate) fn inbox(&self, node: NodeId) -> Option<async_channel::Sender<Inbound>> {
        let inboxes = self.inboxes.lock().expect("local network lock");
        inboxes
            .get(&node)
            .filter(|inbox| !inbox.is_closed())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> NodeId {
        NodeId(id)
    }

    #[test]
    fn a_running_node_cannot_be_replaced_but_a_stopped_one_can() {
        let network = LocalNetwork::new();
        let (first, first_inbox) = async_channel::bounded(4);
        network.join(node(1), first).expect("joins");
        let (second, _second_inbox) = async_channel::bounded(4);
        assert!(network.join(node(1), second.clone()).is_err());
        assert!(network.inbox(node(1)).is_some());
        drop(first_inbox);
        assert!(network.inbox(node(1)).is_none(), "a stopped node is gone");
        network.join(node(1), second).expect("a restart joins");
        assert!(network.inbox(node(1)).is_some());
        assert!(network.inbox(node(2)).is_none());
    }
}

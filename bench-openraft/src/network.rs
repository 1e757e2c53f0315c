//! The network: each call goes straight into the target node's `Raft`
//! handle, with no encoding, as openraft's own cluster benchmark does.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::{NodeId, Raft, TypeConfig};

/// Every node of the cluster, set once they all exist.
pub type Routes = Arc<OnceLock<BTreeMap<NodeId, Raft>>>;

/// Hands out connections over `Routes`.
#[derive(Clone)]
pub struct Network {
    routes: Routes,
}

impl Network {
    /// A network over `routes`.
    pub fn new(routes: &Routes) -> Network {
        Network {
            routes: Arc::clone(routes),
        }
    }
}

/// One node's way to another.
pub struct Connection {
    target: NodeId,
    routes: Routes,
}

impl Connection {
    fn target(&self) -> &Raft {
        &self
            .routes
            .get()
            .expect("every node exists before the first call")[&self.target]
    }

    fn remote<E: std::error::Error>(&self, error: E) -> RPCError<NodeId, (), E> {
        RPCError::RemoteError(RemoteError::new(self.target, error))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &()) -> Connection {
        Connection {
            target,
            routes: Arc::clone(&self.routes),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, (), RaftError<NodeId>>> {
        self.target()
            .append_entries(request)
            .await
            .map_err(|error| self.remote(error))
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, (), RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.target()
            .install_snapshot(request)
            .await
            .map_err(|error| self.remote(error))
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, (), RaftError<NodeId>>> {
        self.target()
            .vote(request)
            .await
            .map_err(|error| self.remote(error))
    }
}

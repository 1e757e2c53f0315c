//! Redis Cluster's discovery commands, describing a kontiki cluster as
//! one shard that owns all 16,384 slots, its leader the master and the
//! other members its replicas: `CLUSTER SLOTS`, `SHARDS`, `NODES`,
//! `INFO` and `MYID`. Cluster-aware clients (redis-py's `RedisCluster`,
//! `redis-cli -c`, ...) read them to find the leader, follow `-MOVED`
//! after a failover, and ask again. While no leader is known the cluster
//! is down: `-CLUSTERDOWN`.

use std::net::SocketAddr;

use bytes::Bytes;
use kontiki::NodeId;

use crate::resp::Replies;

/// The last slot: Redis Cluster hashes keys into 16,384 slots.
const LAST_SLOT: i64 = 16_383;

/// A `CLUSTER` subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterQuery {
    /// `CLUSTER SLOTS`.
    Slots,
    /// `CLUSTER SHARDS`.
    Shards,
    /// `CLUSTER NODES`.
    Nodes,
    /// `CLUSTER INFO`.
    Info,
    /// `CLUSTER MYID`.
    MyId,
}

/// Parses `CLUSTER <subcommand>`; the error is the reply without `-`.
pub fn parse(rest: &[Bytes]) -> Result<ClusterQuery, String> {
    let [sub] = rest else {
        return Err(match rest.first() {
            None => "ERR wrong number of arguments for 'cluster' command".into(),
            Some(sub) => unknown(sub),
        });
    };
    match sub.to_ascii_lowercase().as_slice() {
        b"slots" => Ok(ClusterQuery::Slots),
        b"shards" => Ok(ClusterQuery::Shards),
        b"nodes" => Ok(ClusterQuery::Nodes),
        b"info" => Ok(ClusterQuery::Info),
        b"myid" => Ok(ClusterQuery::MyId),
        _ => Err(unknown(sub)),
    }
}

fn unknown(sub: &[u8]) -> String {
    format!(
        "ERR unknown subcommand '{}'. This server knows CLUSTER SLOTS, SHARDS, NODES, INFO and MYID.",
        String::from_utf8_lossy(sub)
    )
}

/// One member, as the cluster commands show it.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    /// Its Raft id.
    pub id: NodeId,
    /// Where it serves clients.
    pub client: SocketAddr,
    /// Where its peers reach it, shown as the cluster bus address.
    pub peer: Option<SocketAddr>,
}

/// The cluster as this node sees it.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// This node.
    pub me: NodeId,
    /// The current term, shown as the configuration epoch.
    pub term: u64,
    /// The leader, if one is known.
    pub leader: Option<NodeId>,
    /// The members whose client address is known, this node among them
    /// when it has one.
    pub nodes: Vec<ClusterNode>,
}

/// A node's 40-character name, as Redis Cluster names nodes: its Raft id
/// in hexadecimal.
pub fn node_name(id: NodeId) -> String {
    format!("{:040x}", id.get())
}

impl ClusterView {
    /// The leader, when it is known and its client address too.
    fn master(&self) -> Option<&ClusterNode> {
        let leader = self.leader?;
        self.nodes.iter().find(|node| node.id == leader)
    }

    fn replicas(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes
            .iter()
            .filter(move |node| Some(node.id) != self.leader)
    }

    /// Answers `query`.
    pub fn answer(&self, query: ClusterQuery, replies: &mut Replies) {
        let Some(master) = self.master() else {
            match query {
                ClusterQuery::MyId => replies.bulk(node_name(self.me).as_bytes()),
                ClusterQuery::Info => replies.bulk(self.info("fail").as_bytes()),
                _ => replies.error("CLUSTERDOWN The cluster is down: no leader is known yet"),
            }
            return;
        };
        match query {
            ClusterQuery::MyId => replies.bulk(node_name(self.me).as_bytes()),
            ClusterQuery::Info => replies.bulk(self.info("ok").as_bytes()),
            ClusterQuery::Slots => {
                let replicas: Vec<&ClusterNode> = self.replicas().collect();
                replies.array(1);
                replies.array(3 + replicas.len());
                replies.integer(0);
                replies.integer(LAST_SLOT);
                for node in std::iter::once(master).chain(replicas) {
                    replies.array(3);
                    replies.bulk(node.client.ip().to_string().as_bytes());
                    replies.integer(i64::from(node.client.port()));
                    replies.bulk(node_name(node.id).as_bytes());
                }
            }
            ClusterQuery::Shards => {
                replies.array(1);
                replies.map(2);
                replies.bulk(b"slots");
                replies.array(2);
                replies.integer(0);
                replies.integer(LAST_SLOT);
                replies.bulk(b"nodes");
                let nodes: Vec<&ClusterNode> =
                    std::iter::once(master).chain(self.replicas()).collect();
                replies.array(nodes.len());
                for node in nodes {
                    let role: &[u8] = if node.id == master.id {
                        b"master"
                    } else {
                        b"replica"
                    };
                    replies.map(6);
                    replies.bulk(b"id");
                    replies.bulk(node_name(node.id).as_bytes());
                    replies.bulk(b"port");
                    replies.integer(i64::from(node.client.port()));
                    replies.bulk(b"ip");
                    replies.bulk(node.client.ip().to_string().as_bytes());
                    replies.bulk(b"endpoint");
                    replies.bulk(node.client.ip().to_string().as_bytes());
                    replies.bulk(b"role");
                    replies.bulk(role);
                    replies.bulk(b"health");
                    replies.bulk(b"online");
                }
            }
            ClusterQuery::Nodes => replies.bulk(self.nodes_text(master).as_bytes()),
        }
    }

    /// `CLUSTER NODES`: a line per node.
    fn nodes_text(&self, master: &ClusterNode) -> String {
        let mut text = String::new();
        for node in std::iter::once(master).chain(self.replicas()) {
            let bus_port = node.peer.map_or(0, |peer| peer.port());
            let mut flags = String::new();
            if node.id == self.me {
                flags.push_str("myself,");
            }
            let (role, of, slots) = if node.id == master.id {
                ("master", "-".to_string(), format!(" 0-{LAST_SLOT}"))
            } else {
                ("slave", node_name(master.id), String::new())
            };
            flags.push_str(role);
            text.push_str(&format!(
                "{} {}@{bus_port} {flags} {of} 0 0 {} connected{slots}\n",
                node_name(node.id),
                node.client,
                self.term,
            ));
        }
        text
    }

    /// `CLUSTER INFO`, in `state`.
    fn info(&self, state: &str) -> String {
        let assigned = if state == "ok" { LAST_SLOT + 1 } else { 0 };
        format!(
            "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\n\
             cluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n\
             cluster_known_nodes:{}\r\ncluster_size:1\r\ncluster_current_epoch:{term}\r\n\
             cluster_my_epoch:{term}\r\n",
            self.nodes.len(),
            term = self.term,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(leader: Option<u64>) -> ClusterView {
        let node = |id: u64| ClusterNode {
            id: NodeId(id),
            client: format!("127.0.0.1:{}", 6000 + id).parse().unwrap(),
            peer: Some(format!("127.0.0.1:{}", 7000 + id).parse().unwrap()),
        };
        ClusterView {
            me: NodeId(2),
            term: 7,
            leader: leader.map(NodeId),
            nodes: vec![node(1), node(2), node(3)],
        }
    }

    fn answered(view: &ClusterView, query: ClusterQuery) -> String {
        let mut replies = Replies::new();
        view.answer(query, &mut replies);
        String::from_utf8(replies.take().to_vec()).unwrap()
    }

    #[test]
    fn one_shard_owns_every_slot_with_the_leader_first() {
        let view = view(Some(3));
        let slots = answered(&view, ClusterQuery::Slots);
        assert!(
            slots.starts_with(&format!(
                "*1\r\n*5\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:6003\r\n$40\r\n{}\r\n",
                node_name(NodeId(3))
            )),
            "{slots}"
        );
        let nodes = answered(&view, ClusterQuery::Nodes);
        let lines: Vec<&str> = nodes.lines().skip(1).collect();
        assert!(lines[0].contains(" 127.0.0.1:6003@7003 master - 0 0 7 connected 0-16383"));
        assert!(lines[1].contains(" 127.0.0.1:6001@7001 slave "));
        assert!(lines[2].contains(" myself,slave "), "{nodes}");
        let shards = answered(&view, ClusterQuery::Shards);
        assert!(shards.contains("$6\r\nmaster\r\n") && shards.contains("$7\r\nreplica\r\n"));
        assert!(answered(&view, ClusterQuery::Info).contains("cluster_state:ok"));
        assert!(answered(&view, ClusterQuery::MyId).contains(&node_name(NodeId(2))));
    }

    #[test]
    fn without_a_leader_the_cluster_is_down() {
        let view = view(None);
        for query in [
            ClusterQuery::Slots,
            ClusterQuery::Shards,
            ClusterQuery::Nodes,
        ] {
            assert!(answered(&view, query).starts_with("-CLUSTERDOWN"));
        }
        assert!(answered(&view, ClusterQuery::Info).contains("cluster_state:fail"));
        assert!(answered(&view, ClusterQuery::MyId).starts_with("$40\r\n"));
    }

    #[test]
    fn subcommands_parse_and_others_are_named() {
        assert_eq!(
            parse(&[Bytes::from_static(b"Slots")]),
            Ok(ClusterQuery::Slots)
        );
        assert!(parse(&[Bytes::from_static(b"addslots")])
            .unwrap_err()
            .contains("unknown subcommand"));
        assert!(parse(&[]).unwrap_err().contains("wrong number"));
        assert!(parse(&[Bytes::from_static(b"nodes"), Bytes::new()]).is_err());
    }
}

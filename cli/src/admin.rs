//! `kontiki member` and `kontiki transfer`: change a running cluster
//! through any node's client port (the request is redirected to the
//! leader), with the `RAFT.NODE` and `RAFT.TRANSFER_LEADER` commands.

use crate::client::{request_leader, Access, Reply};

/// What to change.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Add a learner.
    Add {
        /// Its id.
        id: u64,
        /// Its peer address.
        peer: String,
        /// Its client address.
        client: Option<String>,
    },
    /// Make a learner a voter.
    Promote(u64),
    /// Remove a member.
    Remove(u64),
    /// List the members.
    List,
    /// Hand the leadership to a voter.
    Transfer(u64),
}

/// Performs `action` through the node whose client address is `node`;
/// returns what to print, or the node's refusal.
pub fn run(access: &Access, node: &str, action: &Action) -> Result<String, String> {
    let (id, rest);
    let command: Vec<&str> = match action {
        Action::Add {
            id: new,
            peer,
            client,
        } => {
            id = new.to_string();
            rest = client.clone();
            let mut command = vec!["RAFT.NODE", "ADD", &id, peer];
            command.extend(rest.as_deref());
            command
        }
        Action::Promote(member) => {
            id = member.to_string();
            vec!["RAFT.NODE", "PROMOTE", &id]
        }
        Action::Remove(member) => {
            id = member.to_string();
            vec!["RAFT.NODE", "REMOVE", &id]
        }
        Action::List => vec!["RAFT.NODE", "LIST"],
        Action::Transfer(target) => {
            id = target.to_string();
            vec!["RAFT.TRANSFER_LEADER", &id]
        }
    };
    // A list is the configuration the node asked holds: any node answers.
    let reply = if *action == Action::List {
        crate::client::request(access, crate::settings::resolve("--node", node)?, &command)?
    } else {
        request_leader(access, node, &command)?
    };
    match reply {
        Reply::Simple(text) => Ok(text),
        Reply::Array(members) => Ok(members
            .into_iter()
            .filter_map(|member| match member {
                Reply::Bulk(Some(line)) => Some(line),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")),
        Reply::Error(error) => Err(error),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

//! # kontiki-driver — the kontiki Raft core on any async runtime
//!
//! The driver owns one [`kontiki::Node`] and performs what it asks for:
//! it arms the timer, makes persist outputs durable through a [`Storage`]
//! before performing any send or apply that follows them, carries messages
//! to peers over TCP, applies committed entries to the application's
//! [`StateMachine`] and answers proposers. It is written once on the
//! `futures` crate; an adapter crate (`kontiki-tokio`, `kontiki-smol`,
//! `kontiki-async-std`) supplies a [`Runtime`] — clock, timers, tasks,
//! TCP — and re-exports this API.
//!
//! Nodes can also run in one process on a [`LocalNetwork`]
//! ([`start_local`]): the core's messages then travel through in-process
//! channels, without sockets or encoding — for tests, examples and
//! benchmarks of whole clusters.
//!
//! Batching is built in: the node handles every request and message that
//! is already waiting before it performs outputs, so concurrent proposals
//! share one durable write and one AppendEntries per follower.
//!
//! The peer protocol (framing and handshake) is described in `frame`'s
//! documentation and in the repository's WIRE.md.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
#[cfg(feature = "disk")]
mod disk;
mod event_loop;
mod frame;
mod handle;
mod local;
mod outbound;
mod runtime;
mod shutdown;
mod start;
mod storage;
mod transport;
mod waiters;

pub use config::{NodeConfig, TransportConfig};
#[cfg(feature = "disk")]
pub use disk::DiskStorage;
pub use frame::{HandshakeError, Hello, PROTOCOL_VERSION};
pub use handle::{Handle, LeaderChange, ProposeError, SnapshotEncoder, StateMachine, Status};
pub use local::LocalNetwork;
pub use runtime::Runtime;
pub use start::{start, start_local, StartError};
pub use storage::{MemoryStorage, Storage};

pub use bytes::Bytes;
pub use kontiki;

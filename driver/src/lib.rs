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
//! The peer protocol (framing and handshake) is described in the
//! repository's WIRE.md.
//!
//! ## Storage
//!
//! A [`Storage`] performs the core's writes ([`kontiki::Persist`]) in
//! order, each batch as one durable group commit, and loads what they
//! left behind. What each write means is [`kontiki::PersistedState::apply`],
//! and a store must load exactly what applying the same writes gives —
//! [`MemoryStorage`] does it in memory, [`WalStorage`] in an append-only
//! log file (the store [`open_data_dir`] gives a new data directory), and
//! `DiskStorage` (feature `disk`, on by default) in the redb file of
//! earlier releases:
//!
//! ```
//! use kontiki_driver::kontiki::{Entry, HardState, LogIndex, NodeId, Persist, PersistedState, Term};
//! use kontiki_driver::{MemoryStorage, Storage};
//!
//! let mut store = MemoryStorage::new();
//! let writes = [
//!     Persist::HardState(HardState { term: Term(2), voted_for: Some(NodeId(1)), ..HardState::default() }),
//!     Persist::Entries(vec![Entry::command(LogIndex(1), Term(2), &b"x"[..])]),
//!     Persist::Entries(vec![Entry::command(LogIndex(2), Term(2), &b"y"[..])]),
//!     Persist::TruncateLog { from: LogIndex(2) },
//! ];
//! store.write(&writes)?; // durable when it returns
//! let mut expected = PersistedState::default();
//! for write in &writes {
//!     expected.apply(write.clone())?;
//! }
//! assert_eq!(store.load()?, expected);
//! assert_eq!(expected.last_index(), LogIndex(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running a node takes a [`Runtime`]: the adapter crates supply one, and
//! their front pages show a cluster at work.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod config;
mod data_dir;
#[cfg(feature = "disk")]
mod disk;
mod error;
mod event_loop;
mod handle;
mod loopback;
mod membership;
mod metrics;
mod numbered_files;
mod round;
mod runtime;
mod shutdown;
mod snapshot_files;
mod snapshot_store;
mod start;
mod storage;
mod sync;
pub mod tls;
mod transport;
mod waiters;
mod wal;
mod writer;

pub use config::{NodeConfig, TransportConfig};
pub use data_dir::open_data_dir;
#[cfg(feature = "disk")]
pub use disk::DiskStorage;
pub use error::{ChangeError, ProposeError, ReadError, StartError, TransferError};
pub use handle::{Handle, LeaderChange, Member, MemberRole, SnapshotWriter, StateMachine, Status};
pub use loopback::unused_loopback_address;
pub use runtime::Runtime;
pub use snapshot_files::FileSnapshots;
pub use snapshot_store::{
    MemorySnapshots, SnapshotReader, SnapshotRef, SnapshotSink, SnapshotStore,
};
pub use start::{start, start_local};
pub use storage::{MemoryStorage, Storage};
pub use tls::{PeerTls, ServerTls, TlsError, TlsFiles, TlsPem};
pub use transport::local::LocalNetwork;
pub use wal::{WalOptions, WalStorage};

pub use bytes::Bytes;
pub use kontiki;

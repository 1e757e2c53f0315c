//! What the `kontiki` command is made of, as a library so that its
//! parsers can be fuzzed and tested on their own: the Redis-protocol
//! server of `kontiki node` and its key-value store, the demo, the status
//! probe and the settings.
//!
//! A connection's bytes become commands through
//! [`server::take_requests`], which keeps whatever is not yet a whole
//! request for the next read:
//!
//! ```
//! use bytes::BytesMut;
//! use kontiki_cli::commands::{Command, Read};
//! use kontiki_cli::server::{take_requests, Next};
//!
//! // A pipelined PING and GET, and half of a third request.
//! let mut received = BytesMut::from(&b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI"[..]);
//! let (requests, next) = take_requests(&mut received);
//! assert!(matches!(next, Next::Continue));
//! assert_eq!(requests, vec![Ok(Command::Ping(None)), Ok(Command::Read(Read::Get("k".into())))]);
//! assert_eq!(&received[..], b"*1\r\n$4\r\nPI", "kept for the next read");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod cert;
pub mod client;
pub mod client_limits;
pub mod cluster;
pub mod collection_commands;
pub mod collections;
pub mod command_table;
pub mod commands;
pub mod data;
pub mod demo;
pub mod entry;
pub mod expiry;
pub mod fields;
pub mod glob;
pub mod kv;
pub mod metrics_endpoint;
pub mod node;
pub mod read;
pub mod reply;
pub mod resp;
pub mod server;
pub mod session;
pub mod settings;
pub mod snapshot_format;
pub mod status;
pub mod store_commands;
pub mod write;

//! What the `kontiki` command is made of, as a library so that its
//! parsers can be fuzzed and tested on their own: the Redis-protocol
//! server of `kontiki node` and its key-value store, the demo, the status
//! probe and the settings.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commands;
pub mod demo;
pub mod kv;
pub mod node;
pub mod resp;
pub mod server;
pub mod settings;
pub mod status;

//! # kontiki-embassy — kontiki on microcontrollers
//!
//! The pieces that carry the `no_std` kontiki core from one board to
//! another. So far:
//!
//! - [`frame`]: frames on a raw byte stream, delimited so that a receiver
//!   finds the next one after any line noise, and checksummed so that a
//!   damaged one is dropped and counted, never decoded;
//! - [`serial`]: a Raft peer link over a serial line — kontiki messages in
//!   those frames, over any `embedded-io-async` reader and writer (a
//!   UART's halves);
//! - [`board`]: a node on a board — the core, its links, its flash and
//!   the application's state machine, run as one future with
//!   `embassy-time` and `embassy-sync`;
//! - [`flash`]: a node's stable storage on NOR flash, through any
//!   `embedded-storage` driver — wear spread over the whole range, and
//!   nothing acknowledged lost to a reset at any moment — with a NOR flash
//!   model in memory, power cuts included, for tests and emulators.
//!
//! The crate is `no_std` with `alloc`, as the core is, and builds for any
//! Cortex-M target.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod board;
pub mod flash;
pub mod frame;
pub mod serial;

pub use flash::{FlashError, FlashStats, FlashStorage, MemoryFlash};
pub use frame::LinkStats;
pub use serial::{LinkError, LinkReceiver, LinkSender, SerialLink};

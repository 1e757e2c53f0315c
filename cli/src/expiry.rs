//! The clock behind key expiry, and the task that expires keys nobody
//! reads.
//!
//! Every write a node proposes is stamped with its clock
//! ([`wall_clock`]); the store's replicated clock is the latest stamp
//! applied, and a key expires when that clock reaches its time (see
//! [`crate::data`]). So that keys go at their time even when no one
//! writes, the leader proposes a tick — an entry with nothing but its
//! stamp — once a key is due by its clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kontiki::Role;
use kontiki_driver::{Handle, Runtime};

use crate::entry::Entry;
use crate::kv::{KvStateMachine, Store};
use crate::write::Write;

/// How often the leader looks for keys whose time has come. Reads do not
/// wait for it (one that finds a key due asks for a tick itself); it only
/// bounds how long an expired key nobody reads holds memory.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// This machine's clock, in milliseconds since the Unix epoch: the stamp
/// of the entries this node proposes (the replicated clock never goes
/// back, whatever this one does).
pub fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The tick entry, stamped `now`.
pub fn tick(now: u64) -> bytes::Bytes {
    Entry::encode(&Write::Tick, now)
}

/// While the node of `handle` leads, proposes a tick whenever a key of
/// `store` is due by its clock; runs until the process ends.
pub async fn expire_due_keys<R: Runtime>(runtime: R, handle: Handle<KvStateMachine>, store: Store) {
    loop {
        runtime.sleep_until(runtime.now() + CHECK_EVERY).await;
        let now = wall_clock();
        let due = store.lock().next_expiry().is_some_and(|at| at <= now);
        if due && handle.status().role == Role::Leader {
            // Refused if the leadership has just gone: the next leader
            // ticks.
            let _ = handle.propose(tick(now)).await;
        }
    }
}

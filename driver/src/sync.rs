//! The driver's one policy on poisoned locks.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock
//! in the driver guards plain data that each holder leaves consistent at
//! every step (a status copy, a list of watchers, a socket's write buffer,
//! a map of inboxes, an in-memory store whose writes are all-or-nothing
//! per entry), so a panic elsewhere cannot leave it half-changed: the
//! driver takes the data back and goes on, instead of turning one panic
//! into a cascade across every task that shares the lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering the data if a panicking holder poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_poisoned_lock_still_yields_its_data() {
        let shared = Arc::new(Mutex::new(7));
        let poisoner = Arc::clone(&shared);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(shared.is_poisoned());
        assert_eq!(*lock(&shared), 7);
    }
}

//! Locks that a panic does not poison for everyone else.
//!
//! A standard lock whose holder panicked refuses every later taker. What
//! mqtrigger guards with locks (counts, maps of tasks, queues of waiting
//! turns) stays usable after such a panic, and one mapping's panic must not
//! stop the others, so every lock is taken through [`Unpoisoned`]: the one
//! place this rule is written.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Takes a lock even if a thread panicked while holding it.
pub trait Unpoisoned<T: ?Sized> {
    type Guard<'a>
    where
        Self: 'a;

    /// The guard, whether or not the lock was poisoned.
    fn locked(&self) -> Self::Guard<'_>;
}

impl<T: ?Sized> Unpoisoned<T> for Mutex<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        T: 'a;

    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The same for a read-write lock, for readers and for the writer.
pub trait UnpoisonedRw<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> UnpoisonedRw<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_whose_holder_panicked_is_still_taken() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let held = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("the holder panics");
        })
        .join();
        assert!(m.is_poisoned());
        *m.locked() += 1;
        assert_eq!(*m.locked(), 2);
    }
}

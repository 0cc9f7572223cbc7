//! A mailbox that holds only the newest value: the engine never queues
//! samples for a UI that cannot keep up (a terminal nobody reads), it
//! replaces the one waiting.

use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
pub struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(Arc::clone(&self.0))
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Arc::new(Mutex::new(None)))
    }
}

impl<T> Slot<T> {
    /// Puts `value` in, dropping any older one; true when the slot was
    /// empty (the reader has taken the last one and needs waking).
    pub fn put(&self, value: T) -> bool {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        v.replace(value).is_none()
    }

    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_only_the_newest_value_and_says_when_to_wake_the_reader() {
        let slot = Slot::default();
        assert!(slot.put(1), "empty: wake the reader");
        assert!(!slot.put(2), "not taken yet: no second wake-up");
        assert!(!slot.put(3));
        assert_eq!(slot.take(), Some(3));
        assert_eq!(slot.take(), None);
        assert!(slot.put(4));
    }
}

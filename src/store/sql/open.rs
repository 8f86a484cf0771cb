//! Which tasks have a transaction open, so that a second one in the same
//! task fails at once instead of waiting forever: on SQLite an outer
//! transaction holding the writer would never let an inner one (or a write
//! on the store) through. Services compose by passing the open transaction
//! down (`&dyn Transaction`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::store::{StoreError, StoreResult};

/// Where code runs: a tokio task, or (outside one, as in `block_on`) a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

fn here() -> Place {
    match tokio::task::try_id() {
        Some(id) => Place::Task(id),
        None => Place::Thread(std::thread::current().id()),
    }
}

/// The places that have a transaction of one store open.
#[derive(Debug, Default)]
pub(crate) struct OpenTransactions(Mutex<HashSet<Place>>);

impl OpenTransactions {
    fn places(&self) -> std::sync::MutexGuard<'_, HashSet<Place>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a transaction opened here; fails if one is open here already.
    pub(crate) fn open(self: &Arc<Self>) -> StoreResult<OpenGuard> {
        let place = here();
        if !self.places().insert(place) {
            return Err(StoreError::NestedTransaction);
        }
        Ok(OpenGuard {
            set: self.clone(),
            place,
        })
    }

    pub(crate) fn is_open_here(&self) -> bool {
        self.places().contains(&here())
    }
}

/// Held by a transaction; forgets it when the transaction ends.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    set: Arc<OpenTransactions>,
    place: Place,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.set.places().remove(&self.place);
    }
}

//! A request's place among its organization's work in progress, and giving
//! it back while the request only waits.
//!
//! The HTTP layer admits at most `http.tenant_concurrency` units of one
//! organization's SCIM work at once (`http::limits::TenantGate`), so that
//! one tenant cannot fill the workers. A request that only waits — for its
//! writes to commit, or for a resource another request of its organization
//! is writing — uses no worker and no CPU; holding its place then would
//! only keep its organization's next requests out of the group commit it is
//! waiting for. So such waits run inside [`waiting`] or
//! [`waiting_for_commit`]: the place is given back for that time and taken
//! again (without a time limit: the work is under way) before the request
//! goes on.
//!
//! Taking the place again must never wait on a request that holds a place
//! and waits for something the first one holds, or the two would wait for
//! each other for ever. So:
//! - whatever a request may hold while taking its place again (a SCIM
//!   resource's lock, `scim::service::ResourceLocks`) is only ever waited
//!   for inside [`waiting`], which gives the whole place back first,
//!   whatever the request weighs;
//! - nothing held across either is waited for with a place: SQLite's writer
//!   and a transaction's connection are never held across them (only a
//!   transaction that only writes waits for its commit this way, and it
//!   holds neither).
//!
//! A commit waits for nothing a request with a place could hold, so there a
//! request that weighs more than one unit (a large body, a Bulk request)
//! keeps its place ([`waiting_for_commit`]): it still holds the memory its
//! weight stands for, and giving it back would let the organization's next
//! heavy request in beside it.
//!
//! Outside [`within`] (a test calling a service directly, a background
//! job) there is no place, and [`waiting`] only waits.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static PLACE: RefCell<Option<Place>>;
}

/// A place taken at an organization's gate.
struct Place {
    gate: Arc<Semaphore>,
    /// `None` while given back.
    permit: Option<OwnedSemaphorePermit>,
}

/// Runs `fut` (a request) with room for the place [`hold`] records; the
/// place is given back when `fut` ends.
pub async fn within<F: Future>(fut: F) -> F::Output {
    PLACE.scope(RefCell::new(None), fut).await
}

/// Records the current request's place: `permit`, taken from `gate`.
/// Outside [`within`] the permit comes back, for the caller to keep for as
/// long as its work lasts.
#[must_use = "outside a request the permit comes back and must be kept"]
pub fn hold(gate: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
    let mut permit = Some(permit);
    let _ = PLACE.try_with(|p| {
        *p.borrow_mut() = Some(Place {
            gate,
            permit: permit.take(),
        })
    });
    permit
}

/// Whether the current request holds its place (for tests).
pub fn holds_place() -> bool {
    PLACE
        .try_with(|p| p.borrow().as_ref().is_some_and(|p| p.permit.is_some()))
        .unwrap_or(false)
}

/// Awaits `fut` with the current request's whole place given back, and
/// takes it again before returning. For waits on what another request of
/// the organization may hold while it takes its own place again.
pub async fn waiting<F: Future>(fut: F) -> F::Output {
    given_back_while(fut, usize::MAX).await
}

/// Awaits the request's own commit: as [`waiting`], but a request that
/// weighs more than one unit keeps its place.
pub async fn waiting_for_commit<F: Future>(fut: F) -> F::Output {
    given_back_while(fut, 1).await
}

/// Awaits `fut` with the place given back if it weighs at most `heaviest`.
async fn given_back_while<F: Future>(fut: F, heaviest: usize) -> F::Output {
    let given_back = PLACE
        .try_with(|p| {
            let mut place = p.borrow_mut();
            let place = place.as_mut()?;
            let permit = place
                .permit
                .take_if(|permit| permit.num_permits() <= heaviest)?;
            Some((place.gate.clone(), permit.num_permits() as u32))
        })
        .ok()
        .flatten();
    let out = fut.await;
    if let Some((gate, weight)) = given_back
        && let Ok(permit) = gate.acquire_many_owned(weight).await
    {
        let _ = PLACE.try_with(|p| {
            if let Some(place) = p.borrow_mut().as_mut() {
                place.permit = Some(permit);
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_request_gives_its_place_back_and_takes_it_again() {
        let gate = Arc::new(Semaphore::new(1));
        within(async {
            let kept = hold(gate.clone(), gate.clone().try_acquire_owned().unwrap());
            assert!(kept.is_none() && holds_place());
            assert_eq!(gate.available_permits(), 0);
            waiting(async {
                assert!(!holds_place());
                // Another request of the organization gets in meanwhile.
                let other = gate.clone().try_acquire_owned();
                assert!(other.is_ok(), "the place was given back");
            })
            .await;
            assert!(holds_place(), "taken again before going on");
            assert_eq!(gate.available_permits(), 0);
        })
        .await;
        assert_eq!(gate.available_permits(), 1, "given back at the end");
    }

    #[tokio::test]
    async fn a_place_is_taken_again_only_when_one_is_free() {
        let gate = Arc::new(Semaphore::new(1));
        let taken = gate.clone().try_acquire_owned().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<OwnedSemaphorePermit>();
        let request = tokio::spawn({
            let gate = gate.clone();
            within(async move {
                assert!(hold(gate.clone(), taken).is_none());
                waiting(async {
                    // While it waits, another request takes the place.
                    tx.send(gate.clone().try_acquire_owned().unwrap()).unwrap();
                })
                .await;
                holds_place()
            })
        });
        let other = rx.await.unwrap();
        tokio::task::yield_now().await;
        assert!(!request.is_finished(), "waits for a free place");
        drop(other);
        assert!(request.await.unwrap());
        assert_eq!(gate.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_heavy_request_keeps_its_place_while_it_waits() {
        let gate = Arc::new(Semaphore::new(16));
        within(async {
            let big = gate.clone().try_acquire_many_owned(16).unwrap();
            assert!(hold(gate.clone(), big).is_none());
            waiting_for_commit(async {
                assert!(holds_place(), "its body is still in memory");
                assert_eq!(gate.available_permits(), 0);
            })
            .await;
        })
        .await;
        assert_eq!(gate.available_permits(), 16);
    }

    #[tokio::test]
    async fn a_heavy_request_waiting_for_a_resource_gives_its_whole_place_back() {
        let gate = Arc::new(Semaphore::new(16));
        within(async {
            let big = gate.clone().try_acquire_many_owned(16).unwrap();
            assert!(hold(gate.clone(), big).is_none());
            waiting(async {
                assert!(!holds_place());
                assert_eq!(gate.available_permits(), 16);
            })
            .await;
            assert!(holds_place(), "all sixteen taken again");
            assert_eq!(gate.available_permits(), 0);
        })
        .await;
        assert_eq!(gate.available_permits(), 16);
    }

    #[tokio::test]
    async fn without_a_request_waiting_only_waits() {
        assert!(!holds_place());
        assert_eq!(waiting(async { 7 }).await, 7);
        let gate = Arc::new(Semaphore::new(1));
        let kept = hold(gate.clone(), gate.clone().try_acquire_owned().unwrap());
        assert!(kept.is_some(), "outside a request the caller keeps it");
        assert_eq!(gate.available_permits(), 0);
    }
}

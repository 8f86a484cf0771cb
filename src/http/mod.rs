//! What every HTTP feature shares: the application state, extractors,
//! middleware, error mapping, health and metrics endpoints.

pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod scim;

use std::sync::Arc;

use crate::config::Config;
use crate::invitations::InvitationService;
use crate::scim::ScimService;
use crate::store::DynStore;
use crate::tenancy::TenancyService;

/// Shared by every handler (as `web::Data<AppState>`).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub tenancy: TenancyService,
    pub scim: ScimService,
    pub invitations: InvitationService,
    /// Rate limits of the public join pages, shared by all workers.
    pub join_limits: Arc<crate::join::JoinLimits>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// `wake` is this process's outbox worker, when it runs one.
    pub fn new(config: Config, store: DynStore, wake: Option<Arc<tokio::sync::Notify>>) -> Self {
        let tenancy = TenancyService::new(store.clone()).caching(std::time::Duration::from_millis(
            config.http.tenancy_cache_ms,
        ));
        let mut invitations = InvitationService::new(
            store.clone(),
            config.http.public_url.as_str(),
            &config.mail.from,
        )
        .with_org_cache(tenancy.org_cache());
        if let Some(w) = wake {
            invitations = invitations.waking(w);
        }
        let scim = ScimService::new(store.clone(), config.http.public_url.as_str())
            .with_hook(Arc::new(invitations.clone()));
        AppState {
            scim,
            invitations,
            join_limits: Arc::new(crate::join::JoinLimits::default()),
            config: Arc::new(config),
            tenancy,
            store,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

//! What every HTTP feature shares: the application state, extractors,
//! middleware, error mapping, health and metrics endpoints.

pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod scim;

use std::sync::Arc;

use crate::config::Config;
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
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(config: Config, store: DynStore) -> Self {
        let scim = ScimService::new(store.clone(), config.http.public_url.as_str());
        AppState {
            scim,
            config: Arc::new(config),
            tenancy: TenancyService::new(store.clone()),
            store,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

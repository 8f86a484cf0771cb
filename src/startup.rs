//! Building and running the server: `Application::build` connects and
//! migrates the database, builds each feature's services and binds the
//! listeners (port 0 picks a free port); `run` serves until the shutdown
//! future resolves, lets in-flight requests finish, then closes the pool.
//!
//! This is the one place features are wired: each mounts itself with its
//! own `configure` and state.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::accounts::{MembershipSubscriber, StoredAccounts};
use crate::config::Config;
use crate::http::error::problem;
use crate::http::health::{self, HealthState};
use crate::http::limits::TenantGate;
use crate::http::metrics::Metrics;
use crate::http::middleware::{self, BodyLimit};
use crate::http::paths;
use crate::invitations::pages::{self as join_pages, JoinPages};
use crate::invitations::{InvitationMailCompletion, InvitationService, MAIL_KIND};
use crate::mail::outbox::{OutboxSettings, OutboxWorker};
use crate::mail::{self, Mailer};
use crate::oidc::SsoService;
use crate::registration::{RegistrationPages, RegistrationService};
use crate::scim::{self, ScimService, ScimSettings};
use crate::secrets::password::Passwords;
use crate::secrets::sealed::SealingKey;
use crate::store::{self, DynStore};
use crate::tenancy::TenancyService;

/// The services of one running server, for tests and the CLI.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub tenancy: TenancyService,
    pub scim: ScimService,
    pub invitations: InvitationService,
    pub sso: SsoService,
    pub registration: RegistrationService,
    pub metrics: web::Data<Metrics>,
}

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
    services: Services,
    worker: Option<OutboxWorker>,
}

impl Application {
    /// Connects, migrates, binds. Nothing is served until [`run`](Self::run).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = store::sql::connect(&config.database)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database {}",
                    redact_url(&config.database.url)
                )
            })?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        Self::build_with_store(config, store).await
    }

    /// As [`build`](Self::build), on an already-open store, with the mailer
    /// `mail.*` configures.
    pub async fn build_with_store(config: Config, store: DynStore) -> anyhow::Result<Application> {
        let mailer = mail::from_config(&config.mail).context("cannot set up mail delivery")?;
        Self::build_with_parts(config, store, mailer).await
    }

    /// As [`build`](Self::build), with a given mailer (tests pass an in-memory one).
    pub async fn build_with_parts(
        config: Config,
        store: DynStore,
        mailer: Arc<dyn Mailer>,
    ) -> anyhow::Result<Application> {
        let outbox = &config.mail.outbox;
        let worker = outbox.enabled.then(|| {
            let settings = OutboxSettings {
                lease: Duration::from_secs(outbox.lease_secs),
                poll: Duration::from_millis(outbox.poll_interval_ms.max(10)),
                concurrency: outbox.concurrency,
                max_attempts: outbox.max_attempts,
                base_backoff: Duration::from_millis(outbox.retry_base_ms.max(1)),
                max_defer: Duration::from_millis(outbox.max_defer_ms),
                ..OutboxSettings::default()
            };
            OutboxWorker::new(store.clone(), mailer, settings)
                .completing(MAIL_KIND, Arc::new(InvitationMailCompletion))
        });
        let services = Services::new(config, store, worker.as_ref().map(OutboxWorker::waker))?;
        let http = &services.config.http;
        let listener = TcpListener::bind(http.bind)
            .with_context(|| format!("cannot listen on {}", http.bind))?;
        let port = listener.local_addr()?.port();
        let separate_metrics = services.config.metrics.bind;
        let server = serve(&services, listener, separate_metrics.is_none())?;
        let (metrics_server, metrics_port) = match separate_metrics {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (metrics.bind)"))?;
                let port = listener.local_addr()?.port();
                (Some(serve_metrics(&services, listener)?), Some(port))
            }
            None => (None, None),
        };
        Ok(Application {
            port,
            metrics_port,
            server,
            metrics_server,
            services,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when it has a listener of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` resolves; then stops accepting, waits for
    /// in-flight requests (up to `http.shutdown_timeout_secs`) and closes the pool.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics_server.as_ref().map(Server::handle);
        let (stop_tasks, tasks_stopped) = watch::channel(false);
        let worker = self
            .worker
            .map(|w| tokio::spawn(w.run(tasks_stopped.clone())));
        let housekeeping = tokio::spawn(crate::housekeeping::run(
            self.services.store.clone(),
            Duration::from_secs(60),
            tasks_stopped,
        ));
        let metrics_server = self.metrics_server.map(tokio::spawn);
        let stopper = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            if let Some(h) = metrics_handle {
                h.stop(true).await;
            }
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        let _ = stop_tasks.send(true);
        if let Some(m) = metrics_server {
            m.abort();
        }
        if let Some(w) = worker {
            // The worker finishes the round it is in; its leases expire if it cannot.
            let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), housekeeping).await;
        tokio::time::timeout(Duration::from_secs(10), self.services.store.close())
            .await
            .ok();
        tracing::info!("stopped");
        served.context("the HTTP server failed")
    }
}

impl Services {
    /// Every feature's services; `wake` is this process's outbox worker,
    /// when it runs one.
    pub fn new(
        config: Config,
        store: DynStore,
        wake: Option<Arc<tokio::sync::Notify>>,
    ) -> anyhow::Result<Self> {
        let tenancy = TenancyService::new(store.clone())
            .caching(Duration::from_millis(config.http.tenancy_cache_ms));
        let mut invitations = InvitationService::new(
            store.clone(),
            config.http.public_url.as_str(),
            &config.mail.from,
        )
        .with_org_cache(tenancy.org_cache());
        if let Some(w) = wake {
            invitations = invitations.waking(w);
        }
        let passwords = Passwords::bounded(
            config.security.password_hash_concurrency,
            config.security.password_hashes_per_org_per_second,
        );
        let scim = ScimService::new(
            store.clone(),
            config.http.public_url.as_str(),
            passwords.clone(),
        )
        // Memberships first: their writes join the change's first
        // statement on PostgreSQL; the invitation's mail and links lock rows
        // in the agreed order and go alone after it.
        .with_subscriber(Arc::new(MembershipSubscriber))
        .with_subscriber(Arc::new(invitations.clone()));
        let key = SealingKey::load(config.sso.secret_key.expose_secret(), &config.sso.key_file)
            .context(
                "cannot load the key that seals SSO client secrets (sso.secret_key, sso.key_file)",
            )?;
        let key = Arc::new(key);
        let sso = SsoService::new(store.clone(), key.clone(), config.http.public_url.as_str())
            .context("cannot set up the OpenID Connect client")?;
        let registration = RegistrationService::new(
            store.clone(),
            StoredAccounts::shared(store.clone()),
            invitations.clone(),
            passwords,
            key,
            time::Duration::hours(i64::from(config.sso.session_hours)),
        );
        Ok(Services {
            config: Arc::new(config),
            store,
            tenancy,
            scim,
            invitations,
            sso,
            registration,
            metrics: web::Data::new(Metrics::new()),
        })
    }
}

/// The main HTTP server: every feature, and `/metrics` when `with_metrics`.
fn serve(services: &Services, listener: TcpListener, with_metrics: bool) -> anyhow::Result<Server> {
    let http = &services.config.http;
    let body_limit = http.body_limit;
    let health = HealthState {
        store: services.store.clone(),
        metrics: services.metrics.clone(),
        metrics_token: metrics_token(&services.config),
    };
    let scim = services.scim.clone();
    let scim_settings = ScimSettings {
        public_url: http.public_url.as_str().to_string(),
    };
    let secure = http.public_url.as_str().starts_with("https://");
    let join = JoinPages::new(services.invitations.clone(), secure);
    let registration = RegistrationPages::new(
        services.registration.clone(),
        services.sso.clone(),
        services.invitations.clone(),
        services.store.clone(),
        secure,
        services.config.security.sign_ins_per_client_per_minute,
    );
    let tenancy = web::Data::new(services.tenancy.clone());
    let gate = web::Data::new(TenantGate::new(
        http.tenant_concurrency,
        Duration::from_millis(http.tenant_queue_ms),
    ));
    let metrics = services.metrics.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .app_data(tenancy.clone())
            .app_data(gate.clone())
            .app_data(web::Data::new(BodyLimit(body_limit)))
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::JsonConfig::default().limit(body_limit))
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .wrap(from_fn(paths::normalize))
            .wrap(from_fn(middleware::observe))
            .configure(|c| health::configure(c, &health, with_metrics))
            .configure(|c| scim::configure(c, &scim, &scim_settings))
            .configure(|c| crate::registration::pages::configure(c, &registration))
            .configure(|c| join_pages::configure(c, &join))
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(http.shutdown_timeout_secs);
    if http.workers > 0 {
        server = server.workers(http.workers);
    }
    Ok(server.run())
}

/// `/metrics` on a listener of its own (`metrics.bind`).
fn serve_metrics(services: &Services, listener: TcpListener) -> anyhow::Result<Server> {
    let health = HealthState {
        store: services.store.clone(),
        metrics: services.metrics.clone(),
        metrics_token: metrics_token(&services.config),
    };
    Ok(HttpServer::new(move || {
        App::new()
            .configure(|c| health::configure(c, &health, true))
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run())
}

fn metrics_token(config: &Config) -> Option<secrecy::SecretString> {
    let token = &config.metrics.token;
    (!token.expose_secret().is_empty()).then(|| token.clone())
}

async fn not_found() -> HttpResponse {
    problem(StatusCode::NOT_FOUND, "Not Found", "no such endpoint")
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_passwords_are_redacted_in_messages() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("sqlite://data/onramp.db"),
            "sqlite://data/onramp.db"
        );
    }
}

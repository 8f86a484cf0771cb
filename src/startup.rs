//! Building and running the server: `Application::build` connects and
//! migrates the database and binds the listener (port 0 picks a free port);
//! `run` serves until the shutdown future resolves, lets in-flight requests
//! finish, then closes the pool.

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::http::error::json_error;
use crate::http::{AppState, health, middleware};
use crate::invitations::outbox::{OutboxSettings, OutboxWorker};
use crate::mail::{self, Mailer};
use crate::scim;
use crate::store::{self, DynStore};

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
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
        });
        let listener = TcpListener::bind(config.http.bind)
            .with_context(|| format!("cannot listen on {}", config.http.bind))?;
        let port = listener.local_addr()?.port();
        let state = AppState::new(config, store, worker.as_ref().map(OutboxWorker::waker));
        let http = &state.config.http;
        let app_state = state.clone();
        let body_limit = http.body_limit;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(web::JsonConfig::default().limit(body_limit))
                .wrap(from_fn(middleware::observe))
                .configure(health::configure)
                .configure(scim::configure)
                .configure(crate::join::configure)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(http.shutdown_timeout_secs);
        if http.workers > 0 {
            server = server.workers(http.workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            state,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, waits for
    /// in-flight requests (up to `http.shutdown_timeout_secs`) and closes the pool.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let (stop_worker, worker_stopped) = watch::channel(false);
        let worker = self.worker.map(|w| tokio::spawn(w.run(worker_stopped)));
        let stopper = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        let _ = stop_worker.send(true);
        if let Some(w) = worker {
            // The worker finishes the round it is in; its leases expire if it cannot.
            let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
        }
        tokio::time::timeout(Duration::from_secs(10), self.state.store.close())
            .await
            .ok();
        tracing::info!("stopped");
        served.context("the HTTP server failed")
    }
}

async fn not_found() -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
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

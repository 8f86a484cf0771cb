//! The typed configuration: built-in defaults, then an optional file, then
//! `ONRAMP_SECTION__KEY` environment variables. Unknown keys and bad values are
//! refused with a message naming the key. Secrets never appear in `Debug` or in
//! `config print`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// The defaults shipped with the binary, identical to `config/default.toml`.
const BUILT_IN_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub metrics: MetricsConfig,
    pub security: SecurityConfig,
    pub sso: SsoConfig,
    pub log: LogConfig,
}

/// Single sign-on: the key that seals client secrets, and sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// 32 bytes, base64, sealing the organizations' client secrets; empty:
    /// the key in `key_file` (generated there on first start).
    #[serde(serialize_with = "redact")]
    pub secret_key: SecretString,
    pub key_file: PathBuf,
    /// How long a sign-in session lasts.
    pub session_hours: u32,
}

/// Where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// An address of its own for `/metrics` (then not served on
    /// `http.bind`); empty: served with everything else.
    #[serde(with = "optional_addr")]
    pub bind: Option<SocketAddr>,
    /// A bearer token `/metrics` requires; empty: none.
    #[serde(serialize_with = "redact")]
    pub token: SecretString,
}

/// Bounds on costly work.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Password hashes computed at once (each holds 19 MiB and a core for
    /// ~20 ms); 0: one per CPU core.
    pub password_hash_concurrency: usize,
    /// Password hashes one organization may have computed per second (it
    /// waits for the rest); 0: no bound beyond one at a time.
    pub password_hashes_per_org_per_second: u32,
    /// Sign-ins (`POST /login`) one client address (an IPv6 /64) may start
    /// per minute.
    pub sign_ins_per_client_per_minute: u32,
}

/// An optional socket address, written as a string ("" for none).
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let raw = String::deserialize(d)?;
        if raw.trim().is_empty() {
            return Ok(None);
        }
        raw.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("`{raw}` is not an address like 127.0.0.1:9090"))
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    pub body_limit: usize,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    /// How long a validated SCIM token or an organization's settings are
    /// trusted without asking the database.
    pub tenancy_cache_ms: u64,
    /// SCIM requests of one organization in progress at once; more wait.
    /// A request waiting for a resource another request is writing does
    /// not count, nor one under 64 KiB waiting only for its writes to commit.
    pub tenant_concurrency: usize,
    /// How long a request over `tenant_concurrency` waits before 429.
    pub tenant_queue_ms: u64,
}

/// An absolute http(s) URL without a trailing slash.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let trimmed = raw.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(PublicUrl(trimmed.to_string()))
            }
            _ => Err(serde::de::Error::custom(format!(
                "`{raw}` is not an absolute http:// or https:// URL"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub dir: PathBuf,
    pub from: String,
    pub smtp: SmtpConfig,
    pub outbox: OutboxConfig,
}

/// The outbox worker that delivers queued mail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Run the worker in this process (several processes may run one each).
    pub enabled: bool,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub concurrency: usize,
    pub max_attempts: i32,
    pub retry_base_ms: u64,
    pub max_defer_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Folder,
    Smtp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    #[serde(serialize_with = "redact")]
    pub password: SecretString,
    pub tls: SmtpTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

fn redact<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    if secret.expose_secret().is_empty() {
        s.serialize_str("")
    } else {
        s.serialize_str("[redacted]")
    }
}

/// Why the configuration could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the layered configuration from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, Env::prefixed("ONRAMP_").split("__"))
    }

    /// Loads with an explicit environment provider (tests pass `Env` built from a map).
    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let defaults = Path::new("config/default.toml");
        let mut figment = if defaults.is_file() {
            Figment::from(Toml::file_exact(defaults))
        } else {
            Figment::from(Toml::string(BUILT_IN_DEFAULTS))
        };
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(env);
        let config: Config = figment.extract().map_err(describe)?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults alone (tests, tools).
    pub fn defaults() -> Config {
        Figment::from(Toml::string(BUILT_IN_DEFAULTS))
            .extract()
            .expect("the built-in defaults are valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.http.body_limit < 1024 {
            return Err(ConfigError(
                "http.body_limit must be at least 1024 bytes".into(),
            ));
        }
        if self.http.tenant_concurrency == 0 {
            return Err(ConfigError(
                "http.tenant_concurrency must be at least 1".into(),
            ));
        }
        if self
            .metrics
            .bind
            .is_some_and(|a| a == self.http.bind && a.port() != 0)
        {
            return Err(ConfigError(
                "metrics.bind must differ from http.bind (leave it empty to serve /metrics there)"
                    .into(),
            ));
        }
        if self.security.sign_ins_per_client_per_minute == 0 {
            return Err(ConfigError(
                "security.sign_ins_per_client_per_minute must be at least 1".into(),
            ));
        }
        if !(1..=720).contains(&self.sso.session_hours) {
            return Err(ConfigError("sso.session_hours must be 1 to 720".into()));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database.url `{url}` must start with sqlite:, postgres:// or postgresql://"
            )));
        }
        if self.mail.outbox.concurrency == 0
            || self.mail.outbox.max_attempts < 1
            || self.mail.outbox.lease_secs == 0
        {
            return Err(ConfigError(
                "mail.outbox.concurrency, mail.outbox.max_attempts and mail.outbox.lease_secs must be at least 1".into(),
            ));
        }
        if self.mail.from.trim().is_empty() || !self.mail.from.contains('@') {
            return Err(ConfigError(
                "mail.from must be an email address, e.g. `onramp <onramp@example.com>`".into(),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError(format!("log.level `{}`: {e}", self.log.level)))?;
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Turns figment's errors into one line per problem, each naming the key.
fn describe(err: figment::Error) -> ConfigError {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect();
    ConfigError(lines.join("; "))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
mod tests {
    use super::*;
    use figment::Jail;

    fn env() -> Env {
        Env::prefixed("ONRAMP_").split("__")
    }

    #[test]
    fn defaults_serve_on_localhost_with_sqlite_and_a_mail_folder() {
        let c = Config::defaults();
        assert_eq!(c.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://data/onramp.db");
        assert_eq!(c.mail.transport, MailTransport::Folder);
        assert_eq!(c.mail.dir, PathBuf::from("data/mail"));
        assert_eq!(c.http.body_limit, 1024 * 1024);
    }

    #[test]
    fn a_file_overrides_defaults_and_the_environment_overrides_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[http]\nbind = \"0.0.0.0:9000\"\n[mail.smtp]\nhost = \"mail.example\"\nport = 2525\n",
            )?;
            jail.set_env("ONRAMP_MAIL__SMTP__PORT", "587");
            let c = Config::load_from(Some(Path::new("custom.toml")), env()).expect("loads");
            assert_eq!(c.http.bind.to_string(), "0.0.0.0:9000");
            assert_eq!(c.mail.smtp.host, "mail.example");
            assert_eq!(c.mail.smtp.port, 587);
            assert_eq!(c.database.url, "sqlite://data/onramp.db");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_a_file_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[http]\nbindd = \"0.0.0.0:9000\"\n")?;
            let err = Config::load_from(Some(Path::new("bad.toml")), env()).unwrap_err();
            assert!(err.to_string().contains("bindd"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_environment_key_is_refused_by_name() {
        Jail::expect_with(|_jail| {
            _jail.set_env("ONRAMP_HTTP__PORTT", "1");
            let err = Config::load_from(None, env()).unwrap_err();
            assert!(err.to_string().contains("portt"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_is_refused_with_the_key_named() {
        Jail::expect_with(|jail| {
            jail.set_env("ONRAMP_MAIL__SMTP__TLS", "sometimes");
            let err = Config::load_from(None, env()).unwrap_err();
            assert!(err.to_string().contains("mail.smtp.tls"), "{err}");
            jail.set_env("ONRAMP_MAIL__SMTP__TLS", "starttls");
            jail.set_env("ONRAMP_HTTP__BIND", "not-an-address");
            let err = Config::load_from(None, env()).unwrap_err();
            assert!(err.to_string().contains("http.bind"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err =
            Config::load_from(Some(Path::new("/nonexistent/onramp.toml")), env()).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn a_public_url_must_be_absolute_and_loses_its_trailing_slash() {
        Jail::expect_with(|jail| {
            jail.set_env("ONRAMP_HTTP__PUBLIC_URL", "https://onramp.example/");
            let c = Config::load_from(None, env()).expect("loads");
            assert_eq!(c.http.public_url.as_str(), "https://onramp.example");
            jail.set_env("ONRAMP_HTTP__PUBLIC_URL", "onramp.example");
            let err = Config::load_from(None, env()).unwrap_err();
            assert!(err.to_string().contains("http.public_url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_print_and_debug() {
        Jail::expect_with(|jail| {
            jail.set_env("ONRAMP_MAIL__SMTP__PASSWORD", "hunter2-very-secret");
            let c = Config::load_from(None, env()).expect("loads");
            assert_eq!(c.mail.smtp.password.expose_secret(), "hunter2-very-secret");
            assert!(!c.to_redacted_toml().contains("hunter2"));
            assert!(c.to_redacted_toml().contains("[redacted]"));
            assert!(!format!("{c:?}").contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn the_example_config_documents_every_key_and_loads() {
        Jail::expect_with(|jail| {
            let example = include_str!("../config/example.toml");
            jail.create_file("example.toml", example)?;
            let c = Config::load_from(Some(Path::new("example.toml")), env()).expect("loads");
            let printed = c.to_redacted_toml();
            for line in printed.lines() {
                if let Some((key, _)) = line.split_once(" = ") {
                    assert!(example.contains(&format!("{key} = ")), "{key} undocumented");
                }
            }
            Ok(())
        });
    }
}

//! The command line: `serve` (the default), `migrate`, `config print`, and
//! operator commands for organizations, SCIM tokens, invitations and SSO
//! connections. Output meant for
//! programs goes to stdout as JSON (or the bare token); messages go to stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::config::Config;
use crate::invitations::InvitationService;
use crate::oidc::{SetConnection, SsoService};
use crate::secrets::password::Passwords;
use crate::secrets::sealed::SealingKey;
use crate::startup::{Application, redact_url, shutdown_signal};
use crate::store::{self, DynStore};
use crate::telemetry;
use crate::tenancy::{NewOrg, TenancyService};

#[derive(Debug, Parser)]
#[command(
    name = "onramp",
    version,
    about = "SCIM provisioning, invitations and SSO registration"
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml (environment variables still win).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Organizations (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// SCIM bearer tokens.
    #[command(subcommand, name = "scim-token")]
    ScimToken(ScimTokenCommand),
    /// Invitations.
    #[command(subcommand)]
    Invitations(InvitationsCommand),
    /// An organization's single sign-on (OpenID Connect) connection.
    #[command(subcommand)]
    Sso(SsoCommand),
    /// The platform's accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Import accounts from JSON Lines (one account per line; see README),
    /// upserting by email: safe to run again. A bad line is reported with
    /// its number and the rest go on; the exit code is 1 if any was refused.
    Import {
        /// The file ("-" reads standard input).
        file: PathBuf,
    },
    /// Print an account as JSON: email, kind, organization, and its
    /// orders, payment methods and addresses.
    Show { email: String },
}

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Set (or replace) the organization's connection; prints it as JSON,
    /// with the redirect and back-channel logout URLs to register at the
    /// provider.
    Set {
        #[arg(long)]
        org: Uuid,
        /// The issuer URL (https; http only for loopback addresses).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        client_id: String,
        /// A file holding the client secret (never given on the command line).
        #[arg(long, value_name = "FILE")]
        client_secret_file: PathBuf,
        /// How a sign-in is matched to the invited person: `email` (the ID
        /// token's verified email equals the invited email) or
        /// `claim:CLAIM=ATTRIBUTE` (a claim equals a SCIM attribute, e.g.
        /// `claim:oid=externalId`).
        #[arg(long = "match", default_value = "email")]
        match_rule: String,
        /// Take the provider's email as verified even without
        /// `email_verified` (only for a single-tenant issuer whose directory
        /// the organization controls; refused for multi-tenant issuers).
        #[arg(long)]
        trust_email: bool,
        /// Scopes to ask for (`openid` is always asked).
        #[arg(long)]
        scopes: Option<String>,
    },
    /// Print the organization's connection as JSON (the secret redacted).
    Show {
        #[arg(long)]
        org: Uuid,
    },
    /// Run discovery and fetch the provider's keys; print what was found,
    /// or which step failed and why (exit code 1).
    Check {
        #[arg(long)]
        org: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum InvitationsCommand {
    /// List an organization's invitations as JSON, newest first.
    List {
        #[arg(long)]
        org: Uuid,
        /// pending, sent, accepted, expired, revoked or failed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Issue a fresh link (the old ones stop working) and mail it.
    Resend {
        id: Uuid,
        /// The organization the invitation belongs to.
        #[arg(long)]
        org: Uuid,
    },
    /// Void the invitation's links and cancel its unsent mail.
    Revoke {
        id: Uuid,
        /// The organization the invitation belongs to.
        #[arg(long)]
        org: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Print,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints it as JSON.
    Create {
        #[arg(long)]
        name: String,
        /// An email domain the organization owns (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// List organizations as JSON.
    List,
    /// Change an organization's invitation settings; prints it as JSON.
    Set {
        id: Uuid,
        /// Who invites, as the mail names them (e.g. "Ada Admin <ada@acme.example>"); "" clears it.
        #[arg(long)]
        inviter: Option<String>,
        /// Whom invited people should contact with questions; "" clears it.
        #[arg(long)]
        contact: Option<String>,
        /// Days an invitation link stays valid.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=365))]
        invitation_days: Option<u32>,
        /// Whether provisioning invites people by itself.
        #[arg(long)]
        auto_invite: Option<bool>,
        /// Whether members may set a password beside single sign-on.
        #[arg(long)]
        passwords: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Create a token; prints it (this is the only time it is shown).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        label: Option<String>,
    },
    /// List an organization's tokens (without secrets) as JSON.
    List {
        #[arg(long)]
        org: Uuid,
    },
    /// Revoke a token by its id.
    Revoke {
        id: Uuid,
        /// The organization the token belongs to.
        #[arg(long)]
        org: Uuid,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open(&config).await?;
            eprintln!("migrations applied to {}", redact_url(&config.database.url));
            Ok(())
        }
        Command::Config(ConfigCommand::Print) => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Org(cmd) => {
            let tenancy = TenancyService::new(open(&config).await?);
            match cmd {
                OrgCommand::Create { name, domains } => {
                    let org = tenancy.create_org(NewOrg { name, domains }).await?;
                    println!("{}", serde_json::to_string_pretty(&org)?);
                }
                OrgCommand::List => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&tenancy.list_orgs().await?)?
                    );
                }
                OrgCommand::Set {
                    id,
                    inviter,
                    contact,
                    invitation_days,
                    auto_invite,
                    passwords,
                } => {
                    let org = tenancy
                        .update_settings(id, |s| {
                            if let Some(v) = inviter {
                                s.inviter = Some(v).filter(|v| !v.trim().is_empty());
                            }
                            if let Some(v) = contact {
                                s.contact = Some(v).filter(|v| !v.trim().is_empty());
                            }
                            if let Some(d) = invitation_days {
                                s.invitation_ttl_days = d;
                            }
                            if let Some(a) = auto_invite {
                                s.auto_invite = a;
                            }
                            if let Some(p) = passwords {
                                s.passwords_allowed = p;
                            }
                        })
                        .await?;
                    println!("{}", serde_json::to_string_pretty(&org)?);
                }
            }
            Ok(())
        }
        Command::Invitations(cmd) => invitations(&config, cmd).await,
        Command::Sso(cmd) => sso(&config, cmd).await,
        Command::Accounts(cmd) => accounts(&config, cmd).await,
        Command::ScimToken(cmd) => {
            let tenancy = TenancyService::new(open(&config).await?);
            match cmd {
                ScimTokenCommand::Create { org, label } => {
                    let created = tenancy.create_scim_token(org, label).await?;
                    eprintln!(
                        "SCIM token {} created for organization {org}; it is shown only now:",
                        created.id
                    );
                    println!("{}", created.token);
                }
                ScimTokenCommand::List { org } => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&tenancy.list_scim_tokens(org).await?)?
                    );
                }
                ScimTokenCommand::Revoke { id, org } => {
                    tenancy.revoke_scim_token(org, id).await?;
                    eprintln!("SCIM token {id} revoked");
                }
            }
            Ok(())
        }
    }
}

async fn invitations(config: &Config, cmd: InvitationsCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    let service = InvitationService::new(store, config.http.public_url.as_str(), &config.mail.from);
    match cmd {
        InvitationsCommand::List { org, status } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&service.list(org, status.as_deref()).await?)?
            );
        }
        InvitationsCommand::Resend { id, org } => {
            let inv = service.resend(org, id).await?;
            eprintln!(
                "invitation {id} reissued; the new link is mailed by a running server's outbox"
            );
            println!("{}", serde_json::to_string_pretty(&inv)?);
        }
        InvitationsCommand::Revoke { id, org } => {
            let inv = service.revoke(org, id).await?;
            eprintln!("invitation {id} revoked");
            println!("{}", serde_json::to_string_pretty(&inv)?);
        }
    }
    Ok(())
}

async fn sso(config: &Config, cmd: SsoCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    let key = SealingKey::load(config.sso.secret_key.expose_secret(), &config.sso.key_file)
        .context("cannot load the key that seals SSO client secrets")?;
    let service = SsoService::new(store, Arc::new(key), config.http.public_url.as_str())?;
    match cmd {
        SsoCommand::Set {
            org,
            issuer,
            client_id,
            client_secret_file,
            match_rule,
            trust_email,
            scopes,
        } => {
            let secret = std::fs::read_to_string(&client_secret_file).with_context(|| {
                format!(
                    "cannot read the client secret file {}",
                    client_secret_file.display()
                )
            })?;
            let view = service
                .set_connection(
                    org,
                    SetConnection {
                        issuer,
                        client_id,
                        client_secret: SecretString::from(secret),
                        match_rule,
                        trust_email,
                        scopes,
                    },
                )
                .await?;
            eprintln!(
                "SSO connection set for organization {org}. Register at the provider:\n  redirect URI: {}\n  back-channel logout URI: {}\n  post-logout redirect URI: {}",
                view.redirect_uri,
                view.backchannel_logout_uri,
                service.signed_out_uri()
            );
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
        SsoCommand::Show { org } => match service.connection(org).await? {
            Some(view) => println!("{}", serde_json::to_string_pretty(&view)?),
            None => anyhow::bail!("organization {org} has no SSO connection"),
        },
        SsoCommand::Check { org } => {
            let report = service.check(org).await?;
            eprintln!(
                "discovery and keys OK: {} key(s) at {}",
                report.keys.len(),
                report.jwks_uri
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}

async fn accounts(config: &Config, cmd: AccountsCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    match cmd {
        AccountsCommand::Import { file } => import_accounts(config, store, &file).await,
        AccountsCommand::Show { email } => {
            let view = crate::accounts::show(&store, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account uses {email}"))?;
            println!("{}", serde_json::to_string_pretty(&view)?);
            Ok(())
        }
    }
}

async fn import_accounts(config: &Config, store: DynStore, file: &Path) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    use crate::accounts::import::{ImportEvent, Importer};
    let (input, size): (Box<dyn std::io::BufRead + Send>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::BufReader::new(std::io::stdin())), None)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (
            Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
            size,
        )
    };
    // Hashing plain passwords uses every core; no per-organization rate.
    let passwords = Passwords::bounded(config.security.password_hash_concurrency, 0);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_line = std::time::Instant::now();
    let report = Importer::new(store, passwords)
        .run(input, |event| match event {
            ImportEvent::Refused { line, reason } => {
                let text = format!("line {line}: {reason}");
                match &bar {
                    Some(b) => b.println(text),
                    None => eprintln!("{text}"),
                }
            }
            ImportEvent::Progress { report, bytes } => match &bar {
                Some(b) => {
                    b.set_position(bytes);
                    b.set_message(format!(
                        "{} accounts, {} orders",
                        report.accounts, report.orders
                    ));
                }
                None if last_line.elapsed() >= std::time::Duration::from_secs(2) => {
                    last_line = std::time::Instant::now();
                    eprintln!(
                        "{} lines read, {} accounts and {} orders imported, {} lines refused",
                        report.lines, report.accounts, report.orders, report.failed
                    );
                }
                None => {}
            },
        })
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!(
        "{} lines read: {} accounts and {} orders imported, {} lines refused",
        report.lines, report.accounts, report.orders, report.failed
    );
    println!("{}", serde_json::to_string(&report)?);
    if report.failed > 0 {
        anyhow::bail!(
            "{} lines were refused (see above); the others were imported",
            report.failed
        );
    }
    Ok(())
}

/// Opens and migrates the configured database.
async fn open(config: &Config) -> anyhow::Result<DynStore> {
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
    Ok(store)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config.log);
    let app = Application::build(config.clone()).await?;
    tracing::info!(
        bind = %config.http.bind,
        port = app.port(),
        database = %redact_url(&config.database.url),
        public_url = config.http.public_url.as_str(),
        "onramp is serving"
    );
    if !app.services().tenancy.has_orgs().await? {
        let exe = "cargo run --release --";
        eprintln!(
            "\nNo organization exists yet. Create one and a SCIM token for its directory:\n\n  \
             {exe} org create --name \"Example Corp\" --domain example.com\n  \
             {exe} scim-token create --org <id printed by the first command>\n"
        );
    }
    app.run(shutdown_signal()).await
}

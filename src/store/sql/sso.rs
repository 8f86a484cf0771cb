//! [`SsoRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::Stmt;
use crate::store::sso::{
    LoginState, RegistrationRecord, SessionRecord, SsoConnectionRecord, SsoRepo,
};
use crate::store::{StoreResult, Timestamp};

#[derive(FromRow)]
struct ConnectionRow {
    org_id: Uuid,
    issuer: String,
    client_id: String,
    client_secret: Vec<u8>,
    scopes: String,
    match_rule: String,
    trust_email: bool,
    updated_at: Timestamp,
}

impl From<ConnectionRow> for SsoConnectionRecord {
    fn from(r: ConnectionRow) -> Self {
        SsoConnectionRecord {
            org_id: r.org_id,
            issuer: r.issuer,
            client_id: r.client_id,
            client_secret_sealed: r.client_secret,
            scopes: r.scopes,
            match_rule: r.match_rule,
            trust_email: r.trust_email,
            updated_at: r.updated_at,
        }
    }
}

const CONNECTION: &str = "SELECT org_id, issuer, client_id, client_secret, scopes, match_rule, trust_email, updated_at FROM sso_connections";
const LOGIN_STATE: &str =
    "state_hash, browser_hash, org_id, invitation_id, nonce, pkce_verifier, created_at, expires_at";
const SESSION: &str =
    "id_hash, account_id, org_id, issuer, subject, sid, id_token, created_at, expires_at";
const REGISTRATION: &str = "invitation_id, org_id, issuer, subject, sid, id_token, email, progress, created_at, updated_at, expires_at, browser_hash";

#[async_trait]
impl<T: Exec> SsoRepo for T {
    async fn put_sso_connection(&self, c: &SsoConnectionRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO sso_connections (org_id, issuer, client_id, client_secret, scopes, match_rule, trust_email, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (org_id) DO UPDATE SET issuer = EXCLUDED.issuer, client_id = EXCLUDED.client_id, \
                 client_secret = EXCLUDED.client_secret, scopes = EXCLUDED.scopes, match_rule = EXCLUDED.match_rule, \
                 trust_email = EXCLUDED.trust_email, updated_at = EXCLUDED.updated_at",
            )
            .bind(c.org_id)
            .bind(&c.issuer)
            .bind(&c.client_id)
            .bind(c.client_secret_sealed.clone())
            .bind(&c.scopes)
            .bind(&c.match_rule)
            .bind(c.trust_email)
            .bind(c.updated_at),
        )
        .await
    }

    async fn sso_connection(&self, org_id: Uuid) -> StoreResult<Option<SsoConnectionRecord>> {
        let row: Option<ConnectionRow> = self
            .fetch_optional(Stmt::new(format!("{CONNECTION} WHERE org_id = $1")).bind(org_id))
            .await?;
        Ok(row.map(Into::into))
    }

    async fn sso_connections_of(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> StoreResult<Vec<SsoConnectionRecord>> {
        let rows: Vec<ConnectionRow> = self
            .fetch_all(
                Stmt::new(format!("{CONNECTION} WHERE issuer = $1 AND client_id = $2"))
                    .bind(issuer)
                    .bind(client_id),
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn insert_login_state(&self, s: &LoginState) -> StoreResult<()> {
        self.write(
            Stmt::new(format!(
                "INSERT INTO sso_login_states ({LOGIN_STATE}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(s.state_hash.clone())
            .bind(s.browser_hash.clone())
            .bind(s.org_id)
            .bind(s.invitation_id)
            .bind(&s.nonce)
            .bind(&s.pkce_verifier)
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await
    }

    async fn take_login_state(&self, state_hash: &[u8]) -> StoreResult<Option<LoginState>> {
        let rows: Vec<LoginState> = self
            .write_returning(
                Stmt::new(format!(
                    "DELETE FROM sso_login_states WHERE state_hash = $1 RETURNING {LOGIN_STATE}"
                ))
                .bind(state_hash),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn identity_account(
        &self,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<(Uuid, Uuid)>> {
        self.fetch_optional(
            Stmt::new(
                "SELECT account_id, org_id FROM sso_identities WHERE issuer = $1 AND subject = $2",
            )
            .bind(issuer)
            .bind(subject),
        )
        .await
    }

    async fn bind_identity(
        &self,
        issuer: &str,
        subject: &str,
        account_id: Uuid,
        org_id: Uuid,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO sso_identities (issuer, subject, account_id, org_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(issuer)
            .bind(subject)
            .bind(account_id)
            .bind(org_id)
            .bind(at),
        )
        .await
    }

    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(format!(
                "INSERT INTO sessions ({SESSION}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(s.id_hash.clone())
            .bind(s.account_id)
            .bind(s.org_id)
            .bind(&s.issuer)
            .bind(&s.subject)
            .bind(&s.sid)
            .bind(&s.id_token)
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await
    }

    async fn session(&self, id_hash: &[u8], now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        self.fetch_optional(
            Stmt::new(format!(
                "SELECT {SESSION} FROM sessions WHERE id_hash = $1 AND expires_at > $2"
            ))
            .bind(id_hash)
            .bind(now),
        )
        .await
    }

    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        self.write(Stmt::new("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash))
            .await
    }

    async fn delete_sessions_of_account(&self, account_id: Uuid) -> StoreResult<()> {
        self.write(Stmt::new("DELETE FROM sessions WHERE account_id = $1").bind(account_id))
            .await
    }

    async fn delete_sessions_of_user(&self, org_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "DELETE FROM sessions WHERE account_id IN \
                 (SELECT account_id FROM memberships WHERE org_id = $1 AND user_id = $2)",
            )
            .bind(org_id)
            .bind(user_id),
        )
        .await
    }

    async fn delete_sessions_by_logout(
        &self,
        org_id: Uuid,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> StoreResult<u64> {
        // One statement per shape, each served by its index.
        let stmt = match (subject, sid) {
            (Some(sub), Some(sid)) => Stmt::new(
                "DELETE FROM sessions WHERE issuer = $1 AND subject = $2 AND sid = $3 AND org_id = $4",
            )
            .bind(issuer)
            .bind(sub)
            .bind(sid),
            (Some(sub), None) => Stmt::new(
                "DELETE FROM sessions WHERE issuer = $1 AND subject = $2 AND org_id = $3",
            )
            .bind(issuer)
            .bind(sub),
            (None, Some(sid)) => {
                Stmt::new("DELETE FROM sessions WHERE issuer = $1 AND sid = $2 AND org_id = $3")
                    .bind(issuer)
                    .bind(sid)
            }
            (None, None) => return Ok(0),
        };
        self.execute(stmt.bind(org_id)).await
    }

    async fn first_sight_of_logout_token(
        &self,
        jti_hash: &[u8],
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "INSERT INTO logout_tokens_seen (jti_hash, expires_at) VALUES ($1, $2) ON CONFLICT (jti_hash) DO NOTHING",
                )
                .bind(jti_hash)
                .bind(expires_at),
            )
            .await?;
        Ok(n == 1)
    }

    async fn put_registration(&self, r: &RegistrationRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(format!(
                "INSERT INTO registrations ({REGISTRATION}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (invitation_id) DO UPDATE SET org_id = EXCLUDED.org_id, issuer = EXCLUDED.issuer, \
                 subject = EXCLUDED.subject, sid = EXCLUDED.sid, id_token = EXCLUDED.id_token, email = EXCLUDED.email, \
                 progress = EXCLUDED.progress, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at, \
                 browser_hash = EXCLUDED.browser_hash"
            ))
            .bind(r.invitation_id)
            .bind(r.org_id)
            .bind(&r.issuer)
            .bind(&r.subject)
            .bind(&r.sid)
            .bind(&r.id_token)
            .bind(&r.email)
            .bind(&r.progress)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.expires_at)
            .bind(&r.browser_hash),
        )
        .await
    }

    async fn update_progress(
        &self,
        invitation_id: Uuid,
        old: &str,
        new: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE registrations SET progress = $3, updated_at = $4 WHERE invitation_id = $1 AND progress = $2",
            )
            .bind(invitation_id)
            .bind(old)
            .bind(new)
            .bind(at)
            .expect_rows(1),
        )
        .await
    }

    async fn registration(&self, invitation_id: Uuid) -> StoreResult<Option<RegistrationRecord>> {
        self.fetch_optional(
            Stmt::new(format!(
                "SELECT {REGISTRATION} FROM registrations WHERE invitation_id = $1"
            ))
            .bind(invitation_id),
        )
        .await
    }

    async fn delete_registration(&self, invitation_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new("DELETE FROM registrations WHERE invitation_id = $1").bind(invitation_id),
        )
        .await
    }

    async fn purge_expired_sso(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        let mut gone = 0;
        for (table, key) in [
            ("sso_login_states", "state_hash"),
            ("sessions", "id_hash"),
            ("logout_tokens_seen", "jti_hash"),
            ("registrations", "invitation_id"),
        ] {
            gone += self
                .execute(
                    Stmt::new(format!(
                        "DELETE FROM {table} WHERE {key} IN \
                         (SELECT {key} FROM {table} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)"
                    ))
                    .bind(now)
                    .bind(limit),
                )
                .await?;
        }
        Ok(gone)
    }
}

//! [`AccountRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Stmt, json};
use crate::store::accounts::{
    AccountKind, AccountRecord, AccountRepo, AuditEvent, Membership, MembershipStatus,
};
use crate::store::{StoreError, StoreResult, Timestamp};

#[derive(FromRow)]
struct AccountRow {
    id: Uuid,
    email: String,
    name: String,
    password_hash: Option<String>,
    kind: String,
    phone: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

fn unknown(what: &str, value: &str) -> StoreError {
    StoreError::other(std::io::Error::other(format!("unknown {what} {value}")))
}

impl TryFrom<AccountRow> for AccountRecord {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(AccountRecord {
            kind: AccountKind::parse(&r.kind).ok_or_else(|| unknown("account kind", &r.kind))?,
            id: r.id,
            email: r.email,
            name: r.name,
            password_hash: r.password_hash,
            phone: r.phone,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(FromRow)]
struct MembershipRow {
    account_id: Uuid,
    org_id: Uuid,
    user_id: Option<Uuid>,
    status: String,
    joined_at: Timestamp,
}

#[derive(FromRow)]
struct AuditRow {
    id: Uuid,
    org_id: Option<Uuid>,
    account_id: Option<Uuid>,
    actor: String,
    action: String,
    detail: sqlx::types::Json<serde_json::Value>,
    at: Timestamp,
}

const ACCOUNT: &str = "id, email, name, password_hash, kind, phone, created_at, updated_at";

#[async_trait]
impl<T: Exec> AccountRepo for T {
    async fn insert_account(&self, a: &AccountRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO accounts (id, email, email_lower, name, password_hash, kind, phone, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id)
            .bind(&a.email)
            .bind(a.email.to_lowercase())
            .bind(&a.name)
            .bind(&a.password_hash)
            .bind(a.kind.as_str())
            .bind(&a.phone)
            .bind(a.created_at)
            .bind(a.updated_at),
        )
        .await
    }

    async fn account_by_id(&self, id: Uuid) -> StoreResult<Option<AccountRecord>> {
        let row: Option<AccountRow> = self
            .fetch_optional(
                Stmt::new(format!("SELECT {ACCOUNT} FROM accounts WHERE id = $1")).bind(id),
            )
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<AccountRecord>> {
        let row: Option<AccountRow> = self
            .fetch_optional(
                Stmt::new(format!(
                    "SELECT {ACCOUNT} FROM accounts WHERE email_lower = $1"
                ))
                .bind(email.trim().to_lowercase()),
            )
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn insert_membership(&self, m: &Membership) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO memberships (account_id, org_id, user_id, status, joined_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(m.account_id)
            .bind(m.org_id)
            .bind(m.user_id)
            .bind(m.status.as_str())
            .bind(m.joined_at),
        )
        .await
    }

    async fn membership(&self, account_id: Uuid) -> StoreResult<Option<Membership>> {
        let row: Option<MembershipRow> = self
            .fetch_optional(
                Stmt::new(
                    "SELECT account_id, org_id, user_id, status, joined_at FROM memberships WHERE account_id = $1",
                )
                .bind(account_id),
            )
            .await?;
        row.map(|r| {
            Ok(Membership {
                status: MembershipStatus::parse(&r.status)
                    .ok_or_else(|| unknown("membership status", &r.status))?,
                account_id: r.account_id,
                org_id: r.org_id,
                user_id: r.user_id,
                joined_at: r.joined_at,
            })
        })
        .transpose()
    }

    async fn set_membership_status(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        status: MembershipStatus,
    ) -> StoreResult<()> {
        self.write(
            Stmt::new("UPDATE memberships SET status = $3 WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .bind(status.as_str()),
        )
        .await
    }

    async fn insert_audit_event(&self, e: &AuditEvent) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO audit_events (id, org_id, account_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id)
            .bind(e.org_id)
            .bind(e.account_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(json(&e.detail)?)
            .bind(e.at),
        )
        .await
    }

    async fn audit_events(&self, org_id: Uuid, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = self
            .fetch_all(
                Stmt::new(
                    "SELECT id, org_id, account_id, actor, action, detail, at FROM audit_events \
                     WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                )
                .bind(org_id)
                .bind(limit),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                id: r.id,
                org_id: r.org_id,
                account_id: r.account_id,
                actor: r.actor,
                action: r.action,
                detail: r.detail.0,
                at: r.at,
            })
            .collect())
    }
}

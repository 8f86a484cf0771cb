//! [`OrgRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Stmt, Write};
use crate::store::{OrgRepo, OrgSettings, Organization, StoreResult, Timestamp};

#[derive(FromRow)]
struct OrgRow {
    id: Uuid,
    name: String,
    slug: String,
    created_at: Timestamp,
    auto_invite: bool,
    invitation_ttl_days: i32,
    inviter: Option<String>,
    contact: Option<String>,
    passwords_allowed: bool,
}

#[derive(FromRow)]
struct DomainRow {
    org_id: Uuid,
    domain: String,
}

fn assemble(rows: Vec<OrgRow>, domains: Vec<DomainRow>) -> Vec<Organization> {
    rows.into_iter()
        .map(|r| Organization {
            domains: domains
                .iter()
                .filter(|d| d.org_id == r.id)
                .map(|d| d.domain.clone())
                .collect(),
            id: r.id,
            name: r.name,
            slug: r.slug,
            created_at: r.created_at,
            settings: OrgSettings {
                auto_invite: r.auto_invite,
                invitation_ttl_days: r.invitation_ttl_days.max(1) as u32,
                inviter: r.inviter,
                contact: r.contact,
                passwords_allowed: r.passwords_allowed,
            },
        })
        .collect()
}

const ORG_COLUMNS: &str = "id, name, slug, created_at, auto_invite, invitation_ttl_days, inviter, contact, passwords_allowed";

#[async_trait]
impl<T: Exec> OrgRepo for T {
    async fn insert_org(&self, org: &Organization) -> StoreResult<()> {
        let mut writes: Vec<Write> = vec![
            Stmt::new(
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(org.id)
            .bind(&org.name)
            .bind(&org.slug)
            .bind(org.created_at)
            .into(),
        ];
        for domain in &org.domains {
            writes.push(
                Stmt::new("INSERT INTO organization_domains (org_id, domain) VALUES ($1, $2)")
                    .bind(org.id)
                    .bind(domain)
                    .into(),
            );
        }
        self.write_all(writes).await
    }

    async fn org_by_id(&self, id: Uuid) -> StoreResult<Option<Organization>> {
        let rows: Vec<OrgRow> = self
            .fetch_all(
                Stmt::new(format!(
                    "SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1"
                ))
                .bind(id),
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let domains: Vec<DomainRow> = self
            .fetch_all(
                Stmt::new(
                    "SELECT org_id, domain FROM organization_domains WHERE org_id = $1 ORDER BY domain",
                )
                .bind(id),
            )
            .await?;
        Ok(assemble(rows, domains).pop())
    }

    async fn org_by_domain(&self, domain: &str) -> StoreResult<Option<Organization>> {
        let rows: Vec<(Uuid,)> = self
            .fetch_all(
                Stmt::new("SELECT org_id FROM organization_domains WHERE domain = $1")
                    .bind(domain.to_ascii_lowercase()),
            )
            .await?;
        match rows.first() {
            Some((id,)) => self.org_by_id(*id).await,
            None => Ok(None),
        }
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organization>> {
        let rows: Vec<OrgRow> = self
            .fetch_all(Stmt::new(format!(
                "SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at, id"
            )))
            .await?;
        let domains: Vec<DomainRow> = self
            .fetch_all(Stmt::new(
                "SELECT org_id, domain FROM organization_domains ORDER BY domain",
            ))
            .await?;
        Ok(assemble(rows, domains))
    }

    async fn count_orgs(&self) -> StoreResult<u64> {
        let rows: Vec<(i64,)> = self
            .fetch_all(Stmt::new("SELECT COUNT(*) FROM organizations"))
            .await?;
        Ok(rows.first().map_or(0, |(n,)| (*n).max(0) as u64))
    }

    async fn update_org_settings(&self, id: Uuid, st: &OrgSettings) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "UPDATE organizations SET auto_invite = $2, invitation_ttl_days = $3, inviter = $4, contact = $5, passwords_allowed = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(st.auto_invite)
                .bind(st.invitation_ttl_days as i32)
                .bind(&st.inviter)
                .bind(&st.contact)
                .bind(st.passwords_allowed),
            )
            .await?;
        Ok(n == 1)
    }
}

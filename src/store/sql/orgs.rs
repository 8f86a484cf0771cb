//! [`OrgRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::{Exec, db_err, on_conn};
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
            },
        })
        .collect()
}

#[async_trait]
impl<T: Exec> OrgRepo for T {
    async fn insert_org(&self, org: &Organization) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(org.id)
            .bind(&org.name)
            .bind(&org.slug)
            .bind(org.created_at)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            for domain in &org.domains {
                sqlx::query("INSERT INTO organization_domains (org_id, domain) VALUES ($1, $2)")
                    .bind(org.id)
                    .bind(domain)
                    .execute(&mut *c)
                    .await
                    .map_err(db_err)?;
            }
            Ok(())
        })
    }

    async fn org_by_id(&self, id: Uuid) -> StoreResult<Option<Organization>> {
        let mut c = self.conn().await?;
        let (rows, domains) = on_conn!(c, |c| {
            let rows: Vec<OrgRow> = sqlx::query_as(
                "SELECT id, name, slug, created_at, auto_invite, invitation_ttl_days, inviter, contact FROM organizations WHERE id = $1",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            let domains: Vec<DomainRow> = sqlx::query_as(
                "SELECT org_id, domain FROM organization_domains WHERE org_id = $1 ORDER BY domain",
            )
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            (rows, domains)
        });
        Ok(assemble(rows, domains).pop())
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organization>> {
        let mut c = self.conn().await?;
        let (rows, domains) = on_conn!(c, |c| {
            let rows: Vec<OrgRow> = sqlx::query_as(
                "SELECT id, name, slug, created_at, auto_invite, invitation_ttl_days, inviter, contact FROM organizations ORDER BY created_at, id",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            let domains: Vec<DomainRow> =
                sqlx::query_as("SELECT org_id, domain FROM organization_domains ORDER BY domain")
                    .fetch_all(&mut *c)
                    .await
                    .map_err(db_err)?;
            (rows, domains)
        });
        Ok(assemble(rows, domains))
    }

    async fn count_orgs(&self) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        let n: i64 = on_conn!(c, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM organizations"
        )
        .fetch_one(c)
        .await
        .map_err(db_err)?);
        Ok(n as u64)
    }

    async fn update_org_settings(&self, id: Uuid, st: &OrgSettings) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = on_conn!(c, |c| {
            sqlx::query(
            "UPDATE organizations SET auto_invite = $2, invitation_ttl_days = $3, inviter = $4, contact = $5 WHERE id = $1"
        )
        .bind(id)
        .bind(st.auto_invite)
        .bind(st.invitation_ttl_days as i32)
        .bind(&st.inviter)
        .bind(&st.contact)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err)
        })?;
        Ok(n == 1)
    }
}

//! Tenancy use cases.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::cache::TtlCache;
use crate::secrets::token;
use crate::store::{
    DynStore, OrgRepo, OrgSettings, Organization, ScimTokenRecord, StoreError, Timestamp,
};

/// The kind prefix of SCIM tokens.
const SCIM_TOKEN_KIND: &str = "scim";
/// `last_used_at` is refreshed at most this often, so authentication does not
/// write on every request.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no organization with id {0}")]
    NoSuchOrg(Uuid),
    #[error("the organization has no live SCIM token with id {0}")]
    NoSuchToken(Uuid),
    #[error("the domain {0} already belongs to another organization")]
    DomainTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Input to [`TenancyService::create_org`].
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub name: String,
    pub domains: Vec<String>,
}

/// Who a valid SCIM token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimPrincipal {
    pub org_id: Uuid,
    pub token_id: Uuid,
}

/// A newly created token: the secret is in here and nowhere else.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub id: Uuid,
    pub org_id: Uuid,
    pub label: String,
    pub token: String,
}

#[derive(Clone)]
pub struct TenancyService {
    store: DynStore,
    /// Valid SCIM tokens by hash (never unknown or revoked ones), so that a
    /// directory's burst of requests costs one lookup, not one per request.
    tokens: Option<Arc<TtlCache<Vec<u8>, ScimPrincipal>>>,
    orgs: OrgCache,
}

/// Organizations by id, shared by the services of one process (invitations
/// read the organization on every provisioned user).
#[derive(Clone, Default)]
pub struct OrgCache(Option<Arc<TtlCache<Uuid, Arc<Organization>>>>);

impl OrgCache {
    pub fn new(ttl: Duration) -> Self {
        OrgCache(TtlCache::new(ttl))
    }

    /// The organization, from the cache or else from `repo` (a transaction
    /// or the store).
    pub async fn get(
        &self,
        repo: &(impl OrgRepo + ?Sized),
        id: Uuid,
    ) -> Result<Option<Arc<Organization>>, StoreError> {
        let Some(cache) = &self.0 else {
            return Ok(repo.org_by_id(id).await?.map(Arc::new));
        };
        if let Some(org) = cache.get(&id) {
            return Ok(Some(org));
        }
        let ticket = cache.ticket();
        let org = repo.org_by_id(id).await?.map(Arc::new);
        if let Some(org) = &org {
            cache.put(id, org.clone(), ticket);
        }
        Ok(org)
    }

    fn forget(&self, id: Uuid) {
        if let Some(cache) = &self.0 {
            cache.invalidate(|k, _| *k == id);
        }
    }
}

impl TenancyService {
    pub fn new(store: DynStore) -> Self {
        TenancyService {
            store,
            tokens: None,
            orgs: OrgCache::default(),
        }
    }

    /// The same service, remembering valid SCIM tokens and organizations for
    /// `ttl` (zero: never).
    pub fn caching(mut self, ttl: Duration) -> Self {
        self.tokens = TtlCache::new(ttl);
        self.orgs = OrgCache::new(ttl);
        self
    }

    /// The organization cache, for the other services of this process.
    pub fn org_cache(&self) -> OrgCache {
        self.orgs.clone()
    }

    pub async fn create_org(&self, new: NewOrg) -> Result<Organization, TenancyError> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TenancyError::Invalid(
                "the organization name must have 1 to 200 characters".into(),
            ));
        }
        let mut domains = Vec::new();
        for d in &new.domains {
            let d = normalize_domain(d)?;
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        let base = slugify(&name);
        for attempt in 1..=50u32 {
            let slug = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let org = Organization {
                id: Uuid::now_v7(),
                name: name.clone(),
                slug,
                domains: domains.clone(),
                created_at: Timestamp::now(),
                settings: OrgSettings::default(),
            };
            match self.store.insert_org(&org).await {
                Ok(()) => return Ok(org),
                Err(StoreError::Conflict { constraint }) if constraint.contains("slug") => continue,
                Err(StoreError::Conflict { constraint }) if constraint.contains("domain") => {
                    return Err(TenancyError::DomainTaken(domains.join(", ")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(TenancyError::Invalid(format!(
            "could not find a free slug for {name}"
        )))
    }

    pub async fn list_orgs(&self) -> Result<Vec<Organization>, TenancyError> {
        Ok(self.store.list_orgs().await?)
    }

    pub async fn org(&self, id: Uuid) -> Result<Organization, TenancyError> {
        self.store
            .org_by_id(id)
            .await?
            .ok_or(TenancyError::NoSuchOrg(id))
    }

    /// Applies `change` to the organization's settings and stores them.
    pub async fn update_settings(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut OrgSettings),
    ) -> Result<Organization, TenancyError> {
        let mut org = self.org(id).await?;
        change(&mut org.settings);
        if org.settings.invitation_ttl_days == 0 || org.settings.invitation_ttl_days > 365 {
            return Err(TenancyError::Invalid(
                "the invitation lifetime must be 1 to 365 days".into(),
            ));
        }
        let updated = self.store.update_org_settings(id, &org.settings).await?;
        self.orgs.forget(id);
        if !updated {
            return Err(TenancyError::NoSuchOrg(id));
        }
        Ok(org)
    }

    pub async fn create_scim_token(
        &self,
        org_id: Uuid,
        label: Option<String>,
    ) -> Result<CreatedToken, TenancyError> {
        self.org(org_id).await?;
        let label = label.unwrap_or_default().trim().to_string();
        if label.chars().count() > 200 {
            return Err(TenancyError::Invalid(
                "the label may have at most 200 characters".into(),
            ));
        }
        let issued = token::issue(SCIM_TOKEN_KIND);
        let record = ScimTokenRecord {
            id: Uuid::now_v7(),
            org_id,
            label: label.clone(),
            hash: issued.hash,
            prefix: issued.prefix,
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_scim_token(&record).await?;
        Ok(CreatedToken {
            id: record.id,
            org_id,
            label,
            token: issued.secret,
        })
    }

    pub async fn list_scim_tokens(
        &self,
        org_id: Uuid,
    ) -> Result<Vec<ScimTokenRecord>, TenancyError> {
        self.org(org_id).await?;
        Ok(self.store.list_scim_tokens(org_id).await?)
    }

    /// Revokes the organization's token `id`; another organization's id is
    /// `NoSuchToken`.
    pub async fn revoke_scim_token(&self, org_id: Uuid, id: Uuid) -> Result<(), TenancyError> {
        let revoked = self
            .store
            .revoke_scim_token(org_id, id, Timestamp::now())
            .await?;
        if let Some(cache) = &self.tokens {
            cache.invalidate(|_, p| p.token_id == id);
        }
        if revoked {
            Ok(())
        } else {
            Err(TenancyError::NoSuchToken(id))
        }
    }

    /// The organization a presented SCIM token speaks for, or `None` when the
    /// token is malformed, unknown or revoked.
    pub async fn authenticate_scim(
        &self,
        presented: &str,
    ) -> Result<Option<ScimPrincipal>, TenancyError> {
        if !token::well_formed(SCIM_TOKEN_KIND, presented) {
            return Ok(None);
        }
        let hash = token::hash(presented);
        if let Some(principal) = self.tokens.as_ref().and_then(|c| c.get(&hash)) {
            return Ok(Some(principal));
        }
        let ticket = self.tokens.as_ref().map(|c| c.ticket());
        let Some(record) = self.store.scim_token_by_hash(&hash).await? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let stale = record
            .last_used_at
            .is_none_or(|t| now.micros() - t.micros() > TOUCH_INTERVAL.as_micros() as i64);
        if stale {
            // Best effort: a failed bookkeeping write must not fail the request.
            if let Err(e) = self.store.touch_scim_token(record.id, now).await {
                tracing::warn!(error = %e, "could not record SCIM token use");
            }
        }
        let principal = ScimPrincipal {
            org_id: record.org_id,
            token_id: record.id,
        };
        if let (Some(cache), Some(ticket)) = (&self.tokens, ticket) {
            cache.put(hash, principal, ticket);
        }
        Ok(Some(principal))
    }

    /// Whether any organization exists yet (for the first-start hint).
    pub async fn has_orgs(&self) -> Result<bool, TenancyError> {
        Ok(self.store.count_orgs().await? > 0)
    }
}

/// Lower-cases and checks an email domain: labels of letters, digits and
/// hyphens, at least one dot.
fn normalize_domain(raw: &str) -> Result<String, TenancyError> {
    let d = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    let ok = d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(TenancyError::Invalid(format!(
            "`{raw}` is not an email domain"
        )))
    }
}

/// `Acme Corp. (EU)` → `acme-corp-eu`.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(48).collect();
    if slug.is_empty() {
        "org".to_string()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_ascii_with_single_hyphens() {
        assert_eq!(slugify("Acme Corp. (EU)"), "acme-corp-eu");
        assert_eq!(slugify("  Ünïcode  "), "n-code");
        assert_eq!(slugify("日本"), "org");
    }

    #[test]
    fn domains_are_lowercased_and_validated() {
        assert_eq!(normalize_domain("@Example.COM").unwrap(), "example.com");
        assert!(normalize_domain("localhost").is_err());
        assert!(normalize_domain("exa mple.com").is_err());
        assert!(normalize_domain("-bad.com").is_err());
    }
}

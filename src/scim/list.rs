//! Listing and searching (RFC 7644 §3.4.2, §3.4.3) with index paging
//! (`startIndex`/`count`) or cursors (RFC 9865). The filter is compiled to
//! SQL; nothing is filtered in memory.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use uuid::Uuid;

use super::protocol::{ListQuery, ResourceType, ScimError, SortOrder, list_response};
use super::query::{sort_key, to_cond, to_cond_across};
use super::service::{Projection, ScimResult, ScimService};
use crate::store::query::Resource;
use crate::store::scim::ListSpec;

/// Largest page returned; larger `count`s are cut to it (RFC 7644 §3.4.2.4).
pub const MAX_PAGE: u64 = 1000;
/// Page size when the client names none.
pub const DEFAULT_PAGE: u64 = 100;

/// Where a cursor points: after an id (default order) or at an offset (sorted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    After(Uuid),
    Offset(u64),
}

impl Cursor {
    fn encode(self) -> String {
        let raw = match self {
            Cursor::After(id) => format!("i:{id}"),
            Cursor::Offset(n) => format!("o:{n}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(text: &str) -> Result<Cursor, ScimError> {
        let bad =
            || ScimError::invalid_value("the cursor is not one this server issued (invalidCursor)");
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        match raw.split_once(':') {
            Some(("i", id)) => Uuid::parse_str(id).map(Cursor::After).map_err(|_| bad()),
            Some(("o", n)) => n.parse().map(Cursor::Offset).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

fn resource_of(rt: ResourceType) -> Resource {
    match rt {
        ResourceType::User => Resource::User,
        ResourceType::Group => Resource::Group,
    }
}

impl ScimService {
    /// One page of users or groups as a ListResponse.
    pub async fn list(&self, org_id: Uuid, rt: ResourceType, q: &ListQuery) -> ScimResult<Value> {
        let filter = q.filter.as_ref().map(|f| to_cond(rt, f)).transpose()?;
        self.list_matching(org_id, rt, q, filter).await
    }

    /// `POST /.search` at the root (RFC 7644 §3.4.3): users, then groups.
    /// An attribute one type lacks is a value its resources do not have.
    pub async fn search_root(&self, org_id: Uuid, q: &ListQuery) -> ScimResult<Value> {
        if q.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "cursors are offered per resource type: search /Users or /Groups",
            )
            .into());
        }
        let want = q.count.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let skip = q.start_index.saturating_sub(1);
        // Fetch enough of each type to cover the window, then cut it.
        let mut window = q.clone();
        window.start_index = 1;
        window.count = Some((skip + want).min(MAX_PAGE * 2));
        let mut total = 0;
        let mut all = Vec::new();
        for rt in [ResourceType::User, ResourceType::Group] {
            let filter = q
                .filter
                .as_ref()
                .map(|f| to_cond_across(rt, f))
                .transpose()?;
            let page = self.list_matching(org_id, rt, &window, filter).await?;
            total += page["totalResults"].as_u64().unwrap_or(0);
            if let Some(Value::Array(resources)) = page.get("Resources") {
                all.extend(resources.iter().cloned());
            }
        }
        let all: Vec<Value> = all
            .into_iter()
            .skip(skip as usize)
            .take(want as usize)
            .collect();
        Ok(list_response(total, q.start_index.max(1), all, None))
    }

    async fn list_matching(
        &self,
        org_id: Uuid,
        rt: ResourceType,
        q: &ListQuery,
        filter: Option<crate::store::query::Cond>,
    ) -> ScimResult<Value> {
        let sort = q.sort_by.as_ref().map(|a| sort_key(rt, a)).transpose()?;
        let projection = Projection {
            attributes: q.attributes.clone(),
            excluded: q.excluded.clone(),
        };
        let resource = resource_of(rt);
        let limit = q.count.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let cursor = match q.cursor.as_deref() {
            None => None,
            Some("") => Some(if sort.is_some() {
                Cursor::Offset(0)
            } else {
                Cursor::After(Uuid::nil())
            }),
            Some(text) => Some(Cursor::decode(text)?),
        };
        let mut spec = ListSpec {
            filter,
            sort,
            descending: q.sort_order == SortOrder::Descending,
            offset: q.start_index.saturating_sub(1),
            limit,
            after_id: None,
        };
        match cursor {
            Some(Cursor::After(id)) if spec.sort.is_none() => {
                spec.offset = 0;
                spec.after_id = Some(id);
            }
            Some(Cursor::After(_)) => {
                return Err(ScimError::invalid_value(
                    "the cursor does not fit this sort order (invalidCursor)",
                )
                .into());
            }
            Some(Cursor::Offset(n)) => spec.offset = n,
            None => {}
        }
        let filter_for_count = spec.filter.clone();
        let count_all = || async {
            match &filter_for_count {
                None => self.store.resource_count(org_id, rt.name()).await,
                Some(f) => self.store.count_matching(org_id, resource, f).await,
            }
        };
        if limit == 0 {
            return Ok(list_response(
                count_all().await?,
                q.start_index.max(1),
                Vec::new(),
                None,
            ));
        }
        let (resources, last_id) = match rt {
            ResourceType::User => {
                let (users, groups) = self.store.list_users(org_id, &spec).await?;
                let last = users.last().map(|u| u.id);
                let docs = users
                    .into_iter()
                    .map(|mut u| {
                        let resource = std::mem::take(&mut u.resource);
                        projection.apply(&self.user_document_from(&u, resource, &groups), rt)
                    })
                    .collect::<Vec<_>>();
                (docs, last)
            }
            ResourceType::Group => {
                let groups = self.store.list_groups(org_id, &spec).await?;
                let ids: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
                let members =
                    if super::protocol::wants_members(&projection.attributes, &projection.excluded)
                    {
                        self.store.members_of(org_id, &ids).await?
                    } else {
                        Vec::new()
                    };
                let docs = groups
                    .iter()
                    .map(|g| projection.apply(&self.group_document(g, &members), rt))
                    .collect::<Vec<_>>();
                (docs, ids.last().copied())
            }
        };
        let full = resources.len() as u64 == limit;
        // A first page that is not full holds every match: no need to count
        // (the usual case for an IdP's `userName eq` probe).
        let first_page = spec.offset == 0 && spec.after_id.is_none_or(|id| id.is_nil());
        let total = if first_page && !full {
            resources.len() as u64
        } else {
            count_all().await?
        };
        let next = match (cursor, last_id) {
            (Some(Cursor::After(_)), Some(id)) if full => Some(Cursor::After(id).encode()),
            (Some(Cursor::Offset(n)), Some(_)) if full => Some(Cursor::Offset(n + limit).encode()),
            _ => None,
        };
        let start = if cursor.is_some() {
            1
        } else {
            q.start_index.max(1)
        };
        Ok(list_response(total, start, resources, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = Uuid::now_v7();
        assert_eq!(
            Cursor::decode(&Cursor::After(id).encode()).unwrap(),
            Cursor::After(id)
        );
        assert_eq!(
            Cursor::decode(&Cursor::Offset(300).encode()).unwrap(),
            Cursor::Offset(300)
        );
        assert_eq!(Cursor::decode("not-a-cursor").unwrap_err().status, 400);
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("x:1"))
                .unwrap_err()
                .status,
            400
        );
    }
}

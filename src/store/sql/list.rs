//! [`ScimListRepo`] in SQL: one query per page, filtered and ordered by the
//! compiled condition, scoped to the organization; never a scan in memory.

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::db_err;
use super::exec::{Exec, on_conn};
use super::filter::{Backend, Fragment, compile, order_expr};
use super::groups::{GROUP_COLUMNS, GroupRow};
use super::users::{USER_COLUMNS, UserRow};
use crate::store::query::{Cond, Resource};
use crate::store::scim::{GroupRecord, ListSpec, ScimListRepo, UserGroupRow, UserRecord};
use crate::store::{StoreError, StoreResult};

/// A listed user with its groups (see [`groups_column`]).
#[derive(sqlx::FromRow)]
struct ListedUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    groups_json: Option<String>,
}

/// A query builder of either backend that can take a compiled fragment.
trait Sink {
    const BACKEND: Backend;
    fn fragment(&mut self, f: Fragment);
}

impl Sink for QueryBuilder<Sqlite> {
    const BACKEND: Backend = Backend::Sqlite;
    fn fragment(&mut self, f: Fragment) {
        f.push_sqlite(self);
    }
}

impl Sink for QueryBuilder<Postgres> {
    const BACKEND: Backend = Backend::Postgres;
    fn fragment(&mut self, f: Fragment) {
        f.push_pg(self);
    }
}

fn table(resource: Resource) -> (&'static str, &'static str) {
    match resource {
        Resource::User => ("scim_users", USER_COLUMNS),
        Resource::Group => ("scim_groups", GROUP_COLUMNS),
    }
}

/// The groups a listed user belongs to, as a JSON array of `[id, display]`
/// pairs ordered by display name, computed in the page's own query (a
/// correlated subquery on the member index) so that a page costs one query.
fn groups_column(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            ", (SELECT json_group_array(json_array(hex(x.id), x.display_name)) FROM \
               (SELECT g.id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
                WHERE m.member_id = r.id AND m.org_id = r.org_id ORDER BY g.display_name_lower, g.id) x) AS groups_json"
        }
        Backend::Postgres => {
            ", (SELECT COALESCE(json_agg(json_build_array(g.id, g.display_name) ORDER BY g.display_name_lower, g.id), '[]'::json)::text \
               FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
               WHERE m.member_id = r.id AND m.org_id = r.org_id) AS groups_json"
        }
    }
}

/// `SELECT … FROM <table> r WHERE r.org_id = $1 [AND (filter)] [AND r.id > $k] ORDER BY … LIMIT … OFFSET …`
fn select<Q>(qb: &mut Q, resource: Resource, org_id: Uuid, spec: &ListSpec)
where
    Q: Sink + Binder,
{
    let (table, columns) = table(resource);
    // Users come with their groups, from the same query.
    let groups = match resource {
        Resource::User => groups_column(Q::BACKEND),
        Resource::Group => "",
    };
    qb.text(&format!(
        "SELECT {columns}{groups} FROM {table} r WHERE r.org_id = "
    ));
    qb.uuid(org_id);
    if let Some(filter) = &spec.filter {
        qb.text(" AND (");
        qb.fragment(compile(resource, filter, org_id, Q::BACKEND));
        qb.text(")");
    }
    let direction = if spec.descending { " DESC" } else { " ASC" };
    if let Some(after) = spec.after_id {
        qb.text(" AND r.id > ");
        qb.uuid(after);
        qb.text(" ORDER BY r.id ASC");
    } else if let Some(key) = &spec.sort {
        qb.text(" ORDER BY ");
        qb.fragment(order_expr(resource, key, Q::BACKEND));
        qb.text(direction);
        qb.text(", r.id");
        qb.text(direction);
    } else {
        qb.text(" ORDER BY r.id ASC");
    }
    // The limit is written into the SQL, not bound: SQLite re-prepares a
    // statement whose `LIMIT ?` was re-bound (it may plan by the value), which
    // cost a full parse per list. Few distinct page sizes are ever asked for.
    qb.text(&format!(" LIMIT {}", spec.limit.min(i64::MAX as u64)));
    qb.text(" OFFSET ");
    qb.int(spec.offset.min(i64::MAX as u64) as i64);
}

/// Binding the few plain values list queries need, on either backend.
trait Binder {
    fn text(&mut self, s: &str);
    fn uuid(&mut self, id: Uuid);
    fn int(&mut self, n: i64);
}

impl Binder for QueryBuilder<Sqlite> {
    fn text(&mut self, s: &str) {
        self.push(s);
    }
    fn uuid(&mut self, id: Uuid) {
        self.push_bind(id);
    }
    fn int(&mut self, n: i64) {
        self.push_bind(n);
    }
}

impl Binder for QueryBuilder<Postgres> {
    fn text(&mut self, s: &str) {
        self.push(s);
    }
    fn uuid(&mut self, id: Uuid) {
        self.push_bind(id);
    }
    fn int(&mut self, n: i64) {
        self.push_bind(n);
    }
}

#[async_trait]
impl<T: Exec> ScimListRepo for T {
    async fn list_users(
        &self,
        org_id: Uuid,
        spec: &ListSpec,
    ) -> StoreResult<(Vec<UserRecord>, Vec<UserGroupRow>)> {
        let mut c = self.reader().await?;
        let rows: Vec<ListedUserRow> = on_conn!(c, |c| {
            let mut qb = QueryBuilder::new("");
            select(&mut qb, Resource::User, org_id, spec);
            qb.build_query_as()
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?
        });
        let mut users = Vec::with_capacity(rows.len());
        let mut groups = Vec::new();
        for row in rows {
            let user: UserRecord = row.user.into();
            let pairs: Vec<(String, String)> =
                serde_json::from_str(row.groups_json.as_deref().unwrap_or("[]"))
                    .map_err(StoreError::other)?;
            for (id, display) in pairs {
                groups.push(UserGroupRow {
                    user_id: user.id,
                    group_id: Uuid::parse_str(&id).map_err(StoreError::other)?,
                    display,
                });
            }
            users.push(user);
        }
        Ok((users, groups))
    }

    async fn list_groups(&self, org_id: Uuid, spec: &ListSpec) -> StoreResult<Vec<GroupRecord>> {
        let mut c = self.reader().await?;
        let rows: Vec<GroupRow> = on_conn!(c, |c| {
            let mut qb = QueryBuilder::new("");
            select(&mut qb, Resource::Group, org_id, spec);
            qb.build_query_as()
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn count_matching(
        &self,
        org_id: Uuid,
        resource: Resource,
        filter: &Cond,
    ) -> StoreResult<u64> {
        let (table, _) = table(resource);
        let mut c = self.reader().await?;
        let n: i64 = on_conn!(c, |c| {
            let mut qb = QueryBuilder::new("");
            count(&mut qb, table, resource, org_id, filter);
            qb.build_query_scalar()
                .fetch_one(&mut *c)
                .await
                .map_err(db_err)?
        });
        Ok(n.max(0) as u64)
    }
}

fn count<Q>(qb: &mut Q, table: &str, resource: Resource, org_id: Uuid, filter: &Cond)
where
    Q: Sink + Binder,
{
    qb.text(&format!("SELECT COUNT(*) FROM {table} r WHERE r.org_id = "));
    qb.uuid(org_id);
    qb.text(" AND (");
    qb.fragment(compile(resource, filter, org_id, Q::BACKEND));
    qb.text(")");
}

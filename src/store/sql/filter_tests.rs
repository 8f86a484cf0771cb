//! Filter compilation against real databases: SQLite in memory always,
//! PostgreSQL in a throw-away database when `POSTGRES_TEST_URL` is set (an
//! unreachable server then fails the test). Filters go text → AST → condition
//! → SQL, and each case asserts the exact ids returned.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::types::Json;
use sqlx::{Connection, PgPool, QueryBuilder, SqlitePool};
use uuid::Uuid;

use super::*;
use crate::scim::protocol::{AttrPath, ENTERPRISE_USER_URN, ResourceType, parse_filter};
use crate::scim::query::{sort_key, to_cond};

const PG_ENV: &str = "POSTGRES_TEST_URL";
const CUSTOM_URN: &str = "urn:example:params:scim:schemas:extension:custom:2.0:User";

enum Db {
    Sqlite(SqlitePool),
    Pg {
        pool: PgPool,
        admin: String,
        name: String,
    },
}

/// Executes `$body` with `$p` bound to the pool of either backend.
macro_rules! on_pool {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body.map(|_| ()),
            Db::Pg { pool: $p, .. } => $body.map(|_| ()),
        }
    };
}

impl Db {
    async fn sqlite() -> Db {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await;
        let pool = pool.expect("in-memory SQLite");
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .expect("migrate SQLite");
        Db::Sqlite(pool)
    }

    /// A fresh PostgreSQL database, or None when `POSTGRES_TEST_URL` is unset.
    async fn postgres() -> Option<Db> {
        let admin = std::env::var(PG_ENV).ok().filter(|v| !v.is_empty())?;
        let name = format!("onramp_f_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
        sqlx::raw_sql(create)
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.ok();
        let (base, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        let url = format!(
            "{base}/{name}{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect");
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .expect("migrate PostgreSQL");
        Some(Db::Pg { pool, admin, name })
    }

    async fn drop(self) {
        if let Db::Pg { pool, admin, name } = self {
            pool.close().await;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("reconnect");
            let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            sqlx::raw_sql(drop)
                .execute(&mut conn)
                .await
                .expect("drop database");
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Pg { .. } => Backend::Postgres,
        }
    }

    /// `SELECT r.id … WHERE r.org_id = $org AND (<cond>) ORDER BY <key>, r.id`.
    async fn ids(
        &self,
        resource: Resource,
        cond: &Cond,
        org: Uuid,
        sort: Option<&SortKey>,
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let (head, frag, order) = self.select(resource, cond, org, sort);
        match self {
            Db::Sqlite(p) => {
                let mut qb = QueryBuilder::new(head);
                qb.push_bind(org).push(" AND (");
                frag.push_sqlite(&mut qb);
                qb.push(") ORDER BY ");
                order.push_sqlite(&mut qb);
                qb.push(", r.id").build_query_scalar().fetch_all(p).await
            }
            Db::Pg { pool, .. } => {
                let mut qb = QueryBuilder::new(head);
                qb.push_bind(org).push(" AND (");
                frag.push_pg(&mut qb);
                qb.push(") ORDER BY ");
                order.push_pg(&mut qb);
                qb.push(", r.id").build_query_scalar().fetch_all(pool).await
            }
        }
    }

    fn select(
        &self,
        resource: Resource,
        cond: &Cond,
        org: Uuid,
        sort: Option<&SortKey>,
    ) -> (String, Fragment, Fragment) {
        let (table, default) = match resource {
            Resource::User => ("scim_users", Field::UserName),
            Resource::Group => ("scim_groups", Field::DisplayName),
        };
        let key = SortKey {
            field: default,
            kind: ValueKind::Text { case_exact: false },
        };
        let order = order_expr(resource, sort.unwrap_or(&key), self.backend());
        let head = format!("SELECT r.id FROM {table} r WHERE r.org_id = ");
        (head, compile(resource, cond, org, self.backend()), order)
    }

    /// The query plan of the filter query, one line per node.
    async fn plan(&self, resource: Resource, cond: &Cond, org: Uuid) -> Vec<String> {
        let (head, frag, _) = self.select(resource, cond, org, None);
        match self {
            Db::Sqlite(p) => {
                let mut qb = QueryBuilder::new(format!("EXPLAIN QUERY PLAN {head}"));
                qb.push_bind(org).push(" AND (");
                frag.push_sqlite(&mut qb);
                qb.push(")");
                let rows: Vec<(i64, i64, i64, String)> =
                    qb.build_query_as().fetch_all(p).await.expect("plan");
                rows.into_iter().map(|r| r.3).collect()
            }
            Db::Pg { pool, .. } => {
                let mut conn = pool.acquire().await.expect("conn");
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await
                    .expect("set");
                let mut qb = QueryBuilder::new(format!("EXPLAIN {head}"));
                qb.push_bind(org).push(" AND (");
                frag.push_pg(&mut qb);
                qb.push(")");
                let plan = qb
                    .build_query_scalar()
                    .fetch_all(&mut *conn)
                    .await
                    .expect("plan");
                sqlx::query("RESET enable_seqscan")
                    .execute(&mut *conn)
                    .await
                    .expect("reset");
                plan
            }
        }
    }

    async fn org(&self, id: Uuid) {
        let q = "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, |p| sqlx::query(q)
            .bind(id)
            .bind("Org")
            .bind(id.to_string())
            .bind(Timestamp::now())
            .execute(p)
            .await)
        .expect("insert org");
    }

    async fn user(&self, org: Uuid, u: &Value, updated: &str) -> Uuid {
        let id = Uuid::new_v4();
        let s = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_string);
        let user_name = s("userName").expect("userName");
        let at = ts(updated);
        let q = "INSERT INTO scim_users (id, org_id, user_name, user_name_lower, external_id, display_name, active, \
                 resource, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)";
        on_pool!(self, |p| sqlx::query(q)
            .bind(id)
            .bind(org)
            .bind(&user_name)
            .bind(user_name.to_lowercase())
            .bind(s("externalId"))
            .bind(s("displayName"))
            .bind(u.get("active").and_then(Value::as_bool).unwrap_or(true))
            .bind(Json(u))
            .bind(at.plus(time::Duration::days(-1)))
            .bind(at)
            .execute(p)
            .await)
        .expect("insert user");
        let emails = u
            .get("emails")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let q = "INSERT INTO scim_user_emails (user_id, org_id, position, value, value_lower, type, is_primary, display) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        for (i, e) in emails.iter().enumerate() {
            let value = e["value"].as_str().unwrap_or_default();
            on_pool!(self, |p| sqlx::query(q)
                .bind(id)
                .bind(org)
                .bind(i as i32)
                .bind(value)
                .bind(value.to_lowercase())
                .bind(e.get("type").and_then(Value::as_str))
                .bind(e.get("primary").and_then(Value::as_bool).unwrap_or(false))
                .bind(e.get("display").and_then(Value::as_str))
                .execute(p)
                .await)
            .expect("insert email");
        }
        id
    }

    async fn group(
        &self,
        org: Uuid,
        name: &str,
        external_id: Option<&str>,
        members: &[(Uuid, &str)],
    ) -> Uuid {
        let id = Uuid::new_v4();
        let now = Timestamp::now();
        let doc = json!({"schemas": [crate::scim::protocol::GROUP_URN], "displayName": name});
        let q = "INSERT INTO scim_groups (id, org_id, display_name, display_name_lower, external_id, resource, version, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)";
        on_pool!(self, |p| sqlx::query(q)
            .bind(id)
            .bind(org)
            .bind(name)
            .bind(name.to_lowercase())
            .bind(external_id)
            .bind(Json(&doc))
            .bind(now)
            .execute(p)
            .await)
        .expect("insert group");
        let q = "INSERT INTO scim_group_members (group_id, member_id, org_id, member_type) VALUES ($1, $2, $3, $4)";
        for (member, ty) in members {
            on_pool!(self, |p| sqlx::query(q)
                .bind(id)
                .bind(member)
                .bind(org)
                .bind(*ty)
                .execute(p)
                .await)
            .expect("insert member");
        }
        id
    }
}

fn ts(text: &str) -> Timestamp {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    Timestamp::from_offset(t.expect("test time"))
}

/// Two organizations; `names` maps labels (u1…, g1…) to ids.
struct Fixture {
    org: Uuid,
    other: Uuid,
    names: HashMap<&'static str, Uuid>,
}

const CORE: &str = crate::scim::protocol::USER_URN;

async fn fixture(db: &Db) -> Fixture {
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    db.org(org).await;
    db.org(other).await;
    let mut names = HashMap::new();
    let u1 = json!({
        "schemas": [CORE, ENTERPRISE_USER_URN, CUSTOM_URN],
        "userName": "bjensen", "externalId": "EXT-bjensen", "displayName": "Babs Jensen", "active": true,
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "title": "Tour Guide", "userType": "Employee",
        "emails": [{"value": "zz-babs@jensen.org", "type": "home"},
                   {"value": "bjensen@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "locality": "Hollywood", "primary": true}],
        ENTERPRISE_USER_URN: {"department": "Tour Operations", "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}},
        CUSTOM_URN: {"badge": "B-7", "level": 3, "remote": true}
    });
    let u2 = json!({
        "schemas": [CORE, ENTERPRISE_USER_URN, CUSTOM_URN],
        "userName": "JSmith", "externalId": "ext-bjensen", "displayName": "John Smith", "active": false,
        "name": {"familyName": "O'Malley"}, "title": "", "userType": "Intern",
        "emails": [{"value": "JSmith@Example.org", "type": "work"}],
        "ims": [{"value": "js@foo.com", "type": "xmpp"}],
        ENTERPRISE_USER_URN: {"department": "Sales"},
        CUSTOM_URN: {"badge": "b-7", "level": 7, "remote": false}
    });
    let u3 = json!({
        "schemas": [CORE, ENTERPRISE_USER_URN],
        "userName": "jane.doe", "userType": "Contractor", "active": true,
        "phoneNumbers": "555-not-an-array", "roles": [{"value": "admin"}], "ims": [5, "x"],
        ENTERPRISE_USER_URN: {"manager": {"value": "someone"}},
        CUSTOM_URN: {"level": "9"}
    });
    let u4 = json!({
        "schemas": [CORE],
        "userName": "Ø'Hara%_\\x", "displayName": "Zoë Ünal", "title": "50%_off\\now", "userType": "Employee",
        "emails": [{"value": "weird%_@example.com", "type": "work"}]
    });
    let u5 = json!({
        "schemas": [CORE], "userName": "bjensen", "externalId": "EXT-bjensen", "title": "Tour Guide",
        "userType": "Employee", "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
    });
    let users = [
        ("u1", org, u1, "2011-05-13T04:42:34Z"),
        ("u2", org, u2, "2012-01-01T00:00:00Z"),
        ("u3", org, u3, "2010-01-01T00:00:00Z"),
        ("u4", org, u4, "2013-06-01T12:00:00.5Z"),
        ("u5", other, u5, "2011-05-13T04:42:34Z"),
    ];
    for (label, o, doc, at) in users {
        names.insert(label, db.user(o, &doc, at).await);
    }
    let g1 = db
        .group(
            org,
            "Tour Guides",
            Some("grp-1"),
            &[(names["u1"], "User"), (names["u2"], "User")],
        )
        .await;
    names.insert("g1", g1);
    names.insert(
        "g2",
        db.group(org, "Admins", None, &[(names["u3"], "User"), (g1, "Group")])
            .await,
    );
    names.insert("g3", db.group(org, "Empty", None, &[]).await);
    names.insert(
        "g4",
        db.group(
            other,
            "Tour Guides",
            Some("grp-1"),
            &[(names["u5"], "User")],
        )
        .await,
    );
    Fixture { org, other, names }
}

impl Fixture {
    /// Replaces `{label}` by that resource's id.
    fn text(&self, filter: &str) -> String {
        self.names.iter().fold(filter.to_string(), |t, (k, v)| {
            t.replace(&format!("{{{k}}}"), &v.to_string())
        })
    }

    fn ids(&self, labels: &[&str]) -> Vec<Uuid> {
        labels.iter().map(|l| self.names[l]).collect()
    }

    fn labels(&self, ids: &[Uuid]) -> Vec<&'static str> {
        ids.iter()
            .map(|id| {
                self.names
                    .iter()
                    .find(|(_, v)| *v == id)
                    .map_or("?", |(k, _)| *k)
            })
            .collect()
    }
}

fn cond(rt: ResourceType, text: &str) -> Cond {
    to_cond(
        rt,
        &parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `[G: ]filter => expected labels`, in userName (users: bjensen u1, jane.doe u3,
/// jsmith u2, ø'hara… u4) or displayName (groups: admins g2, empty g3, tour guides g1) order.
const CASES: &[&str] = &[
    r#"userName eq "bjensen" => u1"#,
    r#"USERNAME eq "BJENSEN" => u1"#,
    r#"userName sw "J" => u3 u2"#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "j" => u3 u2"#,
    r#"userName eq "ø'HARA%_\\x" => u4"#,
    r#"userName co "%_" => u4"#,
    r#"userName co "_" => u4"#,
    r#"userName ew "\\x" => u4"#,
    r#"userName gt "jane.doe" => u2 u4"#,
    r#"name.familyName co "O'Malley" => u2"#,
    r#"name.familyName eq "o'malley" => u2"#,
    r#"name.familyName eq "O'Malley'; DROP TABLE scim_users; --" => "#,
    r#"title pr => u1 u4"#,
    r#"not (title pr) => u3 u2"#,
    r#"title co "%_OFF\\" => u4"#,
    r#"title ew "GUIDE" => u1"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z" => u2 u4"#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z" => u1 u2 u4"#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z" => u3"#,
    r#"meta.lastModified le "2011-05-13T06:42:34+02:00" => u1 u3"#,
    r#"meta.created lt "2011-01-01T00:00:00Z" => u3"#,
    r#"title pr and userType eq "Employee" => u1 u4"#,
    r#"title pr or userType eq "Intern" => u1 u2 u4"#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" => u1 u3 u2"#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org") => u1 u4"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org") => u3"#,
    r#"userType eq "Employee" and (emails.type eq "work") => u1 u4"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"] => u1 u4"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"] => u1 u2 u4"#,
    r#"emails.value eq "JSMITH@example.ORG" => u2"#,
    r#"emails[primary eq true] => u1"#,
    r#"emails[not (type eq "work")] => u1"#,
    r#"emails.type ne "work" => u3"#,
    r#"emails.display pr => "#,
    r#"externalId eq "EXT-bjensen" => u1"#,
    r#"externalId eq "ext-bjensen" => u2"#,
    r#"externalId sw "EXT" => u1"#,
    r#"externalId co "bjensen" => u1 u2"#,
    r#"externalId ew "JENSEN" => "#,
    r#"externalId ne "EXT-bjensen" => u3 u2 u4"#,
    r#"id eq "{u2}" => u2"#,
    r#"id eq "{u5}" => "#,
    r#"id eq "bjensen" => "#,
    r#"id sw "{u2}" => u2"#,
    r#"active eq false => u2"#,
    r#"active ne true => u2"#,
    r#"displayName eq "babs jensen" => u1"#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations" => u1"#,
    r#"department sw "Sal" => u2"#,
    r#"manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d" => u1"#,
    r#"manager pr => u1 u3"#,
    r#"name pr => u1 u2"#,
    r#"name[givenName eq "barbara"] => u1"#,
    r#"phoneNumbers[type eq "work"] => u1"#,
    r#"phoneNumbers pr => u1"#,
    r#"not (phoneNumbers.value co "555") => u3 u2 u4"#,
    r#"ims.value eq "X" => "#,
    r#"addresses[locality eq "hollywood" and primary eq true] => u1"#,
    r#"addresses[primary eq false] => "#,
    r#"roles pr => u3"#,
    r#"groups.value eq "{g1}" => u1 u2"#,
    r#"groups[display eq "tour GUIDES"] => u1 u2"#,
    r#"groups[type eq "direct" and display sw "adm"] => u3"#,
    r#"groups pr => u1 u3 u2"#,
    r#"not (groups pr) => u4"#,
    r#"groups.value eq "{g4}" => "#,
    r#"meta.resourceType eq "User" => u1 u3 u2 u4"#,
    r#"not (userName eq "bjensen") and not (userName sw "j") => u4"#,
    r#"G: displayName eq "TOUR guides" => g1"#,
    r#"G: displayName sw "A" => g2"#,
    r#"G: members.value eq "{u1}" => g1"#,
    r#"G: members[value eq "{g1}"] => g2"#,
    r#"G: members[type eq "group"] => g2"#,
    r#"G: members pr => g2 g1"#,
    r#"G: not (members pr) => g3"#,
    r#"G: externalId eq "grp-1" => g1"#,
    r#"G: members.value eq "nope" => "#,
];

/// Splits `[G: ]filter => a b c` into resource type, filter and labels.
fn case(line: &str) -> (ResourceType, &str, Vec<&str>) {
    let (rt, rest) = match line.strip_prefix("G: ") {
        Some(rest) => (ResourceType::Group, rest),
        None => (ResourceType::User, line),
    };
    let (filter, want) = rest.rsplit_once(" => ").expect("`=>` in case");
    (rt, filter, want.split_whitespace().collect())
}

fn resource(rt: ResourceType) -> Resource {
    match rt {
        ResourceType::User => Resource::User,
        ResourceType::Group => Resource::Group,
    }
}

/// Runs every case; returns the mismatches.
async fn run_cases(db: &Db, fx: &Fixture) -> Vec<String> {
    let mut failures = Vec::new();
    for line in CASES {
        let (rt, filter, expected) = case(line);
        let text = fx.text(filter);
        let got = db.ids(resource(rt), &cond(rt, &text), fx.org, None).await;
        match got {
            Ok(ids) if ids == fx.ids(&expected) => {}
            Ok(ids) => failures.push(format!(
                "{text}: got {:?}, want {expected:?}",
                fx.labels(&ids)
            )),
            Err(e) => failures.push(format!("{text}: {e}")),
        }
    }
    failures
}

/// Cases only a hand-built condition reaches: a custom extension (the schema
/// does not know it), numbers and booleans in JSON.
fn custom(key: &str, kind: ValueKind, op: Op, value: Literal) -> Cond {
    let path = vec![CUSTOM_URN.to_string(), key.to_string()];
    Cond::Compare {
        field: Field::Json { path },
        kind,
        op,
        value,
    }
}

async fn run_custom_and_sort_cases(db: &Db, fx: &Fixture) -> Vec<String> {
    let exact = ValueKind::Text { case_exact: true };
    let cases: Vec<(Cond, Option<&str>, &[&str])> = vec![
        (
            custom("level", ValueKind::Number, Op::Gt, Literal::Number(5.0)),
            None,
            &["u2"],
        ),
        (
            custom("level", ValueKind::Number, Op::Le, Literal::Number(3.0)),
            None,
            &["u1"],
        ),
        (
            custom("remote", ValueKind::Bool, Op::Eq, Literal::Bool(true)),
            None,
            &["u1"],
        ),
        (
            custom("remote", ValueKind::Bool, Op::Eq, Literal::Bool(false)),
            None,
            &["u2"],
        ),
        (
            custom("remote", ValueKind::Bool, Op::Ne, Literal::Bool(true)),
            None,
            &["u3", "u2", "u4"],
        ),
        (
            custom("badge", exact, Op::Eq, Literal::Text("B-7".into())),
            None,
            &["u1"],
        ),
        (
            custom("badge", exact, Op::Sw, Literal::Text("b-".into())),
            None,
            &["u2"],
        ),
        (
            custom("badge", exact, Op::Ew, Literal::Text("-7".into())),
            None,
            &["u1", "u2"],
        ),
        (
            Cond::Present(Field::Json {
                path: vec![CUSTOM_URN.into()],
            }),
            None,
            &["u1", "u3", "u2"],
        ),
        (
            cond(ResourceType::User, "title pr"),
            Some("title"),
            &["u4", "u1"],
        ),
        (
            Cond::Const(true),
            Some("meta.lastModified"),
            &["u3", "u1", "u2", "u4"],
        ),
        (
            cond(ResourceType::User, "emails pr"),
            Some("emails"),
            &["u1", "u2", "u4"],
        ),
        (
            cond(ResourceType::User, "displayName pr"),
            Some("displayName"),
            &["u1", "u2", "u4"],
        ),
        (
            cond(ResourceType::User, "name.familyName pr"),
            Some("name.familyName"),
            &["u1", "u2"],
        ),
    ];
    let mut failures = Vec::new();
    for (c, sort, expected) in cases {
        let key = sort.map(|s| {
            sort_key(ResourceType::User, &AttrPath::parse(s).expect("path")).expect("sort key")
        });
        match db.ids(Resource::User, &c, fx.org, key.as_ref()).await {
            Ok(ids) if ids == fx.ids(expected) => {}
            Ok(ids) => failures.push(format!(
                "{c:?} by {sort:?}: got {:?}, want {expected:?}",
                fx.labels(&ids)
            )),
            Err(e) => failures.push(format!("{c:?} by {sort:?}: {e}")),
        }
    }
    failures
}

async fn all_cases_pass(db: Db) {
    let fx = fixture(&db).await;
    let mut failures = run_cases(&db, &fx).await;
    failures.extend(run_custom_and_sort_cases(&db, &fx).await);
    // The other organization's resources never leak into a result.
    let everything = db
        .ids(Resource::User, &Cond::Const(true), fx.org, None)
        .await;
    if everything
        .as_ref()
        .map_or(true, |ids| ids.contains(&fx.names["u5"]))
    {
        failures.push(format!("other org leaked: {everything:?}"));
    }
    let theirs = db
        .ids(
            Resource::User,
            &cond(ResourceType::User, r#"userName eq "bjensen""#),
            fx.other,
            None,
        )
        .await;
    if theirs.as_ref().ok() != Some(&fx.ids(&["u5"])) {
        failures.push(format!("other org: {theirs:?}"));
    }
    db.drop().await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn filters_return_exactly_the_expected_resources_on_sqlite() {
    all_cases_pass(Db::sqlite().await).await;
}

#[tokio::test]
async fn filters_return_exactly_the_expected_resources_on_postgres() {
    if let Some(db) = Db::postgres().await {
        all_cases_pass(db).await;
    }
}

/// `[G: ]filter => what the SQLite plan must show | what a PostgreSQL Index Cond tests`.
const PLANS: &[&str] = &[
    r#"userName eq "bjensen" => (org_id=? AND user_name_lower=?) | user_name_lower ="#,
    r#"externalId eq "X" => scim_users_org_external_idx (org_id=? AND external_id=?) | external_id ="#,
    r#"id eq "{u1}" => (id=?) | (id = "#,
    r#"emails.value eq "b@example.com" => scim_user_emails_org_value_idx (org_id=? AND value_lower=?) | value_lower ="#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z" => scim_users_org_updated_idx (org_id=? AND updated_at>?) | updated_at >"#,
    r#"groups.value eq "{g1}" => sqlite_autoindex_scim_group_members_1 (group_id=?) | group_id ="#,
    r#"G: displayName eq "admins" => scim_groups_org_display_idx (org_id=? AND display_name_lower=?) | display_name_lower ="#,
    r#"G: members.value eq "{u1}" => scim_group_members_member_idx (member_id=?) | member_id ="#,
];

/// PostgreSQL plans by statistics: give it a realistic organization.
const PG_FILLER: &[&str] = &[
    "INSERT INTO scim_users (id, org_id, user_name, user_name_lower, external_id, active, resource, version, \
     created_at, updated_at) SELECT gen_random_uuid(), $1, 'filler' || i, 'filler' || i, 'fx' || i, true, \
     '{}'::jsonb, 1, timestamptz '2000-01-01' + i * interval '1 minute', \
     timestamptz '2000-01-01' + i * interval '1 minute' FROM generate_series(1, 5000) AS i",
    "INSERT INTO scim_user_emails (user_id, org_id, position, value, value_lower, type, is_primary) \
     SELECT id, org_id, 0, user_name || '@filler.test', user_name_lower || '@filler.test', 'work', false \
     FROM scim_users WHERE org_id = $1 AND user_name LIKE 'filler%'",
    "INSERT INTO scim_groups (id, org_id, display_name, display_name_lower, resource, version, created_at, \
     updated_at) SELECT gen_random_uuid(), $1, 'Filler ' || i, 'filler ' || i, '{}'::jsonb, 1, now(), now() \
     FROM generate_series(1, 500) AS i",
    "INSERT INTO scim_group_members (group_id, member_id, org_id, member_type) \
     SELECT g.id, u.id, $1, 'User' FROM scim_groups g JOIN scim_users u ON u.org_id = g.org_id \
     AND u.user_name = 'filler' || substr(g.display_name, 8) WHERE g.org_id = $1",
];

async fn lookups_use_indexes(db: Db) {
    let fx = fixture(&db).await;
    if let Db::Pg { pool, .. } = &db {
        for q in PG_FILLER {
            sqlx::query(*q)
                .bind(fx.org)
                .execute(pool)
                .await
                .expect("filler");
        }
        sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
    }
    let mut failures = Vec::new();
    for line in PLANS {
        let (rt, filter, _) = case(line);
        let (_, want) = line.rsplit_once(" => ").expect("plan case");
        let (sqlite, pg) = want.split_once(" | ").expect("plan case");
        let plan = db
            .plan(resource(rt), &cond(rt, &fx.text(filter)), fx.org)
            .await;
        let ok = match db.backend() {
            Backend::Sqlite => {
                plan.iter()
                    .any(|l| l.contains(sqlite) && l.contains("USING"))
                    && plan.iter().all(|l| !l.starts_with("SCAN"))
            }
            Backend::Postgres => {
                plan.iter()
                    .any(|l| l.contains("Index Cond") && l.contains(pg))
                    && plan
                        .iter()
                        .any(|l| l.contains("Index Scan") || l.contains("Index Only Scan"))
                    && plan.iter().all(|l| !l.contains("Seq Scan"))
            }
        };
        if !ok {
            failures.push(format!("{filter}:\n{}", plan.join("\n")));
        }
    }
    db.drop().await;
    assert!(
        failures.is_empty(),
        "plans without the expected index:\n{}",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn indexed_lookups_use_their_index_on_sqlite() {
    lookups_use_indexes(Db::sqlite().await).await;
}

#[tokio::test]
async fn indexed_lookups_use_their_index_on_postgres() {
    if let Some(db) = Db::postgres().await {
        lookups_use_indexes(db).await;
    }
}

const HOSTILE: &[&str] = &[
    "'",
    "''",
    "\"",
    "%",
    "_",
    "\\",
    "\\%",
    "%_\\",
    "'; DROP TABLE scim_users; --",
    "$1",
    "?",
    "é✓日本",
    "a\u{0}b",
    "[*]",
    "$.x",
    "{}",
    ")) OR ((1 = 1",
];

fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    v.push("x".repeat(10 * 1024));
    v.push(format!("{}%'", "\\_".repeat(3000)));
    v
}

/// Hostile values match literally: each title equals one value; substring
/// operators return exactly the users whose title contains it, per Rust.
async fn hostile_values_match_literally(db: Db) {
    let org = Uuid::new_v4();
    db.org(org).await;
    let values: Vec<String> = hostile_values()
        .into_iter()
        .filter(|v| !v.contains('\0'))
        .collect();
    let mut ids = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let doc = json!({"userName": format!("user{i:02}"), "title": v, "nickName": v});
        ids.push(db.user(org, &doc, "2020-01-01T00:00:00Z").await);
    }
    let mut failures = Vec::new();
    for v in &values {
        for (op, exact) in [Op::Eq, Op::Co, Op::Sw, Op::Ew]
            .into_iter()
            .flat_map(|o| [(o, true), (o, false)])
        {
            let field = Field::Json {
                path: vec![if exact { "nickName" } else { "title" }.into()],
            };
            let kind = ValueKind::Text { case_exact: exact };
            let c = Cond::Compare {
                field,
                kind,
                op,
                value: Literal::Text(v.clone()),
            };
            let want: Vec<Uuid> = values
                .iter()
                .zip(&ids)
                .filter(|(t, _)| match op {
                    Op::Eq => *t == v,
                    Op::Co => t.contains(v.as_str()),
                    Op::Sw => t.starts_with(v.as_str()),
                    _ => t.ends_with(v.as_str()),
                })
                .map(|(_, id)| *id)
                .collect();
            match db.ids(Resource::User, &c, org, None).await {
                Ok(got) if got == want => {}
                Ok(got) => failures.push(format!(
                    "{op:?} exact={exact} {:.40}: {} ids, want {}",
                    v,
                    got.len(),
                    want.len()
                )),
                Err(e) => failures.push(format!("{op:?} {:.40}: {e}", v)),
            }
        }
    }
    db.drop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn hostile_values_are_bound_and_match_literally_on_sqlite() {
    hostile_values_match_literally(Db::sqlite().await).await;
}

#[tokio::test]
async fn hostile_values_are_bound_and_match_literally_on_postgres() {
    if let Some(db) = Db::postgres().await {
        hostile_values_match_literally(db).await;
    }
}

fn shapes(v: &str) -> Vec<Cond> {
    let text = |field: Field, case_exact, op| Cond::Compare {
        field,
        kind: ValueKind::Text { case_exact },
        op,
        value: Literal::Text(v.into()),
    };
    let mut out = Vec::new();
    for op in [Op::Eq, Op::Ne, Op::Co, Op::Sw, Op::Ew, Op::Gt] {
        out.push(text(Field::UserName, false, op));
        out.push(text(Field::ExternalId, true, op));
        out.push(text(
            Field::Json {
                path: vec![ENTERPRISE_USER_URN.into(), "department".into()],
            },
            false,
            op,
        ));
        let elem = ElemCond::Compare {
            sub: Some("value".into()),
            kind: ValueKind::Text { case_exact: false },
            op,
            value: Literal::Text(v.into()),
        };
        out.push(Cond::Any {
            multi: Multi::Emails,
            elem: Some(Box::new(elem.clone())),
        });
        out.push(Cond::Any {
            multi: Multi::Json {
                path: vec!["ims".into()],
            },
            elem: Some(Box::new(elem)),
        });
    }
    out
}

proptest! {
    /// The SQL text never depends on a value: any value compiles to the same
    /// text as a plain one, on both backends, and the value is among the binds.
    #[test]
    fn sql_text_never_depends_on_the_value(v in prop_oneof![any::<String>(), prop::sample::select(hostile_values())]) {
        let org = Uuid::new_v4();
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for (c, plain) in shapes(&v).iter().zip(shapes("plain")) {
                let f = compile(Resource::User, c, org, backend);
                let p = compile(Resource::User, &plain, org, backend);
                prop_assert_eq!(f.sql_preview(), p.sql_preview());
                prop_assert_eq!(f.binds().len(), p.binds().len());
            }
            let f = compile(Resource::User, &shapes(&v)[0], org, backend);
            prop_assert!(f.binds().contains(&&Bind::Text(v.to_lowercase())));
        }
    }
}

#[test]
fn like_patterns_escape_wildcards_and_the_escape_character() {
    assert_eq!(like_pattern("50%_off\\", Op::Co), "%50\\%\\_off\\\\%");
    assert_eq!(like_pattern("a", Op::Sw), "a%");
    assert_eq!(like_pattern("a", Op::Ew), "%a");
}

#[test]
fn json_paths_quote_keys_so_urns_with_dots_and_colons_work() {
    let keys = [
        ENTERPRISE_USER_URN.to_string(),
        "manager".into(),
        "value".into(),
    ];
    assert_eq!(
        sqlite_json_path(&keys).as_deref(),
        Some(
            "$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""
        )
    );
    assert_eq!(sqlite_json_path(&["a\"b".into()]), None);
}

#[test]
fn username_eq_compiles_to_the_lower_cased_column_with_a_lower_cased_bind() {
    let f = compile(
        Resource::User,
        &cond(ResourceType::User, r#"userName eq "BJensen""#),
        Uuid::nil(),
        Backend::Postgres,
    );
    assert_eq!(f.sql_preview(), "r.user_name_lower = $1");
    assert_eq!(f.binds(), vec![&Bind::Text("bjensen".into())]);
}

#[test]
fn emails_compile_to_an_in_subquery_scoped_to_the_org() {
    let org = Uuid::new_v4();
    let f = compile(
        Resource::User,
        &cond(ResourceType::User, r#"emails.value eq "A@B.C""#),
        org,
        Backend::Sqlite,
    );
    assert_eq!(
        f.sql_preview(),
        "r.id IN (SELECT e.user_id FROM scim_user_emails e WHERE e.org_id = $1 AND (e.value_lower = $2))"
    );
    assert_eq!(
        f.binds(),
        vec![&Bind::Uuid(org), &Bind::Text("a@b.c".into())]
    );
}

#[test]
fn negation_keeps_resources_without_the_attribute() {
    let f = compile(
        Resource::User,
        &cond(ResourceType::User, r#"title ne "x""#),
        Uuid::nil(),
        Backend::Postgres,
    );
    assert_eq!(
        f.sql_preview(),
        "NOT COALESCE((lower((r.resource #>> $1)) = $2), FALSE)"
    );
}

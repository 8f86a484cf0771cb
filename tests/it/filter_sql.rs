//! Filter compilation against real databases, through the store's public API:
//! every test runs on each backend of `backends()` (SQLite always; PostgreSQL
//! when `POSTGRES_TEST_URL` is set, an unreachable server then failing the
//! test), each in a fresh database. Filters go text → AST → condition
//! (`scim::protocol::parse_filter`, `scim::query::to_cond`) → the store's list
//! and count, and each case asserts the exact ids returned; the SQL a filter
//! compiles to and its query plan come from `store::sql::explain_filter`.

use std::collections::HashMap;

use onramp::scim::protocol::{
    AttrPath, ENTERPRISE_USER_URN, GROUP_URN, ResourceType, USER_URN, parse_filter,
};
use onramp::scim::query::{sort_key, to_cond};
use onramp::store::query::{
    Cond, ElemCond, Field, Literal, Multi, Op, Resource, SortKey, ValueKind,
};
use onramp::store::scim::{EmailRow, GroupRecord, ListSpec, MemberKind, UserRecord};
use onramp::store::sql::{FilterPlan, explain_filter};
use onramp::store::{DynStore, OrgSettings, Organization, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{Backend, TestDb, backends};

const CUSTOM_URN: &str = "urn:example:params:scim:schemas:extension:custom:2.0:User";

/// A fresh, migrated database of one backend and the store on it.
struct Db {
    db: TestDb,
    store: DynStore,
    backend: Backend,
}

impl Db {
    async fn new(backend: Backend) -> Db {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        Db { db, store, backend }
    }

    /// The ids of the organization's resources matching `cond`, as a list
    /// returns them: ordered by `sort` (by default userName or displayName,
    /// case-insensitively), then by id. The count must agree with the list.
    async fn ids(
        &self,
        resource: Resource,
        cond: &Cond,
        org: Uuid,
        sort: Option<&SortKey>,
    ) -> Result<Vec<Uuid>, String> {
        let default = SortKey {
            field: match resource {
                Resource::User => Field::UserName,
                Resource::Group => Field::DisplayName,
            },
            kind: ValueKind::Text { case_exact: false },
        };
        let spec = ListSpec {
            filter: Some(cond.clone()),
            sort: Some(sort.cloned().unwrap_or(default)),
            descending: false,
            offset: 0,
            limit: 1000,
            after_id: None,
        };
        let ids: Vec<Uuid> = match resource {
            Resource::User => {
                let listed = self.store.list_users(org, &spec).await;
                let (users, _) = listed.map_err(|e| format!("list: {e}"))?;
                users.iter().map(|u| u.id).collect()
            }
            Resource::Group => {
                let groups = self.store.list_groups(org, &spec).await;
                let groups = groups.map_err(|e| format!("list: {e}"))?;
                groups.iter().map(|g| g.id).collect()
            }
        };
        let count = self.store.count_matching(org, resource, cond).await;
        let count = count.map_err(|e| format!("count: {e}"))?;
        if count != ids.len() as u64 {
            return Err(format!(
                "count_matching is {count}, the list has {}",
                ids.len()
            ));
        }
        Ok(ids)
    }

    /// The SQL `cond` compiles to on this backend and the backend's plan for it.
    async fn explain(&self, resource: Resource, cond: &Cond, org: Uuid) -> FilterPlan {
        explain_filter(&self.db.url, resource, cond, org)
            .await
            .unwrap_or_else(|e| panic!("{:?}: explain {cond:?}: {e}", self.backend))
    }

    async fn org(&self, id: Uuid) {
        let org = Organization {
            id,
            name: "Org".into(),
            slug: id.to_string(),
            domains: vec![],
            created_at: Timestamp::now(),
            settings: OrgSettings::default(),
        };
        self.store.insert_org(&org).await.expect("insert org");
    }

    /// Stores `u` as it is (the whole document), last modified at `updated`
    /// and created a day earlier.
    async fn user(&self, org: Uuid, u: &Value, updated: &str) -> Uuid {
        let s = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_string);
        let at = ts(updated);
        let user = UserRecord {
            id: Uuid::new_v4(),
            org_id: org,
            user_name: s("userName").expect("userName"),
            external_id: s("externalId"),
            display_name: s("displayName"),
            active: u.get("active").and_then(Value::as_bool).unwrap_or(true),
            resource: u.clone(),
            password_hash: None,
            version: 1,
            created_at: at.plus(time::Duration::days(-1)),
            updated_at: at,
        };
        let emails: Vec<EmailRow> = u
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| EmailRow {
                value: e["value"].as_str().unwrap_or_default().to_string(),
                kind: e.get("type").and_then(Value::as_str).map(str::to_string),
                primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
                display: e.get("display").and_then(Value::as_str).map(str::to_string),
            })
            .collect();
        self.store
            .insert_user(&user, &emails)
            .await
            .expect("insert user");
        user.id
    }

    async fn group(
        &self,
        org: Uuid,
        name: &str,
        external_id: Option<&str>,
        members: &[(Uuid, MemberKind)],
    ) -> Uuid {
        let now = Timestamp::now();
        let group = GroupRecord {
            id: Uuid::new_v4(),
            org_id: org,
            display_name: name.into(),
            external_id: external_id.map(str::to_string),
            resource: json!({"schemas": [GROUP_URN], "displayName": name}),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_group(&group).await.expect("insert group");
        if !members.is_empty() {
            let added = self.store.add_members(org, group.id, members).await;
            added.expect("insert members");
        }
        group.id
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

async fn fixture(db: &Db) -> Fixture {
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    db.org(org).await;
    db.org(other).await;
    let mut names = HashMap::new();
    let u1 = json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, CUSTOM_URN],
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
        "schemas": [USER_URN, ENTERPRISE_USER_URN, CUSTOM_URN],
        "userName": "JSmith", "externalId": "ext-bjensen", "displayName": "John Smith", "active": false,
        "name": {"familyName": "O'Malley"}, "title": "", "userType": "Intern",
        "emails": [{"value": "JSmith@Example.org", "type": "work"}],
        "ims": [{"value": "js@foo.com", "type": "xmpp"}],
        ENTERPRISE_USER_URN: {"department": "Sales"},
        CUSTOM_URN: {"badge": "b-7", "level": 7, "remote": false}
    });
    let u3 = json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN],
        "userName": "jane.doe", "userType": "Contractor", "active": true,
        "phoneNumbers": "555-not-an-array", "roles": [{"value": "admin"}], "ims": [5, "x"],
        ENTERPRISE_USER_URN: {"manager": {"value": "someone"}},
        CUSTOM_URN: {"level": "9"}
    });
    let u4 = json!({
        "schemas": [USER_URN],
        "userName": "Ø'Hara%_\\x", "displayName": "Zoë Ünal", "title": "50%_off\\now", "userType": "Employee",
        "emails": [{"value": "weird%_@example.com", "type": "work"}]
    });
    let u5 = json!({
        "schemas": [USER_URN], "userName": "bjensen", "externalId": "EXT-bjensen", "title": "Tour Guide",
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
    let user = |label: &str| (names[label], MemberKind::User);
    let g1 = db
        .group(org, "Tour Guides", Some("grp-1"), &[user("u1"), user("u2")])
        .await;
    let g2 = db
        .group(org, "Admins", None, &[user("u3"), (g1, MemberKind::Group)])
        .await;
    let g3 = db.group(org, "Empty", None, &[]).await;
    let g4 = db
        .group(other, "Tour Guides", Some("grp-1"), &[user("u5")])
        .await;
    names.extend([("g1", g1), ("g2", g2), ("g3", g3), ("g4", g4)]);
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

#[tokio::test]
async fn filters_return_exactly_the_expected_resources() {
    for backend in backends() {
        let db = Db::new(backend).await;
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
        assert!(
            failures.is_empty(),
            "{backend:?}: {} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
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

#[tokio::test]
async fn indexed_lookups_use_their_index() {
    for backend in backends() {
        let db = Db::new(backend).await;
        let fx = fixture(&db).await;
        if backend == Backend::Postgres {
            let mut conn = sqlx::PgConnection::connect(&db.db.url)
                .await
                .expect("connect");
            for q in PG_FILLER {
                sqlx::query(*q)
                    .bind(fx.org)
                    .execute(&mut conn)
                    .await
                    .expect("filler");
            }
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .expect("analyze");
            conn.close().await.ok();
        }
        let mut failures = Vec::new();
        for line in PLANS {
            let (rt, filter, _) = case(line);
            let (_, want) = line.rsplit_once(" => ").expect("plan case");
            let (sqlite, pg) = want.split_once(" | ").expect("plan case");
            let explained = db
                .explain(resource(rt), &cond(rt, &fx.text(filter)), fx.org)
                .await;
            let plan = &explained.plan;
            let ok = match backend {
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
        assert!(
            failures.is_empty(),
            "{backend:?}: plans without the expected index:\n{}",
            failures.join("\n\n")
        );
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
#[tokio::test]
async fn hostile_values_are_bound_and_match_literally() {
    for backend in backends() {
        let db = Db::new(backend).await;
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
        assert!(failures.is_empty(), "{backend:?}: {}", failures.join("\n"));
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

/// The SQL text never depends on a value: any value compiles to the same
/// text as a plain one, on every backend, and the value is among the binds.
/// (Each case compiles all shapes as one conjunction, so that a case costs
/// one trip to the database; a mismatch is then pinned to its shape.)
#[test]
fn sql_text_never_depends_on_the_value() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let org = Uuid::new_v4();
    for backend in backends() {
        let db = rt.block_on(Db::new(backend));
        let explain = |c: &Cond| rt.block_on(db.explain(Resource::User, c, org));
        let plain = explain(&Cond::And(shapes("plain")));
        let values = prop_oneof![any::<String>(), prop::sample::select(hostile_values())];
        let result = TestRunner::default().run(&values, |v| {
            // PostgreSQL text cannot hold NUL: it refuses such a bound value
            // (as it would in any list). SQLite checks values with NULs.
            let v = match backend {
                Backend::Postgres => v.replace('\0', ""),
                Backend::Sqlite => v,
            };
            let f = explain(&Cond::And(shapes(&v)));
            if f.sql != plain.sql {
                for (c, p) in shapes(&v).iter().zip(shapes("plain")) {
                    prop_assert_eq!(explain(c).sql, explain(&p).sql, "{:?}", c);
                }
            }
            prop_assert_eq!(&f.sql, &plain.sql);
            prop_assert_eq!(f.binds.len(), plain.binds.len());
            prop_assert!(f.binds.contains(&v.to_lowercase()));
            Ok(())
        });
        if let Err(e) = result {
            panic!("{backend:?}: {e}");
        }
    }
}

/// `SELECT r.id FROM scim_users r WHERE r.org_id = $1 AND (<filter>)`.
fn users_where(filter: &str) -> String {
    format!("SELECT r.id FROM scim_users r WHERE r.org_id = $1 AND ({filter})")
}

/// The bound LIKE pattern of `userName <op> "<v>"` (case-insensitive).
async fn like_bind(db: &Db, v: &str, op: Op) -> String {
    let c = Cond::Compare {
        field: Field::UserName,
        kind: ValueKind::Text { case_exact: false },
        op,
        value: Literal::Text(v.into()),
    };
    let f = db.explain(Resource::User, &c, Uuid::nil()).await;
    assert_eq!(
        f.sql,
        users_where("r.user_name_lower LIKE $2 ESCAPE '\\'"),
        "{:?}",
        db.backend
    );
    f.binds[1].clone()
}

#[tokio::test]
async fn like_patterns_escape_wildcards_and_the_escape_character() {
    for backend in backends() {
        let db = Db::new(backend).await;
        assert_eq!(
            like_bind(&db, "50%_off\\", Op::Co).await,
            "%50\\%\\_off\\\\%"
        );
        assert_eq!(like_bind(&db, "a", Op::Sw).await, "a%");
        assert_eq!(like_bind(&db, "a", Op::Ew).await, "%a");
    }
}

#[tokio::test]
async fn json_paths_quote_keys_so_urns_with_dots_and_colons_work() {
    for backend in backends() {
        let db = Db::new(backend).await;
        let at = |path: Vec<String>| Cond::Compare {
            field: Field::Json { path },
            kind: ValueKind::Text { case_exact: false },
            op: Op::Eq,
            value: Literal::Text("x".into()),
        };
        let keys = vec![
            ENTERPRISE_USER_URN.to_string(),
            "manager".into(),
            "value".into(),
        ];
        let org = Uuid::new_v4();
        let f = db.explain(Resource::User, &at(keys), org).await;
        let quoted = db
            .explain(Resource::User, &at(vec!["a\"b".into()]), org)
            .await;
        match backend {
            Backend::Sqlite => {
                assert_eq!(
                    f.binds,
                    vec![
                        org.to_string(),
                        "$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\"".into(),
                        "x".into()
                    ]
                );
                // A key SQLite cannot quote reads nothing (no path is bound).
                assert_eq!(quoted.sql, users_where("lower(NULL) = $2"));
                assert_eq!(quoted.binds, vec![org.to_string(), "x".into()]);
            }
            Backend::Postgres => {
                assert_eq!(
                    f.binds,
                    vec![
                        org.to_string(),
                        "[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"manager\",\"value\"]".into(),
                        "x".into()
                    ]
                );
                assert_eq!(quoted.binds[1], "[\"a\\\"b\"]");
            }
        }
    }
}

#[tokio::test]
async fn username_eq_compiles_to_the_lower_cased_column_with_a_lower_cased_bind() {
    for backend in backends() {
        let db = Db::new(backend).await;
        let f = db
            .explain(
                Resource::User,
                &cond(ResourceType::User, r#"userName eq "BJensen""#),
                Uuid::nil(),
            )
            .await;
        assert_eq!(f.sql, users_where("r.user_name_lower = $2"), "{backend:?}");
        assert_eq!(f.binds, vec![Uuid::nil().to_string(), "bjensen".into()]);
    }
}

#[tokio::test]
async fn emails_compile_to_an_in_subquery_scoped_to_the_org() {
    for backend in backends() {
        let db = Db::new(backend).await;
        let org = Uuid::new_v4();
        let f = db
            .explain(
                Resource::User,
                &cond(ResourceType::User, r#"emails.value eq "A@B.C""#),
                org,
            )
            .await;
        assert_eq!(
            f.sql,
            users_where(
                "r.id IN (SELECT e.user_id FROM scim_user_emails e WHERE e.org_id = $2 AND (e.value_lower = $3))"
            ),
            "{backend:?}"
        );
        assert_eq!(
            f.binds,
            vec![org.to_string(), org.to_string(), "a@b.c".into()]
        );
    }
}

#[tokio::test]
async fn negation_keeps_resources_without_the_attribute() {
    for backend in backends() {
        let db = Db::new(backend).await;
        let f = db
            .explain(
                Resource::User,
                &cond(ResourceType::User, r#"title ne "x""#),
                Uuid::nil(),
            )
            .await;
        let read = match backend {
            Backend::Sqlite => "json_extract(r.resource, $2)",
            Backend::Postgres => "(r.resource #>> $2)",
        };
        assert_eq!(
            f.sql,
            users_where(&format!("NOT COALESCE((lower({read}) = $3), FALSE)"))
        );
    }
}

//! Compiles storage-neutral conditions and sort keys ([`crate::store::query`])
//! to SQL fragments for SQLite and PostgreSQL, against `scim_users r` or
//! `scim_groups r`.
//!
//! Every value — literals, ids, LIKE patterns, JSON paths, the org id — is a
//! bound parameter: the SQL text depends only on the shape of the condition.
//! This module must never splice a value into SQL, never load resources to
//! filter them in memory, and never produce SQL that can fail at run time on
//! stored data (non-array JSON, non-object elements, absent values).
//!
//! Shapes chosen for the indexes of `migrations/*/0002_scim.sql`: userName and
//! group displayName compare their lower-cased columns; emails go through
//! `r.id IN (SELECT e.user_id … WHERE e.org_id = $org AND …)`; memberships
//! filtered by an id use `IN` on the membership keys. A comparison on an
//! absent value is NULL, and `NOT` is `NOT COALESCE((…), FALSE)`, so negations
//! (and `ne`) hold for resources without the attribute.

use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::db_err;
use crate::store::query::{
    Cond, ElemCond, Field, Literal, Multi, Op, Resource, SortKey, ValueKind,
};
use crate::store::{StoreResult, Timestamp};

/// The SQL dialect to compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Real(f64),
    Bool(bool),
    Uuid(Uuid),
    Time(Timestamp),
    /// A PostgreSQL `text[]` (JSON paths for `#>`/`#>>`).
    TextArray(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// SQL text and its bound values, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Fragment {
    parts: Vec<Part>,
}

/// Appends a fragment's parts to a `QueryBuilder`, binding each value as its own type.
macro_rules! push_parts {
    ($parts:expr, $qb:expr, $array:expr) => {
        for part in $parts {
            match part {
                Part::Sql(s) => $qb.push(s),
                Part::Bind(Bind::Text(v)) => $qb.push_bind(v),
                Part::Bind(Bind::Real(v)) => $qb.push_bind(v),
                Part::Bind(Bind::Bool(v)) => $qb.push_bind(v),
                Part::Bind(Bind::Uuid(v)) => $qb.push_bind(v),
                Part::Bind(Bind::Time(v)) => $qb.push_bind(v),
                Part::Bind(Bind::TextArray(v)) => $qb.push_bind($array(v)),
            };
        }
    };
}

impl Fragment {
    fn of(s: &str) -> Fragment {
        Fragment {
            parts: vec![Part::Sql(s.to_string())],
        }
    }

    fn bound(b: Bind) -> Fragment {
        Fragment {
            parts: vec![Part::Bind(b)],
        }
    }

    fn sql(&mut self, s: &str) -> &mut Self {
        match self.parts.last_mut() {
            Some(Part::Sql(last)) => last.push_str(s),
            _ => self.parts.push(Part::Sql(s.to_string())),
        }
        self
    }

    fn bind(&mut self, b: Bind) -> &mut Self {
        self.parts.push(Part::Bind(b));
        self
    }

    fn append(&mut self, other: &Fragment) -> &mut Self {
        for p in &other.parts {
            match p {
                Part::Sql(s) => self.sql(s),
                Part::Bind(b) => self.bind(b.clone()),
            };
        }
        self
    }

    /// Writes `template`, replacing each `{_}` by the next of `args`.
    fn tpl(&mut self, template: &str, args: &[&Fragment]) -> &mut Self {
        for (i, piece) in template.split("{_}").enumerate() {
            if let Some(a) = i.checked_sub(1).and_then(|i| args.get(i)) {
                self.append(a);
            }
            self.sql(piece);
        }
        self
    }

    /// Appends the fragment to a SQLite query, binding its values.
    pub(crate) fn push_sqlite(self, qb: &mut QueryBuilder<Sqlite>) {
        // Text arrays are never produced for SQLite; they would bind as JSON text.
        push_parts!(self.parts, qb, |v: Vec<String>| serde_json::Value::from(v)
            .to_string());
    }

    /// Appends the fragment to a PostgreSQL query, binding its values.
    pub(crate) fn push_pg(self, qb: &mut QueryBuilder<Postgres>) {
        push_parts!(self.parts, qb, |v: Vec<String>| v);
    }

    /// The SQL text with `$1`, `$2`, … for the bound values (for tests and logs).
    pub(crate) fn sql_preview(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for p in &self.parts {
            match p {
                Part::Sql(s) => out.push_str(s),
                Part::Bind(_) => {
                    n += 1;
                    out.push_str(&format!("${n}"));
                }
            }
        }
        out
    }

    /// The bound values, in order.
    pub(crate) fn binds(&self) -> Vec<&Bind> {
        let binds = self.parts.iter().filter_map(|p| match p {
            Part::Bind(b) => Some(b),
            Part::Sql(_) => None,
        });
        binds.collect()
    }
}

/// WHERE-clause fragment for `cond` against `scim_users r` or `scim_groups r`
/// (outer alias `r`), scoped to `org_id` in any subquery.
pub(crate) fn compile(resource: Resource, cond: &Cond, org_id: Uuid, backend: Backend) -> Fragment {
    let mut f = Fragment::default();
    Compiler {
        resource,
        org: org_id,
        backend,
    }
    .cond(cond, &mut f);
    f
}

/// ORDER BY expression for a sort key (without direction), on alias `r`.
/// NULLs sort as the backend does (first ascending on SQLite, last on PostgreSQL).
pub(crate) fn order_expr(resource: Resource, key: &SortKey, backend: Backend) -> Fragment {
    let c = Compiler {
        resource,
        org: Uuid::nil(),
        backend,
    };
    let insensitive = key.kind == ValueKind::Text { case_exact: false };
    match c.field_loc(&key.field) {
        Loc::Col(_, Some(l), _) if insensitive => Fragment::of(&l),
        Loc::Col(sql, _, ColTy::Text) if insensitive => Fragment::of(&format!("lower({sql})")),
        Loc::Col(sql, _, _) => Fragment::of(&sql),
        loc @ Loc::Json(..) => match (key.kind, backend) {
            (ValueKind::Text { case_exact: false }, _) => lower(&c.json(&loc, Json::Text)),
            (ValueKind::Text { .. } | ValueKind::DateTime, _) | (_, Backend::Sqlite) => {
                c.json(&loc, Json::Text)
            }
            (_, Backend::Postgres) => c.json(&loc, Json::Jsonb),
        },
        Loc::EachValue | Loc::Nothing => Fragment::of("NULL"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColTy {
    Text,
    Uuid,
    Bool,
    Time,
}

/// Where a value is read from.
#[derive(Debug, Clone)]
enum Loc {
    /// A column (or scalar subquery), its lower-cased copy when one is stored, its type.
    Col(String, Option<String>, ColTy),
    /// A value inside a JSON document (SQL expression), at keys from its root.
    Json(&'static str, Vec<String>),
    /// SQLite only: the current `json_each` element itself (`j.value`, `j.type`).
    EachValue,
    /// Not stored for this resource: every test on it is false.
    Nothing,
}

/// What to read of a JSON location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Json {
    /// SQLite `json_extract` (text, number, 1/0); PostgreSQL `#>>` text.
    Text,
    /// SQLite `json_type` names; PostgreSQL `jsonb_typeof` names.
    Type,
    /// PostgreSQL only: the `jsonb` value.
    Jsonb,
}

fn col(sql: &str, lower: Option<&str>, ty: ColTy) -> Loc {
    Loc::Col(sql.into(), lower.map(Into::into), ty)
}

fn lower(x: &Fragment) -> Fragment {
    let mut f = Fragment::default();
    f.tpl("lower({_})", &[x]);
    f
}

/// `$."key"."sub"`; None when a key cannot be quoted in a SQLite JSON path.
fn sqlite_json_path(keys: &[String]) -> Option<String> {
    let mut p = String::from("$");
    for k in keys {
        if k.contains('"') {
            return None;
        }
        p.push_str(&format!(".\"{k}\""));
    }
    Some(p)
}

/// A LIKE pattern matching `v` literally, with `\` as the escape character.
fn like_pattern(v: &str, op: Op) -> String {
    let mut escaped = String::with_capacity(v.len() + 2);
    for ch in v.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    match op {
        Op::Sw => format!("{escaped}%"),
        Op::Ew => format!("%{escaped}"),
        _ => format!("%{escaped}%"),
    }
}

fn op_sql(op: Op) -> &'static str {
    match op {
        Op::Gt => " > ",
        Op::Ge => " >= ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Ne => " <> ",
        Op::Eq | Op::Co | Op::Sw | Op::Ew => " = ",
    }
}

const SQLITE_ELEM_OBJECT: &str = "(CASE WHEN j.type = 'object' THEN j.value END)";
const PRIMARY_EMAIL: &str = "(SELECT e.{} FROM scim_user_emails e WHERE e.user_id = r.id \
                             ORDER BY e.is_primary DESC, e.position LIMIT 1)";

struct Compiler {
    resource: Resource,
    org: Uuid,
    backend: Backend,
}

impl Compiler {
    fn field_loc(&self, field: &Field) -> Loc {
        let user = self.resource == Resource::User;
        let (email, email_lower) = (
            PRIMARY_EMAIL.replace("{}", "value"),
            PRIMARY_EMAIL.replace("{}", "value_lower"),
        );
        match field {
            Field::Id => col("r.id", None, ColTy::Uuid),
            Field::UserName if user => col("r.user_name", Some("r.user_name_lower"), ColTy::Text),
            Field::ExternalId => col("r.external_id", None, ColTy::Text),
            Field::DisplayName if user => col("r.display_name", None, ColTy::Text),
            Field::DisplayName => col("r.display_name", Some("r.display_name_lower"), ColTy::Text),
            Field::Active if user => col("r.active", None, ColTy::Bool),
            Field::Active => Loc::Json("r.resource", vec!["active".into()]),
            Field::Created => col("r.created_at", None, ColTy::Time),
            Field::LastModified => col("r.updated_at", None, ColTy::Time),
            Field::PrimaryEmail if user => col(&email, Some(&email_lower), ColTy::Text),
            Field::Json { path } => Loc::Json("r.resource", path.clone()),
            Field::UserName | Field::PrimaryEmail => Loc::Nothing,
        }
    }

    /// Reads a JSON location (see [`Json`]); NULL for anything else.
    fn json(&self, loc: &Loc, what: Json) -> Fragment {
        let mut f = Fragment::default();
        match (loc, self.backend, what) {
            (Loc::Json(doc, keys), Backend::Sqlite, _) => match sqlite_json_path(keys) {
                Some(p) => {
                    let func = if what == Json::Type {
                        "json_type"
                    } else {
                        "json_extract"
                    };
                    f.sql(&format!("{func}({doc}, "))
                        .bind(Bind::Text(p))
                        .sql(")")
                }
                None => f.sql("NULL"),
            },
            (Loc::Json(_, _), Backend::Postgres, Json::Type) => {
                f.tpl("jsonb_typeof({_})", &[&self.json(loc, Json::Jsonb)])
            }
            (Loc::Json(doc, keys), Backend::Postgres, _) => {
                let op = if what == Json::Text { "#>>" } else { "#>" };
                f.sql(&format!("({doc} {op} "))
                    .bind(Bind::TextArray(keys.clone()))
                    .sql(")")
            }
            (Loc::EachValue, _, Json::Type) => f.sql("j.type"),
            (Loc::EachValue, _, _) => f.sql("j.value"),
            _ => f.sql("NULL"),
        };
        f
    }

    fn join<T>(&self, items: &[T], and: bool, f: &mut Fragment, each: impl Fn(&T, &mut Fragment)) {
        if items.is_empty() {
            f.sql(if and { "TRUE" } else { "FALSE" });
        }
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.sql(if and { " AND " } else { " OR " });
            }
            f.sql("(");
            each(item, f);
            f.sql(")");
        }
    }

    /// `NOT COALESCE((inner), FALSE)`: true where `inner` is false or unknown (absent).
    fn not(&self, f: &mut Fragment, inner: impl FnOnce(&mut Fragment)) {
        f.sql("NOT COALESCE((");
        inner(f);
        f.sql("), FALSE)");
    }

    fn cond(&self, c: &Cond, f: &mut Fragment) {
        match c {
            Cond::Const(b) => {
                f.sql(if *b { "TRUE" } else { "FALSE" });
            }
            Cond::And(items) => self.join(items, true, f, |c, f| self.cond(c, f)),
            Cond::Or(items) => self.join(items, false, f, |c, f| self.cond(c, f)),
            Cond::Not(inner) => self.not(f, |f| self.cond(inner, f)),
            Cond::Compare {
                field,
                kind,
                op,
                value,
            } => self.compare(&self.field_loc(field), *kind, *op, value, f),
            Cond::Present(field) => self.present(&self.field_loc(field), f),
            Cond::Any { multi, elem } => self.any(multi, elem.as_deref(), f),
        }
    }

    fn compare(&self, loc: &Loc, kind: ValueKind, op: Op, value: &Literal, f: &mut Fragment) {
        if op == Op::Ne {
            return self.not(f, |f| self.compare(loc, kind, Op::Eq, value, f));
        }
        match (kind, value, loc) {
            (ValueKind::Text { case_exact }, Literal::Text(v), _) => {
                self.text(loc, case_exact, op, v, f)
            }
            (ValueKind::Bool, Literal::Bool(b), _) if op == Op::Eq => self.boolean(loc, *b, f),
            (ValueKind::Number, Literal::Number(n), _) if !op.is_substring() => {
                self.number(loc, op, *n, f)
            }
            (ValueKind::DateTime, Literal::DateTime(t), Loc::Col(sql, _, ColTy::Time))
                if !op.is_substring() =>
            {
                f.sql(sql).sql(op_sql(op)).bind(Bind::Time(*t));
            }
            // JSON dateTimes are RFC 3339 text; compared as text in UTC form.
            (ValueKind::DateTime, Literal::DateTime(t), Loc::Json(..) | Loc::EachValue)
                if !op.is_substring() =>
            {
                self.text(loc, true, op, &t.rfc3339(), f)
            }
            _ => {
                f.sql("FALSE");
            }
        }
    }

    fn text(&self, loc: &Loc, case_exact: bool, op: Op, v: &str, f: &mut Fragment) {
        // (expression, holds lower-cased text, compare case-insensitively)
        let (x, v) = match loc {
            Loc::Col(sql, _, ColTy::Uuid) if op == Op::Eq => {
                match Uuid::parse_str(v) {
                    Ok(id) => f.sql(sql).sql(" = ").bind(Bind::Uuid(id)),
                    Err(_) => f.sql("FALSE"),
                };
                return;
            }
            Loc::Col(sql, _, ColTy::Uuid) => (self.uuid_text(sql), v.to_lowercase()),
            Loc::Col(_, Some(l), ColTy::Text) if !case_exact => (Fragment::of(l), v.to_lowercase()),
            Loc::Col(sql, _, ColTy::Text) if case_exact => (Fragment::of(sql), v.to_string()),
            Loc::Col(sql, _, ColTy::Text) => (lower(&Fragment::of(sql)), v.to_lowercase()),
            Loc::Json(..) | Loc::EachValue if case_exact => (self.json(loc, Json::Text), v.into()),
            Loc::Json(..) | Loc::EachValue => {
                (lower(&self.json(loc, Json::Text)), v.to_lowercase())
            }
            _ => {
                f.sql("FALSE");
                return;
            }
        };
        let insensitive = !case_exact || matches!(loc, Loc::Col(_, _, ColTy::Uuid));
        let b = Fragment::bound(Bind::Text(v.clone()));
        match (op, insensitive, self.backend) {
            (Op::Co | Op::Sw | Op::Ew, true, _) => f
                .append(&x)
                .sql(" LIKE ")
                .bind(Bind::Text(like_pattern(&v, op)))
                .sql(" ESCAPE '\\'"),
            (Op::Co, false, Backend::Sqlite) => f.tpl("instr({_}, {_}) > 0", &[&x, &b]),
            (Op::Sw, false, Backend::Sqlite) => {
                f.tpl("substr({_}, 1, length({_})) = {_}", &[&x, &b, &b])
            }
            (Op::Ew, false, Backend::Sqlite) => f.tpl(
                "(length({_}) >= length({_}) AND substr({_}, length({_}) - length({_}) + 1) = {_})",
                &[&x, &b, &x, &x, &b, &b],
            ),
            (Op::Co, false, Backend::Postgres) => f.tpl("strpos({_}, {_}) > 0", &[&x, &b]),
            (Op::Sw, false, Backend::Postgres) => {
                f.tpl("left({_}, length({_})) = {_}", &[&x, &b, &b])
            }
            (Op::Ew, false, Backend::Postgres) => {
                f.tpl("right({_}, length({_})) = {_}", &[&x, &b, &b])
            }
            _ => f.append(&x).sql(op_sql(op)).append(&b),
        };
    }

    /// A UUID column as lower-case hyphenated text.
    fn uuid_text(&self, sql: &str) -> Fragment {
        if self.backend == Backend::Postgres {
            return Fragment::of(&format!("CAST({sql} AS text)"));
        }
        let h = format!("hex({sql})");
        Fragment::of(&format!(
            "lower(substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' || substr({h}, 13, 4) \
             || '-' || substr({h}, 17, 4) || '-' || substr({h}, 21, 12))"
        ))
    }

    fn boolean(&self, loc: &Loc, b: bool, f: &mut Fragment) {
        match (loc, self.backend) {
            (Loc::Col(sql, _, ColTy::Bool), _) => f.sql(sql).sql(" = ").bind(Bind::Bool(b)),
            // SQLite: json_type tells `true`/`false` apart from the numbers 1/0.
            (Loc::Json(..) | Loc::EachValue, Backend::Sqlite) => {
                let name = if b { "true" } else { "false" };
                let t = self.json(loc, Json::Type);
                f.append(&t).sql(" = ").bind(Bind::Text(name.into()))
            }
            (Loc::Json(..), Backend::Postgres) => f
                .append(&self.json(loc, Json::Jsonb))
                .sql(" = to_jsonb(CAST(")
                .bind(Bind::Bool(b))
                .sql(" AS boolean))"),
            _ => f.sql("FALSE"),
        };
    }

    fn number(&self, loc: &Loc, op: Op, n: f64, f: &mut Fragment) {
        let (t, v) = (self.json(loc, Json::Type), self.json(loc, Json::Text));
        match (loc, self.backend) {
            (Loc::Json(..) | Loc::EachValue, Backend::Sqlite) => f.tpl(
                "(CASE WHEN {_} IN ('integer', 'real') THEN {_} END)",
                &[&t, &v],
            ),
            (Loc::Json(..), Backend::Postgres) => f.tpl(
                "(CASE WHEN {_} = 'number' THEN CAST({_} AS double precision) END)",
                &[&t, &v],
            ),
            _ => {
                f.sql("FALSE");
                return;
            }
        };
        f.sql(op_sql(op)).bind(Bind::Real(n));
    }

    /// RFC 7644 §3.4.2.2 `pr`: not null, not an empty string, array or object.
    fn present(&self, loc: &Loc, f: &mut Fragment) {
        let (t, v, b) = (
            self.json(loc, Json::Type),
            self.json(loc, Json::Text),
            self.json(loc, Json::Jsonb),
        );
        match (loc, self.backend) {
            (Loc::Col(sql, _, ColTy::Text), _) => {
                f.sql(&format!("({sql} IS NOT NULL AND {sql} <> '')"))
            }
            (Loc::Col(sql, _, _), _) => f.sql(&format!("{sql} IS NOT NULL")),
            (Loc::Json(..) | Loc::EachValue, Backend::Sqlite) => f.tpl(
                "(CASE {_} WHEN 'text' THEN {_} <> '' WHEN 'array' THEN {_} <> '[]' \
                 WHEN 'object' THEN {_} <> '{}' WHEN 'null' THEN FALSE ELSE {_} IS NOT NULL END)",
                &[&t, &v, &v, &v, &t],
            ),
            (Loc::Json(..), Backend::Postgres) => f.tpl(
                "(CASE {_} WHEN 'string' THEN {_} <> '' WHEN 'array' THEN {_} <> '[]'::jsonb \
                 WHEN 'object' THEN {_} <> '{}'::jsonb WHEN 'null' THEN FALSE ELSE {_} IS NOT NULL END)",
                &[&t, &v, &b, &b, &b],
            ),
            _ => f.sql("FALSE"),
        };
    }

    fn elem(&self, e: &ElemCond, loc_of: &dyn Fn(Option<&str>) -> Loc, f: &mut Fragment) {
        match e {
            ElemCond::And(items) => self.join(items, true, f, |e, f| self.elem(e, loc_of, f)),
            ElemCond::Or(items) => self.join(items, false, f, |e, f| self.elem(e, loc_of, f)),
            ElemCond::Not(inner) => self.not(f, |f| self.elem(inner, loc_of, f)),
            ElemCond::Compare {
                sub,
                kind,
                op,
                value,
            } => self.compare(&loc_of(sub.as_deref()), *kind, *op, value, f),
            ElemCond::Present { sub } => self.present(&loc_of(sub.as_deref()), f),
        }
    }

    fn any(&self, multi: &Multi, elem: Option<&ElemCond>, f: &mut Fragment) {
        let user = self.resource == Resource::User;
        match multi {
            Multi::Emails if user => {
                f.sql("r.id IN (SELECT e.user_id FROM scim_user_emails e WHERE e.org_id = ");
                f.bind(Bind::Uuid(self.org));
                if let Some(e) = elem {
                    f.sql(" AND (");
                    self.elem(e, &email_loc, f);
                    f.sql(")");
                }
                f.sql(")");
            }
            Multi::Members if !user => self.membership(elem, f, &OF_GROUP),
            Multi::Groups if user => self.membership(elem, f, &OF_USER),
            Multi::Json { path } => self.json_any(path, elem, f),
            _ => {
                f.sql("FALSE");
            }
        }
    }

    /// Memberships: `IN` over the org's rows when an indexed `eq` drives the
    /// lookup, else `EXISTS` correlated on the resource's own key.
    fn membership(&self, elem: Option<&ElemCond>, f: &mut Fragment, m: &Membership) {
        let own = m.own;
        let Some(e) = elem else {
            f.sql(&format!(
                "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.{own} = r.id)"
            ));
            return;
        };
        let join = mentions(e, "display") && own == "member_id";
        let from = if join {
            "scim_group_members m JOIN scim_groups g ON g.id = m.group_id"
        } else {
            "scim_group_members m"
        };
        if anchored(e, m.anchors) {
            f.sql(&format!(
                "r.id IN (SELECT m.{own} FROM {from} WHERE m.org_id = "
            ));
            f.bind(Bind::Uuid(self.org));
            if join {
                f.sql(" AND g.org_id = ").bind(Bind::Uuid(self.org));
            }
        } else {
            f.sql(&format!(
                "EXISTS (SELECT 1 FROM {from} WHERE m.{own} = r.id"
            ));
        }
        f.sql(" AND (");
        self.elem(e, &m.loc, f);
        f.sql("))");
    }

    /// An array in the JSON document; non-arrays have no elements.
    fn json_any(&self, path: &[String], elem: Option<&ElemCond>, f: &mut Fragment) {
        let array = Loc::Json("r.resource", path.to_vec());
        let (t, v, b) = (
            self.json(&array, Json::Type),
            self.json(&array, Json::Text),
            self.json(&array, Json::Jsonb),
        );
        match (elem, self.backend) {
            (None, Backend::Sqlite) => f.tpl("({_} = 'array' AND {_} <> '[]')", &[&t, &v]),
            (None, Backend::Postgres) => f.tpl(
                "COALESCE(CASE {_} WHEN 'array' THEN {_} <> '[]'::jsonb ELSE FALSE END, FALSE)",
                &[&t, &b],
            ),
            (Some(e), Backend::Sqlite) => {
                let p = Fragment::bound(Bind::Text(sqlite_json_path(path).unwrap_or_default()));
                f.tpl(
                    "({_} = 'array' AND EXISTS (SELECT 1 FROM json_each(r.resource, {_}) j WHERE ",
                    &[&t, &p],
                );
                let loc = |sub: Option<&str>| match sub {
                    Some(k) => Loc::Json(SQLITE_ELEM_OBJECT, vec![k.to_string()]),
                    None => Loc::EachValue,
                };
                self.elem(e, &loc, f);
                f.sql("))")
            }
            (Some(e), Backend::Postgres) => {
                f.tpl(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE {_} WHEN 'array' THEN {_} \
                     ELSE '[]'::jsonb END) AS j(value) WHERE ",
                    &[&t, &b],
                );
                let loc = |sub: Option<&str>| {
                    Loc::Json("j.value", sub.map(Into::into).into_iter().collect())
                };
                self.elem(e, &loc, f);
                f.sql(")")
            }
        };
    }
}

/// Columns of an email row (alias `e`).
fn email_loc(sub: Option<&str>) -> Loc {
    match sub.unwrap_or("value") {
        "value" => col("e.value", Some("e.value_lower"), ColTy::Text),
        "type" => col("e.type", None, ColTy::Text),
        "primary" => col("e.is_primary", None, ColTy::Bool),
        "display" => col("e.display", None, ColTy::Text),
        _ => Loc::Nothing,
    }
}

/// A membership seen from one side: a group's members or a user's groups.
struct Membership {
    /// The column holding the outer resource's id.
    own: &'static str,
    /// Sub-attributes whose `eq` an index serves.
    anchors: &'static [&'static str],
    loc: fn(Option<&str>) -> Loc,
}

/// A group's members (alias `m`).
const OF_GROUP: Membership = Membership {
    own: "group_id",
    anchors: &["value"],
    loc: |sub| match sub.unwrap_or("value") {
        "value" => col("m.member_id", None, ColTy::Uuid),
        "type" => col("m.member_type", None, ColTy::Text),
        _ => Loc::Nothing,
    },
};

/// A user's groups (alias `m`, and `g` for the group when `display` is tested).
const OF_USER: Membership = Membership {
    own: "member_id",
    anchors: &["value", "display"],
    loc: |sub| match sub.unwrap_or("value") {
        "value" => col("m.group_id", None, ColTy::Uuid),
        "display" => col("g.display_name", Some("g.display_name_lower"), ColTy::Text),
        "type" => col("'direct'", None, ColTy::Text),
        _ => Loc::Nothing,
    },
};

/// Whether `e` requires an `eq` on one of `subs` (so an index can drive the lookup).
fn anchored(e: &ElemCond, subs: &[&str]) -> bool {
    match e {
        ElemCond::Compare {
            sub, op: Op::Eq, ..
        } => subs.contains(&sub.as_deref().unwrap_or("value")),
        ElemCond::And(items) => items.iter().any(|i| anchored(i, subs)),
        _ => false,
    }
}

fn mentions(e: &ElemCond, name: &str) -> bool {
    match e {
        ElemCond::And(items) | ElemCond::Or(items) => items.iter().any(|i| mentions(i, name)),
        ElemCond::Not(inner) => mentions(inner, name),
        ElemCond::Compare { sub, .. } | ElemCond::Present { sub } => sub.as_deref() == Some(name),
    }
}

/// What [`explain_filter`] reports about a filter.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPlan {
    /// The statement explained, `$1`, `$2`, … for its bound values:
    /// `SELECT r.id FROM <table> r WHERE r.org_id = $1 AND (<filter>)`, the
    /// condition a list or count of the resource runs.
    pub sql: String,
    /// The bound values, in order, as text (a PostgreSQL JSON path as a JSON array).
    pub binds: Vec<String>,
    /// The backend's plan, one line per node: SQLite's `EXPLAIN QUERY PLAN`
    /// details, or PostgreSQL's `EXPLAIN` planned with `enable_seqscan = off`
    /// (so an index that can serve the filter shows even on a small table).
    pub plan: Vec<String>,
}

/// For tests and operators: which index a filter uses. Compiles `cond` as
/// a list of `resource` in organization `org_id` does, and asks the database
/// at `url` (on a connection of its own, which writes nothing) how it would
/// run it.
#[doc(hidden)]
pub async fn explain_filter(
    url: &str,
    resource: Resource,
    cond: &Cond,
    org_id: Uuid,
) -> StoreResult<FilterPlan> {
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let table = match resource {
        Resource::User => "scim_users",
        Resource::Group => "scim_groups",
    };
    let mut select = Fragment::of(&format!("SELECT r.id FROM {table} r WHERE r.org_id = "));
    select
        .bind(Bind::Uuid(org_id))
        .sql(" AND (")
        .append(&compile(resource, cond, org_id, backend))
        .sql(")");
    let sql = select.sql_preview();
    let binds = select.binds().into_iter().map(Bind::text).collect();
    let plan = match backend {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(url).map_err(db_err)?;
            let mut conn = options.read_only(true).connect().await.map_err(db_err)?;
            let mut qb = QueryBuilder::new("EXPLAIN QUERY PLAN ");
            select.push_sqlite(&mut qb);
            let rows: Vec<(i64, i64, i64, String)> = qb
                .build_query_as()
                .fetch_all(&mut conn)
                .await
                .map_err(db_err)?;
            conn.close().await.ok();
            rows.into_iter().map(|r| r.3).collect()
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(url).await.map_err(db_err)?;
            sqlx::raw_sql("SET enable_seqscan = off")
                .execute(&mut conn)
                .await
                .map_err(db_err)?;
            let mut qb = QueryBuilder::new("EXPLAIN ");
            select.push_pg(&mut qb);
            let plan = qb
                .build_query_scalar()
                .fetch_all(&mut conn)
                .await
                .map_err(db_err)?;
            conn.close().await.ok();
            plan
        }
    };
    Ok(FilterPlan { sql, binds, plan })
}

impl Bind {
    /// The value as text, for [`FilterPlan::binds`].
    fn text(&self) -> String {
        match self {
            Bind::Text(v) => v.clone(),
            Bind::Real(v) => v.to_string(),
            Bind::Bool(v) => v.to_string(),
            Bind::Uuid(v) => v.to_string(),
            Bind::Time(v) => v.rfc3339(),
            Bind::TextArray(v) => serde_json::Value::from(v.clone()).to_string(),
        }
    }
}

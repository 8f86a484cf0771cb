//! Statements as values: SQL text with its own `$1..$n` placeholders and the
//! owned arguments bound to them, so that a backend can run a statement now,
//! keep it for later, or send several as one (see [`Batch`]).
//!
//! Repositories build a [`Stmt`] (or a [`Write`], a statement with what it
//! must change to be valid) and hand it to [`super::exec::Exec`]; they never
//! renumber placeholders or choose when a write is sent.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::types::Json;
use sqlx::{Arguments, Encode, Type};
use uuid::Uuid;

use crate::store::{StoreError, StoreResult, Timestamp};

/// One bound value. `None` binds a typed NULL.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    I16(Option<i16>),
    I32(Option<i32>),
    I64(Option<i64>),
    Bool(Option<bool>),
    Uuid(Option<Uuid>),
    Bytes(Option<Vec<u8>>),
    Time(Option<Timestamp>),
    /// A JSON document, serialized once (JSONB on PostgreSQL, text on SQLite).
    Json(Option<Box<RawValue>>),
}

macro_rules! arg_from {
    ($variant:ident, $t:ty) => {
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                Arg::$variant(Some(v))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Arg {
                Arg::$variant(v)
            }
        }
        impl From<&Option<$t>> for Arg {
            fn from(v: &Option<$t>) -> Arg {
                Arg::$variant(v.clone())
            }
        }
    };
}

arg_from!(Text, String);
arg_from!(I16, i16);
arg_from!(I32, i32);
arg_from!(I64, i64);
arg_from!(Bool, bool);
arg_from!(Uuid, Uuid);
arg_from!(Bytes, Vec<u8>);
arg_from!(Time, Timestamp);
arg_from!(Json, Box<RawValue>);

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_string()))
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Arg {
        Arg::Bytes(Some(v.to_vec()))
    }
}

/// A JSON value as an argument.
pub(crate) fn json(v: &serde_json::Value) -> StoreResult<Arg> {
    serde_json::value::to_raw_value(v)
        .map(|raw| Arg::Json(Some(raw)))
        .map_err(StoreError::other)
}

fn add<'q, A, T>(args: &mut A, v: T) -> StoreResult<()>
where
    A: Arguments,
    T: Encode<'q, A::Database> + Type<A::Database> + 'q,
{
    args.add(v)
        .map_err(|e| StoreError::other(std::io::Error::other(e.to_string())))
}

/// Adds an [`Arg`] to either backend's arguments (the same code for both).
macro_rules! add_arg {
    ($arg:expr, $args:expr) => {
        match $arg {
            Arg::Text(v) => add::<_, Option<String>>($args, v),
            Arg::I16(v) => add::<_, Option<i16>>($args, v),
            Arg::I32(v) => add::<_, Option<i32>>($args, v),
            Arg::I64(v) => add::<_, Option<i64>>($args, v),
            Arg::Bool(v) => add::<_, Option<bool>>($args, v),
            Arg::Uuid(v) => add::<_, Option<Uuid>>($args, v),
            Arg::Bytes(v) => add::<_, Option<Vec<u8>>>($args, v),
            Arg::Time(v) => add::<_, Option<Timestamp>>($args, v),
            Arg::Json(v) => add::<_, Option<Json<Box<RawValue>>>>($args, v.map(Json)),
        }
    };
}

impl Arg {
    fn add_sqlite(self, a: &mut SqliteArguments) -> StoreResult<()> {
        add_arg!(self, a)
    }

    fn add_pg(&self, a: &mut PgArguments) -> StoreResult<()> {
        add_arg!(self.clone(), a)
    }
}

/// A statement: SQL with placeholders `$1..$n` of its own, and their values.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(super) sql: Cow<'static, str>,
    pub(super) args: Vec<Arg>,
}

impl Stmt {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>) -> Stmt {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, v: impl Into<Arg>) -> Stmt {
        self.args.push(v.into());
        self
    }

    /// Binds the next placeholder (on a statement being built in a loop).
    pub(crate) fn push(&mut self, v: impl Into<Arg>) {
        self.args.push(v.into());
    }

    /// This write, valid only if it changes exactly `rows` rows: otherwise
    /// the transaction it is part of fails with [`StoreError::Stale`]
    /// (checked where it runs, so it needs no answer of its own).
    pub(crate) fn expect_rows(self, rows: u64) -> Write {
        Write {
            stmt: self,
            expect: Some(rows),
            ordered: false,
        }
    }

    /// This write, sent as a statement of its own after the writes before
    /// it: for rows that every writer locks in one agreed order (mail
    /// before invitations), which statements combined into one would not
    /// keep.
    pub(crate) fn ordered(self) -> Write {
        Write {
            stmt: self,
            expect: None,
            ordered: true,
        }
    }

    pub(crate) fn pg_args(&self) -> StoreResult<PgArguments> {
        let mut a = PgArguments::default();
        for arg in &self.args {
            arg.add_pg(&mut a)?;
        }
        Ok(a)
    }

    /// `$1, $2, …` placeholders for `n` values after `from - 1` others.
    pub(crate) fn placeholders(from: usize, n: usize) -> String {
        let mut out = String::with_capacity(n * 4);
        for i in from..from + n {
            if i > from {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&i.to_string());
        }
        out
    }
}

/// A write whose result nobody waits for, and how many rows it must change.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(super) stmt: Stmt,
    /// `Some(n)`: anything but `n` changed rows fails the transaction as stale.
    pub(super) expect: Option<u64>,
    /// Sent alone, in order (see [`Stmt::ordered`]).
    pub(super) ordered: bool,
}

impl Write {
    /// The same write, sent alone and in order (see [`Stmt::ordered`]).
    pub(crate) fn in_order(mut self) -> Write {
        self.ordered = true;
        self
    }
}

impl From<Stmt> for Write {
    fn from(stmt: Stmt) -> Write {
        Write {
            stmt,
            expect: None,
            ordered: false,
        }
    }
}

/// PostgreSQL's statements joined into one: their SQL, each statement's
/// placeholders renumbered after the ones before it, their values in order
/// (SQLite joins in its own form: [`SqliteBatch`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    pub(super) sql: String,
    pub(super) args: Vec<Arg>,
}

impl Batch {
    /// The batch as one statement of many parts.
    pub(crate) fn into_stmt(self) -> Stmt {
        Stmt {
            sql: Cow::Owned(self.sql),
            args: self.args,
        }
    }
}

/// Copies `sql` to `out` with every placeholder `$n` raised by `offset`.
/// Text inside quotes (`'…'`, `"…"`) and comments (`-- …`, `/* … */`) is
/// copied as it is, so a `$` in a literal is never taken for a placeholder.
pub(crate) fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    if offset == 0 {
        out.push_str(sql);
        return;
    }
    rewrite_placeholders(out, sql, |out, n| {
        out.push('$');
        out.push_str(itoa::Buffer::new().format(n + offset));
    });
}

/// Copies `sql` to `out`, writing each placeholder `$n` (outside quotes and
/// comments) with `write(out, n)`.
fn rewrite_placeholders(out: &mut String, sql: &str, mut write: impl FnMut(&mut String, usize)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote is an escaped one.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    out.push_str(&sql[copied..i]);
                    let n: usize = sql[i + 1..i + 1 + digits].parse().unwrap_or(0);
                    write(out, n);
                    i += 1 + digits;
                    copied = i;
                    continue;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
}

impl Stmt {
    /// The statement as SQLite runs it best: each `$n` becomes an anonymous
    /// `?` with its argument bound in the order of appearance (repeated
    /// where `$n` repeats). SQLite finds a named parameter by walking a
    /// list, so binding `$1…$n` costs the square of `n`; `?` costs nothing.
    pub(crate) fn into_sqlite(self) -> StoreResult<(String, SqliteArguments)> {
        let mut batch = SqliteBatch::default();
        batch.push(self)?;
        Ok(batch.into_parts())
    }
}

/// Statements joined in SQLite's form as they are added: each `$n` of each
/// statement becomes an anonymous `?` with its argument bound in order of
/// appearance, so nothing is renumbered and each statement's text is read
/// once (see [`Stmt::into_sqlite`]).
#[derive(Debug, Default)]
pub(crate) struct SqliteBatch {
    sql: String,
    args: SqliteArguments,
}

impl SqliteBatch {
    pub(crate) fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    /// Appends SQL without placeholders.
    pub(crate) fn push_sql(&mut self, sql: &str) {
        self.separate();
        self.sql.push_str(sql);
    }

    pub(crate) fn into_parts(self) -> (String, SqliteArguments) {
        (self.sql, self.args)
    }

    fn separate(&mut self) {
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
    }

    /// Appends a statement, moving its arguments: each at its last use,
    /// copied only where `$n` repeats. A statement that names an argument
    /// it lacks is refused and leaves the batch as it was.
    pub(crate) fn push(&mut self, stmt: Stmt) -> StoreResult<()> {
        let (text, args) = (stmt.sql, stmt.args);
        let before = self.sql.len();
        self.separate();
        let mut order = Vec::with_capacity(args.len());
        rewrite_placeholders(&mut self.sql, &text, |out, n| {
            out.push('?');
            order.push(n);
        });
        let count = args.len();
        let mut uses = vec![0usize; count];
        for &n in &order {
            match n.checked_sub(1).and_then(|i| uses.get_mut(i)) {
                Some(u) => *u += 1,
                None => {
                    // Nothing of it stays: its arguments were not added yet.
                    self.sql.truncate(before);
                    return Err(StoreError::other(std::io::Error::other(format!(
                        "the statement names ${n} but has {count} arguments"
                    ))));
                }
            }
        }
        let mut slots: Vec<Option<Arg>> = args.into_iter().map(Some).collect();
        for n in order {
            let i = n - 1;
            uses[i] -= 1;
            let arg = if uses[i] == 0 {
                slots[i].take()
            } else {
                slots[i].clone()
            };
            if let Some(arg) = arg {
                arg.add_sqlite(&mut self.args)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_anonymous_parameters_in_order_of_appearance() {
        let stmt = Stmt::new("SELECT '$1', $2 -- $9\n, \"$3\", $1, $2 /* $4 */")
            .bind(1i64)
            .bind("two");
        let (sql, args) = stmt.into_sqlite().unwrap();
        assert_eq!(sql, "SELECT '$1', ? -- $9\n, \"$3\", ?, ? /* $4 */");
        // `$2` is bound twice, `$1` once: one value per `?`.
        assert_eq!(sqlx::Arguments::len(&args), 3);
        assert!(Stmt::new("SELECT $3").bind(1i64).into_sqlite().is_err());
    }

    fn renumbered(sql: &str, offset: usize) -> String {
        let mut out = String::new();
        renumber_into(&mut out, sql, offset);
        out
    }

    #[test]
    fn placeholders_are_renumbered_after_what_came_before() {
        assert_eq!(
            renumbered("INSERT INTO t VALUES ($1, $2, $10)", 3),
            "INSERT INTO t VALUES ($4, $5, $13)"
        );
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumbered("a $ b $x $7", 2), "a $ b $x $9");
    }

    #[test]
    fn dollars_in_literals_and_comments_are_left_alone() {
        assert_eq!(
            renumbered(
                "SELECT '$1 and ''$2''', \"$3\", $1 -- $4\n, $2 /* $5 */",
                10
            ),
            "SELECT '$1 and ''$2''', \"$3\", $11 -- $4\n, $12 /* $5 */"
        );
        assert_eq!(renumbered("SELECT '$1", 5), "SELECT '$1");
    }

    #[test]
    fn a_sqlite_batch_joins_statements_with_anonymous_parameters() {
        let mut b = SqliteBatch::default();
        b.push_sql("BEGIN");
        b.push(
            Stmt::new("INSERT INTO t VALUES ($1, $2)")
                .bind(1i64)
                .bind("x"),
        )
        .unwrap();
        b.push(
            Stmt::new("UPDATE t SET a = $2 WHERE a = $1 OR b = $2")
                .bind(1i64)
                .bind(2i64),
        )
        .unwrap();
        assert!(b.push(Stmt::new("SELECT $2").bind(1i64)).is_err());
        let (sql, args) = SqliteBatch::default().into_parts();
        assert!(sql.is_empty() && sqlx::Arguments::len(&args) == 0);
        let (sql, args) = b.into_parts();
        assert_eq!(
            sql,
            "BEGIN;\nINSERT INTO t VALUES (?, ?);\nUPDATE t SET a = ? WHERE a = ? OR b = ?"
        );
        assert_eq!(sqlx::Arguments::len(&args), 5);
    }

    #[test]
    fn placeholder_lists_count_from_where_they_start() {
        assert_eq!(Stmt::placeholders(3, 3), "$3, $4, $5");
        assert_eq!(Stmt::placeholders(1, 0), "");
    }
}

//! SQLite write transactions that travel in few trips.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every
//! statement is a hand-off to that thread and back, made while the write
//! lock is held. A [`Batch`] collects statements whose results nobody waits
//! for (`BEGIN`, change-log rows, invitations, outbox rows) and sends them
//! with the next statement that does need an answer, or with `COMMIT`: a
//! SCIM create is two trips instead of six.
//!
//! Statements are written with their own `$1..$n`; [`Batch::push`] renumbers
//! them after what is already in the batch (SQLite numbers `$n` across a
//! whole multi-statement call).

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, FromRow, Sqlite, SqliteConnection, Type};

use super::db_err;
use crate::store::{StoreError, StoreResult};

/// Statements waiting to be sent together, with their arguments.
#[derive(Default, Clone)]
pub(crate) struct Batch {
    sql: String,
    args: SqliteArguments,
    /// The first argument that failed to encode; reported when sent.
    error: Option<String>,
}

/// One statement being added: bind its `$1..$n` in order.
pub(crate) struct Pushed<'a>(&'a mut Batch);

impl Pushed<'_> {
    pub(crate) fn bind<'t, T: Encode<'t, Sqlite> + Type<Sqlite>>(self, value: T) -> Self {
        if let Err(e) = self.0.args.add(value)
            && self.0.error.is_none()
        {
            self.0.error = Some(e.to_string());
        }
        self
    }
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    /// Puts a statement without placeholders in front of the batch.
    pub(crate) fn prepend(&mut self, sql: &str) {
        self.sql = if self.sql.is_empty() {
            sql.to_string()
        } else {
            format!("{sql}; {}", self.sql)
        };
    }

    /// Appends a statement whose placeholders are `$1..$n` of its own.
    pub(crate) fn push(&mut self, sql: &str) -> Pushed<'_> {
        if !self.sql.is_empty() {
            self.sql.push_str("; ");
        }
        renumber_into(&mut self.sql, sql, self.args.len());
        Pushed(self)
    }

    /// Sends everything in one call and empties the batch.
    pub(crate) async fn send(&mut self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let (sql, args) = self.take()?;
        if sql.is_empty() {
            return Ok(());
        }
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    /// Sends everything in one call, empties the batch and returns the rows
    /// the statements produced (in a batch of writes and one query: the
    /// query's rows).
    pub(crate) async fn fetch_all<R>(&mut self, conn: &mut SqliteConnection) -> StoreResult<Vec<R>>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let (sql, args) = self.take()?;
        sqlx::query_as_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(conn)
            .await
            .map_err(db_err)
    }

    fn take(&mut self) -> StoreResult<(String, SqliteArguments)> {
        let batch = std::mem::take(self);
        if let Some(e) = batch.error {
            return Err(StoreError::other(std::io::Error::other(format!(
                "an argument could not be encoded: {e}"
            ))));
        }
        Ok((batch.sql, batch.args))
    }
}

/// Copies `sql` to `out` with every `$n` raised by `offset`. Our statements
/// hold no `$` inside string literals, so every `$` followed by digits is a
/// placeholder.
fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    if offset == 0 {
        out.push_str(sql);
        return;
    }
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().unwrap_or(0);
            out.push_str(&(n + offset).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row};

    #[test]
    fn placeholders_are_renumbered_after_what_the_batch_holds() {
        let mut out = String::new();
        renumber_into(&mut out, "INSERT INTO t VALUES ($1, $2, $10)", 3);
        assert_eq!(out, "INSERT INTO t VALUES ($4, $5, $13)");
        let mut out = String::new();
        renumber_into(&mut out, "SELECT $1", 0);
        assert_eq!(out, "SELECT $1");
        let mut out = String::new();
        renumber_into(&mut out, "a $ b $x $7", 2);
        assert_eq!(out, "a $ b $x $9");
    }

    #[tokio::test]
    async fn a_batch_runs_its_statements_in_order_with_their_own_arguments() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut batch = Batch::default();
        batch.push("CREATE TABLE t (a INTEGER, b TEXT)");
        batch
            .push("INSERT INTO t VALUES ($1, $2)")
            .bind(1)
            .bind("one");
        batch
            .push("INSERT INTO t VALUES ($2, $1), (NULL, $1)")
            .bind("two")
            .bind(2);
        batch
            .push("UPDATE t SET b = $1 WHERE a = $2")
            .bind("uno")
            .bind(1);
        batch.send(&mut conn).await.unwrap();
        assert!(batch.is_empty());
        batch.push("UPDATE t SET b = 'x' WHERE a = $1").bind(2);
        let returned: Vec<(i64, String)> = {
            batch
                .push("UPDATE t SET b = $1 WHERE a = $2 RETURNING a, b")
                .bind("dos")
                .bind(2);
            batch.fetch_all(&mut conn).await.unwrap()
        };
        assert_eq!(returned, vec![(2, "dos".to_string())]);
        let rows = sqlx::query("SELECT a, b FROM t ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let got: Vec<(Option<i64>, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "uno".to_string()),
                (Some(2), "dos".to_string()),
                (None, "two".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_statement_stops_the_batch_and_reports_its_error() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut batch = Batch::default();
        batch.push("CREATE TABLE t (a INTEGER PRIMARY KEY)");
        batch.push("INSERT INTO t VALUES ($1)").bind(1);
        batch.push("INSERT INTO t VALUES ($1)").bind(1);
        batch.push("INSERT INTO t VALUES ($1)").bind(2);
        let err = batch.send(&mut conn).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 1, "statements after the failing one do not run");
    }
}

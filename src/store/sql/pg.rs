//! PostgreSQL transactions in few round trips. Private to the PostgreSQL
//! backend; repositories only hand [`Write`]s and [`Stmt`]s to
//! [`super::exec::Exec`].
//!
//! A transaction opens nothing until it needs an answer. Writes whose
//! results nobody waits for wait, and are sent as few statements as
//! possible: consecutive writes become one statement of data-modifying
//! common table expressions (`WITH w1 AS (INSERT … RETURNING 1), w2 AS
//! (…) SELECT …`). A transaction that only wrote and whose writes make one
//! such statement is that one statement, sent in autocommit: a SCIM create
//! with its change-log row, invitation and mail is one round trip.
//!
//! The parts of one statement all see the database as it was before the
//! statement, and run in no set order, so a write starts a new statement
//! when it touches what an earlier part wrote (except plain inserts into
//! the same table, which cannot see each other anyway), when it is one of
//! the writes that lock rows in an order all writers agree on (marked
//! [`Stmt::ordered`]: those go alone, in the order written, so that two
//! transactions never wait for each other in a circle), or when the
//! parameters would pass PostgreSQL's limit. A write that must change a given number of rows is
//! checked by `onramp_expect` (migration 0004) in the statement's final
//! `SELECT`, or by the row count when it is alone.
//!
//! Must never: send two writes in one statement whose order matters.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::{PgConnection, Postgres};

use super::db_err;
use super::stmt::{Batch, Stmt, Write};
use crate::store::{StoreError, StoreResult};

/// Parameters per combined statement at most (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// A write's target table and whether it may change rows already there.
struct Target<'a> {
    table: &'a str,
    modifies: bool,
}

fn target(sql: &str) -> Option<Target<'_>> {
    let s = sql.trim_start();
    let word = |rest: &'static str| {
        s.get(..rest.len())
            .filter(|head| head.eq_ignore_ascii_case(rest))
            .map(|_| s[rest.len()..].trim_start())
    };
    let (rest, modifies) = if let Some(r) = word("INSERT INTO ") {
        let upsert = {
            let upper = s.to_ascii_uppercase();
            upper.contains("DO UPDATE")
        };
        (r, upsert)
    } else if let Some(r) = word("UPDATE ") {
        (r, true)
    } else if let Some(r) = word("DELETE FROM ") {
        (r, true)
    } else {
        return None;
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(Target {
        table: &rest[..end],
        modifies,
    })
}

/// Whether `sql` names `table` as a whole word.
fn mentions(sql: &str, table: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    sql.match_indices(table).any(|(at, _)| {
        !word(sql[..at].chars().next_back()) && !word(sql[at + table.len()..].chars().next())
    })
}

/// Splits writes into runs that can share one statement.
fn runs(writes: Vec<Write>) -> Vec<Vec<Write>> {
    let mut out: Vec<Vec<Write>> = Vec::new();
    // Tables written by the current run, and whether any write to each
    // may have changed existing rows.
    let mut written: Vec<(String, bool)> = Vec::new();
    let mut alone = false;
    let mut params = 0;
    for w in writes {
        let fits = match target(&w.stmt.sql) {
            None => false,
            Some(t) => {
                let reads_written = written
                    .iter()
                    .any(|(table, _)| table != t.table && mentions(&w.stmt.sql, table));
                let same = written.iter().find(|(table, _)| table == t.table);
                let clash = match same {
                    Some((_, earlier_modified)) => t.modifies || *earlier_modified,
                    None => false,
                };
                !out.is_empty()
                    && !alone
                    && !w.ordered
                    && !reads_written
                    && !clash
                    && params + w.stmt.args.len() <= MAX_PARAMS
            }
        };
        if !fits {
            out.push(Vec::new());
            written.clear();
            params = 0;
        }
        alone = w.ordered;
        if let Some(t) = target(&w.stmt.sql) {
            match written.iter_mut().find(|(table, _)| table == t.table) {
                Some(entry) => entry.1 |= t.modifies,
                None => written.push((t.table.to_string(), t.modifies)),
            }
        }
        params += w.stmt.args.len();
        if let Some(run) = out.last_mut() {
            run.push(w);
        }
    }
    out
}

/// One run of writes as one statement, and the row counts to check when it
/// is a single write (`None` when the statement checks itself).
fn combine(run: Vec<Write>) -> (Stmt, Option<u64>) {
    if run.len() == 1 {
        let mut run = run;
        let w = run.remove(0);
        return (w.stmt, w.expect);
    }
    let mut batch = Batch::default();
    let mut checks = Vec::new();
    let mut sql = String::from("WITH ");
    for (i, w) in run.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("w{i} AS ("));
        super::stmt::renumber_into(&mut sql, &w.stmt.sql, batch.args.len());
        // Only a checked write's rows are counted.
        sql.push_str(if w.expect.is_some() {
            " RETURNING 1)"
        } else {
            ")"
        });
        batch.args.extend(w.stmt.args.iter().cloned());
        if let Some(rows) = w.expect {
            checks.push(format!("(SELECT count(*) FROM w{i}) = {rows}"));
        }
    }
    if checks.is_empty() {
        sql.push_str(" SELECT TRUE");
    } else {
        sql.push_str(&format!(" SELECT onramp_expect({})", checks.join(" AND ")));
    }
    batch.sql = sql;
    (batch.into_stmt(), None)
}

/// Runs a run's statement; a single write's row count is checked here.
async fn send(conn: &mut PgConnection, run: Vec<Write>) -> StoreResult<()> {
    let (stmt, expect) = combine(run);
    let args = stmt.pg_args()?;
    let done = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.into_owned()), args)
        .execute(conn)
        .await
        .map_err(db_err)?;
    match expect {
        Some(rows) if done.rows_affected() != rows => Err(StoreError::Stale),
        _ => Ok(()),
    }
}

async fn send_all(conn: &mut PgConnection, writes: Vec<Write>) -> StoreResult<()> {
    for run in runs(writes) {
        send(&mut *conn, run).await?;
    }
    Ok(())
}

/// A PostgreSQL transaction that begins when it first needs an answer.
pub(crate) struct PgTx {
    pool: PgPool,
    tx: Option<sqlx::Transaction<'static, Postgres>>,
    pending: Vec<Write>,
}

impl PgTx {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgTx {
            pool,
            tx: None,
            pending: Vec::new(),
        }
    }

    pub(crate) fn write_all(&mut self, writes: Vec<Write>) {
        self.pending.extend(writes);
    }

    /// The connection, when the transaction has begun and has no write
    /// pending (after [`Self::conn`]).
    pub(crate) fn begun_conn(&mut self) -> Option<&mut PgConnection> {
        if !self.pending.is_empty() {
            return None;
        }
        self.tx.as_deref_mut()
    }

    /// The transaction's connection, begun, with every earlier write sent.
    pub(crate) async fn conn(&mut self) -> StoreResult<&mut PgConnection> {
        let tx = match &mut self.tx {
            Some(tx) => tx,
            slot => slot.insert(self.pool.begin().await.map_err(db_err)?),
        };
        send_all(tx, std::mem::take(&mut self.pending)).await?;
        Ok(&mut **tx)
    }

    pub(crate) async fn fetch_all<R>(&mut self, stmt: &Stmt) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let conn = self.conn().await?;
        let args = stmt.pg_args()?;
        sqlx::query_as_with(sqlx::AssertSqlSafe(stmt.sql.to_string()), args)
            .fetch_all(conn)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn execute(&mut self, stmt: &Stmt) -> StoreResult<u64> {
        let conn = self.conn().await?;
        let args = stmt.pg_args()?;
        sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.to_string()), args)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_err)
    }

    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        if let Some(mut tx) = self.tx.take() {
            send_all(&mut tx, std::mem::take(&mut self.pending)).await?;
            return tx.commit().await.map_err(db_err);
        }
        commit_writes(&self.pool, std::mem::take(&mut self.pending)).await
    }
}

/// Commits writes made outside a begun transaction: one statement in
/// autocommit when they make one, else inside `BEGIN … COMMIT`. The
/// request's place at its organization's gate is given back while they
/// travel ([`crate::work`]): the connection is taken and returned inside.
pub(crate) async fn commit_writes(pool: &PgPool, writes: Vec<Write>) -> StoreResult<()> {
    crate::work::waiting_for_commit(send_writes(pool, writes)).await
}

async fn send_writes(pool: &PgPool, writes: Vec<Write>) -> StoreResult<()> {
    let mut runs = runs(writes);
    match runs.len() {
        0 => Ok(()),
        1 => {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            send(&mut conn, runs.remove(0)).await
        }
        _ => {
            let mut tx = pool.begin().await.map_err(db_err)?;
            for run in runs {
                send(&mut tx, run).await?;
            }
            tx.commit().await.map_err(db_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(sql: &'static str) -> Write {
        Stmt::new(sql).bind(1i64).into()
    }

    fn shape(writes: Vec<Write>) -> Vec<usize> {
        runs(writes).iter().map(Vec::len).collect()
    }

    #[test]
    fn writes_to_different_tables_share_one_statement() {
        assert_eq!(
            shape(vec![
                w("INSERT INTO scim_users (id) VALUES ($1)"),
                w("INSERT INTO scim_user_emails (user_id) VALUES ($1)"),
                w("INSERT INTO scim_events (org_id) VALUES ($1)"),
                w(
                    "INSERT INTO scim_counts (n) VALUES ($1) ON CONFLICT (org_id) DO UPDATE SET n = scim_counts.n + 1"
                ),
                w("INSERT INTO invitations (id) VALUES ($1)"),
                w("INSERT INTO mail_outbox (id) VALUES ($1)"),
            ]),
            vec![6]
        );
    }

    #[test]
    fn plain_inserts_into_one_table_share_but_changes_after_writes_do_not() {
        assert_eq!(
            shape(vec![
                w("INSERT INTO scim_events (a) VALUES ($1)"),
                w("INSERT INTO scim_events (a) VALUES ($1)"),
            ]),
            vec![2]
        );
        assert_eq!(
            shape(vec![
                w("DELETE FROM scim_user_emails WHERE user_id = $1"),
                w("INSERT INTO scim_user_emails (user_id) VALUES ($1)"),
            ]),
            vec![1, 1]
        );
        assert_eq!(
            shape(vec![
                w("INSERT INTO invitations (id) VALUES ($1)"),
                w("UPDATE invitations SET status = 'x' WHERE id = $1"),
            ]),
            vec![1, 1]
        );
    }

    #[test]
    fn a_write_that_reads_what_an_earlier_one_wrote_starts_a_new_statement() {
        assert_eq!(
            shape(vec![
                w("UPDATE invitations SET status = 'revoked' WHERE user_id = $1"),
                w(
                    "UPDATE mail_outbox SET status = 'cancelled' WHERE invitation_id IN (SELECT id FROM invitations WHERE user_id = $1)"
                ),
            ]),
            vec![1, 1]
        );
        assert_eq!(
            shape(vec![
                w("INSERT INTO scim_events (a) SELECT id FROM invitations WHERE user_id = $1"),
                w("UPDATE invitations SET status = 'revoked' WHERE user_id = $1"),
            ]),
            vec![2],
            "reading before writing keeps the statement's one snapshot honest"
        );
    }

    #[test]
    fn ordered_writes_go_alone_in_the_order_written() {
        let ordered = |sql: &'static str| Stmt::new(sql).bind(1i64).ordered();
        assert_eq!(
            shape(vec![
                w("UPDATE scim_users SET a = $1"),
                ordered("UPDATE mail_outbox SET status = 'cancelled' WHERE id = $1"),
                ordered("UPDATE invitations SET status = 'revoked' WHERE id = $1"),
                w("INSERT INTO invitation_links (id) VALUES ($1)"),
                w("INSERT INTO scim_events (a) VALUES ($1)"),
            ]),
            vec![1, 1, 1, 2]
        );
        assert_eq!(
            shape(vec![
                w("UPDATE scim_users SET a = $1"),
                w("DELETE FROM scim_user_emails WHERE user_id = $1"),
                w("INSERT INTO scim_events (a) VALUES ($1)"),
                w("INSERT INTO scim_counts (n) VALUES ($1) ON CONFLICT (k) DO UPDATE SET n = 1"),
            ]),
            vec![4]
        );
    }

    #[test]
    fn table_names_are_matched_as_whole_words() {
        assert!(mentions("SELECT 1 FROM invitations i", "invitations"));
        assert!(!mentions("SELECT 1 FROM invitation_links", "invitations"));
        assert!(!mentions("SELECT 1 FROM scim_users_x", "scim_users"));
    }

    #[test]
    fn combined_writes_return_a_row_each_and_check_what_they_must() {
        let run = vec![
            w("INSERT INTO a (x) VALUES ($1)"),
            Stmt::new("UPDATE b SET v = $2 WHERE id = $1")
                .bind(1i64)
                .bind(2i64)
                .expect_rows(1),
        ];
        let (stmt, own_check) = combine(run);
        assert_eq!(own_check, None);
        assert_eq!(
            stmt.sql,
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (UPDATE b SET v = $3 WHERE id = $2 RETURNING 1) SELECT onramp_expect((SELECT count(*) FROM w1) = 1)"
        );
        assert_eq!(stmt.args.len(), 3);
    }
}

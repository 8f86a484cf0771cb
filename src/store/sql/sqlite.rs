//! SQLite writes: one writer connection per process, few trips to its
//! thread, and group commit. Everything here is private to the SQLite
//! backend; repositories only hand [`Write`]s and [`Stmt`]s to
//! [`super::exec::Exec`].
//!
//! SQLite has one writer at a time. Writers of this process queue on a lock
//! in the process rather than in SQLite's busy handler, which sleeps (1 ms,
//! 2 ms, 5 ms, …) between attempts; and they share one connection, whose
//! page cache stays warm. Every write of the process goes through it: the
//! pool's connections are opened read-only.
//!
//! A transaction takes the lock only when it first needs an answer from the
//! database (a read, or a write whose result matters); until then its
//! writes wait, and they travel with that first trip (after `BEGIN`). A
//! transaction that only ever wrote — a SCIM create with its change-log row,
//! invitation and mail; a PATCH that read outside the lock and writes with a
//! version check — never takes the lock itself: at commit its writes go to
//! the group committer, a thread of its own that commits whatever has
//! queued up as one SQLite transaction. A batch that fails, for any reason,
//! fails alone: the group is run again with a savepoint around each batch,
//! so the others commit. Every commit waits for that thread, so it does
//! nothing a transaction's own task can do first: each batch reaches it
//! already in SQLite's form ([`Ready`]: `?` placeholders, encoded
//! arguments), and it only sends.
//!
//! A write that must change a given number of rows (a version check) is
//! followed in its batch by an insert into the `write_checks` view, whose
//! trigger aborts the statement when `changes()` differs (migration 0004).
//!
//! Must never: leave a transaction open on the connection when its owner is
//! gone, report a batch committed that was not, or let one batch's failure
//! fail another's.

use std::sync::Arc;

use sqlx::SqliteConnection;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};

use super::db_err;
use super::stmt::{SqliteBatch, Stmt, Write};
use crate::store::{StoreError, StoreResult};

/// Batches committed together at most.
const MAX_GROUP: usize = 128;

/// The statement that fails a batch when the write before it changed a
/// number of rows other than `$1` (see the `write_checks` view).
const CHECK_CHANGES: &str = "INSERT INTO write_checks (ok) VALUES (changes() = $1)";

/// Appends the writes of one transaction to `batch`, each checked write
/// followed by its check.
fn push_writes(batch: &mut SqliteBatch, writes: Vec<Write>) -> StoreResult<()> {
    for w in writes {
        batch.push(w.stmt)?;
        if let Some(rows) = w.expect {
            batch.push(Stmt::new(CHECK_CHANGES).bind(rows as i64))?;
        }
    }
    Ok(())
}

/// A batch as SQLite runs it, made by the task that wrote it; cheap to
/// clone (the arguments are shared).
#[derive(Clone)]
struct Ready {
    sql: Arc<str>,
    args: SqliteArguments,
}

impl Ready {
    fn of(writes: Vec<Write>) -> StoreResult<Ready> {
        let mut batch = SqliteBatch::default();
        push_writes(&mut batch, writes)?;
        let (sql, args) = batch.into_parts();
        Ok(Ready {
            sql: sql.into(),
            args,
        })
    }

    /// The same statements between two that take no arguments.
    fn framed(&self, before: &str, after: &str) -> Ready {
        Ready {
            sql: format!("{before};\n{};\n{after}", self.sql).into(),
            args: self.args.clone(),
        }
    }

    async fn send(&self, conn: &mut SqliteConnection) -> StoreResult<()> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.sql.clone()), self.args.clone())
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(db_err)
    }
}

async fn send(conn: &mut SqliteConnection, batch: SqliteBatch) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let (sql, args) = batch.into_parts();
    sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

async fn fetch<R>(conn: &mut SqliteConnection, batch: SqliteBatch) -> StoreResult<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    let (sql, args) = batch.into_parts();
    sqlx::query_as_with(sqlx::AssertSqlSafe(sql), args)
        .fetch_all(conn)
        .await
        .map_err(db_err)
}

async fn run(conn: &mut SqliteConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

/// The SQLite write connection and the state of its transaction.
pub(crate) struct Writer {
    conn: Option<SqliteConnection>,
    /// A transaction was abandoned (dropped, or a statement or its commit
    /// failed) and may still be open on `conn`.
    abandoned: bool,
}

impl Writer {
    fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        self.conn
            .as_mut()
            .ok_or_else(|| failure("the store is closed"))
    }

    /// Ends a transaction left open by an earlier writer. Its error is
    /// ignored: SQLite may already have rolled back (after a failed
    /// `COMMIT`, say), and then there is nothing to end.
    async fn roll_back_abandoned(&mut self) -> StoreResult<()> {
        if self.abandoned {
            let conn = self.conn()?;
            let _ = sqlx::query("ROLLBACK").execute(conn).await;
            self.abandoned = false;
        }
        Ok(())
    }

    /// Commits `batches` together; returns each batch's outcome, in order.
    ///
    /// First as one plain transaction (no savepoints: a savepoint copies
    /// every page it touches, 15 % of the writer's time when each batch had
    /// one). If a batch fails, the rest are run again, each inside a
    /// savepoint, so that a failing one is undone alone. If the transaction
    /// itself cannot commit, each batch is committed on its own.
    async fn commit_group(&mut self, batches: Vec<Ready>) -> Vec<StoreResult<()>> {
        let mut outcomes: Vec<Option<StoreResult<()>>> = batches.iter().map(|_| None).collect();
        let mut guarded = false;
        loop {
            match self.try_group(&batches, &mut outcomes, guarded).await {
                Attempt::Committed => {
                    return outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect();
                }
                // Run the others again, each in a savepoint.
                Attempt::Retry => guarded = true,
                Attempt::GroupFailed => break,
            }
        }
        // The transaction could not begin or commit: each batch alone.
        for (i, batch) in batches.into_iter().enumerate() {
            if outcomes[i].is_none() {
                outcomes[i] = Some(self.commit_alone(batch).await);
            }
        }
        outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect()
    }

    async fn commit_alone(&mut self, batch: Ready) -> StoreResult<()> {
        self.roll_back_abandoned().await?;
        let conn = self.conn()?;
        let result = batch.framed("BEGIN IMMEDIATE", "COMMIT").send(conn).await;
        if result.is_err() {
            self.abandoned = true;
        }
        result
    }

    /// One attempt at the batches without an outcome yet.
    async fn try_group(
        &mut self,
        batches: &[Ready],
        outcomes: &mut [Option<StoreResult<()>>],
        guarded: bool,
    ) -> Attempt {
        if self.roll_back_abandoned().await.is_err() {
            return Attempt::GroupFailed;
        }
        let Ok(conn) = self.conn() else {
            return Attempt::GroupFailed;
        };
        if run(conn, "BEGIN IMMEDIATE").await.is_err() {
            self.abandoned = true;
            return Attempt::GroupFailed;
        }
        for (i, batch) in batches.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            let Ok(conn) = self.conn() else {
                return Attempt::GroupFailed;
            };
            if !guarded {
                if let Err(e) = batch.send(&mut *conn).await {
                    outcomes[i] = Some(Err(e));
                    self.abandoned = true;
                    return Attempt::Retry;
                }
                continue;
            }
            let framed = batch.framed("SAVEPOINT onramp_batch", "RELEASE onramp_batch");
            if let Err(e) = framed.send(&mut *conn).await {
                outcomes[i] = Some(Err(e));
                // Undo this batch alone; if SQLite already rolled back the
                // whole transaction (a full disk, a `RAISE(ROLLBACK)`), the
                // others run again.
                let undone = run(&mut *conn, "ROLLBACK TO onramp_batch").await.is_ok()
                    && run(&mut *conn, "RELEASE onramp_batch").await.is_ok();
                if !undone {
                    self.abandoned = true;
                    return Attempt::Retry;
                }
            }
        }
        let Ok(conn) = self.conn() else {
            return Attempt::GroupFailed;
        };
        if run(conn, "COMMIT").await.is_err() {
            self.abandoned = true;
            return Attempt::GroupFailed;
        }
        Attempt::Committed
    }
}

/// How one attempt at committing a group ended.
enum Attempt {
    Committed,
    /// A batch failed (its outcome is recorded); the transaction was abandoned.
    Retry,
    /// The transaction could not begin or commit.
    GroupFailed,
}

fn failure(message: &str) -> StoreError {
    StoreError::other(std::io::Error::other(message.to_string()))
}

/// A batch waiting for the group committer, and where its outcome goes.
struct Job {
    batch: Ready,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The SQLite writer of one store: its lock and its group committer.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    lock: Arc<Mutex<Writer>>,
    groups: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteWriter")
    }
}

impl SqliteWriter {
    /// Starts the group committer for `conn`; it stops when the last
    /// handle to this writer is dropped.
    pub(crate) fn start(conn: SqliteConnection) -> StoreResult<Self> {
        let lock = Arc::new(Mutex::new(Writer {
            conn: Some(conn),
            abandoned: false,
        }));
        let (groups, jobs) = mpsc::unbounded_channel();
        let committer = lock.clone();
        // A thread of its own, so that its turn never waits behind request
        // handlers: every queued commit waits for it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::other)?;
        std::thread::Builder::new()
            .name("onramp-commit".into())
            .spawn(move || runtime.block_on(commit_groups(committer, jobs)))
            .map_err(StoreError::other)?;
        Ok(SqliteWriter { lock, groups })
    }

    /// A new transaction; it takes nothing until it needs the database.
    pub(crate) fn begin(&self) -> SqliteTx {
        SqliteTx {
            writer: self.clone(),
            held: None,
            pending: Vec::new(),
            begun: false,
        }
    }

    /// Commits writes made outside any transaction, with the group.
    pub(crate) async fn commit_writes(&self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (done, outcome) = oneshot::channel();
        let job = Job {
            batch: Ready::of(writes)?,
            done,
        };
        self.groups
            .send(job)
            .map_err(|_| failure("the store is closed"))?;
        // Nothing is held while the committer works: the request's place at
        // its organization's gate is given back meanwhile.
        crate::work::waiting_for_commit(outcome)
            .await
            .map_err(|_| failure("the store is closed"))?
    }

    /// Runs one statement on its own (SQLite's implicit transaction) and
    /// returns the rows it produced.
    pub(crate) async fn fetch_alone<R>(&self, stmt: Stmt) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let mut writer = self.lock.lock().await;
        writer.roll_back_abandoned().await?;
        let mut batch = SqliteBatch::default();
        batch.push(stmt)?;
        fetch(writer.conn()?, batch).await
    }

    /// Runs one statement on its own and returns how many rows it changed.
    pub(crate) async fn execute_alone(&self, stmt: Stmt) -> StoreResult<u64> {
        let mut writer = self.lock.lock().await;
        writer.roll_back_abandoned().await?;
        let mut batch = SqliteBatch::default();
        batch.push(stmt)?;
        batch.push_sql("SELECT changes()");
        let rows: Vec<(i64,)> = fetch(writer.conn()?, batch).await?;
        Ok(rows.first().map_or(0, |(n,)| (*n).max(0) as u64))
    }

    /// Applies migrations on the writer's connection (the pool is read-only).
    pub(crate) async fn migrate(
        &self,
        migrator: &'static sqlx::migrate::Migrator,
    ) -> StoreResult<()> {
        let mut writer = self.lock.lock().await;
        writer.roll_back_abandoned().await?;
        let conn = writer.conn()?;
        migrator
            .run_direct(None, conn, false)
            .await
            .map_err(StoreError::other)
    }

    /// Waits for the writer, rolls back what was left open and closes the
    /// connection; later transactions fail.
    pub(crate) async fn close(&self) {
        let mut w = self.lock.lock().await;
        let _ = w.roll_back_abandoned().await;
        if let Some(conn) = w.conn.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// The group committer: takes the first queued batch, then every batch
/// queued by the time it holds the lock, and commits them together.
async fn commit_groups(lock: Arc<Mutex<Writer>>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        let mut writer = lock.lock().await;
        while group.len() < MAX_GROUP
            && let Ok(job) = jobs.try_recv()
        {
            group.push(job);
        }
        let (batches, replies): (Vec<Ready>, Vec<_>) =
            group.into_iter().map(|j| (j.batch, j.done)).unzip();
        let results = writer.commit_group(batches).await;
        drop(writer);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// A write transaction on the SQLite writer.
pub(crate) struct SqliteTx {
    writer: SqliteWriter,
    /// The writer, once a statement needed an answer; held until the end.
    held: Option<OwnedMutexGuard<Writer>>,
    /// Writes not sent yet.
    pending: Vec<Write>,
    /// Whether a trip may have begun the transaction on the connection.
    begun: bool,
}

impl SqliteTx {
    pub(crate) fn write_all(&mut self, writes: Vec<Write>) {
        self.pending.extend(writes);
    }

    /// The connection, when this transaction holds the writer and has no
    /// write pending (after [`Self::conn`]).
    pub(crate) fn held_conn(&mut self) -> Option<&mut SqliteConnection> {
        if !self.pending.is_empty() {
            return None;
        }
        self.held.as_deref_mut().and_then(|w| w.conn.as_mut())
    }

    /// Takes the writer if not yet held, and what must go first on the
    /// next trip: `BEGIN` (once) and the pending writes.
    /// `BEGIN` (once), the pending writes and `last` are put in SQLite's
    /// form before the writer is taken, so no other writer waits for that.
    async fn start_trip(
        &mut self,
        last: Option<&Stmt>,
    ) -> StoreResult<(SqliteBatch, &mut SqliteConnection)> {
        let mut batch = SqliteBatch::default();
        if !self.begun {
            batch.push_sql("BEGIN IMMEDIATE");
        }
        push_writes(&mut batch, std::mem::take(&mut self.pending))?;
        if let Some(stmt) = last {
            batch.push(stmt.clone())?;
        }
        if self.held.is_none() {
            let mut writer = self.writer.lock.clone().lock_owned().await;
            writer.roll_back_abandoned().await?;
            self.held = Some(writer);
        }
        self.begun = true;
        match self.held.as_deref_mut() {
            Some(w) => Ok((batch, w.conn()?)),
            None => Err(failure("the transaction lost its writer")),
        }
    }

    /// The connection, holding the writer, with every earlier write sent.
    pub(crate) async fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        let (batch, conn) = self.start_trip(None).await?;
        send(&mut *conn, batch).await?;
        Ok(conn)
    }

    /// Runs `stmt` after the pending writes, in one trip, and returns its rows.
    pub(crate) async fn fetch_all<R>(&mut self, stmt: &Stmt) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let (batch, conn) = self.start_trip(Some(stmt)).await?;
        fetch(conn, batch).await
    }

    /// Runs `stmt` after the pending writes, in one trip, and returns how
    /// many rows it changed.
    pub(crate) async fn execute(&mut self, stmt: &Stmt) -> StoreResult<u64> {
        let (mut batch, conn) = self.start_trip(Some(stmt)).await?;
        batch.push_sql("SELECT changes()");
        let rows: Vec<(i64,)> = fetch(conn, batch).await?;
        Ok(rows.first().map_or(0, |(n,)| (*n).max(0) as u64))
    }

    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        if self.held.is_some() {
            let (mut batch, conn) = self.start_trip(None).await?;
            batch.push_sql("COMMIT");
            send(conn, batch).await?;
            self.begun = false;
            return Ok(());
        }
        // Only writes: the group committer commits them with others.
        self.writer
            .commit_writes(std::mem::take(&mut self.pending))
            .await
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.begun {
            return;
        }
        let Some(mut writer) = self.held.take() else {
            return;
        };
        // Roll back now, still holding the writer, so other processes are
        // not kept waiting on our lock; the next writer of this process
        // rolls back itself if this cannot run.
        writer.abandoned = true;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = writer.roll_back_abandoned().await;
            });
        }
    }
}

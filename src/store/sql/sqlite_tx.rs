//! SQLite write transactions: one writer connection per process, few trips
//! to its thread, and group commit.
//!
//! SQLite has one writer at a time. Writers of this process queue on a lock
//! in the process rather than in SQLite's busy handler, which sleeps (1 ms,
//! 2 ms, 5 ms, …) between attempts; and they share one connection, whose
//! page cache stays warm (a connection drops its cache whenever another
//! one has written).
//!
//! A transaction takes the lock only when it first needs an answer from the
//! database (a read, or a write whose result matters); until then its
//! writes wait in a [`Batch`]. A transaction that only ever wrote — a SCIM
//! create with its change-log row, invitation and mail — never takes the
//! lock itself: at commit its batch goes to the group committer, a thread
//! of its own that commits whatever batches have queued up as one SQLite
//! transaction; a batch that breaks a constraint (a taken userName) fails
//! alone. The request that waits for it is not on the path of anyone
//! else's commit.
//!
//! Must never: leave a transaction open on the connection when its owner is
//! gone, or report a batch committed that was not.

use std::sync::Arc;

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};

use super::batch::Batch;
use crate::store::{StoreError, StoreResult};

/// Batches committed together at most.
const MAX_GROUP: usize = 128;

/// The SQLite write connection and the state of its transaction.
pub(crate) struct Writer {
    conn: Option<SqliteConnection>,
    /// A transaction was abandoned (dropped, or its commit failed) and may
    /// still be open on `conn`.
    abandoned: bool,
}

impl Writer {
    pub(crate) fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
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

    /// Commits `batches` in one transaction; returns each batch's outcome,
    /// in order. A batch that breaks a constraint (a taken userName) is
    /// left out and the others are run again without it: SQLite cannot
    /// undo one statement batch inside a transaction except through a
    /// savepoint, and a savepoint copies every page it touches (15 % of the
    /// writer's time when each batch had one).
    async fn commit_group(&mut self, batches: Vec<Batch>) -> Vec<StoreResult<()>> {
        let mut outcomes: Vec<Option<StoreResult<()>>> = batches.iter().map(|_| None).collect();
        loop {
            match self.try_group(&batches, &outcomes).await {
                Attempt::Committed => {
                    return outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect();
                }
                Attempt::BatchFailed(i, e) => outcomes[i] = Some(Err(e)),
                Attempt::GroupFailed(e) => {
                    let message = e.to_string();
                    return outcomes
                        .into_iter()
                        .map(|o| o.unwrap_or_else(|| Err(failure(&message))))
                        .collect();
                }
            }
        }
    }

    /// One attempt at the group: every batch without an outcome yet.
    async fn try_group(
        &mut self,
        batches: &[Batch],
        outcomes: &[Option<StoreResult<()>>],
    ) -> Attempt {
        if let Err(e) = self.roll_back_abandoned().await {
            return Attempt::GroupFailed(e);
        }
        let conn = match self.conn() {
            Ok(c) => c,
            Err(e) => return Attempt::GroupFailed(e),
        };
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            return Attempt::GroupFailed(super::db_err(e));
        }
        for (i, batch) in batches.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            if let Err(e) = batch.clone().send(&mut *conn).await {
                // SQLite may have rolled back already (a full disk, say).
                self.abandoned = true;
                return match e {
                    StoreError::Conflict { .. } => Attempt::BatchFailed(i, e),
                    other => Attempt::GroupFailed(other),
                };
            }
        }
        if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
            self.abandoned = true;
            return Attempt::GroupFailed(super::db_err(e));
        }
        Attempt::Committed
    }
}

/// How one attempt at committing a group ended.
enum Attempt {
    Committed,
    /// Batch `i` broke a constraint; the transaction was abandoned.
    BatchFailed(usize, StoreError),
    /// Nothing of the group can commit.
    GroupFailed(StoreError),
}

fn failure(message: &str) -> StoreError {
    StoreError::other(std::io::Error::other(message.to_string()))
}

/// A batch waiting for the group committer, and where its outcome goes.
struct Job {
    batch: Batch,
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
            pending: Batch::default(),
            begun: false,
        }
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
        let (batches, replies): (Vec<Batch>, Vec<_>) =
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
    /// Statements not sent yet: writes whose results nobody waits for.
    pub(crate) pending: Batch,
    /// Whether a trip may have begun the transaction on the connection.
    begun: bool,
}

impl SqliteTx {
    /// The connection, when this transaction holds the writer.
    pub(crate) fn held_conn(&mut self) -> Option<&mut SqliteConnection> {
        self.held.as_deref_mut().and_then(|w| w.conn.as_mut())
    }

    /// Takes the writer if not yet held; the first trip then begins the
    /// transaction.
    async fn hold(&mut self) -> StoreResult<()> {
        if self.held.is_none() {
            let mut writer = self.writer.lock.clone().lock_owned().await;
            writer.roll_back_abandoned().await?;
            self.held = Some(writer);
            self.pending.prepend("BEGIN IMMEDIATE");
        }
        Ok(())
    }

    /// Takes the writer (if not yet held) and what is pending, for a trip.
    async fn start_trip(&mut self) -> StoreResult<(Batch, &mut SqliteConnection)> {
        self.hold().await?;
        self.begun = true;
        let pending = std::mem::take(&mut self.pending);
        match self.held.as_deref_mut() {
            Some(w) => Ok((pending, w.conn()?)),
            None => Err(failure("the transaction lost its writer")),
        }
    }

    /// Sends the pending statements in one trip (taking the writer first).
    pub(crate) async fn send(&mut self) -> StoreResult<()> {
        let (mut pending, conn) = self.start_trip().await?;
        pending.send(conn).await
    }

    /// Sends the pending statements in one trip, the last of them a query,
    /// and returns its rows.
    pub(crate) async fn fetch_all<R>(&mut self) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let (mut pending, conn) = self.start_trip().await?;
        pending.fetch_all(conn).await
    }

    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        if self.held.is_some() {
            self.pending.push("COMMIT");
            self.send().await?;
            self.begun = false;
            return Ok(());
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        // Only writes: the group committer commits them with others.
        let (done, outcome) = oneshot::channel();
        let job = Job {
            batch: std::mem::take(&mut self.pending),
            done,
        };
        self.writer
            .groups
            .send(job)
            .map_err(|_| failure("the store is closed"))?;
        outcome.await.map_err(|_| failure("the store is closed"))?
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

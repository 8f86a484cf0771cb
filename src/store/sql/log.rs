//! [`ScimLogRepo`] in SQL: the change log and per-organization counts.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Stmt, Write};
use crate::store::scim::{ChangeEvent, ChangeKind, ScimLogRepo};
use crate::store::{StoreResult, Timestamp};

/// Shards per count (see `scim_counts` in the migrations).
const COUNT_SHARDS: i16 = 16;

/// The change-log rows, followed by `(org, type, id, kind, at)` tuples.
const EVENT: &str = "INSERT INTO scim_events (org_id, resource_type, resource_id, kind, at) VALUES";
/// Adds delta `$4` to shard `$3` of the count of org `$1`, type `$2`.
const COUNT: &str = "INSERT INTO scim_counts (org_id, resource_type, shard, n) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (org_id, resource_type, shard) DO UPDATE SET n = scim_counts.n + EXCLUDED.n";

#[derive(FromRow)]
struct EventRow {
    seq: i64,
    org_id: Uuid,
    resource_type: String,
    resource_id: Uuid,
    kind: String,
    at: Timestamp,
}

#[async_trait]
impl<T: Exec> ScimLogRepo for T {
    async fn record_change(
        &self,
        org_id: Uuid,
        resource_type: &str,
        resource_id: Uuid,
        kinds: &[ChangeKind],
        at: Timestamp,
        count_delta: i64,
    ) -> StoreResult<()> {
        // One statement, its rows in order: the log's sequence follows them.
        let rows: Vec<String> = (0..kinds.len())
            .map(|i| format!("($1, $2, $3, ${}, $4)", 5 + i))
            .collect();
        let mut event = Stmt::new(format!("{EVENT} {}", rows.join(", ")))
            .bind(org_id)
            .bind(resource_type)
            .bind(resource_id)
            .bind(at);
        for kind in kinds {
            event.push(kind.as_str());
        }
        let mut writes: Vec<Write> = Vec::new();
        if !kinds.is_empty() {
            writes.push(event.into());
        }
        if count_delta != 0 {
            let shard = rand::random_range(0..COUNT_SHARDS);
            writes.push(
                Stmt::new(COUNT)
                    .bind(org_id)
                    .bind(resource_type)
                    .bind(shard)
                    .bind(count_delta)
                    .into(),
            );
        }
        self.write_all(writes).await
    }

    async fn changes_since(
        &self,
        org_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEvent>> {
        let rows: Vec<EventRow> = self
            .fetch_all(
                Stmt::new(
                    "SELECT seq, org_id, resource_type, resource_id, kind, at FROM scim_events \
                     WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(org_id)
                .bind(after_seq)
                .bind(limit),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ChangeEvent {
                seq: r.seq,
                org_id: r.org_id,
                resource_type: r.resource_type,
                resource_id: r.resource_id,
                kind: r.kind,
                at: r.at,
            })
            .collect())
    }

    async fn resource_count(&self, org_id: Uuid, resource_type: &str) -> StoreResult<u64> {
        let rows: Vec<(Option<i64>,)> = self
            .fetch_all(
                Stmt::new(
                    "SELECT CAST(SUM(n) AS BIGINT) FROM scim_counts WHERE org_id = $1 AND resource_type = $2",
                )
                .bind(org_id)
                .bind(resource_type),
            )
            .await?;
        Ok(rows.first().and_then(|(n,)| *n).unwrap_or(0).max(0) as u64)
    }
}

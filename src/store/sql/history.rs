//! [`HistoryRepo`] in SQL.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Arg, Stmt, Write};
use crate::store::accounts::{AccountKind, MembershipStatus};
use crate::store::history::{
    AddressRecord, CodePurpose, CodeRecord, HistoryCounts, HistoryRepo, ImportedAccount,
    OrderRecord, PasswordFailures, PaymentMethodRecord, Purpose,
};
use crate::store::{StoreError, StoreResult, Timestamp};

/// Bound values per multi-row statement at most (well under either
/// database's limit).
const VALUES: usize = 1000;
/// Emails per lookup.
const ROWS: usize = 500;

/// `($n, $n+1, …), (…)` for `rows` rows of `cols` values from `$from`.
fn values(from: usize, cols: usize, rows: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&Stmt::placeholders(from + r * cols, cols));
        out.push(')');
    }
    out
}

/// One multi-row upsert per chunk of `rows`: `head` names the table and
/// columns, `tail` what a conflict does; `row` gives each row's values.
fn upserts<T>(
    head: &str,
    cols: usize,
    tail: &str,
    rows: &[T],
    row: impl Fn(&T) -> Vec<Arg>,
) -> Vec<Write> {
    rows.chunks((VALUES / cols).max(1))
        .map(|chunk| {
            let mut stmt = Stmt::new(format!(
                "{head} VALUES {} {tail}",
                values(1, cols, chunk.len())
            ));
            for r in chunk {
                for a in row(r) {
                    stmt.push(a);
                }
            }
            stmt.into()
        })
        .collect()
}

#[derive(FromRow)]
struct OrderRow {
    id: String,
    date: String,
    total: String,
    currency: String,
    purpose: String,
    summary: String,
}

#[derive(FromRow)]
struct CodeRow {
    invitation_id: Uuid,
    purpose: String,
    email: String,
    code_mac: Vec<u8>,
    attempts: i32,
    sends: i32,
    window_start: Timestamp,
    created_at: Timestamp,
    expires_at: Timestamp,
}

fn purpose_of(s: &str) -> StoreResult<CodePurpose> {
    match s {
        "owner" => Ok(CodePurpose::Owner),
        "personal_email" => Ok(CodePurpose::PersonalEmail),
        "work_email" => Ok(CodePurpose::WorkEmail),
        other => Err(StoreError::other(std::io::Error::other(format!(
            "unknown code purpose {other}"
        )))),
    }
}

#[async_trait]
impl<T: Exec> HistoryRepo for T {
    async fn import_accounts(
        &self,
        accounts: &[ImportedAccount],
        existing: &HashMap<String, Uuid>,
        at: Timestamp,
    ) -> StoreResult<()> {
        let id_of = |a: &ImportedAccount| {
            existing
                .get(&a.email.to_lowercase())
                .copied()
                .unwrap_or(a.id)
        };
        let mut writes = upserts(
            "INSERT INTO accounts (id, email, email_lower, name, password_hash, kind, phone, created_at, updated_at)",
            9,
            "ON CONFLICT (email_lower) DO UPDATE SET email = excluded.email, name = excluded.name, \
             kind = excluded.kind, phone = COALESCE(excluded.phone, accounts.phone), \
             password_hash = COALESCE(excluded.password_hash, accounts.password_hash), updated_at = excluded.updated_at",
            accounts,
            |a| {
                vec![
                    id_of(a).into(),
                    a.email.as_str().into(),
                    a.email.to_lowercase().into(),
                    a.name.as_str().into(),
                    a.password_hash.clone().into(),
                    a.kind.as_str().into(),
                    a.phone.clone().into(),
                    at.into(),
                    at.into(),
                ]
            },
        );
        let members: Vec<(Uuid, Uuid)> = accounts
            .iter()
            .filter_map(|a| a.organization.map(|org| (id_of(a), org)))
            .collect();
        writes.extend(upserts(
            "INSERT INTO memberships (account_id, org_id, user_id, status, joined_at)",
            5,
            "ON CONFLICT (account_id) DO NOTHING",
            &members,
            |(account, org)| {
                vec![
                    (*account).into(),
                    (*org).into(),
                    Option::<Uuid>::None.into(),
                    MembershipStatus::Active.as_str().into(),
                    at.into(),
                ]
            },
        ));
        let orders: Vec<(Uuid, &OrderRecord)> = accounts
            .iter()
            .flat_map(|a| a.orders.iter().map(move |o| (id_of(a), o)))
            .collect();
        writes.extend(upserts(
            "INSERT INTO orders (account_id, id, date, total, currency, purpose, summary)",
            7,
            "ON CONFLICT (account_id, id) DO UPDATE SET date = excluded.date, total = excluded.total, \
             currency = excluded.currency, purpose = excluded.purpose, summary = excluded.summary",
            &orders,
            |(account, o)| {
                vec![
                    (*account).into(),
                    o.id.as_str().into(),
                    o.date.as_str().into(),
                    o.total.as_str().into(),
                    o.currency.as_str().into(),
                    o.purpose.as_str().into(),
                    o.summary.as_str().into(),
                ]
            },
        ));
        let methods: Vec<(Uuid, &PaymentMethodRecord)> = accounts
            .iter()
            .flat_map(|a| a.payment_methods.iter().map(move |p| (id_of(a), p)))
            .collect();
        writes.extend(upserts(
            "INSERT INTO payment_methods (account_id, id, brand, last4, expires)",
            5,
            "ON CONFLICT (account_id, id) DO UPDATE SET brand = excluded.brand, last4 = excluded.last4, \
             expires = excluded.expires",
            &methods,
            |(account, p)| {
                vec![
                    (*account).into(),
                    p.id.as_str().into(),
                    p.brand.as_str().into(),
                    p.last4.as_str().into(),
                    p.expires.as_str().into(),
                ]
            },
        ));
        let addresses: Vec<(Uuid, &AddressRecord)> = accounts
            .iter()
            .flat_map(|a| a.addresses.iter().map(move |x| (id_of(a), x)))
            .collect();
        writes.extend(upserts(
            "INSERT INTO addresses (account_id, id, name, line1, line2, city, region, postal_code, country)",
            9,
            "ON CONFLICT (account_id, id) DO UPDATE SET name = excluded.name, line1 = excluded.line1, \
             line2 = excluded.line2, city = excluded.city, region = excluded.region, \
             postal_code = excluded.postal_code, country = excluded.country",
            &addresses,
            |(account, x)| {
                vec![
                    (*account).into(),
                    x.id.as_str().into(),
                    x.name.as_str().into(),
                    x.line1.as_str().into(),
                    x.line2.clone().into(),
                    x.city.as_str().into(),
                    x.region.clone().into(),
                    x.postal_code.as_str().into(),
                    x.country.as_str().into(),
                ]
            },
        ));
        self.write_all(writes).await
    }

    async fn account_ids_by_email(
        &self,
        emails_lower: &[String],
    ) -> StoreResult<HashMap<String, Uuid>> {
        let mut out = HashMap::with_capacity(emails_lower.len());
        for chunk in emails_lower.chunks(ROWS) {
            let mut stmt = Stmt::new(format!(
                "SELECT email_lower, id FROM accounts WHERE email_lower IN ({})",
                Stmt::placeholders(1, chunk.len())
            ));
            for e in chunk {
                stmt.push(e.as_str());
            }
            let rows: Vec<(String, Uuid)> = self.fetch_all(stmt).await?;
            out.extend(rows);
        }
        Ok(out)
    }

    async fn orders(
        &self,
        account_id: Uuid,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<OrderRecord>> {
        let rows: Vec<OrderRow> = self
            .fetch_all(
                Stmt::new(
                    "SELECT id, date, total, currency, purpose, summary FROM orders \
                     WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(account_id)
                .bind(after.unwrap_or(""))
                .bind(limit),
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(OrderRecord {
                    purpose: Purpose::parse(&r.purpose).ok_or_else(|| {
                        StoreError::other(std::io::Error::other(format!(
                            "unknown order purpose {}",
                            r.purpose
                        )))
                    })?,
                    id: r.id,
                    date: r.date,
                    total: r.total,
                    currency: r.currency,
                    summary: r.summary,
                })
            })
            .collect()
    }

    async fn payment_methods(&self, account_id: Uuid) -> StoreResult<Vec<PaymentMethodRecord>> {
        self.fetch_all(
            Stmt::new(
                "SELECT id, brand, last4, expires FROM payment_methods WHERE account_id = $1 ORDER BY id",
            )
            .bind(account_id),
        )
        .await
    }

    async fn addresses(&self, account_id: Uuid) -> StoreResult<Vec<AddressRecord>> {
        self.fetch_all(
            Stmt::new(
                "SELECT id, name, line1, line2, city, region, postal_code, country FROM addresses \
                 WHERE account_id = $1 ORDER BY id",
            )
            .bind(account_id),
        )
        .await
    }

    async fn history_counts(&self, account_id: Uuid) -> StoreResult<HistoryCounts> {
        let rows: Vec<(i64, i64, i64, i64)> = self
            .fetch_all(
                Stmt::new(
                    "SELECT (SELECT COUNT(*) FROM orders WHERE account_id = $1), \
                     (SELECT COUNT(*) FROM orders WHERE account_id = $1 AND purpose = 'personal'), \
                     (SELECT COUNT(*) FROM payment_methods WHERE account_id = $1), \
                     (SELECT COUNT(*) FROM addresses WHERE account_id = $1)",
                )
                .bind(account_id),
            )
            .await?;
        let (o, p, m, a) = rows.first().copied().unwrap_or_default();
        let n = |v: i64| v.max(0) as u64;
        Ok(HistoryCounts {
            orders: n(o),
            personal_orders: n(p),
            payment_methods: n(m),
            addresses: n(a),
        })
    }

    async fn has_personal_orders(&self, account_id: Uuid) -> StoreResult<bool> {
        let rows: Vec<(bool,)> = self
            .fetch_all(
                Stmt::new(
                    "SELECT EXISTS (SELECT 1 FROM orders WHERE account_id = $1 AND purpose = 'personal')",
                )
                .bind(account_id),
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.0))
    }

    async fn change_account_kind(
        &self,
        id: Uuid,
        email: &str,
        from: AccountKind,
        to: AccountKind,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE accounts SET kind = $4, updated_at = $5 WHERE id = $1 AND email_lower = $2 AND kind = $3",
            )
            .bind(id)
            .bind(email.to_lowercase())
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(at)
            .expect_rows(1)
            .in_order(),
        )
        .await
    }

    async fn move_login(
        &self,
        id: Uuid,
        from_email: &str,
        to_email: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE accounts SET email = $3, email_lower = $4, updated_at = $5 WHERE id = $1 AND email_lower = $2",
            )
            .bind(id)
            .bind(from_email.to_lowercase())
            .bind(to_email)
            .bind(to_email.to_lowercase())
            .bind(at)
            .expect_rows(1)
            .in_order(),
        )
        .await
    }

    async fn leave_organization(&self, account_id: Uuid, org_id: Uuid) -> StoreResult<()> {
        self.write_all(vec![
            Stmt::new("DELETE FROM memberships WHERE account_id = $1 AND org_id = $2")
                .bind(account_id)
                .bind(org_id)
                .expect_rows(1),
            Stmt::new("DELETE FROM sso_identities WHERE account_id = $1 AND org_id = $2")
                .bind(account_id)
                .bind(org_id)
                .into(),
            Stmt::new("DELETE FROM sessions WHERE account_id = $1")
                .bind(account_id)
                .into(),
        ])
        .await
    }

    async fn put_code(&self, c: &CodeRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO one_time_codes (invitation_id, purpose, email, code_mac, attempts, sends, window_start, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (invitation_id, purpose) DO UPDATE SET email = excluded.email, code_mac = excluded.code_mac, \
                 attempts = excluded.attempts, sends = excluded.sends, window_start = excluded.window_start, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            )
            .bind(c.invitation_id)
            .bind(c.purpose.as_str())
            .bind(&c.email)
            .bind(c.code_mac.clone())
            .bind(c.attempts)
            .bind(c.sends)
            .bind(c.window_start)
            .bind(c.created_at)
            .bind(c.expires_at),
        )
        .await
    }

    async fn code(
        &self,
        invitation_id: Uuid,
        purpose: CodePurpose,
    ) -> StoreResult<Option<CodeRecord>> {
        let row: Option<CodeRow> = self
            .fetch_optional(
                Stmt::new(
                    "SELECT invitation_id, purpose, email, code_mac, attempts, sends, window_start, created_at, expires_at \
                     FROM one_time_codes WHERE invitation_id = $1 AND purpose = $2",
                )
                .bind(invitation_id)
                .bind(purpose.as_str()),
            )
            .await?;
        row.map(|r| {
            Ok(CodeRecord {
                purpose: purpose_of(&r.purpose)?,
                invitation_id: r.invitation_id,
                email: r.email,
                code_mac: r.code_mac,
                attempts: r.attempts,
                sends: r.sends,
                window_start: r.window_start,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
        })
        .transpose()
    }

    async fn spend_code_attempt(
        &self,
        invitation_id: Uuid,
        purpose: CodePurpose,
        max: i32,
    ) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "UPDATE one_time_codes SET attempts = attempts + 1 \
                     WHERE invitation_id = $1 AND purpose = $2 AND attempts < $3",
                )
                .bind(invitation_id)
                .bind(purpose.as_str())
                .bind(max),
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_codes(&self, invitation_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new("DELETE FROM one_time_codes WHERE invitation_id = $1").bind(invitation_id),
        )
        .await
    }

    async fn record_password_failure(
        &self,
        account_id: Uuid,
        at: Timestamp,
        window: time::Duration,
        max: i32,
        lock: time::Duration,
    ) -> StoreResult<PasswordFailures> {
        // A failure outside the window starts a new one; the failure that
        // reaches `max` locks (later ones do not extend the lock).
        let rows: Vec<(i32, Option<Timestamp>)> = self
            .write_returning(
                Stmt::new(
                    "INSERT INTO password_failures (account_id, failures, window_start, locked_until) \
                     VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $5 END) \
                     ON CONFLICT (account_id) DO UPDATE SET \
                     failures = CASE WHEN password_failures.window_start <= $3 THEN 1 ELSE password_failures.failures + 1 END, \
                     window_start = CASE WHEN password_failures.window_start <= $3 THEN $2 ELSE password_failures.window_start END, \
                     locked_until = CASE \
                       WHEN (CASE WHEN password_failures.window_start <= $3 THEN 1 ELSE password_failures.failures + 1 END) = $4 THEN $5 \
                       ELSE password_failures.locked_until END \
                     RETURNING failures, locked_until",
                )
                .bind(account_id)
                .bind(at)
                .bind(at.plus(-window))
                .bind(max)
                .bind(at.plus(lock)),
            )
            .await?;
        let (failures, locked_until) = rows.into_iter().next().unwrap_or((1, None));
        Ok(PasswordFailures {
            failures,
            locked_until,
        })
    }

    async fn password_failures(&self, account_id: Uuid) -> StoreResult<Option<PasswordFailures>> {
        let row: Option<(i32, Option<Timestamp>)> = self
            .fetch_optional(
                Stmt::new(
                    "SELECT failures, locked_until FROM password_failures WHERE account_id = $1",
                )
                .bind(account_id),
            )
            .await?;
        Ok(row.map(|(failures, locked_until)| PasswordFailures {
            failures,
            locked_until,
        }))
    }

    async fn clear_password_failures(&self, account_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new("DELETE FROM password_failures WHERE account_id = $1").bind(account_id),
        )
        .await
    }

    async fn purge_codes(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        self.execute(
            Stmt::new(
                "DELETE FROM one_time_codes WHERE (invitation_id, purpose) IN \
                 (SELECT invitation_id, purpose FROM one_time_codes WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
            )
            .bind(now)
            .bind(limit),
        )
        .await
    }
}

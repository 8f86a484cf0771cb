//! What an account holds on the platform — its orders, payment methods
//! (masked) and addresses — and what proving ownership of one needs: the
//! one-time codes of a registration and the count of failed passwords.
//!
//! Everything an account holds points at the account, never at its login:
//! moving a login to another email re-points nothing.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::accounts::AccountKind;
use super::{StoreResult, Timestamp};

/// What an order was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Business,
    Personal,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Business => "business",
            Purpose::Personal => "personal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "business" => Some(Purpose::Business),
            "personal" => Some(Purpose::Personal),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRecord {
    pub id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// A decimal, e.g. `129.90`.
    pub total: String,
    pub currency: String,
    pub purpose: Purpose,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PaymentMethodRecord {
    pub id: String,
    pub brand: String,
    pub last4: String,
    /// `YYYY-MM`.
    pub expires: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AddressRecord {
    pub id: String,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
}

/// How much an account holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryCounts {
    pub orders: u64,
    pub personal_orders: u64,
    pub payment_methods: u64,
    pub addresses: u64,
}

/// An account as an import writes it: upserted by its login email.
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    /// The id to give it when it is new.
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub kind: AccountKind,
    /// `None` keeps the stored hash.
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    /// The organization a business account belongs to.
    pub organization: Option<Uuid>,
    pub orders: Vec<OrderRecord>,
    pub payment_methods: Vec<PaymentMethodRecord>,
    pub addresses: Vec<AddressRecord>,
}

/// What a one-time code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodePurpose {
    /// Proves ownership of the account on the work email ("forgot your password?").
    Owner,
    /// Verifies the personal email an old account moves to.
    PersonalEmail,
    /// Verifies the work email of a new business account.
    WorkEmail,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Owner => "owner",
            CodePurpose::PersonalEmail => "personal_email",
            CodePurpose::WorkEmail => "work_email",
        }
    }
}

/// A one-time code as stored (its MAC, never the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub invitation_id: Uuid,
    pub purpose: CodePurpose,
    pub email: String,
    pub code_mac: Vec<u8>,
    pub attempts: i32,
    /// Codes sent for this purpose since `window_start`.
    pub sends: i32,
    pub window_start: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Failed passwords against an account, and whether that locks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordFailures {
    pub failures: i32,
    pub locked_until: Option<Timestamp>,
}

#[async_trait]
pub trait HistoryRepo {
    /// Upserts accounts by login email (case-insensitively) with their
    /// memberships, orders (by id), payment methods and addresses (by id);
    /// never removes anything. `existing` maps lower-case emails already
    /// stored to their ids (read before; a row that appeared since makes
    /// the transaction fail).
    async fn import_accounts(
        &self,
        accounts: &[ImportedAccount],
        existing: &std::collections::HashMap<String, Uuid>,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// The ids of the accounts with these lower-case login emails.
    async fn account_ids_by_email(
        &self,
        emails_lower: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Uuid>>;
    /// Up to `limit` of the account's orders after the order id `after`, by id.
    async fn orders(
        &self,
        account_id: Uuid,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<OrderRecord>>;
    async fn payment_methods(&self, account_id: Uuid) -> StoreResult<Vec<PaymentMethodRecord>>;
    async fn addresses(&self, account_id: Uuid) -> StoreResult<Vec<AddressRecord>>;
    async fn history_counts(&self, account_id: Uuid) -> StoreResult<HistoryCounts>;
    /// Whether any of the account's orders was for personal use (reads no other order).
    async fn has_personal_orders(&self, account_id: Uuid) -> StoreResult<bool>;

    /// Makes the account `to`, if it is still `from` with the login
    /// `email`; otherwise the transaction fails with `Stale`.
    async fn change_account_kind(
        &self,
        id: Uuid,
        email: &str,
        from: AccountKind,
        to: AccountKind,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Moves the account's login from `from_email` to `to_email` (nothing
    /// it holds moves: it points at the account). A login no longer
    /// `from_email` fails the transaction with `Stale`; a taken `to_email`
    /// is a `Conflict` on `accounts_email_lower_key`.
    async fn move_login(
        &self,
        id: Uuid,
        from_email: &str,
        to_email: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Ends the account's membership of `org_id` (it must have one there,
    /// else `Stale`), and its sessions.
    async fn leave_organization(&self, account_id: Uuid, org_id: Uuid) -> StoreResult<()>;

    /// Sets the registration's code for `purpose` (replacing one there was).
    async fn put_code(&self, c: &CodeRecord) -> StoreResult<()>;
    async fn code(
        &self,
        invitation_id: Uuid,
        purpose: CodePurpose,
    ) -> StoreResult<Option<CodeRecord>>;
    /// Counts an attempt at the code, unless `max` were made: false then
    /// (or when there is no code).
    async fn spend_code_attempt(
        &self,
        invitation_id: Uuid,
        purpose: CodePurpose,
        max: i32,
    ) -> StoreResult<bool>;
    async fn delete_codes(&self, invitation_id: Uuid) -> StoreResult<()>;

    /// Counts a failed password: in a window of `window` from the first
    /// failure, the `max`-th locks the password check until `at + lock`.
    async fn record_password_failure(
        &self,
        account_id: Uuid,
        at: Timestamp,
        window: time::Duration,
        max: i32,
        lock: time::Duration,
    ) -> StoreResult<PasswordFailures>;
    async fn password_failures(&self, account_id: Uuid) -> StoreResult<Option<PasswordFailures>>;
    async fn clear_password_failures(&self, account_id: Uuid) -> StoreResult<()>;
    /// Deletes up to `limit` codes that expired before `now`.
    async fn purge_codes(&self, now: Timestamp, limit: i64) -> StoreResult<u64>;
}

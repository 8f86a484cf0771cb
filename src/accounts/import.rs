//! `onramp accounts import`: existing platform accounts from JSON Lines
//! (PRODUCT.md, "Account import"), one account per line. Each line is
//! validated on its own — a bad one is reported with its number and the
//! rest go on — and accounts are upserted by login email in chunks, one
//! transaction each, so running the same file twice changes nothing more.
//! Plain passwords are hashed (argon2id) on every core at once.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::registration::steps;
use crate::secrets::password::{Passwords, is_phc};
use crate::store::accounts::AccountKind;
use crate::store::history::{
    AddressRecord, ImportedAccount, OrderRecord, PaymentMethodRecord, Purpose,
};
use crate::store::{DynStore, StoreError, Timestamp};

/// The longest line read (a line is one account with all its orders).
pub const MAX_LINE: usize = 64 * 1024 * 1024;
/// The most orders, payment methods and addresses one account may bring.
pub const MAX_ORDERS: usize = 1_000_000;
pub const MAX_PAYMENT_METHODS: usize = 100;
pub const MAX_ADDRESSES: usize = 100;
/// Accounts, and rows of what they hold, per transaction.
const CHUNK_ACCOUNTS: usize = 1000;
const CHUNK_ROWS: usize = 20_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    name: String,
    kind: String,
    password: Option<String>,
    password_hash: Option<String>,
    phone: Option<String>,
    organization: Option<Uuid>,
    #[serde(default)]
    orders: Vec<OrderLine>,
    #[serde(default)]
    payment_methods: Vec<PaymentLine>,
    #[serde(default)]
    addresses: Vec<AddressLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderLine {
    id: String,
    date: String,
    total: String,
    currency: String,
    purpose: String,
    #[serde(default)]
    summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentLine {
    id: Option<String>,
    brand: String,
    last4: String,
    expires: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressLine {
    id: Option<String>,
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: String,
    country: String,
}

/// How an import went.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Lines read (blank lines not counted).
    pub lines: u64,
    /// Accounts written (created or updated).
    pub accounts: u64,
    pub orders: u64,
    /// Lines refused.
    pub failed: u64,
}

/// What the importer tells as it goes.
pub enum ImportEvent<'a> {
    /// A line was refused: its number (from 1) and why.
    Refused { line: u64, reason: &'a str },
    /// A chunk was committed; the report so far and the bytes read.
    Progress {
        report: &'a ImportReport,
        bytes: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the file: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

fn text(field: &str, v: &str, max: usize) -> Result<String, String> {
    let v = v.trim();
    check(
        !v.is_empty() && v.chars().count() <= max && !v.chars().any(char::is_control),
        || format!("`{field}` must have 1 to {max} characters, none of them control characters"),
    )?;
    Ok(v.to_string())
}

fn optional_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => text(field, v, max).map(Some),
        None => Ok(None),
    }
}

/// A stable id for an item that came without one: the same item imported
/// again is the same row.
fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

fn order(o: OrderLine, seen: &mut HashSet<String>) -> Result<OrderRecord, String> {
    let id = text("orders[].id", &o.id, 64)?;
    check(seen.insert(id.clone()), || {
        format!("order `{id}` appears twice")
    })?;
    let date = o.date.trim();
    check(
        time::Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok(),
        || format!("order `{id}`: `date` must be a date like 2025-03-02"),
    )?;
    let total = o.total.trim();
    let (units, cents) = total.split_once('.').unwrap_or((total, ""));
    check(
        !units.is_empty()
            && units.len() <= 12
            && units.chars().all(|c| c.is_ascii_digit())
            && cents.len() <= 4
            && cents.chars().all(|c| c.is_ascii_digit())
            && !(total.contains('.') && cents.is_empty()),
        || format!("order `{id}`: `total` must be an amount like 129.90"),
    )?;
    let currency = o.currency.trim();
    check(
        currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()),
        || format!("order `{id}`: `currency` must be three capital letters, like USD"),
    )?;
    let purpose = Purpose::parse(o.purpose.trim())
        .ok_or_else(|| format!("order `{id}`: `purpose` must be business or personal"))?;
    let summary = o.summary.trim();
    check(
        summary.chars().count() <= 500 && !summary.chars().any(|c| c.is_control() && c != '\n'),
        || format!("order `{id}`: `summary` must have at most 500 characters"),
    )?;
    Ok(OrderRecord {
        date: date.to_string(),
        total: total.to_string(),
        currency: currency.to_string(),
        purpose,
        summary: summary.to_string(),
        id,
    })
}

fn payment_method(p: PaymentLine) -> Result<PaymentMethodRecord, String> {
    let brand = p.brand.trim().to_ascii_lowercase();
    check(
        !brand.is_empty()
            && brand.len() <= 32
            && brand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _-".contains(c)),
        || "`payment_methods[].brand` must be a card brand like visa".into(),
    )?;
    let last4 = p.last4.trim();
    check(
        last4.len() == 4 && last4.chars().all(|c| c.is_ascii_digit()),
        || "`payment_methods[].last4` must be four digits (never a whole card number)".into(),
    )?;
    let expires = p.expires.trim();
    let month = expires
        .split_once('-')
        .filter(|(y, m)| y.len() == 4 && y.chars().all(|c| c.is_ascii_digit()) && m.len() == 2)
        .and_then(|(_, m)| m.parse::<u8>().ok());
    check(month.is_some_and(|m| (1..=12).contains(&m)), || {
        "`payment_methods[].expires` must be a month like 2028-04".into()
    })?;
    let id = match p.id {
        Some(id) => text("payment_methods[].id", &id, 64)?,
        None => derived_id("pm", &[&brand, last4, expires]),
    };
    Ok(PaymentMethodRecord {
        id,
        last4: last4.to_string(),
        expires: expires.to_string(),
        brand,
    })
}

fn address(a: AddressLine) -> Result<AddressRecord, String> {
    let country = a.country.trim().to_ascii_uppercase();
    check(
        country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()),
        || "`addresses[].country` must be a two-letter country code like US".into(),
    )?;
    let name = text("addresses[].name", &a.name, 200)?;
    let line1 = text("addresses[].line1", &a.line1, 200)?;
    let line2 = optional_text("addresses[].line2", a.line2.as_deref(), 200)?;
    let city = text("addresses[].city", &a.city, 100)?;
    let region = optional_text("addresses[].region", a.region.as_deref(), 100)?;
    let postal_code = text("addresses[].postal_code", &a.postal_code, 20)?;
    let id = match a.id {
        Some(id) => text("addresses[].id", &id, 64)?,
        None => derived_id(
            "ad",
            &[
                &name,
                &line1,
                line2.as_deref().unwrap_or(""),
                &city,
                region.as_deref().unwrap_or(""),
                &postal_code,
                &country,
            ],
        ),
    };
    Ok(AddressRecord {
        id,
        name,
        line1,
        line2,
        city,
        region,
        postal_code,
        country,
    })
}

/// A line checked: the account to write, and a plain password still to hash.
#[derive(Debug)]
struct Parsed {
    account: ImportedAccount,
    password: Option<String>,
}

fn parse(raw: &str, orgs: &HashSet<Uuid>) -> Result<Parsed, String> {
    let line: Line = serde_json::from_str(raw).map_err(|e| format!("not a valid account: {e}"))?;
    let email = line.email.trim().to_string();
    check(crate::scim::mapping::is_email(&email), || {
        "`email` must be an email address".into()
    })?;
    let name = text("name", &line.name, 200)?;
    let kind = AccountKind::parse(line.kind.trim())
        .ok_or_else(|| "`kind` must be personal or business".to_string())?;
    let password_hash = match (&line.password, &line.password_hash) {
        (Some(_), Some(_)) => return Err("give `password` or `password_hash`, not both".into()),
        (_, Some(h)) => {
            check(is_phc(h) && h.starts_with("$argon2"), || {
                "`password_hash` must be an argon2 PHC string ($argon2id$…)".into()
            })?;
            Some(h.clone())
        }
        _ => None,
    };
    let password = match line.password {
        Some(p) => {
            check(
                !p.is_empty() && p.len() <= crate::secrets::password::MAX_LEN,
                || "`password` must have 1 to 256 bytes".into(),
            )?;
            Some(p)
        }
        None => None,
    };
    let phone =
        steps::phone(line.phone.as_deref().unwrap_or("")).map_err(|e| format!("`phone`: {e}"))?;
    if let Some(org) = line.organization {
        check(kind == AccountKind::Business, || {
            "only a business account can belong to an `organization`".into()
        })?;
        check(orgs.contains(&org), || {
            format!("no organization with id {org}")
        })?;
    }
    check(line.orders.len() <= MAX_ORDERS, || {
        format!("at most {MAX_ORDERS} orders per account")
    })?;
    check(line.payment_methods.len() <= MAX_PAYMENT_METHODS, || {
        format!("at most {MAX_PAYMENT_METHODS} payment methods per account")
    })?;
    check(line.addresses.len() <= MAX_ADDRESSES, || {
        format!("at most {MAX_ADDRESSES} addresses per account")
    })?;
    let mut seen = HashSet::new();
    let orders = line
        .orders
        .into_iter()
        .map(|o| order(o, &mut seen))
        .collect::<Result<Vec<_>, _>>()?;
    let mut payment_methods = line
        .payment_methods
        .into_iter()
        .map(payment_method)
        .collect::<Result<Vec<_>, _>>()?;
    payment_methods.sort_by(|a, b| a.id.cmp(&b.id));
    payment_methods.dedup_by(|a, b| a.id == b.id);
    let mut addresses = line
        .addresses
        .into_iter()
        .map(address)
        .collect::<Result<Vec<_>, _>>()?;
    addresses.sort_by(|a, b| a.id.cmp(&b.id));
    addresses.dedup_by(|a, b| a.id == b.id);
    Ok(Parsed {
        account: ImportedAccount {
            id: Uuid::now_v7(),
            email,
            name,
            kind,
            password_hash,
            phone,
            organization: line.organization,
            orders,
            payment_methods,
            addresses,
        },
        password,
    })
}

/// Imports accounts into the store.
pub struct Importer {
    store: DynStore,
    passwords: Passwords,
}

impl Importer {
    pub fn new(store: DynStore, passwords: Passwords) -> Self {
        Importer { store, passwords }
    }

    /// Reads JSON Lines from `input` to its end; `tell` hears of refused
    /// lines and of progress.
    pub async fn run(
        &self,
        mut input: impl BufRead + Send,
        mut tell: impl FnMut(ImportEvent<'_>),
    ) -> Result<ImportReport, ImportError> {
        let orgs: HashSet<Uuid> = self
            .store
            .list_orgs()
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect();
        let mut report = ImportReport::default();
        let mut chunk: Vec<Parsed> = Vec::new();
        let mut emails: HashSet<String> = HashSet::new();
        let mut rows = 0usize;
        let mut bytes = 0u64;
        let mut number = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let mut limited = std::io::Read::take(&mut input, MAX_LINE as u64 + 1);
            let n = limited.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            number += 1;
            if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
                // Skip the rest of an overlong line.
                let mut skipped = Vec::new();
                input.read_until(b'\n', &mut skipped)?;
                bytes += skipped.len() as u64;
                report.lines += 1;
                report.failed += 1;
                tell(ImportEvent::Refused {
                    line: number,
                    reason: "the line is longer than 64 MiB",
                });
                continue;
            }
            let Ok(raw) = std::str::from_utf8(&buf) else {
                report.lines += 1;
                report.failed += 1;
                tell(ImportEvent::Refused {
                    line: number,
                    reason: "the line is not UTF-8",
                });
                continue;
            };
            if raw.trim().is_empty() {
                continue;
            }
            report.lines += 1;
            match parse(raw, &orgs) {
                Err(reason) => {
                    report.failed += 1;
                    tell(ImportEvent::Refused {
                        line: number,
                        reason: &reason,
                    });
                }
                Ok(p) => {
                    // The same email twice in one chunk: the earlier goes first.
                    if !emails.insert(p.account.email.to_lowercase()) {
                        self.flush(&mut chunk, &mut report).await?;
                        emails.clear();
                        emails.insert(p.account.email.to_lowercase());
                        rows = 0;
                    }
                    rows += p.account.orders.len()
                        + p.account.payment_methods.len()
                        + p.account.addresses.len()
                        + 1;
                    chunk.push(p);
                    if chunk.len() >= CHUNK_ACCOUNTS || rows >= CHUNK_ROWS {
                        self.flush(&mut chunk, &mut report).await?;
                        emails.clear();
                        rows = 0;
                        tell(ImportEvent::Progress {
                            report: &report,
                            bytes,
                        });
                    }
                }
            }
        }
        self.flush(&mut chunk, &mut report).await?;
        tell(ImportEvent::Progress {
            report: &report,
            bytes,
        });
        Ok(report)
    }

    /// Hashes the chunk's plain passwords, then writes it in one
    /// transaction (once more, reading again, if an account appeared
    /// meanwhile).
    async fn flush(
        &self,
        chunk: &mut Vec<Parsed>,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let hashes = futures_util::future::join_all(chunk.iter().map(|p| {
            let password = p.password.clone();
            async move {
                match password {
                    Some(pw) => self.passwords.hash(Uuid::nil(), pw).await.map(Some),
                    None => Ok(None),
                }
            }
        }))
        .await;
        let mut accounts = Vec::with_capacity(chunk.len());
        for (p, hash) in chunk.drain(..).zip(hashes) {
            let mut a = p.account;
            if let Some(h) =
                hash.map_err(|e| StoreError::other(std::io::Error::other(e.to_string())))?
            {
                a.password_hash = Some(h);
            }
            accounts.push(a);
        }
        let lower: Vec<String> = accounts.iter().map(|a| a.email.to_lowercase()).collect();
        let mut attempt = 0;
        loop {
            let existing: HashMap<String, Uuid> = self.store.account_ids_by_email(&lower).await?;
            let tx = self.store.begin().await?;
            let written = async {
                tx.import_accounts(&accounts, &existing, Timestamp::now())
                    .await?;
                tx.commit().await
            }
            .await;
            match written {
                Ok(()) => break,
                Err(StoreError::Conflict { .. }) if attempt == 0 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
        report.accounts += accounts.len() as u64;
        report.orders += accounts.iter().map(|a| a.orders.len() as u64).sum::<u64>();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orgs() -> HashSet<Uuid> {
        HashSet::from([Uuid::nil()])
    }

    const PAT: &str = r#"{"email": "pat@initech.example", "name": "Pat Doe", "kind": "personal",
 "password": "correct horse", "phone": "+15551234567", "organization": null,
 "orders": [{"id": "A-1001", "date": "2025-03-02", "total": "129.90", "currency": "USD",
             "purpose": "personal", "summary": "Desk lamp"}],
 "payment_methods": [{"brand": "visa", "last4": "4242", "expires": "2028-04"}],
 "addresses": [{"name": "Pat Doe", "line1": "1 Main St", "city": "Springfield",
                "postal_code": "12345", "country": "US"}]}"#;

    #[test]
    fn the_documented_line_parses() {
        let p = parse(&PAT.replace('\n', ""), &orgs()).unwrap();
        assert_eq!(p.account.email, "pat@initech.example");
        assert_eq!(p.account.kind, AccountKind::Personal);
        assert_eq!(p.password.as_deref(), Some("correct horse"));
        assert_eq!(p.account.orders[0].purpose, Purpose::Personal);
        assert!(p.account.payment_methods[0].id.starts_with("pm_"));
        assert!(p.account.addresses[0].id.starts_with("ad_"));
        let again = parse(&PAT.replace('\n', ""), &orgs()).unwrap();
        assert_eq!(
            again.account.payment_methods[0].id, p.account.payment_methods[0].id,
            "derived ids are stable"
        );
    }

    #[test]
    fn each_field_is_validated_with_a_reason() {
        let base: serde_json::Value = serde_json::from_str(PAT).unwrap();
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/email", "not-an-email".into(), "email"),
            ("/kind", "reseller".into(), "kind"),
            ("/name", "".into(), "name"),
            ("/phone", "555-1234".into(), "phone"),
            ("/organization", Uuid::nil().to_string().into(), "business"),
            ("/orders/0/date", "2025-02-30".into(), "date"),
            ("/orders/0/total", "12,50".into(), "total"),
            ("/orders/0/total", "-5".into(), "total"),
            ("/orders/0/currency", "usd".into(), "currency"),
            ("/orders/0/purpose", "gift".into(), "purpose"),
            (
                "/payment_methods/0/last4",
                "4242424242424242".into(),
                "last4",
            ),
            ("/payment_methods/0/expires", "2028-13".into(), "expires"),
            ("/addresses/0/country", "USA".into(), "country"),
            ("/password_hash", "plain".into(), "not both"),
        ];
        for (pointer, value, why) in cases {
            let mut v = base.clone();
            match v.pointer_mut(pointer) {
                Some(slot) => *slot = value,
                None => v[&pointer[1..]] = value,
            }
            let err = parse(&v.to_string(), &orgs()).err().unwrap_or_default();
            assert!(err.contains(why), "{pointer}: {err}");
        }
        let mut dup = base.clone();
        let o = dup["orders"][0].clone();
        dup["orders"].as_array_mut().unwrap().push(o);
        assert!(
            parse(&dup.to_string(), &orgs())
                .unwrap_err()
                .contains("twice")
        );
        let mut unknown = base.clone();
        unknown["passwrd"] = "x".into();
        assert!(
            parse(&unknown.to_string(), &orgs())
                .unwrap_err()
                .contains("unknown field")
        );
        let mut elsewhere = base;
        elsewhere["kind"] = "business".into();
        elsewhere["organization"] = Uuid::now_v7().to_string().into();
        assert!(
            parse(&elsewhere.to_string(), &orgs())
                .unwrap_err()
                .contains("no organization")
        );
    }
}

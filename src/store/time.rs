//! [`Timestamp`]: a UTC instant stored as `TIMESTAMPTZ` on PostgreSQL and as
//! integer microseconds since the epoch on SQLite, so that ordering and range
//! comparisons in SQL are exact on both.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Type};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_offset(OffsetDateTime::now_utc())
    }

    /// Truncates to microseconds (what both backends keep) and converts to UTC.
    pub fn from_offset(t: OffsetDateTime) -> Self {
        let micros = t.unix_timestamp_nanos() / 1_000;
        Self::from_micros(micros as i64)
    }

    pub fn from_micros(micros: i64) -> Self {
        let t = OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Timestamp(t)
    }

    pub fn micros(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000) as i64
    }

    pub fn as_offset(&self) -> OffsetDateTime {
        self.0
    }

    pub fn plus(&self, d: time::Duration) -> Self {
        Self::from_offset(self.0 + d)
    }

    /// RFC 3339 with a `Z`, as SCIM's `dateTime` wants.
    pub fn rfc3339(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Timestamp::from_micros(<i64 as Decode<Sqlite>>::decode(
            value,
        )?))
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Timestamp::from_offset(<OffsetDateTime as Decode<
            Postgres,
        >>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_and_order_is_kept() {
        let a = Timestamp::now();
        let b = Timestamp::from_micros(a.micros() + 1);
        assert_eq!(Timestamp::from_micros(a.micros()), a);
        assert!(b > a);
    }

    #[test]
    fn rfc3339_is_utc_with_z() {
        let t = Timestamp::from_micros(1_700_000_000_123_456);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123456Z");
    }
}

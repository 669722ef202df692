//! Conversions between stored columns and Rust values, shared by every table.

use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// A timestamp as stored: unix milliseconds, UTC.
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    // Millisecond precision covers far more than any i64 overflow could reach.
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored timestamp back as a date-time.
pub(crate) fn from_ms(column: &'static str, ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
        Error::Corrupt {
            column,
            detail: e.to_string(),
        }
    })
}

/// Reads one column, naming it when the value does not decode.
pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T>
where
    T: Decode<'r, Any> + Type<Any>,
{
    row.try_get(column).map_err(|e| Error::Corrupt {
        column,
        detail: e.to_string(),
    })
}

/// Reads a timestamp column.
pub(crate) fn time(row: &AnyRow, column: &'static str) -> Result<OffsetDateTime> {
    from_ms(column, get(row, column)?)
}

/// Reads a nullable timestamp column.
pub(crate) fn opt_time(row: &AnyRow, column: &'static str) -> Result<Option<OffsetDateTime>> {
    get::<Option<i64>>(row, column)?
        .map(|ms| from_ms(column, ms))
        .transpose()
}

/// Reads a JSON text column.
pub(crate) fn json(row: &AnyRow, column: &'static str) -> Result<serde_json::Value> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt {
        column,
        detail: e.to_string(),
    })
}

/// Reads a non-negative count stored as an integer.
pub(crate) fn count(row: &AnyRow, column: &'static str) -> Result<u64> {
    let n: i64 = get(row, column)?;
    u64::try_from(n).map_err(|_| Error::Corrupt {
        column,
        detail: format!("negative value {n}"),
    })
}

/// A non-negative count as stored.
pub(crate) fn to_i64(field: &'static str, n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::OutOfRange { field })
}

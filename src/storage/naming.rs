//! Data blob names: deterministic, time-partitioned by the window start, sortable.
//!
//! `y=2024/m=01/d=13/h=14/20240113T140000.0000000Z_20240113T150000.0000000Z_00000.json`
//! (`.json.gz` when compressed). Both layouts use `.json`, as Azure Monitor's line-delimited
//! `PT1H.json` exports do. Times are UTC with seven fractional digits and no colons, so names
//! sort by time and are valid on every file system a download might land on.

use std::fmt;

use time::{OffsetDateTime, UtcOffset};

use crate::config::{Compression, OutputFormat};

/// Digits of the part number; names sort correctly up to 99 999 parts per window.
const SEQ_WIDTH: usize = 5;

/// The name of one data blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobName(String);

/// Where records that cannot be placed (no id, no usable time, a time outside the window asked
/// for) are kept, apart from the data partitions.
pub const QUARANTINE_PREFIX: &str = "quarantine/";

impl BlobName {
    /// The name of part `seq` of the window `[window_start, window_end)`.
    pub fn new(
        window_start: OffsetDateTime,
        window_end: OffsetDateTime,
        seq: u32,
        format: OutputFormat,
        compression: Compression,
    ) -> Self {
        // Both layouts are JSON text; the layout is recorded in the content type instead.
        let _ = format;
        let extension = match compression {
            Compression::None => "json",
            Compression::Gzip => "json.gz",
        };
        BlobName(format!(
            "{}{seq:0width$}.{extension}",
            Self::prefix_for_window(window_start, window_end),
            width = SEQ_WIDTH
        ))
    }

    /// The name of a quarantined record: `quarantine/<content hash>.json`, the same for the
    /// same record whichever run finds it, so a record fetched again is not stored twice.
    pub fn quarantine(content_hash: u64) -> Self {
        BlobName(format!("{QUARANTINE_PREFIX}{content_hash:016x}.json"))
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name up to and including the `_` before the part number: list it to find the
    /// parts a window already has.
    pub fn prefix_for_window(window_start: OffsetDateTime, window_end: OffsetDateTime) -> String {
        let start = window_start.to_offset(UtcOffset::UTC);
        format!(
            "y={:04}/m={:02}/d={:02}/h={:02}/{}_{}_",
            start.year(),
            u8::from(start.month()),
            start.day(),
            start.hour(),
            compact_timestamp(window_start),
            compact_timestamp(window_end)
        )
    }

    /// The part number of a listed name that starts with a window prefix, if it has one.
    pub fn seq_of(name: &str) -> Option<u32> {
        let file = name.rsplit('/').next()?;
        let seq = file.rsplit('_').next()?.split('.').next()?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        seq.parse().ok()
    }
}

impl fmt::Display for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BlobName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `20240113T140000.0000000Z`: UTC, basic ISO 8601 form, seven fractional digits.
pub fn compact_timestamp(instant: OffsetDateTime) -> String {
    crate::timestamp::format_compact(instant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn example_name() {
        let name = BlobName::new(
            datetime!(2024-01-13 14:00 UTC),
            datetime!(2024-01-13 15:00 UTC),
            0,
            OutputFormat::GraphPage,
            Compression::None,
        );
        assert_eq!(
            name.as_str(),
            "y=2024/m=01/d=13/h=14/20240113T140000.0000000Z_20240113T150000.0000000Z_00000.json"
        );
        let gz = BlobName::new(
            datetime!(2024-01-13 16:00 +02:00),
            datetime!(2024-01-13 14:30:00.1234567 UTC),
            12,
            OutputFormat::Ndjson,
            Compression::Gzip,
        );
        assert_eq!(
            gz.as_str(),
            "y=2024/m=01/d=13/h=14/20240113T140000.0000000Z_20240113T143000.1234567Z_00012.json.gz"
        );
        assert_eq!(BlobName::seq_of(gz.as_str()), Some(12));
    }

    #[test]
    fn every_hour_boundary_of_a_leap_year_is_partitioned_by_the_window_start() {
        let mut start = datetime!(2023-12-31 23:00 UTC);
        let mut previous: Option<String> = None;
        while start < datetime!(2025-01-01 01:00 UTC) {
            let end = start + Duration::hours(1);
            let name = BlobName::new(start, end, 7, OutputFormat::GraphPage, Compression::None);
            let expected_partition = format!(
                "y={:04}/m={:02}/d={:02}/h={:02}/",
                start.year(),
                u8::from(start.month()),
                start.day(),
                start.hour()
            );
            let prefix = BlobName::prefix_for_window(start, end);
            assert!(prefix.starts_with(&expected_partition), "{prefix}");
            assert!(name.as_str().starts_with(&prefix));
            assert_eq!(&name.as_str()[prefix.len()..], "00007.json");
            assert!(!name.as_str().contains(':'));
            // The window end (the next hour, maybe the next day, month or year) never moves
            // the partition; names sort in time order.
            assert!(
                name.as_str()
                    .contains(&format!("_{}_", compact_timestamp(end)))
            );
            if let Some(previous) = previous {
                assert!(previous.as_str() < name.as_str(), "{previous} !< {name}");
            }
            previous = Some(name.as_str().to_owned());
            start = end;
        }
    }

    #[test]
    fn leap_day_and_sub_second_windows() {
        let name = BlobName::new(
            datetime!(2024-02-29 23:59:59.9999999 UTC),
            datetime!(2024-03-01 00:00 UTC),
            1,
            OutputFormat::GraphPage,
            Compression::None,
        );
        assert_eq!(
            name.as_str(),
            "y=2024/m=02/d=29/h=23/20240229T235959.9999999Z_20240301T000000.0000000Z_00001.json"
        );
    }

    #[test]
    fn seq_of_ignores_foreign_names() {
        assert_eq!(
            BlobName::seq_of("logs_2019-05-21T191541Z_x_500.json"),
            Some(500)
        );
        assert_eq!(BlobName::seq_of("y=2024/m=01/readme.txt"), None);
        assert_eq!(BlobName::seq_of("a_b_.json"), None);
    }
}

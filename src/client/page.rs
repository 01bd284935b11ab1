//! One Graph collection page, kept as the bytes Graph sent.
//!
//! Records are never re-serialised: [`parse_page`] finds each record's byte span in the body
//! (through `&RawValue`s borrowed from it) and reads only the id and time fields. A record that
//! lacks either, or whose time is not a Graph timestamp, makes the whole page an error that names
//! the page; nothing is dropped silently.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::error::{Error, PageRef};
use crate::job::JobSpec;

/// A page of records: the body as received plus where each record is in it.
#[derive(Clone)]
pub struct Page {
    body: Bytes,
    records: Vec<RecordMeta>,
    /// The page's index in the `fetch_window` stream (0-based; restarts and splits continue
    /// the count).
    pub index: usize,
    /// Records that cannot be placed, with the reason: kept apart (quarantined) by the
    /// consumer, never dropped silently.
    rejects: Vec<Reject>,
    /// The start of the (sub-)window this page answers, set by `fetch_window`: a restarted
    /// window begins again at its start, and after a split the later half begins at its own
    /// start once the earlier half is complete. `None` for a page parsed on its own.
    pub window_start: Option<OffsetDateTime>,
    /// Set by `fetch_window`: more pages follow in the stream (a nextLink, or windows still
    /// to fetch after a split). `false` for a page parsed on its own.
    pub more: bool,
}

/// One record of a [`Page`], borrowed from the page body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's id (`JobSpec::id_field`).
    pub id: &'a str,
    /// The record's event time (`JobSpec::time_field`), in UTC.
    pub time: OffsetDateTime,
    /// The record's JSON exactly as Graph sent it.
    pub raw: &'a [u8],
}

/// A record of a [`Page`] that cannot be placed: no id, no usable time, or a time outside the
/// window asked for.
#[derive(Debug, Clone)]
struct Reject {
    span: Range<usize>,
    reason: String,
}

/// A rejected record, borrowed from the page body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectRef<'a> {
    /// The record's JSON exactly as Graph sent it.
    pub raw: &'a [u8],
    /// Why it cannot be placed (names fields, never their values).
    pub reason: &'a str,
}

/// [`parse_page`]'s result: the page and the link to the next one.
#[derive(Debug, Clone)]
pub struct ParsedPage {
    /// The records.
    pub page: Page,
    /// `@odata.nextLink` (Graph) or `nextLink` (ARM), verbatim (JSON escapes resolved).
    pub next_link: Option<String>,
}

#[derive(Debug, Clone)]
struct RecordMeta {
    span: Range<usize>,
    id: IdRepr,
    time: OffsetDateTime,
}

#[derive(Debug, Clone)]
enum IdRepr {
    /// The id's bytes in the body (no JSON escapes in it).
    Span(Range<usize>),
    /// The unescaped id.
    Owned(Box<str>),
}

impl Page {
    /// The records in body order.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> {
        self.records.iter().map(|meta| self.record_ref(meta))
    }

    /// The records that cannot be placed, with the reason.
    pub fn rejects(&self) -> impl Iterator<Item = RejectRef<'_>> {
        self.rejects.iter().map(|reject| RejectRef {
            raw: &self.body[reject.span.clone()],
            reason: &reject.reason,
        })
    }

    /// The number of records that can be placed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the page holds no record (a legitimate mid-stream page).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The body's size in bytes.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The body as Graph sent it.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn record_ref<'a>(&'a self, meta: &'a RecordMeta) -> RecordRef<'a> {
        let id = match &meta.id {
            // The span was cut from a `&str` borrowed from this body, so it is valid UTF-8.
            IdRepr::Span(span) => std::str::from_utf8(&self.body[span.clone()]).unwrap_or(""),
            IdRepr::Owned(id) => id,
        };
        RecordRef {
            id,
            time: meta.time,
            raw: &self.body[meta.span.clone()],
        }
    }
}

impl fmt::Debug for Page {
    /// Counts only: a page's content is personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("index", &self.index)
            .field("records", &self.records.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Parses a Graph collection page for `job`. Errors name the page as `<resource_path> page
/// <index>`; use [`parse_page_at`] to name the real request path.
pub fn parse_page(body: Bytes, job: &JobSpec, index: usize) -> Result<ParsedPage, Error> {
    let at = PageRef {
        path: job.resource_path.to_owned(),
        index,
    };
    parse_page_at(body, job, &at)
}

/// [`parse_page`] with the page reference used in errors.
pub fn parse_page_at(body: Bytes, job: &JobSpec, at: &PageRef) -> Result<ParsedPage, Error> {
    let envelope: Envelope<'_> = serde_json::from_slice(&body).map_err(|e| classify(e, at))?;
    let Some(values) = envelope.value else {
        return Err(Error::InvalidPage {
            page: at.clone(),
            reason: "it has no `value` array (not a collection envelope)".into(),
        });
    };
    let base = body.as_ptr() as usize;
    let offset = |s: &str| s.as_ptr() as usize - base;
    let mut records = Vec::with_capacity(values.len());
    let mut rejects = Vec::new();
    for (n, raw) in values.iter().enumerate() {
        let start = offset(raw.get());
        let span = start..start + raw.get().len();
        match read_record(raw, job, offset) {
            Ok((id, time)) => records.push(RecordMeta { span, id, time }),
            Err(reason) => rejects.push(Reject {
                span,
                reason: format!("record {n}: {reason} ({at})"),
            }),
        }
    }
    let next_link = envelope.next_link;
    drop(values);
    Ok(ParsedPage {
        page: Page {
            body,
            records,
            rejects,
            index: at.index,
            window_start: None,
            more: false,
        },
        next_link,
    })
}

/// The id and time of one record, or why it has none usable.
fn read_record(
    raw: &RawValue,
    job: &JobSpec,
    offset: impl Fn(&str) -> usize,
) -> Result<(IdRepr, OffsetDateTime), String> {
    let fields = read_fields(raw, job)?;
    let id = match fields.id {
        None => return Err(format!("it has no `{}`", job.id_field)),
        Some(Field::NotString) => return Err(format!("its `{}` is not a string", job.id_field)),
        Some(Field::Str(id)) if id.is_empty() => {
            return Err(format!("its `{}` is empty", job.id_field));
        }
        Some(Field::Str(Cow::Borrowed(id))) => {
            let start = offset(id);
            IdRepr::Span(start..start + id.len())
        }
        Some(Field::Str(Cow::Owned(id))) => IdRepr::Owned(id.into_boxed_str()),
    };
    let time = match fields.time {
        None => return Err(format!("it has no `{}`", job.time_field)),
        Some(Field::NotString) => {
            return Err(format!("its `{}` is not a string", job.time_field));
        }
        Some(Field::Str(text)) => crate::timestamp::parse(&text).map_err(|e| {
            format!(
                "its `{}` is not a timestamp: {}",
                job.time_field,
                crate::redact::shorten(&e.to_string(), 120)
            )
        })?,
    };
    Ok((id, time))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    /// Graph's name, or ARM's.
    #[serde(rename = "@odata.nextLink", alias = "nextLink", default)]
    next_link: Option<String>,
    #[serde(borrow, default)]
    value: Option<Vec<&'a RawValue>>,
}

/// Syntax errors (a truncated or corrupted body) are worth a retry; a body that parses but has
/// the wrong shape is not.
fn classify(error: serde_json::Error, at: &PageRef) -> Error {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::Decode {
            page: at.clone(),
            reason: error.to_string(),
        },
        Category::Data => Error::InvalidPage {
            page: at.clone(),
            reason: error.to_string(),
        },
    }
}

enum Field<'a> {
    Str(Cow<'a, str>),
    NotString,
}

struct Fields<'a> {
    id: Option<Field<'a>>,
    time: Option<Field<'a>>,
}

fn read_fields<'a>(raw: &'a RawValue, job: &JobSpec) -> Result<Fields<'a>, String> {
    if !raw.get().starts_with('{') {
        return Err("it is not a JSON object".to_owned());
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de::Deserializer::deserialize_map(
        &mut de,
        FieldsVisitor {
            id_field: job.id_field,
            time_field: job.time_field,
        },
    )
    .map_err(|e| e.to_string())
}

struct FieldsVisitor<'j> {
    id_field: &'j str,
    time_field: &'j str,
}

impl<'de> Visitor<'de> for FieldsVisitor<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            id: None,
            time: None,
        };
        while let Some(MaybeBorrowed(key)) = map.next_key()? {
            let slot = if key == self.id_field {
                &mut fields.id
            } else if key == self.time_field {
                &mut fields.time
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = map.next_value::<FieldValue<'de>>()?.0;
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            *slot = Some(value);
        }
        Ok(fields)
    }
}

/// A string that borrows from the input when it has no escapes.
struct MaybeBorrowed<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MaybeBorrowed<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeBorrowed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The value of the id or time field: a string, or anything else (consumed and noted).
struct FieldValue<'a>(Field<'a>);

impl<'de> Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(FieldValue(Field::NotString))
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                FieldValue::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue(Field::NotString))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue(Field::NotString))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Moves the records whose time lies outside `[start, end)` (Graph ignored the filter, or the
/// record is malformed in a way the parser cannot see) to the page's rejects.
pub(crate) fn quarantine_outside(
    page: &mut Page,
    start: OffsetDateTime,
    end: OffsetDateTime,
    job: &JobSpec,
) {
    if page.records.iter().all(|r| r.time >= start && r.time < end) {
        return;
    }
    let (inside, outside): (Vec<_>, Vec<_>) = std::mem::take(&mut page.records)
        .into_iter()
        .partition(|r| r.time >= start && r.time < end);
    page.records = inside;
    for record in outside {
        page.rejects.push(Reject {
            span: record.span,
            reason: format!(
                "its `{}` {} lies outside the window [{}, {}) asked for (graph ignored the filter)",
                job.time_field,
                crate::timestamp::format(record.time),
                crate::timestamp::format(start),
                crate::timestamp::format(end),
            ),
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::job::JobKind;
    use proptest::prelude::*;
    use time::macros::datetime;

    /// A Graph fixture from the repository's own copy, `tests/fixtures/graph` (provenance in
    /// its `SOURCES.md`); nothing outside the repository is read.
    pub(crate) fn fixture(name: &str) -> Bytes {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/graph")
            .join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()));
        Bytes::from(bytes)
    }

    fn signins() -> &'static JobSpec {
        JobKind::SignIn.spec_template()
    }

    fn audits() -> &'static JobSpec {
        JobKind::Audit.spec_template()
    }

    #[test]
    fn parses_the_documented_sign_in_page() {
        let parsed = parse_page(fixture("signIns-list-v1.json"), signins(), 0).unwrap();
        assert_eq!(parsed.page.len(), 1);
        let record = parsed.page.records().next().unwrap();
        assert_eq!(record.id, "66ea54eb-6301-4ee5-be62-ff5a759b0100");
        assert_eq!(record.time, datetime!(2020-03-13 19:15:41.6195833 UTC));
        assert!(record.raw.starts_with(b"{") && record.raw.ends_with(b"}"));
        let value: serde_json::Value = serde_json::from_slice(record.raw).unwrap();
        assert_eq!(value["userId"], "26be570a-ae82-4189-b4e2-a37c6808512d");
        assert_eq!(
            parsed.next_link.as_deref(),
            Some(
                "https://graph.microsoft.com/v1.0/auditLogs/signIns?$top=1&$skiptoken=9177f2e3532fcd4c4d225f68f7b9bdf7_1"
            )
        );
    }

    #[test]
    fn parses_the_documented_audit_page_whose_id_is_literally_id() {
        let parsed = parse_page(fixture("directoryAudits-list-v1.json"), audits(), 0).unwrap();
        let records: Vec<_> = parsed.page.records().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id, "id");
        assert_eq!(records[0].time, datetime!(2018-01-09 21:20:02.7215374 UTC));
        assert!(parsed.next_link.is_none());
    }

    #[test]
    fn parses_the_other_valid_fixtures() {
        for (name, job, n) in [
            ("signIns-list-v1-filter-startswith.json", signins(), 1),
            ("signIns-list-beta-example2-password.json", signins(), 1),
            (
                "directoryAudits-list-v1-filter-initiatedBy.json",
                audits(),
                1,
            ),
            (
                "directoryAudits-list-beta-filter-initiatedBy.json",
                audits(),
                1,
            ),
        ] {
            let parsed =
                parse_page(fixture(name), job, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.page.len(), n, "{name}");
        }
        let lower = parse_page(
            fixture("signIns-list-v1-filter-startswith.json"),
            signins(),
            0,
        )
        .unwrap()
        .next_link
        .unwrap();
        assert!(
            lower.contains("/auditLogs/signins?$filter=startsWith(appDisplayName%2c%27Graph%27)")
        );
    }

    #[test]
    fn an_object_without_envelope_is_a_clear_permanent_error() {
        let error = parse_page(
            fixture("directoryAudits-list-beta-example1-NO-ENVELOPE.json"),
            audits(),
            4,
        )
        .unwrap_err();
        assert!(matches!(error, Error::InvalidPage { .. }), "{error:?}");
        assert!(!error.is_transient());
        assert_eq!(
            error.to_string(),
            "graph auditLogs/directoryAudits page 4 is not a collection page: it has no `value` array (not a collection envelope)"
        );
    }

    #[test]
    fn invalid_json_fixtures_are_decode_errors_not_panics() {
        for name in [
            "signIns-list-v1.verbatim.txt",
            "signIns-list-beta-example1-fido-mfa.verbatim.txt",
            "provisioning-list-v1-example1.verbatim.txt",
        ] {
            let error = parse_page(fixture(name), signins(), 0).unwrap_err();
            assert!(matches!(error, Error::Decode { .. }), "{name}: {error:?}");
            assert!(error.is_transient());
            let text = error.to_string();
            assert!(
                text.contains("is not valid JSON") && text.contains(" at line "),
                "{text}"
            );
        }
    }

    #[test]
    fn error_bodies_are_not_pages() {
        for name in [
            "error-400-invalid-filter-clause.json",
            "error-403-nonpremium-tenant.json",
            "graph-429-throttled.body.json",
        ] {
            let error = parse_page(fixture(name), signins(), 0).unwrap_err();
            assert!(
                matches!(error, Error::InvalidPage { .. }),
                "{name}: {error:?}"
            );
        }
    }

    #[test]
    fn a_truncated_page_is_a_decode_error() {
        let body = fixture("signIns-list-v1.json");
        let error = parse_page(body.slice(..body.len() / 2), signins(), 0).unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    }

    fn page(records: &str) -> Bytes {
        Bytes::from(format!(r#"{{"@odata.context":"x","value":[{records}]}}"#))
    }

    #[test]
    fn records_without_id_or_time_are_set_apart_naming_the_page() {
        let cases = [
            (
                r#"{"createdDateTime":"2024-01-01T00:00:00Z"}"#,
                "record 0: it has no `id`",
            ),
            (r#"{"id":"a"}"#, "record 0: it has no `createdDateTime`"),
            (
                r#"{"id":7,"createdDateTime":"2024-01-01T00:00:00Z"}"#,
                "record 0: its `id` is not a string",
            ),
            (
                r#"{"id":"","createdDateTime":"2024-01-01T00:00:00Z"}"#,
                "record 0: its `id` is empty",
            ),
            (
                r#"{"id":"a","createdDateTime":null}"#,
                "record 0: its `createdDateTime` is not a string",
            ),
            (
                r#"{"id":"a","createdDateTime":"yesterday"}"#,
                "record 0: its `createdDateTime` is not a timestamp",
            ),
            (
                r#"{"id":"a","createdDateTime":"2024-01-01T00:00:00.123456789Z"}"#,
                "more than 7",
            ),
            (r#"[1,2]"#, "record 0: it is not a JSON object"),
            (r#""text""#, "record 0: it is not a JSON object"),
            (
                r#"{"id":"a","id":"b","createdDateTime":"2024-01-01T00:00:00Z"}"#,
                "duplicate field `id`",
            ),
        ];
        let good = r#"{"id":"good","createdDateTime":"2024-01-01T00:00:00Z"}"#;
        for (record, expected) in cases {
            // The bad record is set apart with its reason; the good one beside it stays.
            let parsed = parse_page(page(&format!("{record},{good}")), signins(), 2).unwrap();
            assert_eq!(parsed.page.len(), 1, "{record}");
            let rejects: Vec<_> = parsed.page.rejects().collect();
            assert_eq!(rejects.len(), 1, "{record}");
            assert_eq!(rejects[0].raw, record.as_bytes());
            let reason = rejects[0].reason;
            assert!(reason.contains("auditLogs/signIns page 2"), "{reason}");
            assert!(reason.contains(expected), "{record}: {reason}");
        }
    }

    #[test]
    fn escaped_ids_are_unescaped_and_spans_are_exact() {
        let first = r#"{"id":"Authentication Methods_a\"b","activityDateTime":"2024-05-01T08:15:53Z","x":{"id":"inner"}}"#;
        let second =
            r#"{ "activityDateTime" : "2024-05-01T05:26:49.580091+00:00", "id" : "plain" }"#;
        let parsed = parse_page(page(&format!("{first} ,\n {second}")), audits(), 0).unwrap();
        let records: Vec<_> = parsed.page.records().collect();
        assert_eq!(records[0].id, "Authentication Methods_a\"b");
        assert_eq!(records[0].raw, first.as_bytes());
        assert_eq!(records[1].id, "plain");
        assert_eq!(records[1].raw, second.as_bytes());
        assert_eq!(records[1].time, datetime!(2024-05-01 05:26:49.580091 UTC));
    }

    #[test]
    fn empty_pages_with_a_next_link_are_fine() {
        let body = Bytes::from_static(
            br#"{"value":[],"@odata.nextLink":"https:\/\/graph.microsoft.us\/v1.0\/auditLogs\/signIns?$skiptoken=a"}"#,
        );
        let parsed = parse_page(body, signins(), 0).unwrap();
        assert!(parsed.page.is_empty());
        assert_eq!(
            parsed.next_link.as_deref(),
            Some("https://graph.microsoft.us/v1.0/auditLogs/signIns?$skiptoken=a")
        );
    }

    #[test]
    fn records_outside_the_window_are_set_apart() {
        let mut parsed = parse_page(
            page(
                r#"{"id":"a","createdDateTime":"2024-01-01T01:00:00Z"},{"id":"b","createdDateTime":"2024-01-01T00:30:00Z"}"#,
            ),
            signins(),
            0,
        )
        .unwrap();
        let start = datetime!(2024-01-01 00:00 UTC);
        quarantine_outside(
            &mut parsed.page,
            start,
            datetime!(2024-01-01 01:00:00.0000001 UTC),
            signins(),
        );
        assert_eq!(parsed.page.len(), 2);
        quarantine_outside(
            &mut parsed.page,
            start,
            datetime!(2024-01-01 01:00 UTC),
            signins(),
        );
        assert_eq!(
            parsed.page.records().map(|r| r.id).collect::<Vec<_>>(),
            ["b"]
        );
        let rejects: Vec<_> = parsed.page.rejects().collect();
        assert_eq!(rejects.len(), 1);
        assert!(
            rejects[0].reason.contains("graph ignored the filter"),
            "{}",
            rejects[0].reason
        );
        assert!(rejects[0].raw.starts_with(br#"{"id":"a""#));
    }

    #[test]
    fn debug_shows_counts_not_content() {
        let parsed = parse_page(fixture("signIns-list-v1.json"), signins(), 0).unwrap();
        let debug = format!("{:?}", parsed.page);
        assert!(!debug.contains("contoso"), "{debug}");
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_page(Bytes::from(body), signins(), 0);
        }

        #[test]
        fn parser_never_panics_on_json_like_text(body in r#"[\{\}\[\]",:a-z0-9 .\\@TZ-]{0,200}"#) {
            let _ = parse_page(Bytes::from(body), signins(), 0);
        }

        #[test]
        fn parser_never_panics_on_mangled_fixtures(cut in 0usize..2800, byte in any::<u8>()) {
            let mut body = fixture("signIns-list-v1.json").to_vec();
            let at = cut.min(body.len() - 1);
            body[at] = byte;
            let _ = parse_page(Bytes::from(body.clone()), signins(), 0);
            let _ = parse_page(Bytes::from(body[..at].to_vec()), signins(), 0);
        }

        #[test]
        fn every_record_round_trips(ids in proptest::collection::vec("[ -~]{1,20}", 0..20), ticks in 0i64..1_000_000_000) {
            let time = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + time::Duration::nanoseconds(ticks * 100);
            let records: Vec<String> = ids
                .iter()
                .map(|id| serde_json::json!({"id": id, "createdDateTime": crate::timestamp::format(time), "n": 1}).to_string())
                .collect();
            let parsed = parse_page(page(&records.join(",")), signins(), 0).unwrap();
            prop_assert_eq!(parsed.page.len(), ids.len());
            for ((record, id), text) in parsed.page.records().zip(&ids).zip(&records) {
                prop_assert_eq!(record.id, id.as_str());
                prop_assert_eq!(record.time, time);
                prop_assert_eq!(record.raw, text.as_bytes());
            }
        }
    }
}

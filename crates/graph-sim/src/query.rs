//! OData query options of a list request (`$filter`, `$top`, `$orderby`, `$select`,
//! `$skiptoken`) and the opaque skiptoken format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::config::Resource;
use crate::store::Cursor;
use crate::timefmt::parse_filter_literal;

/// `$top` when the request has none: Graph documents 1000 for signIns; for directoryAudits the
/// default is undocumented and the simulator uses 100 (Graph's usual default page size), so a
/// client that relies on an implicit page size notices.
pub(crate) fn default_top(resource: Resource) -> usize {
    match resource {
        Resource::SignIns => 1000,
        Resource::DirectoryAudits => 100,
    }
}

/// The parsed options of one list request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    /// Inclusive bounds on the time field; `i64::MIN` / `i64::MAX` when open.
    pub lo: i64,
    pub hi: i64,
    /// The lowest lower-bound literal, for the retention check.
    pub lower_literal: Option<i64>,
    pub descending: bool,
    pub top: usize,
    pub select: Option<Vec<String>>,
    pub skiptoken: Option<String>,
    /// The decoded parameters except the skiptoken, in request order, for the next link.
    pub params: Vec<(String, String)>,
}

impl ListQuery {
    /// Width of the filter window in nanoseconds; `None` when open on either side.
    pub(crate) fn window_ns(&self) -> Option<i64> {
        if self.lo == i64::MIN || self.hi == i64::MAX {
            None
        } else {
            Some(self.hi.saturating_sub(self.lo).saturating_add(1).max(0))
        }
    }

    /// A fingerprint of what selects and orders the records, stored in skiptokens so that a
    /// token cannot be replayed against another query.
    pub(crate) fn fingerprint(&self, resource: Resource, beta: bool) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        let mut feed = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(resource.segment().as_bytes());
        feed(&[u8::from(beta), u8::from(self.descending)]);
        feed(&self.lo.to_le_bytes());
        feed(&self.hi.to_le_bytes());
        hash
    }
}

/// Why a query was refused; each maps to a Graph 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// `Invalid filter clause`.
    Filter,
    /// `$top` out of 1..=1000 or not a number.
    Top(String),
    /// `$orderby` on anything but the time field.
    OrderBy(String),
    /// `$select` of an unknown property.
    Select(String),
    /// An option Graph refuses on these APIs (`$skip`, `$count`), or one given twice.
    Unsupported(String),
}

impl QueryError {
    pub(crate) fn message(&self) -> String {
        match self {
            QueryError::Filter => "Invalid filter clause".to_string(),
            QueryError::Top(value) => format!(
                "Invalid page size specified: '{value}'. Must be between 1 and 1000 inclusive."
            ),
            QueryError::OrderBy(value) => format!("Invalid $orderby clause: '{value}'"),
            QueryError::Select(name) => {
                format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.entity'."
                )
            }
            QueryError::Unsupported(option) => {
                format!("Query option '{option}' is not allowed.")
            }
        }
    }
}

/// Parses the raw query string of a list request.
pub(crate) fn parse_list_query(resource: Resource, raw: &str) -> Result<ListQuery, QueryError> {
    let mut query = ListQuery {
        lo: i64::MIN,
        hi: i64::MAX,
        lower_literal: None,
        descending: true,
        top: default_top(resource),
        select: None,
        skiptoken: None,
        params: Vec::new(),
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let name = key.trim_start_matches('$').to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(QueryError::Unsupported(key.into_owned()));
        }
        seen.push(name.clone());
        match name.as_str() {
            "filter" => parse_filter(resource, &value, &mut query)?,
            "top" => {
                query.top = match value.trim().parse::<usize>() {
                    Ok(top) if (1..=1000).contains(&top) => top,
                    _ => return Err(QueryError::Top(value.into_owned())),
                }
            }
            "orderby" => query.descending = parse_order_by(resource, &value)?,
            "select" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|name| name.trim().to_string())
                    .filter(|name| !name.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(QueryError::Select(value.into_owned()));
                }
                query.select = Some(names);
            }
            "skiptoken" => {
                query.skiptoken = Some(value.into_owned());
                continue;
            }
            "skip" | "count" | "search" | "expand" => {
                return Err(QueryError::Unsupported(key.into_owned()));
            }
            _ => {}
        }
        query.params.push((key.into_owned(), value.into_owned()));
    }
    Ok(query)
}

/// `<field> <op> <literal> [and <field> <op> <literal>]*` with `op` in `eq ge gt le lt`;
/// clauses may be parenthesised.
fn parse_filter(resource: Resource, filter: &str, query: &mut ListQuery) -> Result<(), QueryError> {
    let tokens: Vec<&str> = filter.split_whitespace().collect();
    if tokens.is_empty() || !(tokens.len() + 1).is_multiple_of(4) {
        return Err(QueryError::Filter);
    }
    for index in (0..tokens.len()).step_by(4) {
        if index > 0 && !tokens[index - 1].eq_ignore_ascii_case("and") {
            return Err(QueryError::Filter);
        }
        let clause = &tokens[index..index + 3];
        let (field, operator, literal) = (clause[0], clause[1], clause[2]);
        let (field, literal) = match (field.strip_prefix('('), literal.strip_suffix(')')) {
            (Some(field), Some(literal)) => (field, literal),
            (None, None) => (field, literal),
            _ => return Err(QueryError::Filter),
        };
        if field != resource.time_field() {
            return Err(QueryError::Filter);
        }
        let value = parse_filter_literal(literal).ok_or(QueryError::Filter)?;
        let mut lower = |bound: i64| {
            query.lo = query.lo.max(bound);
            query.lower_literal = Some(query.lower_literal.map_or(value, |v| v.min(value)));
        };
        match operator.to_ascii_lowercase().as_str() {
            "ge" => lower(value),
            "gt" => lower(value.saturating_add(1)),
            "eq" => {
                lower(value);
                query.hi = query.hi.min(value);
            }
            "le" => query.hi = query.hi.min(value),
            "lt" => query.hi = query.hi.min(value.saturating_sub(1)),
            _ => return Err(QueryError::Filter),
        }
    }
    Ok(())
}

/// Returns whether the order is descending.
fn parse_order_by(resource: Resource, value: &str) -> Result<bool, QueryError> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let error = || QueryError::OrderBy(value.to_string());
    match tokens.as_slice() {
        [field] if *field == resource.time_field() => Ok(false),
        [field, direction] if *field == resource.time_field() => {
            match direction.to_ascii_lowercase().as_str() {
                "asc" => Ok(false),
                "desc" => Ok(true),
                _ => Err(error()),
            }
        }
        _ => Err(error()),
    }
}

/// What a skiptoken carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SkipToken {
    /// Format version.
    pub v: u8,
    /// When this token was issued (ns since the epoch).
    pub issued: i64,
    /// Visibility snapshot of the whole paged query: the time of its first request.
    pub snapshot: i64,
    /// [`ListQuery::fingerprint`] of the query that issued it.
    pub query: u64,
    /// The last record returned so far; `None` if no record was returned yet.
    pub after: Option<Cursor>,
}

impl SkipToken {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("skiptoken serialises");
        URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(text: &str) -> Option<SkipToken> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let token: SkipToken = serde_json::from_slice(&bytes).ok()?;
        (token.v == 1).then_some(token)
    }
}

/// Characters escaped in next links: everything but letters, digits, `-._~()$` (so `$filter`
/// stays readable while spaces, colons, commas, quotes and `+` are encoded, as Graph does).
const NEXT_LINK_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'(')
    .remove(b')')
    .remove(b'$');

/// Builds the query string of a next link: the original options, re-encoded, plus `$skiptoken`.
pub(crate) fn next_link_query(params: &[(String, String)], skiptoken: &str) -> String {
    let mut out = String::new();
    for (key, value) in params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("$skiptoken", skiptoken)])
    {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(key, NEXT_LINK_SET));
        out.push('=');
        out.extend(utf8_percent_encode(value, NEXT_LINK_SET));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::NS_PER_SEC;

    const T0: i64 = 1_705_155_212 * NS_PER_SEC; // 2024-01-13T14:13:32Z

    #[test]
    fn half_open_window_with_encoded_literals() {
        let query = parse_list_query(
            Resource::SignIns,
            "$filter=createdDateTime%20ge%202024-01-13T14:13:32Z%20and%20createdDateTime+lt+2024-01-13T14:13:33.5Z&$top=50&$orderby=createdDateTime%20asc",
        )
        .unwrap();
        assert_eq!(query.lo, T0);
        assert_eq!(query.hi, T0 + NS_PER_SEC + 500_000_000 - 1);
        assert_eq!(query.lower_literal, Some(T0));
        assert_eq!(query.top, 50);
        assert!(!query.descending);
        assert_eq!(query.window_ns(), Some(1_500_000_000));
    }

    #[test]
    fn gt_and_le_bounds_and_eq() {
        let query = parse_list_query(
            Resource::DirectoryAudits,
            "$filter=activityDateTime gt 2024-01-13T14:13:32Z and activityDateTime le 2024-01-14",
        )
        .unwrap();
        assert_eq!(query.lo, T0 + 1);
        assert_eq!(query.hi, 1_705_190_400 * NS_PER_SEC);
        assert!(query.descending);
        assert_eq!(query.top, 100);
        let query = parse_list_query(
            Resource::SignIns,
            "$filter=(createdDateTime eq 2024-01-13T14:13:32Z)",
        )
        .unwrap();
        assert_eq!((query.lo, query.hi), (T0, T0));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for filter in [
            "createdDateTime ge '2024-01-13T14:13:32Z'",
            "activityDateTime ge 2024-01-13T14:13:32Z",
            "createdDateTime ne 2024-01-13T14:13:32Z",
            "createdDateTime ge 2024-01-13T14:13:32Z or createdDateTime lt 2024-01-14",
            "createdDateTime ge",
            "startsWith(appDisplayName,'Graph')",
            "createdDateTime ge 2024-01-13T14:13:32Z and",
            "",
        ] {
            let raw = format!("$filter={}", filter.replace(' ', "%20"));
            assert_eq!(
                parse_list_query(Resource::SignIns, &raw),
                Err(QueryError::Filter),
                "{filter}"
            );
        }
    }

    #[test]
    fn top_bounds_and_unsupported_options() {
        assert!(parse_list_query(Resource::SignIns, "$top=1000").is_ok());
        for raw in ["$top=1001", "$top=0", "$top=-1", "$top=ten"] {
            assert!(matches!(
                parse_list_query(Resource::SignIns, raw),
                Err(QueryError::Top(_))
            ));
        }
        assert!(matches!(
            parse_list_query(Resource::SignIns, "$skip=10"),
            Err(QueryError::Unsupported(_))
        ));
        assert!(matches!(
            parse_list_query(Resource::SignIns, "$top=1&$top=2"),
            Err(QueryError::Unsupported(_))
        ));
        assert!(matches!(
            parse_list_query(Resource::SignIns, "$orderby=userId"),
            Err(QueryError::OrderBy(_))
        ));
    }

    #[test]
    fn skiptokens_round_trip_and_reject_garbage() {
        let token = SkipToken {
            v: 1,
            issued: 5,
            snapshot: 6,
            query: 7,
            after: Some(Cursor {
                time: 8,
                id: "Authentication Methods_x".to_string(),
                seq: 0,
            }),
        };
        assert_eq!(SkipToken::decode(&token.encode()), Some(token));
        assert_eq!(
            SkipToken::decode("9177f2e3532fcd4c4d225f68f7b9bdf7_1"),
            None
        );
    }

    #[test]
    fn next_link_query_re_encodes_and_appends_the_token() {
        let query = parse_list_query(
            Resource::SignIns,
            "%24filter=createdDateTime+ge+2024-01-13T14:13:32Z&$top=5&$skiptoken=old",
        )
        .unwrap();
        assert_eq!(
            next_link_query(&query.params, "abc"),
            "$filter=createdDateTime%20ge%202024-01-13T14%3A13%3A32Z&$top=5&$skiptoken=abc"
        );
    }
}

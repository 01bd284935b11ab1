//! Query options of the two ARM list APIs: `api-version`, the Activity Log's `$filter` grammar,
//! `$select`, and the skiptokens of next links.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use super::render::mix64;
use crate::timefmt::{parse_filter_literal, parse_record_time};

/// The only `api-version` of `Microsoft.Insights/eventtypes/management/values`.
pub(crate) const ACTIVITY_API_VERSION: &str = "2015-04-01";

/// `api-version`s of `GET /subscriptions` the simulator accepts.
pub(crate) const SUBSCRIPTIONS_API_VERSIONS: &[&str] = &[
    "2016-06-01",
    "2018-06-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2021-01-01",
    "2022-12-01",
];

/// Properties `$select` may name (the spec's `SelectParameter`).
pub(crate) const SELECTABLE: &[&str] = &[
    "authorization",
    "claims",
    "correlationId",
    "description",
    "eventDataId",
    "eventName",
    "eventTimestamp",
    "httpRequest",
    "level",
    "operationId",
    "operationName",
    "properties",
    "resourceGroupName",
    "resourceProviderName",
    "resourceId",
    "status",
    "submissionTimestamp",
    "subStatus",
    "subscriptionId",
];

/// The decoded query string, names as sent.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: &str) -> Params {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`, compared case-insensitively (as ASP.NET does).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What is wrong with an `api-version`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApiVersionProblem {
    Missing,
    /// Not `YYYY-MM-DD[-preview]`.
    Malformed(String),
    /// Well-formed but not served.
    Unsupported(String),
}

/// Checks `api-version` against `supported`.
pub(crate) fn check_api_version(
    params: &Params,
    supported: &[&str],
) -> Result<(), ApiVersionProblem> {
    let Some(version) = params.get("api-version") else {
        return Err(ApiVersionProblem::Missing);
    };
    if supported.contains(&version) {
        return Ok(());
    }
    let date = version.strip_suffix("-preview").unwrap_or(version);
    let well_formed = date.len() == 10
        && date.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if well_formed {
        Err(ApiVersionProblem::Unsupported(version.to_string()))
    } else {
        Err(ApiVersionProblem::Malformed(version.to_string()))
    }
}

/// A parsed Activity Log query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ActivityQuery {
    /// Inclusive bounds on `eventTimestamp`, ns; `hi` is `i64::MAX` without an end.
    pub lo: i64,
    pub hi: i64,
    /// The `$filter` as sent, for next links.
    pub filter: String,
    /// `$select` names, in order.
    pub select: Option<Vec<String>>,
    pub skiptoken: Option<String>,
}

/// Why an Activity Log query is refused (all 400 `BadRequest` from the resource provider).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryProblem {
    MissingFilter,
    Filter(String),
    Select(String),
}

impl QueryProblem {
    pub(crate) fn message(&self) -> String {
        match self {
            QueryProblem::MissingFilter => {
                "The $filter query parameter is required and must contain at least the start time (eventTimestamp ge '<start>').".to_string()
            }
            QueryProblem::Filter(filter) => format!(
                "The $filter '{filter}' is not supported. Use eventTimestamp ge '<start>' and eventTimestamp le '<end>' with quoted ISO 8601 times."
            ),
            QueryProblem::Select(name) => format!("The $select property '{name}' is not supported."),
        }
    }
}

/// Parses the Activity Log options (`api-version` is checked separately).
pub(crate) fn parse_activity_query(params: &Params) -> Result<ActivityQuery, QueryProblem> {
    let Some(filter) = params.get("$filter") else {
        return Err(QueryProblem::MissingFilter);
    };
    if filter.trim().is_empty() {
        return Err(QueryProblem::MissingFilter);
    }
    let (lo, hi) = parse_filter(filter).ok_or_else(|| QueryProblem::Filter(filter.to_string()))?;
    let select = match params.get("$select") {
        None => None,
        Some(list) => {
            let mut names = Vec::new();
            for name in list.split(',').map(str::trim) {
                let known = SELECTABLE
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(name))
                    .ok_or_else(|| QueryProblem::Select(name.to_string()))?;
                names.push(known.to_string());
            }
            Some(names)
        }
    };
    Ok(ActivityQuery {
        lo,
        hi: hi.unwrap_or(i64::MAX),
        filter: filter.to_string(),
        select,
        skiptoken: params.get("$skiptoken").map(str::to_string),
    })
}

/// `eventTimestamp ge '<t0>'` optionally followed by `and eventTimestamp le '<t1>'`: names and
/// keywords case-insensitive, any amount of white space between tokens, literals in single
/// quotes (ISO 8601 with `Z` or an offset, up to 9 fraction digits, or a date).
/// Anything else, including the documented narrowing predicates, is refused.
pub(crate) fn parse_filter(filter: &str) -> Option<(i64, Option<i64>)> {
    let tokens = tokenize(filter)?;
    let literal = |token: &str| -> Option<i64> {
        let inner = token.strip_prefix('\'')?.strip_suffix('\'')?;
        parse_record_time(inner).or_else(|| parse_filter_literal(inner))
    };
    let clause = |tokens: &[String], operator: &str| -> Option<i64> {
        match tokens {
            [name, op, value]
                if name.eq_ignore_ascii_case("eventTimestamp")
                    && op.eq_ignore_ascii_case(operator) =>
            {
                literal(value)
            }
            _ => None,
        }
    };
    match tokens.len() {
        3 => Some((clause(&tokens, "ge")?, None)),
        7 if tokens[3].eq_ignore_ascii_case("and") => Some((
            clause(&tokens[..3], "ge")?,
            Some(clause(&tokens[4..], "le")?),
        )),
        _ => None,
    }
}

/// Splits on white space; a `'…'` literal is one token (no quote inside). `None` if a quote is
/// unterminated.
fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut token = String::from("'");
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(other) => token.push(other),
                    None => return None,
                }
            }
            token.push('\'');
            tokens.push(token);
        } else {
            let mut token = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' {
                    break;
                }
                token.push(c);
                chars.next();
            }
            tokens.push(token);
        }
    }
    Some(tokens)
}

/// What an Activity Log skiptoken carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ActivityToken {
    pub v: u8,
    /// Fingerprint of the subscription and the query.
    pub q: u64,
    /// The last event returned: (time, id halves).
    pub t: i64,
    pub h: u64,
    pub l: u64,
}

impl ActivityToken {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("token serialises"))
    }

    pub(crate) fn decode(text: &str) -> Option<ActivityToken> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let token: ActivityToken = serde_json::from_slice(&bytes).ok()?;
        (token.v == 1).then_some(token)
    }
}

/// Ties a skiptoken to one subscription and one window.
pub(crate) fn fingerprint(subscription: &str, query: &ActivityQuery) -> u64 {
    let mut hash = 0x5EED_0000_0000_0001u64;
    for byte in subscription.to_ascii_lowercase().bytes() {
        hash = mix64(hash ^ u64::from(byte));
    }
    hash = mix64(hash ^ query.lo as u64);
    hash = mix64(hash ^ query.hi as u64);
    if let Some(names) = &query.select {
        for name in names {
            for byte in name.bytes() {
                hash = mix64(hash ^ u64::from(byte));
            }
        }
    }
    hash
}

/// Escaped in next links: everything but letters, digits and `-._~$`.
const NEXT_LINK_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$');

/// A query string from name/value pairs, percent-encoded.
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
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
    fn accepts_the_documented_time_range() {
        assert_eq!(
            parse_filter(
                "eventTimestamp ge '2024-01-13T14:13:32Z' and eventTimestamp le '2024-01-13T14:13:33.5Z'"
            ),
            Some((T0, Some(T0 + 1_500_000_000)))
        );
        assert_eq!(
            parse_filter("  EventTimestamp  GE '2024-01-13T15:13:32.123456789+01:00'  "),
            Some((T0 + 123_456_789, None))
        );
    }

    #[test]
    fn refuses_everything_else() {
        for filter in [
            "eventTimestamp ge 2024-01-13T14:13:32Z",
            "eventTimestamp gt '2024-01-13T14:13:32Z'",
            "eventTimestamp le '2024-01-13T14:13:32Z'",
            "eventTimestamp ge '2024-01-13T14:13:32Z' and eventTimestamp lt '2024-01-13T15:13:32Z'",
            "eventTimestamp ge '2024-01-13T14:13:32Z' or eventTimestamp le '2024-01-13T15:13:32Z'",
            "eventTimestamp ge '2024-01-13T14:13:32Z' and eventTimestamp le '2024-01-13T15:13:32Z' and resourceGroupName eq 'rg'",
            "eventTimestamp ge '2024-01-13T14:13:32Z' and status eq 'Failed'",
            "eventTimestamp ge 'yesterday'",
            "eventTimestamp ge '2024-01-13T14:13:32Z",
            "",
        ] {
            assert_eq!(parse_filter(filter), None, "{filter}");
        }
    }

    #[test]
    fn api_versions() {
        let check = |query: &str| check_api_version(&Params::parse(query), &["2015-04-01"]);
        assert_eq!(check("api-version=2015-04-01"), Ok(()));
        assert_eq!(check("API-VERSION=2015-04-01"), Ok(()));
        assert_eq!(check(""), Err(ApiVersionProblem::Missing));
        assert_eq!(
            check("api-version=2017-03-01-preview"),
            Err(ApiVersionProblem::Unsupported("2017-03-01-preview".into()))
        );
        assert_eq!(
            check("api-version=latest"),
            Err(ApiVersionProblem::Malformed("latest".into()))
        );
    }

    #[test]
    fn tokens_round_trip() {
        let token = ActivityToken {
            v: 1,
            q: 42,
            t: T0,
            h: u64::MAX,
            l: 7,
        };
        assert_eq!(ActivityToken::decode(&token.encode()), Some(token));
        assert_eq!(ActivityToken::decode("not a token"), None);
    }
}

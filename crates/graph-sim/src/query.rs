//! OData query options of a list request (`$filter`, `$top`, `$orderby`, `$select`,
//! `$skiptoken`) and the opaque skiptoken format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::config::Resource;
use crate::store::Cursor;
use crate::timefmt::parse_filter_literal;

/// A list endpoint: the path after the version. The sign-in endpoint serves four streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    DirectoryAudits,
    SignIns,
    Provisioning,
    RiskDetections,
    ServicePrincipalRiskDetections,
}

/// How an endpoint orders its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderModel {
    /// By time then id, newest first unless `$orderby` asks for ascending.
    Honoured,
    /// `$orderby` is accepted and ignored: always newest first.
    Ignored,
    /// `$orderby` is accepted and ignored: neither ascending nor descending.
    Scrambled,
}

impl Endpoint {
    /// The endpoint of `group/segment` (case-insensitive), e.g. `auditLogs/signIns`.
    pub(crate) fn from_path(group: &str, segment: &str) -> Option<Endpoint> {
        [
            Endpoint::DirectoryAudits,
            Endpoint::SignIns,
            Endpoint::Provisioning,
            Endpoint::RiskDetections,
            Endpoint::ServicePrincipalRiskDetections,
        ]
        .into_iter()
        .find(|endpoint| {
            let (own_group, own_segment) = endpoint
                .stream()
                .path()
                .split_once('/')
                .expect("paths have two segments");
            own_group.eq_ignore_ascii_case(group) && own_segment.eq_ignore_ascii_case(segment)
        })
    }

    /// The endpoint's stream; for sign-ins, the interactive one (the stream without a type filter).
    pub(crate) fn stream(self) -> Resource {
        match self {
            Endpoint::DirectoryAudits => Resource::DirectoryAudits,
            Endpoint::SignIns => Resource::SignIns,
            Endpoint::Provisioning => Resource::Provisioning,
            Endpoint::RiskDetections => Resource::RiskDetections,
            Endpoint::ServicePrincipalRiskDetections => Resource::ServicePrincipalRiskDetections,
        }
    }

    pub(crate) fn time_field(self) -> &'static str {
        self.stream().time_field()
    }

    /// The OData type of the endpoint's records, for "Could not find a property" messages.
    pub(crate) fn entity_type(self) -> &'static str {
        match self {
            Endpoint::DirectoryAudits => "microsoft.graph.directoryAudit",
            Endpoint::SignIns => "microsoft.graph.signIn",
            Endpoint::Provisioning => "microsoft.graph.provisioningObjectSummary",
            Endpoint::RiskDetections => "microsoft.graph.riskDetection",
            Endpoint::ServicePrincipalRiskDetections => {
                "microsoft.graph.servicePrincipalRiskDetection"
            }
        }
    }

    /// `$top` when the request has none: Graph documents 1000 for signIns and 20 for
    /// riskDetections; for directoryAudits and provisioning the default is undocumented and the
    /// simulator uses 100 (Graph's usual default page size), so a client that relies on an
    /// implicit page size notices.
    pub(crate) fn default_top(self) -> usize {
        match self {
            Endpoint::SignIns => 1000,
            Endpoint::DirectoryAudits | Endpoint::Provisioning => 100,
            Endpoint::RiskDetections | Endpoint::ServicePrincipalRiskDetections => 20,
        }
    }

    /// The largest `$top`: 500 on Identity Protection (documented for riskDetections, assumed
    /// for servicePrincipalRiskDetections), 1000 elsewhere.
    pub(crate) fn max_top(self) -> usize {
        match self {
            Endpoint::RiskDetections | Endpoint::ServicePrincipalRiskDetections => 500,
            _ => 1000,
        }
    }

    /// The comparison operators `$filter` accepts on the time field: provisioning documents
    /// only `eq`, `gt` and `lt` on `activityDateTime`.
    fn operators(self) -> &'static [&'static str] {
        match self {
            Endpoint::Provisioning => &["eq", "gt", "lt"],
            _ => &["eq", "ge", "gt", "le", "lt"],
        }
    }

    pub(crate) fn order_model(self) -> OrderModel {
        match self {
            Endpoint::DirectoryAudits | Endpoint::SignIns => OrderModel::Honoured,
            Endpoint::Provisioning => OrderModel::Scrambled,
            Endpoint::RiskDetections | Endpoint::ServicePrincipalRiskDetections => {
                OrderModel::Ignored
            }
        }
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
    /// The streams the request reads, in [`Resource::ALL`] order: one, except for beta
    /// sign-ins filtered on `interactiveUser or nonInteractiveUser` (two) or on a type that
    /// matches no stream (none).
    pub streams: Vec<Resource>,
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
    pub(crate) fn fingerprint(&self, endpoint: Endpoint, beta: bool) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        let mut feed = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(endpoint.stream().segment().as_bytes());
        feed(&[u8::from(beta), u8::from(self.descending)]);
        feed(&self.lo.to_le_bytes());
        feed(&self.hi.to_le_bytes());
        if self.streams != [endpoint.stream()] {
            for stream in &self.streams {
                feed(stream.name().as_bytes());
            }
        }
        hash
    }
}

/// Why a query was refused; each maps to a Graph 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// `Invalid filter clause`.
    Filter,
    /// A property the endpoint's type does not have (`signInEventTypes` on v1.0).
    UnknownProperty { name: String, entity: &'static str },
    /// `$top` out of 1..=max or not a number.
    Top { value: String, max: usize },
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
            QueryError::UnknownProperty { name, entity } => {
                format!("Could not find a property named '{name}' on type '{entity}'.")
            }
            QueryError::Top { value, max } => format!(
                "Invalid page size specified: '{value}'. Must be between 1 and {max} inclusive."
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

/// Parses the raw query string of a list request on `endpoint` (`beta`: the beta version).
pub(crate) fn parse_list_query(
    endpoint: Endpoint,
    beta: bool,
    raw: &str,
) -> Result<ListQuery, QueryError> {
    let mut query = ListQuery {
        lo: i64::MIN,
        hi: i64::MAX,
        lower_literal: None,
        descending: true,
        top: endpoint.default_top(),
        select: None,
        skiptoken: None,
        params: Vec::new(),
        streams: vec![endpoint.stream()],
    };
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let name = key.trim_start_matches('$').to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(QueryError::Unsupported(key.into_owned()));
        }
        seen.push(name.clone());
        match name.as_str() {
            "filter" => {
                if let Some(types) = parse_filter(endpoint, beta, &value, &mut query)? {
                    query.streams = types;
                }
            }
            "top" => {
                let max = endpoint.max_top();
                query.top = match value.trim().parse::<usize>() {
                    Ok(top) if (1..=max).contains(&top) => top,
                    _ => {
                        return Err(QueryError::Top {
                            value: value.into_owned(),
                            max,
                        });
                    }
                }
            }
            "orderby" => {
                let descending = parse_order_by(endpoint, &value)?;
                if endpoint.order_model() == OrderModel::Honoured {
                    query.descending = descending;
                }
            }
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

/// A `$filter` token: a parenthesis, a quoted string (without its quotes) or a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    Quoted(&'a str),
    Word(&'a str),
}

fn tokenize(filter: &str) -> Result<Vec<Token<'_>>, QueryError> {
    let mut tokens = Vec::new();
    let mut rest = filter;
    while let Some(first) = rest.chars().next() {
        if first.is_whitespace() {
            rest = &rest[first.len_utf8()..];
        } else if first == '(' || first == ')' {
            tokens.push(if first == '(' {
                Token::Open
            } else {
                Token::Close
            });
            rest = &rest[1..];
        } else if first == '\'' {
            let end = rest[1..].find('\'').ok_or(QueryError::Filter)? + 1;
            tokens.push(Token::Quoted(&rest[1..end]));
            rest = &rest[end + 1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '\''))
                .unwrap_or(rest.len());
            tokens.push(Token::Word(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(tokens)
}

/// `<clause> [and <clause>]*`, each clause optionally parenthesised: `<time field> <op>
/// <literal>` with `op` among the endpoint's operators, or (beta sign-ins only)
/// `signInEventTypes/any(t: t eq|ne '<type>' [or t eq|ne '<type>']*)`.
///
/// Returns the sign-in streams a type filter selects (`None` without one). `eq` selects the
/// type; `ne` selects the other type of the same family (user types `interactiveUser` and
/// `nonInteractiveUser`, workload types `servicePrincipal` and `managedIdentity`); `or` unites,
/// `and` intersects; an unknown type selects nothing. A filter may name both user types, or
/// one workload type, but no other combination (400 `Invalid filter clause`).
fn parse_filter(
    endpoint: Endpoint,
    beta: bool,
    filter: &str,
    query: &mut ListQuery,
) -> Result<Option<Vec<Resource>>, QueryError> {
    let tokens = tokenize(filter)?;
    let mut parser = FilterParser {
        tokens: &tokens,
        position: 0,
        endpoint,
        beta,
        types: None,
        mentioned: Vec::new(),
    };
    loop {
        parser.clause(query)?;
        match parser.next() {
            None => break,
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("and") => {}
            Some(_) => return Err(QueryError::Filter),
        }
    }
    let user = |resource: &Resource| {
        matches!(
            resource,
            Resource::SignIns | Resource::NonInteractiveSignIns
        )
    };
    let mut mentioned = parser.mentioned.clone();
    mentioned.sort();
    mentioned.dedup();
    let combinable =
        mentioned.iter().all(user) || (mentioned.len() == 1 && !mentioned.iter().any(user));
    if !mentioned.is_empty() && !combinable {
        return Err(QueryError::Filter);
    }
    Ok(parser.types.map(|types| {
        Resource::ALL
            .into_iter()
            .filter(|resource| types.contains(resource))
            .collect()
    }))
}

struct FilterParser<'t, 'a> {
    tokens: &'t [Token<'a>],
    position: usize,
    endpoint: Endpoint,
    beta: bool,
    /// The intersection of the type lambdas so far.
    types: Option<Vec<Resource>>,
    /// Every known type named in a lambda.
    mentioned: Vec<Resource>,
}

impl<'a> FilterParser<'_, 'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        let token = self.tokens.get(self.position).copied();
        self.position += 1;
        token
    }

    fn word(&mut self) -> Result<&'a str, QueryError> {
        match self.next() {
            Some(Token::Word(word)) => Ok(word),
            _ => Err(QueryError::Filter),
        }
    }

    fn clause(&mut self, query: &mut ListQuery) -> Result<(), QueryError> {
        match self.next() {
            Some(Token::Open) => {
                self.clause(query)?;
                match self.next() {
                    Some(Token::Close) => Ok(()),
                    _ => Err(QueryError::Filter),
                }
            }
            Some(Token::Word(word)) => {
                let property = word.split('/').next().unwrap_or(word);
                if property == "signInEventTypes" {
                    if self.endpoint != Endpoint::SignIns || !self.beta {
                        return Err(QueryError::UnknownProperty {
                            name: property.to_string(),
                            entity: self.endpoint.entity_type(),
                        });
                    }
                    if word != "signInEventTypes/any" {
                        return Err(QueryError::Filter);
                    }
                    return self.lambda();
                }
                self.time_clause(word, query)
            }
            _ => Err(QueryError::Filter),
        }
    }

    fn time_clause(&mut self, field: &str, query: &mut ListQuery) -> Result<(), QueryError> {
        let operator = self.word()?.to_ascii_lowercase();
        let literal = self.word()?;
        if field != self.endpoint.time_field()
            || !self.endpoint.operators().contains(&operator.as_str())
        {
            return Err(QueryError::Filter);
        }
        let value = parse_filter_literal(literal).ok_or(QueryError::Filter)?;
        let mut lower = |bound: i64| {
            query.lo = query.lo.max(bound);
            query.lower_literal = Some(query.lower_literal.map_or(value, |v| v.min(value)));
        };
        match operator.as_str() {
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
        Ok(())
    }

    /// `(t: t eq '<type>' [or t ne '<type>']*)`, after `signInEventTypes/any`.
    fn lambda(&mut self) -> Result<(), QueryError> {
        if self.next() != Some(Token::Open) {
            return Err(QueryError::Filter);
        }
        // Rebuild the body as words (`t:t`, `t: t` and `t :t` all split the same way).
        let mut body: Vec<String> = Vec::new();
        loop {
            match self.next() {
                Some(Token::Close) => break,
                Some(Token::Word(word)) => {
                    for (index, part) in word.split(':').enumerate() {
                        if index > 0 {
                            body.push(":".to_string());
                        }
                        if !part.is_empty() {
                            body.push(part.to_string());
                        }
                    }
                }
                Some(Token::Quoted(value)) => body.push(format!("'{value}'")),
                _ => return Err(QueryError::Filter),
            }
        }
        let (variable, conditions) = match body.as_slice() {
            [variable, colon, conditions @ ..] if colon == ":" && !conditions.is_empty() => {
                (variable.as_str(), conditions)
            }
            _ => return Err(QueryError::Filter),
        };
        if !(conditions.len() + 1).is_multiple_of(4) {
            return Err(QueryError::Filter);
        }
        let mut selected: Vec<Resource> = Vec::new();
        for (index, condition) in conditions.chunks(4).enumerate() {
            let (subject, operator, literal) = (&condition[0], &condition[1], &condition[2]);
            if index > 0 && !conditions[index * 4 - 1].eq_ignore_ascii_case("or") {
                return Err(QueryError::Filter);
            }
            let value = literal
                .strip_prefix('\'')
                .and_then(|value| value.strip_suffix('\''))
                .ok_or(QueryError::Filter)?;
            if subject.as_str() != variable {
                return Err(QueryError::Filter);
            }
            let named = Resource::from_sign_in_event_type(value);
            self.mentioned.extend(named);
            match (operator.to_ascii_lowercase().as_str(), named) {
                ("eq", Some(resource)) => selected.push(resource),
                ("ne", Some(resource)) => selected.push(sibling(resource)),
                ("eq" | "ne", None) => {}
                _ => return Err(QueryError::Filter),
            }
        }
        self.types = Some(match self.types.take() {
            None => selected,
            Some(previous) => previous
                .into_iter()
                .filter(|resource| selected.contains(resource))
                .collect(),
        });
        Ok(())
    }
}

/// The other sign-in type of the same family.
fn sibling(resource: Resource) -> Resource {
    match resource {
        Resource::SignIns => Resource::NonInteractiveSignIns,
        Resource::NonInteractiveSignIns => Resource::SignIns,
        Resource::ServicePrincipalSignIns => Resource::ManagedIdentitySignIns,
        _ => Resource::ServicePrincipalSignIns,
    }
}

/// Returns whether the order asked for is descending.
fn parse_order_by(endpoint: Endpoint, value: &str) -> Result<bool, QueryError> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let error = || QueryError::OrderBy(value.to_string());
    let field = endpoint.time_field();
    match tokens.as_slice() {
        [name] if *name == field => Ok(false),
        [name, direction] if *name == field => match direction.to_ascii_lowercase().as_str() {
            "asc" => Ok(false),
            "desc" => Ok(true),
            _ => Err(error()),
        },
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
            Endpoint::SignIns,
            false,
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
            Endpoint::DirectoryAudits,
            false,
            "$filter=activityDateTime gt 2024-01-13T14:13:32Z and activityDateTime le 2024-01-14",
        )
        .unwrap();
        assert_eq!(query.lo, T0 + 1);
        assert_eq!(query.hi, 1_705_190_400 * NS_PER_SEC);
        assert!(query.descending);
        assert_eq!(query.top, 100);
        let query = parse_list_query(
            Endpoint::SignIns,
            false,
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
                parse_list_query(Endpoint::SignIns, false, &raw),
                Err(QueryError::Filter),
                "{filter}"
            );
        }
    }

    #[test]
    fn top_bounds_and_unsupported_options() {
        assert!(parse_list_query(Endpoint::SignIns, false, "$top=1000").is_ok());
        for raw in ["$top=1001", "$top=0", "$top=-1", "$top=ten"] {
            assert!(matches!(
                parse_list_query(Endpoint::SignIns, false, raw),
                Err(QueryError::Top { .. })
            ));
        }
        assert!(matches!(
            parse_list_query(Endpoint::SignIns, false, "$skip=10"),
            Err(QueryError::Unsupported(_))
        ));
        assert!(matches!(
            parse_list_query(Endpoint::SignIns, false, "$top=1&$top=2"),
            Err(QueryError::Unsupported(_))
        ));
        assert!(matches!(
            parse_list_query(Endpoint::SignIns, false, "$orderby=userId"),
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
            Endpoint::SignIns,
            false,
            "%24filter=createdDateTime+ge+2024-01-13T14:13:32Z&$top=5&$skiptoken=old",
        )
        .unwrap();
        assert_eq!(
            next_link_query(&query.params, "abc"),
            "$filter=createdDateTime%20ge%202024-01-13T14%3A13%3A32Z&$top=5&$skiptoken=abc"
        );
    }
}

//! The Azure Functions custom-handler wire format: the invocation the host POSTs to
//! `/<FunctionName>` and the reply it expects. Member names are PascalCase on the wire
//! (Newtonsoft); camelCase is accepted too, and unknown members are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An invocation request: `{"Data": {...}, "Metadata": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct InvocationRequest {
    /// One entry per trigger or input binding; ours is `timer`.
    #[serde(rename = "Data", alias = "data", default)]
    pub data: BTreeMap<String, Value>,
    /// Trigger metadata, including `sys` (`MethodName`, `UtcNow`, `RandGuid`).
    #[serde(rename = "Metadata", alias = "metadata", default)]
    pub metadata: BTreeMap<String, Value>,
}

/// The timer binding's value.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TimerInfo {
    /// The schedule (`AdjustForDST`); not used.
    #[serde(rename = "Schedule", alias = "schedule", default)]
    pub schedule: Option<Value>,
    /// `null` without a schedule monitor, else `{Last, Next, LastUpdated}`.
    #[serde(rename = "ScheduleStatus", alias = "scheduleStatus", default)]
    pub schedule_status: Option<ScheduleStatus>,
    /// True for the catch-up run after a missed occurrence.
    #[serde(rename = "IsPastDue", alias = "isPastDue", default)]
    pub is_past_due: bool,
}

/// The schedule monitor's record. Dates are kept as text: the jobs compute their own windows.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ScheduleStatus {
    /// The last scheduled occurrence.
    #[serde(rename = "Last", alias = "last", default)]
    pub last: Option<String>,
    /// The next scheduled occurrence.
    #[serde(rename = "Next", alias = "next", default)]
    pub next: Option<String>,
    /// When the monitor last wrote this record.
    #[serde(rename = "LastUpdated", alias = "lastUpdated", default)]
    pub last_updated: Option<String>,
}

/// Why an invocation body was refused (a 400 reply).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or not the invocation shape.
    #[error("invocation body is not a valid custom-handler payload: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an object.
    #[error(
        "invocation body is not a valid custom-handler payload: expected a JSON object with `Data` and `Metadata`"
    )]
    NotAnObject,
    /// The timer binding has the wrong shape.
    #[error("invocation body has an invalid `Data.timer` binding: {0}")]
    Timer(serde_json::Error),
}

/// A parsed invocation: the timer binding, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The `timer` binding (absent only in hand-made requests).
    pub timer: Option<TimerInfo>,
}

/// Parses an invocation body. Never panics, whatever the bytes.
pub fn parse_invocation(body: &[u8]) -> Result<Invocation, PayloadError> {
    let value: Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(PayloadError::NotAnObject);
    }
    let request: InvocationRequest = serde_json::from_value(value)?;
    let timer = request
        .data
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("timer"))
        .map(|(_, value)| value.clone());
    let timer = match timer {
        None | Some(Value::Null) => None,
        Some(value) => {
            Some(serde_json::from_value::<TimerInfo>(value).map_err(PayloadError::Timer)?)
        }
    };
    Ok(Invocation { timer })
}

/// The reply: `{"Outputs": {}, "Logs": [...], "ReturnValue": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationResponse {
    /// Output bindings; timers have none.
    #[serde(rename = "Outputs")]
    pub outputs: BTreeMap<String, Value>,
    /// Lines the host logs at Information on the invocation's logger.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// The run report.
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_hosts_timer_payload_with_null_status() {
        let body = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},
            "Metadata":{"sys":{"MethodName":"AuditTimer","UtcNow":"2025-01-01T00:15:00.0012345Z","RandGuid":"4b3f"}}}"#;
        let invocation = parse_invocation(body).unwrap();
        let timer = invocation.timer.unwrap();
        assert_eq!(timer.schedule_status, None);
        assert!(!timer.is_past_due);
    }

    #[test]
    fn parses_a_populated_status_and_camel_case() {
        let body = br#"{"data":{"timer":{"scheduleStatus":{"last":"2016-10-04T10:15:00+00:00","next":"2016-10-04T10:30:00+00:00","lastUpdated":"2016-10-04T10:16:00.0000000+00:00"},"isPastDue":true}},"metadata":{}}"#;
        let timer = parse_invocation(body).unwrap().timer.unwrap();
        assert!(timer.is_past_due);
        assert_eq!(
            timer.schedule_status.unwrap().next.as_deref(),
            Some("2016-10-04T10:30:00+00:00")
        );
    }

    #[test]
    fn refuses_malformed_json_and_a_wrong_timer_shape() {
        assert!(matches!(
            parse_invocation(b"{\"Data\":"),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            parse_invocation(b"[1,2]"),
            Err(PayloadError::NotAnObject)
        ));
        assert!(matches!(
            parse_invocation(b"[]"),
            Err(PayloadError::NotAnObject)
        ));
        let wrong = br#"{"Data":{"timer":{"IsPastDue":"yes"}}}"#;
        let error = parse_invocation(wrong).unwrap_err();
        assert!(matches!(error, PayloadError::Timer(_)));
        assert!(error.to_string().contains("Data.timer"), "{error}");
    }

    #[test]
    fn the_reply_uses_pascal_case() {
        let reply = InvocationResponse {
            outputs: BTreeMap::new(),
            logs: vec!["ok".into()],
            return_value: Value::Null,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"Outputs":{},"Logs":["ok"],"ReturnValue":null}"#
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_invocation(&bytes);
        }

        #[test]
        fn arbitrary_json_values_never_panic(text in r#"\{("(Data|Metadata|timer|IsPastDue|ScheduleStatus)":(null|true|1|"x"|\{\}|\[\]|\{"timer":(null|1|\{"IsPastDue":(1|null|false)\})\}),?){0,4}\}"#) {
            let _ = parse_invocation(text.as_bytes());
        }
    }
}

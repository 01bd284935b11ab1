//! The Azure Functions custom handler: `GET /` answers the host's readiness probe and
//! `POST /<FunctionName>` runs the streams of that timer function. No business logic lives here.

pub mod protocol;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::job::Timer;
use crate::pipeline::RunOptions;
use crate::pipeline::report::{Outcome, RunReport};
use crate::service::{Service, Trigger};
use protocol::InvocationResponse;

/// The router the host talks to.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(ready))
        .route("/{function}", post(invoke))
        .with_state(service)
}

/// Serves the router on an already bound listener until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
) -> std::io::Result<()> {
    axum::serve(listener, router(service)).await
}

async fn ready() -> &'static str {
    "entra-export ready"
}

async fn invoke(
    State(service): State<Arc<Service>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(timer) = Timer::from_function_name(&function) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!(
                "no function named `{function}`: this handler serves AuditTimer and SignInTimer"
            ),
        );
    };
    let invocation = match protocol::parse_invocation(&body) {
        Ok(invocation) => invocation,
        Err(error) => {
            // Logged to stderr too: the host discards the body of a non-2xx reply.
            tracing::error!(function = %function, error = %error, "refused invocation");
            return plain(StatusCode::BAD_REQUEST, error.to_string());
        }
    };
    let trigger = Trigger {
        invocation_id: headers
            .get("x-azure-functions-invocationid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if invocation.timer.as_ref().is_some_and(|t| t.is_past_due) {
        tracing::info!(function = %function, "timer is past due: running the catch-up run");
    }
    // Every stream of the timer at once; they share the Graph budget (one limiter), and each
    // has its own lock, checkpoint and report. A stream that fails fails only itself.
    let streams = service.timer_streams(timer);
    if streams.is_empty() {
        tracing::warn!(function = %function, setting = timer.setting(), "no stream enabled for this timer");
    }
    let reports = futures::future::join_all(
        streams
            .iter()
            .map(|kind| service.run_job(*kind, trigger.clone(), RunOptions::default())),
    )
    .await;
    let failed: Vec<&RunReport> = reports
        .iter()
        .filter(|r| r.outcome == Some(Outcome::Failed))
        .collect();
    for report in &failed {
        // The host drops the body of a non-2xx reply: the error goes to stderr as well.
        eprintln!(
            "{} run failed: {}",
            report.job,
            report.reason.as_deref().unwrap_or("unknown error")
        );
    }
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let reply = InvocationResponse {
        outputs: Default::default(),
        logs: reports.iter().map(RunReport::summary).collect(),
        return_value: serde_json::json!({
            "outcome": overall(&reports).as_str(),
            "reports": reports,
        }),
    };
    json(status, &reply)
}

/// One outcome for an invocation: `failed` when a stream failed, else `partial` when one is
/// partial, `skipped` when every stream was skipped (or none is enabled), else `complete`.
pub fn overall(reports: &[RunReport]) -> Outcome {
    let any = |o: Outcome| reports.iter().any(|r| r.outcome == Some(o));
    if any(Outcome::Failed) {
        Outcome::Failed
    } else if any(Outcome::Partial) {
        Outcome::Partial
    } else if reports.iter().all(|r| r.outcome == Some(Outcome::Skipped)) {
        Outcome::Skipped
    } else {
        Outcome::Complete
    }
}

fn json(status: StatusCode, reply: &InvocationResponse) -> Response {
    let body = serde_json::to_vec(reply)
        .unwrap_or_else(|_| b"{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":null}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

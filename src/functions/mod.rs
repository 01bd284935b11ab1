//! The Azure Functions custom handler: `GET /` answers the host's readiness probe and
//! `POST /<FunctionName>` runs the job of that timer function. No business logic lives here.

pub mod protocol;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::job::JobKind;
use crate::pipeline::RunOptions;
use crate::pipeline::report::Outcome;
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
    let Some(kind) = JobKind::from_function_name(&function) else {
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
    let report = service.run_job(kind, trigger, RunOptions::default()).await;
    let status = if report.outcome == Some(Outcome::Failed) {
        // The host drops the body of a non-2xx reply: the error goes to stderr as well.
        eprintln!(
            "{} run failed: {}",
            report.job,
            report.reason.as_deref().unwrap_or("unknown error")
        );
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let reply = InvocationResponse {
        outputs: Default::default(),
        logs: vec![report.summary()],
        return_value: serde_json::to_value(&report).unwrap_or(Value::Null),
    };
    json(status, &reply)
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

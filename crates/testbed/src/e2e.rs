//! Helpers shared by the end-to-end test files: a scenario (stand-ins plus one `serve`
//! process), timer ticks as the host sends them, and exactly-once checks against the
//! simulator's truth.

use std::time::Duration;

use entra_export::job::JobKind;
use graph_sim::{Resource, SimConfig, Throttle};
use time::OffsetDateTime;

use crate::verify::{Landed, landed};
use crate::{HostReply, Serve, Stack, StackOptions, timer_payload};

/// The two original streams, each run by its own timer (the stack's default configuration).
pub const CLASSIC: [JobKind; 2] = [JobKind::Audit, JobKind::SignIn];

pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A throttle budget the scenario never reaches: the test is about something else.
pub const AMPLE: Option<Throttle> = Some(Throttle {
    requests: 100,
    per: Duration::from_secs(10),
});

/// The stand-ins and one `serve` process; `None` when Azurite is unreachable outside CI.
pub async fn scenario(sim: SimConfig, env: Vec<(String, String)>) -> Option<(Stack, Serve)> {
    let stack = Stack::start(StackOptions { sim, env }).await.unwrap()?;
    let serve = Serve::spawn(&stack.env()).await.unwrap();
    Some((stack, serve))
}

/// Runs both jobs at once, as two timers firing together, and asserts both complete.
pub async fn both_complete(serve: &Serve) -> (HostReply, HostReply) {
    let (audit, signin) = tokio::join!(tick(serve, JobKind::Audit), tick(serve, JobKind::SignIn));
    for reply in [&audit, &signin] {
        assert_eq!(
            reply.outcome(),
            "complete",
            "{}\n{}",
            String::from_utf8_lossy(&reply.body),
            serve.logs()
        );
    }
    (audit, signin)
}

/// Asserts exactly-once delivery for both jobs over the `lookback` before their checkpoints.
pub async fn assert_both_exactly_once(
    stack: &Stack,
    lookback: time::Duration,
    visible_by: OffsetDateTime,
) {
    for kind in CLASSIC {
        let end = checkpoint(stack, kind)
            .await
            .expect("the checkpoint was written");
        assert_exactly_once(stack, kind, end - lookback, end, visible_by).await;
    }
}

pub fn resource(kind: JobKind) -> Resource {
    match kind {
        JobKind::Audit => Resource::DirectoryAudits,
        JobKind::SignIn => Resource::SignIns,
        JobKind::NonInteractiveSignIn => Resource::NonInteractiveSignIns,
        JobKind::ServicePrincipalSignIn => Resource::ServicePrincipalSignIns,
        JobKind::ManagedIdentitySignIn => Resource::ManagedIdentitySignIns,
        JobKind::Provisioning => Resource::Provisioning,
        JobKind::RiskDetections => Resource::RiskDetections,
        JobKind::ServicePrincipalRiskDetections => Resource::ServicePrincipalRiskDetections,
    }
}

/// Fires the timer that runs `kind` (and whatever else that timer runs).
pub async fn tick(serve: &Serve, kind: JobKind) -> HostReply {
    tick_timer(serve, kind.spec_template().timer).await
}

/// Fires a timer as the host does.
pub async fn tick_timer(serve: &Serve, timer: entra_export::job::Timer) -> HostReply {
    let function = timer.function_name();
    serve
        .invoke(function, &timer_payload(function, true, false))
        .await
        .unwrap()
}

/// Asserts that the container holds exactly the records of `[start, end)` that were visible by
/// `visible_by`, each once (records that became visible later may or may not be there yet).
pub async fn assert_exactly_once(
    stack: &Stack,
    kind: JobKind,
    start: OffsetDateTime,
    end: OffsetDateTime,
    visible_by: OffsetDateTime,
) -> Landed {
    let storage = stack.storage().await.unwrap();
    let landed = landed(&storage, &stack.container(kind)).await.unwrap();
    let must: Vec<_> = stack
        .sim
        .truth(resource(kind), start, end)
        .into_iter()
        .filter(|r| r.visible_at <= visible_by)
        .collect();
    let may = stack.sim.all_records(
        resource(kind),
        start - time::Duration::days(1),
        OffsetDateTime::now_utc(),
    );
    let missing = landed.missing(must.iter().map(|r| r.id.as_str()));
    let shown: Vec<String> = must
        .iter()
        .filter(|r| missing.iter().take(3).any(|m| m.as_str() == r.id))
        .map(|r| {
            format!(
                "{} (time {}, visible at {})",
                r.id,
                entra_export::timestamp::format(r.time),
                entra_export::timestamp::format(r.visible_at)
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{kind}: {} of {} records missing, e.g. {shown:?}",
        missing.len(),
        must.len(),
    );
    let duplicates = landed.duplicates();
    assert!(
        duplicates.is_empty(),
        "{kind}: {} records written twice, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(3)]
    );
    let unexpected = landed.unexpected(may.iter().map(|r| r.id.as_str()));
    assert!(
        unexpected.is_empty(),
        "{kind}: records the simulator never had: {unexpected:?}"
    );
    assert!(!must.is_empty(), "{kind}: the scenario has no records");
    landed
}

pub async fn checkpoint(stack: &Stack, kind: JobKind) -> Option<OffsetDateTime> {
    stack
        .storage()
        .await
        .unwrap()
        .read_checkpoint(&stack.container(kind))
        .await
        .unwrap()
        .checkpoint
}

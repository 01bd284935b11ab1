//! The streams: each one's container (`AUDIT_CONTAINER`, `SIGNIN_CONTAINER`, …), where it
//! writes its blobs and keeps its checkpoint, and which streams each timer runs
//! (`AUDIT_STREAMS`, `SIGNIN_EVENT_TYPES`). Variables, defaults and names come from each
//! stream's description ([`crate::job::JobSpec`]); no two streams, nor a stream and
//! `STATE_CONTAINER`, share a container.

use super::Lines;
use super::parser::Parser;
use crate::job::{JobKind, JobSpec, Timer};
use crate::redact::shown;

/// A job description together with the container this deployment gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpecConfig {
    /// What the job reads.
    pub spec: JobSpec,
    /// Where the job writes its blobs and keeps its checkpoint.
    pub container: String,
}

/// Reads every stream's container (enabled or not), in [`JobKind::ALL`] order, and checks that
/// each is its own (`state` is `STATE_CONTAINER`'s).
pub(super) fn containers(p: &mut Parser<'_>, state: &str) -> Vec<JobSpecConfig> {
    let jobs: Vec<JobSpecConfig> = JobKind::ALL
        .into_iter()
        .map(|kind| {
            let spec = kind.spec_template().clone();
            let container = p.container(spec.container_variable, spec.default_container);
            JobSpecConfig { spec, container }
        })
        .collect();
    distinct_containers(p, &jobs, state);
    jobs
}

/// Notes a problem for each job whose container another job or the state already uses.
fn distinct_containers(p: &mut Parser<'_>, jobs: &[JobSpecConfig], state: &str) {
    let mut seen: Vec<(&str, &str)> = vec![(state, "STATE_CONTAINER")];
    for job in jobs {
        if let Some((_, other)) = seen.iter().find(|(c, _)| *c == job.container) {
            let message = format!(
                "{} is also used by {other}: every job needs a container of its own",
                shown(&job.container)
            );
            p.problem(job.spec.container_variable, message);
        }
        seen.push((&job.container, job.spec.container_variable));
    }
}

/// The `config check` lines of the streams' containers.
pub(super) fn describe_containers(jobs: &[JobSpecConfig]) -> Lines {
    jobs.iter()
        .map(|job| (job.spec.container_variable.into(), job.container.clone()))
        .collect()
}

/// Reads which streams the timers run, every timer's in [`Timer::ALL`] order.
pub(super) fn enabled(p: &mut Parser<'_>) -> Vec<JobKind> {
    Timer::ALL
        .into_iter()
        .flat_map(|timer| timer_streams(p, timer))
        .collect()
}

/// The streams a timer runs: its setting's comma-separated names, or the streams on by
/// default; an empty value runs none.
fn timer_streams(p: &mut Parser<'_>, timer: Timer) -> Vec<JobKind> {
    let variable = timer.setting();
    let Some(value) = p.get(variable).map(str::to_owned) else {
        return timer
            .streams()
            .filter(|kind| kind.spec_template().default_on)
            .collect();
    };
    let mut streams = Vec::new();
    // `none` runs no stream (an empty app setting counts as unset: the defaults).
    if value.trim().eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match JobKind::from_setting_name(timer, name) {
            Some(kind) if !streams.contains(&kind) => streams.push(kind),
            Some(_) => {}
            None => {
                let allowed: Vec<&str> = timer
                    .streams()
                    .map(|kind| kind.spec_template().setting_name)
                    .collect();
                p.problem(
                    variable,
                    format!(
                        "{} is not a stream of {}: use a comma-separated list of {}",
                        shown(name),
                        timer.function_name(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    streams.sort();
    streams
}

/// The `config check` lines of the streams each timer runs (`enabled`, as [`enabled`] read it).
pub(super) fn describe_enabled(enabled: &[JobKind]) -> Lines {
    Timer::ALL
        .into_iter()
        .map(|timer| {
            let names: Vec<&str> = enabled
                .iter()
                .filter(|kind| kind.spec_template().timer == timer)
                .map(|kind| kind.spec_template().setting_name)
                .collect();
            let value = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(",")
            };
            (timer.setting().into(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_each_names_its_variable, problem_variables, with};
    use crate::job::JobKind;

    #[test]
    fn every_job_has_its_default_container() {
        let config = with(&[]).unwrap();
        assert_eq!(config.job(JobKind::Audit).container, "logs-audit");
        assert_eq!(config.job(JobKind::SignIn).container, "logs-signin");
    }

    #[test]
    fn each_timer_runs_its_default_streams_the_listed_ones_or_none() {
        use crate::job::Timer;
        let config = with(&[]).unwrap();
        assert_eq!(config.timer_streams(Timer::SignIn).len(), 4);
        assert_eq!(
            config.timer_streams(Timer::Audit),
            vec![JobKind::Audit, JobKind::Provisioning]
        );
        let config = with(&[
            ("SIGNIN_EVENT_TYPES", "managedIdentity, interactiveUser"),
            ("AUDIT_STREAMS", "none"),
        ])
        .unwrap();
        assert_eq!(
            config.timer_streams(Timer::SignIn),
            vec![JobKind::SignIn, JobKind::ManagedIdentitySignIn]
        );
        assert!(config.timer_streams(Timer::Audit).is_empty());
        assert!(
            with(&[("AUDIT_STREAMS", ",")])
                .unwrap()
                .timer_streams(Timer::Audit)
                .is_empty()
        );
    }

    #[test]
    fn containers_must_differ() {
        let variables = problem_variables(with(&[("SIGNIN_CONTAINER", "logs-audit")]));
        assert_eq!(variables, vec!["SIGNIN_CONTAINER"]);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("AUDIT_CONTAINER", "Logs_Audit"),
            ("SIGNIN_CONTAINER", "ab"),
            ("AUDIT_STREAMS", "directoryAudits,everything"),
            ("SIGNIN_EVENT_TYPES", "directoryAudits"),
        ]);
    }
}

//! Jobs are descriptions, not code: a new log source is a new [`JobSpec`] value.

use std::fmt;

/// The streams this build knows. Each one is a [`JobSpec`]; the pipeline has no per-stream
/// code. A stream has its own container, checkpoint, lock and written-ids state: an id is
/// unique only inside its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Directory audit logs (`v1.0/auditLogs/directoryAudits`).
    Audit,
    /// Interactive user sign-ins (`v1.0/auditLogs/signIns`).
    SignIn,
    /// Non-interactive user sign-ins (token refreshes; `beta/auditLogs/signIns`).
    NonInteractiveSignIn,
    /// Service-principal sign-ins (`beta/auditLogs/signIns`).
    ServicePrincipalSignIn,
    /// Managed-identity sign-ins (`beta/auditLogs/signIns`).
    ManagedIdentitySignIn,
    /// Provisioning logs (`v1.0/auditLogs/provisioning`).
    Provisioning,
    /// Identity Protection risk detections for users (Entra ID P2).
    RiskDetections,
    /// Identity Protection risk detections for service principals (Workload ID Premium).
    ServicePrincipalRiskDetections,
}

/// The timer function that runs a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// `AuditTimer`: the streams in `AUDIT_STREAMS`.
    Audit,
    /// `SignInTimer`: the streams in `SIGNIN_EVENT_TYPES`.
    SignIn,
}

impl Timer {
    /// Both timers.
    pub const ALL: [Timer; 2] = [Timer::Audit, Timer::SignIn];

    /// The function (folder) name.
    pub fn function_name(self) -> &'static str {
        match self {
            Timer::Audit => "AuditTimer",
            Timer::SignIn => "SignInTimer",
        }
    }

    /// The setting that lists the timer's streams.
    pub fn setting(self) -> &'static str {
        match self {
            Timer::Audit => "AUDIT_STREAMS",
            Timer::SignIn => "SIGNIN_EVENT_TYPES",
        }
    }

    /// The timer with this function name.
    pub fn from_function_name(function: &str) -> Option<Timer> {
        Timer::ALL
            .into_iter()
            .find(|t| t.function_name() == function)
    }

    /// Every stream this timer can run, in order.
    pub fn streams(self) -> impl Iterator<Item = JobKind> {
        JobKind::ALL
            .into_iter()
            .filter(move |kind| kind.spec_template().timer == self)
    }
}

impl JobKind {
    /// Every stream, in the order `run all` and `status` list them.
    pub const ALL: [JobKind; 8] = [
        JobKind::Audit,
        JobKind::SignIn,
        JobKind::NonInteractiveSignIn,
        JobKind::ServicePrincipalSignIn,
        JobKind::ManagedIdentitySignIn,
        JobKind::Provisioning,
        JobKind::RiskDetections,
        JobKind::ServicePrincipalRiskDetections,
    ];

    /// The short name used on the command line, in logs and in state blob names.
    pub fn name(self) -> &'static str {
        self.spec_template().name
    }

    /// The stream with this short name (`audit`, `signin`, `signin-noninteractive`, …).
    pub fn from_name(name: &str) -> Option<JobKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The stream with this name in `SIGNIN_EVENT_TYPES` or `AUDIT_STREAMS`.
    pub fn from_setting_name(timer: Timer, name: &str) -> Option<JobKind> {
        timer
            .streams()
            .find(|kind| kind.spec_template().setting_name.eq_ignore_ascii_case(name))
    }

    /// What this stream reads and where it writes by default.
    pub fn spec_template(self) -> &'static JobSpec {
        match self {
            JobKind::Audit => &AUDIT,
            JobKind::SignIn => &SIGN_IN,
            JobKind::NonInteractiveSignIn => &NON_INTERACTIVE,
            JobKind::ServicePrincipalSignIn => &SERVICE_PRINCIPAL,
            JobKind::ManagedIdentitySignIn => &MANAGED_IDENTITY,
            JobKind::Provisioning => &PROVISIONING,
            JobKind::RiskDetections => &RISK,
            JobKind::ServicePrincipalRiskDetections => &SP_RISK,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a source lets a window's start be included in its time filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFilter {
    /// `<time> ge <start>`.
    Ge,
    /// `<time> gt <start - 100 ns>` (the same at Graph's seven-digit precision), for sources
    /// that refuse `ge` (provisioning).
    GtTickBefore,
}

/// The API a stream is read from (each has its own client in the pipeline's context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Microsoft Graph (`crate::graph`).
    Graph,
    /// Azure Resource Manager (`crate::arm`): the Azure Activity Log.
    Arm,
}

/// Everything the pipeline needs to know about one log stream: a new Graph stream is one more
/// value of this type (see docs/ARCHITECTURE.md, "Adding a stream").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Which stream this is.
    pub kind: JobKind,
    /// The API that serves it.
    pub api: Api,
    /// How far back the API keeps records: older ones cannot be fetched.
    pub retention: std::time::Duration,
    /// The retention as operators know it, for messages (`Entra's 30-day retention`).
    pub retention_name: &'static str,
    /// Short name: `audit`, `signin`, `signin-noninteractive`, …
    pub name: &'static str,
    /// The timer function that runs this stream.
    pub timer: Timer,
    /// The name in `SIGNIN_EVENT_TYPES` or `AUDIT_STREAMS`.
    pub setting_name: &'static str,
    /// Run when the timer's setting is not set.
    pub default_on: bool,
    /// The Graph API version this stream needs (`beta` for the other sign-in types); `None`
    /// follows `GRAPH_API_VERSION`.
    pub api_version: Option<&'static str>,
    /// The Graph resource path below the API version, without a leading slash.
    pub resource_path: &'static str,
    /// A clause joined with `and` to the time filter (the sign-in event type).
    pub extra_filter: Option<&'static str>,
    /// The record field that holds the event time, used in `$filter` and for slicing.
    pub time_field: &'static str,
    /// How the window's start is written in the filter.
    pub start_filter: StartFilter,
    /// The record field that identifies a record.
    pub id_field: &'static str,
    /// The largest `$top` the source accepts (`GRAPH_PAGE_SIZE` is capped to it).
    pub max_page_size: u32,
    /// The container written when the configuration names none.
    pub default_container: &'static str,
    /// The environment variable that overrides the container.
    pub container_variable: &'static str,
    /// What a 403 from this source most likely means, for the operator.
    pub forbidden_hint: &'static str,
    /// The source honours `$orderby=<time field> asc`, so pages come oldest first and a window
    /// can be resumed from the time of the last record stored. Checked page by page all the
    /// same: a window whose pages arrive out of order counts progress only when it completes.
    /// Unordered sources are fetched in windows of at most [`UNORDERED_MAX_WINDOW`], so each
    /// can complete within a run.
    pub ordered: bool,
}

/// The widest window of a source without time order: it counts progress only when complete.
pub const UNORDERED_MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

const SIGN_IN_HINT: &str = "this tenant needs Entra ID P1/P2 for sign-in logs, or the app lacks the Microsoft Graph application permission AuditLog.Read.All (infra/grant-graph-permissions.sh)";

/// The fields every Graph stream shares.
const GRAPH: JobSpec = JobSpec {
    kind: JobKind::Audit,
    api: Api::Graph,
    retention: std::time::Duration::from_secs(30 * 24 * 3600),
    retention_name: "Entra's 30-day retention",
    name: "",
    timer: Timer::Audit,
    setting_name: "",
    default_on: true,
    api_version: None,
    resource_path: "",
    extra_filter: None,
    time_field: "",
    start_filter: StartFilter::Ge,
    id_field: "id",
    max_page_size: 1000,
    default_container: "",
    container_variable: "",
    forbidden_hint: "",
    ordered: true,
};

static AUDIT: JobSpec = JobSpec {
    kind: JobKind::Audit,
    name: "audit",
    setting_name: "directoryAudits",
    resource_path: "auditLogs/directoryAudits",
    time_field: "activityDateTime",
    default_container: "logs-audit",
    container_variable: "AUDIT_CONTAINER",
    forbidden_hint: "the app lacks the Microsoft Graph application permission AuditLog.Read.All (grant it with infra/grant-graph-permissions.sh)",
    ..GRAPH
};

static SIGN_IN: JobSpec = JobSpec {
    kind: JobKind::SignIn,
    name: "signin",
    timer: Timer::SignIn,
    setting_name: "interactiveUser",
    resource_path: "auditLogs/signIns",
    time_field: "createdDateTime",
    default_container: "logs-signin",
    container_variable: "SIGNIN_CONTAINER",
    forbidden_hint: SIGN_IN_HINT,
    ..GRAPH
};

static NON_INTERACTIVE: JobSpec = JobSpec {
    kind: JobKind::NonInteractiveSignIn,
    name: "signin-noninteractive",
    setting_name: "nonInteractiveUser",
    api_version: Some("beta"),
    extra_filter: Some("signInEventTypes/any(t: t eq 'nonInteractiveUser')"),
    default_container: "logs-signin-noninteractive",
    container_variable: "SIGNIN_NONINTERACTIVE_CONTAINER",
    ..SIGN_IN
};

static SERVICE_PRINCIPAL: JobSpec = JobSpec {
    kind: JobKind::ServicePrincipalSignIn,
    name: "signin-serviceprincipal",
    setting_name: "servicePrincipal",
    api_version: Some("beta"),
    extra_filter: Some("signInEventTypes/any(t: t eq 'servicePrincipal')"),
    default_container: "logs-signin-serviceprincipal",
    container_variable: "SIGNIN_SERVICEPRINCIPAL_CONTAINER",
    ..SIGN_IN
};

static MANAGED_IDENTITY: JobSpec = JobSpec {
    kind: JobKind::ManagedIdentitySignIn,
    name: "signin-managedidentity",
    setting_name: "managedIdentity",
    api_version: Some("beta"),
    extra_filter: Some("signInEventTypes/any(t: t eq 'managedIdentity')"),
    default_container: "logs-signin-managedidentity",
    container_variable: "SIGNIN_MANAGEDIDENTITY_CONTAINER",
    ..SIGN_IN
};

static PROVISIONING: JobSpec = JobSpec {
    kind: JobKind::Provisioning,
    name: "provisioning",
    setting_name: "provisioning",
    resource_path: "auditLogs/provisioning",
    time_field: "activityDateTime",
    // Provisioning refuses `ge`/`le` on its time and does not honour `$orderby` reliably.
    start_filter: StartFilter::GtTickBefore,
    ordered: false,
    default_container: "logs-provisioning",
    container_variable: "PROVISIONING_CONTAINER",
    forbidden_hint: "the app lacks the Microsoft Graph application permissions AuditLog.Read.All and Directory.Read.All (provisioning logs need both; infra/grant-graph-permissions.sh), or the tenant lacks Entra ID P1/P2",
    ..GRAPH
};

static RISK: JobSpec = JobSpec {
    kind: JobKind::RiskDetections,
    name: "riskdetections",
    setting_name: "riskDetections",
    default_on: false,
    resource_path: "identityProtection/riskDetections",
    time_field: "detectedDateTime",
    max_page_size: 500,
    ordered: false,
    default_container: "logs-riskdetections",
    container_variable: "RISKDETECTIONS_CONTAINER",
    forbidden_hint: "risk detections need Entra ID P2 and the Microsoft Graph application permission IdentityRiskEvent.Read.All (infra/grant-graph-permissions.sh --risk)",
    ..GRAPH
};

static SP_RISK: JobSpec = JobSpec {
    kind: JobKind::ServicePrincipalRiskDetections,
    name: "spriskdetections",
    setting_name: "servicePrincipalRiskDetections",
    resource_path: "identityProtection/servicePrincipalRiskDetections",
    default_container: "logs-spriskdetections",
    container_variable: "SPRISKDETECTIONS_CONTAINER",
    forbidden_hint: "service-principal risk detections need Workload Identities Premium and the Microsoft Graph application permission IdentityRiskEvent.Read.All (infra/grant-graph-permissions.sh --risk)",
    ..RISK
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_run_their_streams() {
        assert_eq!(Timer::from_function_name("AuditTimer"), Some(Timer::Audit));
        assert_eq!(Timer::from_function_name("auditTimer"), None);
        let signin: Vec<_> = Timer::SignIn.streams().collect();
        assert_eq!(
            signin,
            vec![
                JobKind::SignIn,
                JobKind::NonInteractiveSignIn,
                JobKind::ServicePrincipalSignIn,
                JobKind::ManagedIdentitySignIn
            ]
        );
        assert_eq!(Timer::Audit.streams().count(), 4);
        assert_eq!(JobKind::from_name("signin"), Some(JobKind::SignIn));
        assert_eq!(JobKind::from_name("bogus"), None);
        assert_eq!(
            JobKind::from_setting_name(Timer::SignIn, "nonInteractiveUser"),
            Some(JobKind::NonInteractiveSignIn)
        );
        assert_eq!(
            JobKind::from_setting_name(Timer::SignIn, "provisioning"),
            None
        );
    }

    #[test]
    fn every_stream_has_its_own_name_container_and_variable() {
        let mut seen = std::collections::HashSet::new();
        for kind in JobKind::ALL {
            let spec = kind.spec_template();
            assert_eq!(spec.kind, kind);
            assert!(seen.insert(spec.name), "{}", spec.name);
            assert!(
                seen.insert(spec.default_container),
                "{}",
                spec.default_container
            );
            assert!(
                seen.insert(spec.container_variable),
                "{}",
                spec.container_variable
            );
            assert!(!spec.forbidden_hint.is_empty());
        }
        // The Python sample's containers keep their names.
        assert_eq!(
            JobKind::SignIn.spec_template().default_container,
            "logs-signin"
        );
        assert_eq!(
            JobKind::Audit.spec_template().default_container,
            "logs-audit"
        );
    }

    #[test]
    fn every_job_reads_its_own_time_field() {
        assert_eq!(
            JobKind::Audit.spec_template().time_field,
            "activityDateTime"
        );
        assert_eq!(
            JobKind::SignIn.spec_template().time_field,
            "createdDateTime"
        );
    }
}

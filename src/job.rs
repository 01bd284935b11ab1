//! Jobs are descriptions, not code: a new log source is a new [`JobSpec`] value.

use std::fmt;

/// The jobs this build knows. Each one is a [`JobSpec`]; the pipeline has no per-job code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Directory audit logs (`auditLogs/directoryAudits`).
    Audit,
    /// Interactive user sign-in logs (`auditLogs/signIns`).
    SignIn,
}

impl JobKind {
    /// Every job, in the order `run all` runs them.
    pub const ALL: [JobKind; 2] = [JobKind::Audit, JobKind::SignIn];

    /// The short name used on the command line, in logs and in state blob names.
    pub fn name(self) -> &'static str {
        self.spec_template().name
    }

    /// The job whose timer function has this name (`AuditTimer`, `SignInTimer`).
    pub fn from_function_name(function: &str) -> Option<JobKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.spec_template().function_name == function)
    }

    /// The job with this short name (`audit`, `signin`).
    pub fn from_name(name: &str) -> Option<JobKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// What this job reads and where it writes by default.
    pub fn spec_template(self) -> &'static JobSpec {
        match self {
            JobKind::Audit => &AUDIT,
            JobKind::SignIn => &SIGN_IN,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the pipeline needs to know about one log source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Which job this is.
    pub kind: JobKind,
    /// Short name: `audit`, `signin`.
    pub name: &'static str,
    /// The Azure Functions function (folder) that runs this job.
    pub function_name: &'static str,
    /// The Graph resource path below the API version, without a leading slash.
    pub resource_path: &'static str,
    /// The record field that holds the event time, used in `$filter` and for slicing.
    pub time_field: &'static str,
    /// The record field that identifies a record.
    pub id_field: &'static str,
    /// The container written when the configuration names none.
    pub default_container: &'static str,
    /// The environment variable that overrides the container.
    pub container_variable: &'static str,
    /// What a 403 from this source most likely means, for the operator.
    pub forbidden_hint: &'static str,
    /// The source honours `$orderby=<time field> asc`, so pages come oldest first and a window
    /// can be resumed from the time of the last record stored. Checked page by page all the
    /// same: a window whose pages arrive out of order counts progress only when it completes.
    pub ordered: bool,
}

static AUDIT: JobSpec = JobSpec {
    kind: JobKind::Audit,
    name: "audit",
    function_name: "AuditTimer",
    resource_path: "auditLogs/directoryAudits",
    time_field: "activityDateTime",
    id_field: "id",
    default_container: "logs-audit",
    container_variable: "AUDIT_CONTAINER",
    forbidden_hint: "the app lacks the Microsoft Graph application permission AuditLog.Read.All (grant it with infra/grant-graph-permissions.sh)",
    ordered: true,
};

static SIGN_IN: JobSpec = JobSpec {
    kind: JobKind::SignIn,
    name: "signin",
    function_name: "SignInTimer",
    resource_path: "auditLogs/signIns",
    time_field: "createdDateTime",
    id_field: "id",
    default_container: "logs-signin",
    container_variable: "SIGNIN_CONTAINER",
    forbidden_hint: "this tenant needs Entra ID P1/P2 for sign-in logs, or the app lacks AuditLog.Read.All",
    ordered: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_map_to_jobs() {
        assert_eq!(
            JobKind::from_function_name("AuditTimer"),
            Some(JobKind::Audit)
        );
        assert_eq!(
            JobKind::from_function_name("SignInTimer"),
            Some(JobKind::SignIn)
        );
        assert_eq!(JobKind::from_function_name("auditTimer"), None);
        assert_eq!(JobKind::from_name("signin"), Some(JobKind::SignIn));
        assert_eq!(JobKind::from_name("bogus"), None);
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

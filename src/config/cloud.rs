//! `AZURE_TENANT_ID` and `AZURE_CLOUD`: which tenant, in which national or public cloud, and
//! so the default endpoints of Entra ID, Graph and Blob Storage.

use super::Lines;
use super::parser::Parser;
use crate::redact::shown;

/// The clouds this service knows, with their endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Azure public cloud, including Microsoft 365 GCC.
    AzurePublic,
    /// Azure US Government L4 (GCC High).
    AzureUSGovernment,
    /// Azure US Government L5 (DoD).
    AzureUSGovernmentDoD,
    /// Azure China (21Vianet).
    AzureChina,
}

impl Cloud {
    pub(super) const NAMES: [(&'static str, Cloud); 4] = [
        ("AzurePublic", Cloud::AzurePublic),
        ("AzureUSGovernment", Cloud::AzureUSGovernment),
        ("AzureUSGovernmentDoD", Cloud::AzureUSGovernmentDoD),
        ("AzureChina", Cloud::AzureChina),
    ];

    /// The Entra ID authority host.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "https://login.microsoftonline.com",
            Cloud::AzureUSGovernment | Cloud::AzureUSGovernmentDoD => {
                "https://login.microsoftonline.us"
            }
            Cloud::AzureChina => "https://login.chinacloudapi.cn",
        }
    }

    /// The Microsoft Graph root.
    pub fn graph_endpoint(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "https://graph.microsoft.com",
            Cloud::AzureUSGovernment => "https://graph.microsoft.us",
            Cloud::AzureUSGovernmentDoD => "https://dod-graph.microsoft.us",
            Cloud::AzureChina => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// The Azure Resource Manager root (the Azure Activity Log).
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "https://management.azure.com",
            Cloud::AzureUSGovernment | Cloud::AzureUSGovernmentDoD => {
                "https://management.usgovcloudapi.net"
            }
            Cloud::AzureChina => "https://management.chinacloudapi.cn",
        }
    }

    /// The Blob Storage host suffix (`blob.<suffix>`).
    pub fn storage_suffix(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "core.windows.net",
            Cloud::AzureUSGovernment | Cloud::AzureUSGovernmentDoD => "core.usgovcloudapi.net",
            Cloud::AzureChina => "core.chinacloudapi.cn",
        }
    }

    /// The name written in `AZURE_CLOUD`.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Reads `AZURE_TENANT_ID`: a GUID or a domain name; required.
pub(super) fn tenant_id(p: &mut Parser<'_>) -> String {
    tenant_id_of(p, "AZURE_TENANT_ID")
}

/// Reads a tenant setting (`AZURE_TENANT_ID`, `GRAPH_TENANT_ID`): a GUID or a domain name;
/// required.
pub(super) fn tenant_id_of(p: &mut Parser<'_>, variable: &str) -> String {
    let Some(value) = p.get(variable).map(str::to_owned) else {
        p.problem(
            variable,
            "is required: the tenant id (a GUID) or its primary domain (contoso.onmicrosoft.us)",
        );
        return String::new();
    };
    let is_guid = uuid::Uuid::try_parse(&value).is_ok();
    let is_domain = value.contains('.')
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !is_guid && !is_domain {
        p.problem(
            variable,
            format!(
                "{} is neither a GUID nor a domain name such as contoso.onmicrosoft.us",
                shown(&value)
            ),
        );
    }
    value
}

/// Reads `AZURE_CLOUD` (default `AzureUSGovernment`).
pub(super) fn cloud(p: &mut Parser<'_>) -> Cloud {
    p.choice("AZURE_CLOUD", Cloud::AzureUSGovernment, &Cloud::NAMES)
}

/// The `config check` lines of the tenant and the cloud.
pub(super) fn describe(tenant_id: &str, cloud: Cloud) -> Lines {
    vec![
        ("AZURE_TENANT_ID".into(), tenant_id.to_owned()),
        ("AZURE_CLOUD".into(), cloud.name().into()),
    ]
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_each_names_its_variable, with};

    #[test]
    fn each_cloud_sets_its_endpoints() {
        let config = with(&[("AZURE_CLOUD", "AzureUSGovernmentDoD")]).unwrap();
        assert_eq!(
            config.graph.scope,
            "https://dod-graph.microsoft.us/.default"
        );
        let config = with(&[("AZURE_CLOUD", "AzurePublic")]).unwrap();
        assert_eq!(
            config.auth.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(config.graph.scope, "https://graph.microsoft.com/.default");
        assert_eq!(config.arm.scope, "https://management.azure.com/.default");
        let config = with(&[("AZURE_CLOUD", "AzureChina")]).unwrap();
        assert_eq!(config.cloud.storage_suffix(), "core.chinacloudapi.cn");
        let config = with(&[]).unwrap();
        assert_eq!(
            config.arm.scope,
            "https://management.usgovcloudapi.net/.default"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("AZURE_TENANT_ID", "not a tenant"),
            ("AZURE_CLOUD", "AzureMoon"),
        ]);
    }
}

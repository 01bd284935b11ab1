//! Activity Log events and subscriptions as ARM writes them, derived on demand from an event's
//! operation seed and phase.
//!
//! Shapes follow the REST `EventData` of the 2015-04-01 spec and the per-category samples of
//! Microsoft's "Activity Log event schema" page (copies in `tests/fixtures/arm/`): an
//! Administrative operation is a `Started` event and a `Succeeded`/`Failed` event sharing
//! `correlationId`, sometimes with a Policy event (`audit`/`deny`) in between; Service Health
//! and Resource Health events are `Active`, sometimes followed by `Resolved`; Autoscale actions
//! are `Started` then `Succeeded`. Service Health events carry `null` values where the samples do.

use super::store::Event;
use crate::timefmt::write_timestamp;

pub(crate) use crate::render::{Mixer, mix64};

/// The role of an event within its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `Started` (BeginRequest).
    Started,
    /// `Succeeded` or `Failed` (EndRequest).
    Ended,
    /// The Policy category event of an Administrative operation.
    Policy,
    /// A health event's `Active`.
    Active,
    /// A health event's `Resolved`.
    Resolved,
}

impl Phase {
    fn salt(self) -> u64 {
        match self {
            Phase::Started => 0x51A7_0000_0000_0001,
            Phase::Ended => 0x51A7_0000_0000_0002,
            Phase::Policy => 0x51A7_0000_0000_0003,
            Phase::Active => 0x51A7_0000_0000_0004,
            Phase::Resolved => 0x51A7_0000_0000_0005,
        }
    }
}

/// A Policy effect on an Administrative operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Audit,
    Deny,
}

/// Who called ARM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    User(u64),
    App(u64),
}

/// What an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Admin {
        entry: usize,
        failed: bool,
        policy: Option<Effect>,
        caller: Caller,
    },
    ServiceHealth {
        resolved: bool,
    },
    ResourceHealth {
        resolved: bool,
    },
    Autoscale,
}

const SALT_KIND: u64 = 0x0B5E_0000_0000_0001;
const SALT_CORRELATION: u64 = 0x0B5E_0000_0000_0002;
const SALT_OPERATION: u64 = 0x0B5E_0000_0000_0003;
const SALT_CONTENT: u64 = 0x0B5E_0000_0000_0004;
const SALT_ID_LO: u64 = 0x0B5E_0000_0000_0005;

/// The kind of operation `op` is, derived from its seed.
pub(crate) fn kind_of(op: u64) -> Kind {
    let mut mixer = Mixer::new(op ^ SALT_KIND);
    match mixer.below(100) {
        0..82 => {
            let entry = mixer.below(ADMIN_OPS.len() as u64) as usize;
            let policy = if ADMIN_OPS[entry].policy_checked && mixer.percent(20) {
                Some(if mixer.percent(15) {
                    Effect::Deny
                } else {
                    Effect::Audit
                })
            } else {
                None
            };
            let failed = policy == Some(Effect::Deny) || mixer.percent(4);
            let caller = if mixer.percent(70) {
                Caller::User(1 + mixer.below(60))
            } else {
                Caller::App(1 + mixer.below(8))
            };
            Kind::Admin {
                entry,
                failed,
                policy,
                caller,
            }
        }
        82..87 => Kind::ServiceHealth {
            resolved: mixer.percent(40),
        },
        87..95 => Kind::ResourceHealth {
            resolved: mixer.percent(60),
        },
        _ => Kind::Autoscale,
    }
}

/// The `eventDataId` of phase `phase` of operation `op`, as the two halves of a version-4 GUID.
pub(crate) fn event_id(op: u64, phase: Phase) -> (u64, u64) {
    guid_parts(
        mix64(op ^ phase.salt()),
        mix64(op ^ phase.salt() ^ SALT_ID_LO),
    )
}

/// Sets the version and variant bits of a GUID built from two 64-bit values.
fn guid_parts(hi: u64, lo: u64) -> (u64, u64) {
    (
        (hi & !0xF000) | 0x4000,
        (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000,
    )
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the GUID `hi:lo` (bits already set) as 36 lower-case characters.
pub(crate) fn write_guid(out: &mut Vec<u8>, (hi, lo): (u64, u64)) {
    let value = (u128::from(hi) << 64) | u128::from(lo);
    let mut nibble = 0;
    for index in 0..36 {
        if matches!(index, 8 | 13 | 18 | 23) {
            out.push(b'-');
        } else {
            out.push(HEX[((value >> (124 - 4 * nibble)) & 0xF) as usize]);
            nibble += 1;
        }
    }
}

/// The GUID `hi:lo` as a string.
pub(crate) fn guid_string(parts: (u64, u64)) -> String {
    let mut out = Vec::with_capacity(36);
    write_guid(&mut out, parts);
    String::from_utf8(out).expect("GUIDs are ASCII")
}

fn seeded_guid(seed: u64) -> (u64, u64) {
    guid_parts(mix64(seed), mix64(seed ^ 0xA5A5_A5A5_A5A5_A5A5))
}

/// The `correlationId` shared by every event of operation `op`.
pub(crate) fn correlation_id(op: u64) -> (u64, u64) {
    seeded_guid(op ^ SALT_CORRELATION)
}

/// .NET ticks (100 ns since 0001-01-01) of an instant, as ARM puts in event ids.
fn ticks(ns: i64) -> i64 {
    ns.div_euclid(100) + 621_355_968_000_000_000
}

/// Where an Administrative operation's resource lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/{provider}/{type path}`.
    Resource,
    /// `/subscriptions/{s}/resourceGroups/{rg}`.
    ResourceGroup,
    /// `/subscriptions/{s}/providers/{provider}/{type path}`.
    Subscription,
}

/// One Administrative operation of the catalogue.
struct AdminOp {
    operation: &'static str,
    localized: &'static str,
    provider: &'static str,
    /// Resource type below the provider, segments separated by `/`.
    resource_type: &'static str,
    /// Name prefix of each type segment; `""` names it with a GUID.
    prefixes: &'static [&'static str],
    method: &'static str,
    /// `properties.statusCode` and `subStatus` of the success event.
    ok: (&'static str, &'static str),
    scope: Scope,
    /// Azure Policy evaluates it (a write of a resource).
    policy_checked: bool,
}

const ADMIN_OPS: &[AdminOp] = &[
    AdminOp {
        operation: "Microsoft.Compute/virtualMachines/write",
        localized: "Create or Update Virtual Machine",
        provider: "Microsoft.Compute",
        resource_type: "virtualMachines",
        prefixes: &["vm-"],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::Resource,
        policy_checked: true,
    },
    AdminOp {
        operation: "Microsoft.Compute/virtualMachines/delete",
        localized: "Delete Virtual Machine",
        provider: "Microsoft.Compute",
        resource_type: "virtualMachines",
        prefixes: &["vm-"],
        method: "DELETE",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Compute/virtualMachines/start/action",
        localized: "Start Virtual Machine",
        provider: "Microsoft.Compute",
        resource_type: "virtualMachines",
        prefixes: &["vm-"],
        method: "POST",
        ok: ("Accepted", "Accepted (HTTP Status Code: 202)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Compute/virtualMachines/deallocate/action",
        localized: "Deallocate Virtual Machine",
        provider: "Microsoft.Compute",
        resource_type: "virtualMachines",
        prefixes: &["vm-"],
        method: "POST",
        ok: ("Accepted", "Accepted (HTTP Status Code: 202)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Storage/storageAccounts/write",
        localized: "Create/Update Storage Account",
        provider: "Microsoft.Storage",
        resource_type: "storageAccounts",
        prefixes: &["stsim"],
        method: "PUT",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Resource,
        policy_checked: true,
    },
    AdminOp {
        operation: "Microsoft.Storage/storageAccounts/listKeys/action",
        localized: "List Storage Account Keys",
        provider: "Microsoft.Storage",
        resource_type: "storageAccounts",
        prefixes: &["stsim"],
        method: "POST",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Network/networkSecurityGroups/securityRules/write",
        localized: "Create or Update Security Rule",
        provider: "Microsoft.Network",
        resource_type: "networkSecurityGroups/securityRules",
        prefixes: &["nsg-", "rule-"],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::Resource,
        policy_checked: true,
    },
    AdminOp {
        operation: "Microsoft.Network/publicIPAddresses/delete",
        localized: "Delete Public Ip Address",
        provider: "Microsoft.Network",
        resource_type: "publicIPAddresses",
        prefixes: &["pip-"],
        method: "DELETE",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.KeyVault/vaults/write",
        localized: "Update Key Vault",
        provider: "Microsoft.KeyVault",
        resource_type: "vaults",
        prefixes: &["kv-sim-"],
        method: "PUT",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Resource,
        policy_checked: true,
    },
    AdminOp {
        operation: "Microsoft.Resources/deployments/write",
        localized: "Create Deployment",
        provider: "Microsoft.Resources",
        resource_type: "deployments",
        prefixes: &["deploy-"],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::Resource,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Resources/subscriptions/resourceGroups/write",
        localized: "Update resource group",
        provider: "Microsoft.Resources",
        resource_type: "subscriptions/resourceGroups",
        prefixes: &[],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::ResourceGroup,
        policy_checked: true,
    },
    AdminOp {
        operation: "Microsoft.Resources/subscriptions/resourceGroups/delete",
        localized: "Delete resource group",
        provider: "Microsoft.Resources",
        resource_type: "subscriptions/resourceGroups",
        prefixes: &[],
        method: "DELETE",
        ok: ("Accepted", "Accepted (HTTP Status Code: 202)"),
        scope: Scope::ResourceGroup,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Authorization/roleAssignments/write",
        localized: "Create role assignment",
        provider: "Microsoft.Authorization",
        resource_type: "roleAssignments",
        prefixes: &[""],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::Subscription,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Authorization/roleAssignments/delete",
        localized: "Delete role assignment",
        provider: "Microsoft.Authorization",
        resource_type: "roleAssignments",
        prefixes: &[""],
        method: "DELETE",
        ok: ("OK", "OK (HTTP Status Code: 200)"),
        scope: Scope::Subscription,
        policy_checked: false,
    },
    AdminOp {
        operation: "Microsoft.Authorization/policyAssignments/write",
        localized: "Create policy assignment",
        provider: "Microsoft.Authorization",
        resource_type: "policyAssignments",
        prefixes: &["pa-"],
        method: "PUT",
        ok: ("Created", "Created (HTTP Status Code: 201)"),
        scope: Scope::Subscription,
        policy_checked: false,
    },
];

/// Built-in role definition ids (Reader, Contributor, Owner, Monitoring Reader).
const ROLE_DEFINITIONS: &[&str] = &[
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
];

const REGIONS: &[(&str, &str)] = &[
    ("westeurope", "West Europe"),
    ("northeurope", "North Europe"),
    ("eastus2", "East US 2"),
    ("usgovvirginia", "US Gov Virginia"),
];

/// The Azure Portal's application id, the `appid` of most interactive callers.
const PORTAL_APP_ID: &str = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c";

/// What every event of one subscription shares.
pub(crate) struct RenderContext<'a> {
    pub subscription: &'a str,
    pub tenant: &'a str,
}

/// Appends `text` as a JSON string.
fn put_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("strings serialise");
}

/// A JSON object being written: keys in call order, commas handled.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Obj<'o> {
    fn new(out: &'o mut Vec<u8>) -> Obj<'o> {
        out.push(b'{');
        Obj { out, empty: true }
    }

    /// Writes `"key":` and returns the buffer for the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        put_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        put_str(out, value);
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key).extend_from_slice(json.as_bytes());
    }

    fn guid(&mut self, key: &str, parts: (u64, u64)) {
        let out = self.key(key);
        out.push(b'"');
        write_guid(out, parts);
        out.push(b'"');
    }

    fn time(&mut self, key: &str, ns: i64, digits: u8) {
        let out = self.key(key);
        out.push(b'"');
        write_timestamp(out, ns, digits);
        out.push(b'"');
    }

    /// `{"value":…,"localizedValue":…}`; `None` writes `null`, a missing localized value omits it.
    fn localizable(&mut self, key: &str, value: Option<&str>, localized: Option<Option<&str>>) {
        let mut inner = Obj::new(self.key(key));
        match value {
            Some(value) => inner.str("value", value),
            None => inner.raw("value", "null"),
        }
        match localized {
            None => {}
            Some(Some(text)) => inner.str("localizedValue", text),
            Some(None) => inner.raw("localizedValue", "null"),
        }
        inner.end();
    }

    /// A LocalizableString whose localized value equals its value.
    fn same(&mut self, key: &str, value: &str) {
        self.localizable(key, Some(value), Some(Some(value)));
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// The resource an operation touches.
struct Target {
    resource_id: String,
    resource_group: Option<String>,
    provider: &'static str,
    resource_type: String,
}

fn admin_target(entry: &AdminOp, op: u64, subscription: &str) -> Target {
    let mut mixer = Mixer::new(op ^ SALT_CONTENT);
    let group = format!("rg-sim-{}", 1 + mixer.below(12));
    let mut path = String::new();
    for (segment, prefix) in entry.resource_type.split('/').zip(entry.prefixes) {
        path.push('/');
        path.push_str(segment);
        path.push('/');
        if prefix.is_empty() {
            path.push_str(&guid_string(seeded_guid(mixer.next())));
        } else {
            path.push_str(prefix);
            path.push_str(&(1 + mixer.below(40)).to_string());
        }
    }
    let resource_type = format!("{}/{}", entry.provider, entry.resource_type);
    match entry.scope {
        Scope::Resource => Target {
            resource_id: format!(
                "/subscriptions/{subscription}/resourceGroups/{group}/providers/{}{path}",
                entry.provider
            ),
            resource_group: Some(group),
            provider: entry.provider,
            resource_type,
        },
        Scope::ResourceGroup => Target {
            resource_id: format!("/subscriptions/{subscription}/resourceGroups/{group}"),
            resource_group: Some(group),
            provider: entry.provider,
            resource_type,
        },
        Scope::Subscription => Target {
            resource_id: format!(
                "/subscriptions/{subscription}/providers/{}{path}",
                entry.provider
            ),
            resource_group: None,
            provider: entry.provider,
            resource_type,
        },
    }
}

fn ip_address(seed: u64) -> String {
    let bytes = seed.to_le_bytes();
    if bytes[7] < 40 {
        format!("2001:db8::{:x}:{:x}", bytes[0], bytes[1])
    } else {
        format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2].max(1))
    }
}

fn caller_object_id(caller: Caller) -> (u64, u64) {
    match caller {
        Caller::User(n) => seeded_guid(0x05E2_0000_0000_0000 ^ n),
        Caller::App(n) => seeded_guid(0x0A99_0000_0000_0000 ^ n),
    }
}

fn write_caller(obj: &mut Obj, caller: Caller) {
    match caller {
        Caller::User(n) => obj.str("caller", &format!("user{n}@contoso.example")),
        Caller::App(_) => obj.guid("caller", caller_object_id(caller)),
    }
}

/// A small `claims` object: the JWT claims ARM saw (the real ones carry about 25).
fn write_claims(obj: &mut Obj, caller: Caller, time: i64, tenant: &str, ip: &str) {
    let issued = time.div_euclid(1_000_000_000) - 600;
    let mut claims = Obj::new(obj.key("claims"));
    claims.str("aud", "https://management.core.windows.net/");
    claims.str("iss", &format!("https://sts.windows.net/{tenant}/"));
    claims.str("iat", &issued.to_string());
    claims.str("nbf", &issued.to_string());
    claims.str("exp", &(issued + 4200).to_string());
    match caller {
        Caller::User(n) => {
            claims.str("appid", PORTAL_APP_ID);
            claims.str("appidacr", "2");
            claims.str("ipaddr", ip);
            claims.str("name", &format!("Sim User {n}"));
            claims.str(
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                &format!("user{n}@contoso.example"),
            );
        }
        Caller::App(n) => {
            claims.guid("appid", seeded_guid(0x0A9B_0000_0000_0000 ^ n));
            claims.str("appidacr", "1");
            claims.str("idtyp", "app");
        }
    }
    claims.guid(
        "http://schemas.microsoft.com/identity/claims/objectidentifier",
        caller_object_id(caller),
    );
    claims.str(
        "http://schemas.microsoft.com/identity/claims/tenantid",
        tenant,
    );
    claims.str("ver", "1.0");
    claims.end();
}

/// Appends one event as ARM's `EventData` JSON.
pub(crate) fn write_event(out: &mut Vec<u8>, event: &Event, ctx: &RenderContext) {
    match kind_of(event.op) {
        Kind::Admin {
            entry,
            failed,
            policy,
            caller,
        } => write_admin(out, event, ctx, &ADMIN_OPS[entry], failed, policy, caller),
        Kind::ServiceHealth { .. } => write_service_health(out, event, ctx),
        Kind::ResourceHealth { .. } => write_resource_health(out, event, ctx),
        Kind::Autoscale => write_autoscale(out, event, ctx),
    }
}

fn write_common_head(obj: &mut Obj, event: &Event) {
    obj.guid("correlationId", correlation_id(event.op));
}

fn write_id(obj: &mut Obj, resource_id: &str, event: &Event) {
    let out = obj.key("id");
    out.push(b'"');
    out.extend_from_slice(resource_id.as_bytes());
    out.extend_from_slice(b"/events/");
    write_guid(out, (event.id_hi, event.id_lo));
    out.extend_from_slice(b"/ticks/");
    out.extend_from_slice(ticks(event.time).to_string().as_bytes());
    out.push(b'"');
}

fn write_times(obj: &mut Obj, event: &Event) {
    obj.time("eventTimestamp", event.time, event.precision);
    obj.time("submissionTimestamp", event.visible_at, 7);
}

#[allow(clippy::too_many_arguments)]
fn write_admin(
    out: &mut Vec<u8>,
    event: &Event,
    ctx: &RenderContext,
    entry: &AdminOp,
    failed: bool,
    policy: Option<Effect>,
    caller: Caller,
) {
    let target = admin_target(entry, event.op, ctx.subscription);
    let mut mixer = Mixer::new(event.op ^ SALT_CONTENT ^ 0x77);
    let ip = ip_address(mixer.next());
    let hierarchy = format!("{}/mg-sim/{}", ctx.tenant, ctx.subscription);
    let mut obj = Obj::new(out);
    {
        let mut authorization = Obj::new(obj.key("authorization"));
        authorization.str("action", entry.operation);
        authorization.str("scope", &target.resource_id);
        authorization.end();
    }
    write_caller(&mut obj, caller);
    obj.str("channels", "Operation");
    write_claims(&mut obj, caller, event.time, ctx.tenant, &ip);
    write_common_head(&mut obj, event);
    obj.str("description", "");
    obj.guid("eventDataId", (event.id_hi, event.id_lo));
    let policy_event = event.phase == Phase::Policy;
    if event.phase == Phase::Started {
        obj.localizable(
            "eventName",
            Some("BeginRequest"),
            Some(Some("Begin request")),
        );
    } else {
        obj.localizable("eventName", Some("EndRequest"), Some(Some("End request")));
    }
    obj.same(
        "category",
        if policy_event {
            "Policy"
        } else {
            "Administrative"
        },
    );
    obj.time("eventTimestamp", event.time, event.precision);
    if event.phase == Phase::Started {
        let mut request = Obj::new(obj.key("httpRequest"));
        request.guid("clientRequestId", seeded_guid(event.op ^ 0xC11E));
        request.str("clientIpAddress", &ip);
        request.str("method", entry.method);
        request.end();
    }
    write_id(&mut obj, &target.resource_id, event);
    let level = match (event.phase, policy, failed) {
        (Phase::Policy, Some(Effect::Deny), _) => "Error",
        (Phase::Policy, _, _) => "Warning",
        (Phase::Ended, _, true) => "Error",
        _ => "Informational",
    };
    obj.str("level", level);
    obj.guid(
        "operationId",
        seeded_guid(event.op ^ SALT_OPERATION ^ u64::from(policy_event)),
    );
    let effect_name = match policy {
        Some(Effect::Deny) => "deny",
        _ => "audit",
    };
    if policy_event {
        let name = format!("Microsoft.Authorization/policies/{effect_name}/action");
        obj.same("operationName", &name);
    } else {
        obj.localizable(
            "operationName",
            Some(entry.operation),
            Some(Some(entry.localized)),
        );
    }
    if let Some(group) = &target.resource_group {
        obj.str("resourceGroupName", group);
    }
    obj.same("resourceProviderName", target.provider);
    if policy_event {
        obj.same("resourceType", "Microsoft.Resources/checkPolicyCompliance");
    } else {
        obj.same("resourceType", &target.resource_type);
    }
    obj.str("resourceId", &target.resource_id);
    let status = match event.phase {
        Phase::Started => "Started",
        Phase::Policy if policy == Some(Effect::Deny) => "Failed",
        Phase::Ended if failed => "Failed",
        _ => "Succeeded",
    };
    obj.same("status", status);
    let failure = if policy == Some(Effect::Deny) {
        ("Forbidden", "Forbidden (HTTP Status Code: 403)")
    } else {
        ("Conflict", "Conflict (HTTP Status Code: 409)")
    };
    let sub_status = match event.phase {
        Phase::Ended if failed => failure,
        Phase::Ended => entry.ok,
        _ => ("", ""),
    };
    obj.localizable("subStatus", Some(sub_status.0), Some(Some(sub_status.1)));
    obj.time("submissionTimestamp", event.visible_at, 7);
    obj.str("subscriptionId", ctx.subscription);
    obj.str("tenantId", ctx.tenant);
    {
        let mut properties = Obj::new(obj.key("properties"));
        if policy_event {
            let region = REGIONS[(event.op % REGIONS.len() as u64) as usize].0;
            properties.str("isComplianceCheck", "False");
            properties.str("resourceLocation", region);
            properties.str("ancestors", ctx.tenant);
            let effect = if policy == Some(Effect::Deny) {
                "Deny"
            } else {
                "Audit"
            };
            let definition = guid_string(seeded_guid(0x9011 ^ (event.op % 5)));
            let assignment = format!("sim-{effect_name}-assignment");
            let policies = serde_json::json!([{
                "policyDefinitionId": format!("/providers/Microsoft.Authorization/policyDefinitions/{definition}/"),
                "policyDefinitionName": definition,
                "policyDefinitionEffect": effect,
                "policyAssignmentId": format!("/subscriptions/{}/providers/Microsoft.Authorization/policyAssignments/{assignment}/", ctx.subscription),
                "policyAssignmentName": assignment,
                "policyAssignmentScope": format!("/subscriptions/{}", ctx.subscription),
                "policyAssignmentParameters": {},
            }]);
            properties.str("policies", &policies.to_string());
            properties.str("hierarchy", "");
        } else {
            if event.phase == Phase::Ended {
                properties.str("statusCode", if failed { failure.0 } else { entry.ok.0 });
                properties.guid("serviceRequestId", seeded_guid(event.op ^ 0x5E2F));
                if failed {
                    let (code, message) = if policy == Some(Effect::Deny) {
                        (
                            "RequestDisallowedByPolicy",
                            "Resource was disallowed by policy.",
                        )
                    } else {
                        (
                            "Conflict",
                            "Operation cannot be completed because the resource is busy.",
                        )
                    };
                    let status_message =
                        serde_json::json!({"error": {"code": code, "message": message}});
                    properties.str("statusMessage", &status_message.to_string());
                }
            }
            properties.str("eventCategory", "Administrative");
            properties.str("entity", &target.resource_id);
            properties.str("message", entry.operation);
            properties.str("hierarchy", &hierarchy);
            if event.phase == Phase::Started
                && entry.operation == "Microsoft.Authorization/roleAssignments/write"
            {
                let role = ROLE_DEFINITIONS[(event.op % ROLE_DEFINITIONS.len() as u64) as usize];
                let principal = guid_string(seeded_guid(event.op ^ 0x9121));
                let body = serde_json::json!({
                    "Id": target.resource_id.rsplit('/').next().unwrap_or(""),
                    "Properties": {
                        "PrincipalId": principal,
                        "PrincipalType": "User",
                        "RoleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}", ctx.subscription),
                        "Scope": format!("/subscriptions/{}", ctx.subscription),
                    }
                });
                properties.str("requestbody", &body.to_string());
            }
        }
        properties.end();
    }
    obj.raw("relatedEvents", "[]");
    obj.end();
}

fn write_service_health(out: &mut Vec<u8>, event: &Event, ctx: &RenderContext) {
    let mut mixer = Mixer::new(event.op ^ SALT_CONTENT);
    let (_, region) = REGIONS[mixer.below(REGIONS.len() as u64) as usize];
    let service =
        ["Virtual Machines", "Storage", "Key Vault", "App Service"][mixer.below(4) as usize];
    let title = format!("{service} - {region}");
    let active = event.phase == Phase::Active;
    let stage = if active { "Active" } else { "Resolved" };
    let communication = if active {
        format!(
            "Starting at approximately the time of this event, a subset of customers using {service} in {region} may experience connection failures. Engineers are investigating."
        )
    } else {
        format!("The issue affecting {service} in {region} has been mitigated.")
    };
    let tracking = format!("SIM{}-{:03}", mixer.below(10), mixer.below(1000));
    let mut obj = Obj::new(out);
    obj.str("channels", "Admin");
    write_common_head(&mut obj, event);
    obj.str("description", &format!("{stage}: {title}"));
    obj.guid("eventDataId", (event.id_hi, event.id_lo));
    obj.localizable("eventName", None, None);
    obj.localizable(
        "category",
        Some("ServiceHealth"),
        Some(Some("Service Health")),
    );
    obj.time("eventTimestamp", event.time, event.precision);
    write_id(
        &mut obj,
        &format!("/subscriptions/{}", ctx.subscription),
        event,
    );
    obj.str("level", if active { "Warning" } else { "Informational" });
    obj.same("operationName", "Microsoft.ServiceHealth/incident/action");
    obj.localizable("resourceProviderName", None, None);
    obj.localizable("resourceType", None, Some(Some("")));
    obj.str(
        "resourceId",
        &format!("/subscriptions/{}", ctx.subscription),
    );
    obj.same("status", stage);
    obj.localizable("subStatus", None, None);
    obj.time("submissionTimestamp", event.visible_at, 7);
    obj.str("subscriptionId", ctx.subscription);
    {
        let mut properties = Obj::new(obj.key("properties"));
        properties.str("title", &title);
        properties.str("service", service);
        properties.str("region", region);
        properties.str("communication", &communication);
        properties.str("incidentType", "Incident");
        properties.str("trackingId", &tracking);
        let impacted = serde_json::json!([{
            "ImpactedRegions": [{"RegionName": region}],
            "ServiceName": service,
        }]);
        properties.str("impactedServices", &impacted.to_string());
        properties.str("defaultLanguageTitle", &title);
        properties.str("defaultLanguageContent", &communication);
        properties.str("stage", stage);
        properties.str("communicationId", &(event.op >> 4).to_string());
        properties.str("version", "0.1.1");
        properties.end();
    }
    obj.end();
}

fn write_resource_health(out: &mut Vec<u8>, event: &Event, ctx: &RenderContext) {
    let mut mixer = Mixer::new(event.op ^ SALT_CONTENT);
    let group = format!("rg-sim-{}", 1 + mixer.below(12));
    let resource_id = format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/vm-{}",
        ctx.subscription,
        1 + mixer.below(40)
    );
    let active = event.phase == Phase::Active;
    let mut obj = Obj::new(out);
    obj.str("channels", "Admin, Operation");
    write_common_head(&mut obj, event);
    obj.str("description", "");
    obj.guid("eventDataId", (event.id_hi, event.id_lo));
    obj.localizable("eventName", Some(""), Some(Some("")));
    obj.localizable(
        "category",
        Some("ResourceHealth"),
        Some(Some("Resource Health")),
    );
    obj.time("eventTimestamp", event.time, event.precision);
    write_id(&mut obj, &resource_id, event);
    obj.str("level", if active { "Critical" } else { "Informational" });
    obj.str("operationId", "");
    if active {
        obj.localizable(
            "operationName",
            Some("Microsoft.Resourcehealth/healthevent/Activated/action"),
            Some(Some("Health Event Activated")),
        );
    } else {
        obj.localizable(
            "operationName",
            Some("Microsoft.Resourcehealth/healthevent/Resolved/action"),
            Some(Some("Health Event Resolved")),
        );
    }
    obj.str("resourceGroupName", &group);
    obj.same(
        "resourceProviderName",
        "Microsoft.Resourcehealth/healthevent/action",
    );
    obj.same("resourceType", "Microsoft.Compute/virtualMachines");
    obj.str("resourceId", &resource_id);
    obj.same("status", if active { "Active" } else { "Resolved" });
    obj.localizable("subStatus", Some(""), Some(Some("")));
    obj.time("submissionTimestamp", event.visible_at, 7);
    obj.str("subscriptionId", ctx.subscription);
    {
        let mut properties = Obj::new(obj.key("properties"));
        properties.str("stage", if active { "Active" } else { "Resolved" });
        if active {
            properties.str(
                "title",
                "Virtual Machine health status changed to unavailable",
            );
            properties.str(
                "details",
                "Virtual machine has experienced an unexpected event",
            );
            properties.str("healthStatus", "Unavailable");
        } else {
            properties.str(
                "title",
                "Virtual Machine health status changed to available",
            );
            properties.str("details", "The virtual machine is available again");
            properties.str("healthStatus", "Available");
        }
        properties.str("healthEventType", "Downtime");
        properties.str("healthEventCause", "PlatformInitiated");
        properties.str("healthEventCategory", "Unplanned");
        properties.end();
    }
    obj.raw("relatedEvents", "[]");
    obj.end();
}

fn write_autoscale(out: &mut Vec<u8>, event: &Event, ctx: &RenderContext) {
    let mut mixer = Mixer::new(event.op ^ SALT_CONTENT);
    let group = format!("rg-sim-{}", 1 + mixer.below(12));
    let scale_set = format!("vmss-{}", 1 + mixer.below(6));
    let setting_id = format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/microsoft.insights/autoscalesettings/{scale_set}-autoscale",
        ctx.subscription
    );
    let target_id = format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}",
        ctx.subscription
    );
    let old = 2 + mixer.below(6);
    let up = mixer.percent(50);
    let new = if up { old + 1 } else { old - 1 };
    let description = format!(
        "The autoscale engine attempting to scale resource '{target_id}' from {old} instances count to {new} instances count."
    );
    let mut obj = Obj::new(out);
    obj.str("caller", "Microsoft.Insights/autoscaleSettings");
    obj.str("channels", "Admin, Operation");
    {
        let mut claims = Obj::new(obj.key("claims"));
        claims.str(
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/spn",
            "Microsoft.Insights/autoscaleSettings",
        );
        claims.end();
    }
    write_common_head(&mut obj, event);
    obj.str("description", &description);
    obj.guid("eventDataId", (event.id_hi, event.id_lo));
    obj.same("eventName", "AutoscaleAction");
    obj.same("category", "Autoscale");
    write_id(&mut obj, &setting_id, event);
    obj.str("level", "Informational");
    obj.str("resourceGroupName", &group);
    obj.same("resourceProviderName", "microsoft.insights");
    obj.str("resourceId", &setting_id);
    obj.same("resourceType", "microsoft.insights/autoscalesettings");
    obj.guid("operationId", correlation_id(event.op));
    obj.same(
        "operationName",
        if up {
            "Microsoft.Insights/AutoscaleSettings/Scaleup/Action"
        } else {
            "Microsoft.Insights/AutoscaleSettings/Scaledown/Action"
        },
    );
    {
        let mut properties = Obj::new(obj.key("properties"));
        properties.str("Description", &description);
        properties.str("ResourceName", &target_id);
        properties.str("OldInstancesCount", &old.to_string());
        properties.str("NewInstancesCount", &new.to_string());
        let seconds = event.time.div_euclid(1_000_000_000).max(0) as u64;
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        properties.str("LastScaleActionTime", &httpdate::fmt_http_date(when));
        properties.end();
    }
    obj.same(
        "status",
        if event.phase == Phase::Started {
            "Started"
        } else {
            "Succeeded"
        },
    );
    obj.localizable("subStatus", None, None);
    write_times(&mut obj, event);
    obj.str("subscriptionId", ctx.subscription);
    obj.end();
}

/// The category of an event (`category.value`).
pub(crate) fn category_of(event: &Event) -> &'static str {
    match kind_of(event.op) {
        Kind::Admin { .. } if event.phase == Phase::Policy => "Policy",
        Kind::Admin { .. } => "Administrative",
        Kind::ServiceHealth { .. } => "ServiceHealth",
        Kind::ResourceHealth { .. } => "ResourceHealth",
        Kind::Autoscale => "Autoscale",
    }
}

/// The status of an event (`status.value`).
pub(crate) fn status_of(event: &Event) -> &'static str {
    match (kind_of(event.op), event.phase) {
        (_, Phase::Started) => "Started",
        (_, Phase::Active) => "Active",
        (_, Phase::Resolved) => "Resolved",
        (
            Kind::Admin {
                policy: Some(Effect::Deny),
                ..
            },
            Phase::Policy,
        ) => "Failed",
        (Kind::Admin { failed: true, .. }, Phase::Ended) => "Failed",
        _ => "Succeeded",
    }
}

/// Appends one subscription as `GET /subscriptions` lists it.
pub(crate) fn write_subscription(out: &mut Vec<u8>, id: &str, index: u32, tenant: &str) {
    let mut obj = Obj::new(out);
    obj.str("id", &format!("/subscriptions/{id}"));
    obj.str("authorizationSource", "RoleBased");
    obj.raw("managedByTenants", "[]");
    obj.str("subscriptionId", id);
    obj.str("tenantId", tenant);
    obj.str("displayName", &format!("Simulated subscription {index}"));
    obj.str("state", "Enabled");
    {
        let mut policies = Obj::new(obj.key("subscriptionPolicies"));
        policies.str("locationPlacementId", "Public_2014-09-01");
        policies.str("quotaId", "PayAsYouGo_2014-09-01");
        policies.str("spendingLimit", "Off");
        policies.end();
    }
    obj.end();
}

//! Record ids and record JSON, derived on demand from a record's 64 seed bits.
//!
//! Records are stored compactly ([`crate::store::Rec`], 40 bytes); everything else (names,
//! addresses, policies, ...) is a pure function of the seed bits, written straight into the page
//! buffer. Every string written here is ASCII without characters that need JSON escaping, except
//! where an escape is written literally (the `modifiedProperties` values, as Graph does).

use crate::config::Resource;
use crate::store::Rec;
use crate::timefmt::write_timestamp;

mod streams;

pub(crate) use streams::{
    write_hex_id, write_provisioning, write_risk_detection, write_sp_risk_detection,
    write_workload_signin,
};

/// A byte sink for ids and JSON: a page buffer or a fixed stack buffer.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A stack buffer large enough for any generated id.
pub(crate) struct IdBuf {
    bytes: [u8; 96],
    len: usize,
}

impl IdBuf {
    pub(crate) fn new() -> IdBuf {
        IdBuf {
            bytes: [0; 96],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("ids are ASCII")
    }
}

impl Sink for IdBuf {
    fn put(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// The splitmix64 finaliser: a bijection on `u64` with good avalanche.
pub(crate) fn mix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic stream of pseudo-random numbers from one seed.
pub(crate) struct Mixer(u64);

impl Mixer {
    pub(crate) fn new(seed: u64) -> Mixer {
        Mixer(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True with probability `percent`/100.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'t, T>(&mut self, table: &'t [T]) -> &'t T {
        &table[self.below(table.len() as u64) as usize]
    }
}

const SALT_ID_HI: u64 = 0x1D5E_0000_0000_0001;
const SALT_ID_LO: u64 = 0x1D5E_0000_0000_0002;
const SALT_AUDIT_SUFFIX: u64 = 0x1D5E_0000_0000_0003;
const SALT_AUDIT_KIND: u64 = 0x1D5E_0000_0000_0004;
const SALT_CONTENT: u64 = 0x1D5E_0000_0000_0005;
const SALT_USER: u64 = 0x1D5E_0000_0000_0006;
const SALT_POLICY: u64 = 0x1D5E_0000_0000_0007;
const SALT_APP_SP: u64 = 0x1D5E_0000_0000_0008;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes a version-4 style GUID built from two 64-bit values.
pub(crate) fn write_guid(out: &mut impl Sink, hi: u64, lo: u64) {
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    let value = (u128::from(hi) << 64) | u128::from(lo);
    let mut buf = [0u8; 36];
    let mut nibble = 0;
    for (index, slot) in buf.iter_mut().enumerate() {
        if matches!(index, 8 | 13 | 18 | 23) {
            *slot = b'-';
        } else {
            *slot = HEX[((value >> (124 - 4 * nibble)) & 0xF) as usize];
            nibble += 1;
        }
    }
    out.put(&buf);
}

fn write_seeded_guid(out: &mut impl Sink, seed: u64) {
    write_guid(out, mix64(seed), mix64(seed ^ 0xA5A5_A5A5_A5A5_A5A5));
}

fn write_u64(out: &mut impl Sink, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put(&buf[pos..]);
}

/// Writes the id of a generated sign-in: a GUID.
pub(crate) fn write_signin_id(out: &mut impl Sink, bits: u64) {
    write_guid(out, mix64(bits ^ SALT_ID_HI), mix64(bits ^ SALT_ID_LO));
}

/// Writes the id of a generated directory audit:
/// `<service prefix>_<correlationId>_<5 chars>_<8 digits>`, e.g.
/// `Directory_56799948-..._L4422_30356247` or `Authentication Methods_..._YFA9N_95912258`.
pub(crate) fn write_audit_id(out: &mut impl Sink, bits: u64) {
    let activity = audit_activity(bits);
    out.put(activity.id_prefix.as_bytes());
    out.put(b"_");
    write_audit_correlation(out, bits);
    out.put(b"_");
    let mut suffix = mix64(bits ^ SALT_AUDIT_SUFFIX);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut chars = [0u8; 5];
    for slot in &mut chars {
        *slot = alphabet[(suffix % 36) as usize];
        suffix /= 36;
    }
    out.put(&chars);
    out.put(b"_");
    write_u64(out, 10_000_000 + suffix % 90_000_000);
}

fn write_audit_correlation(out: &mut impl Sink, bits: u64) {
    write_guid(out, mix64(bits ^ SALT_ID_HI), mix64(bits ^ SALT_ID_LO));
}

/// What a rendered record depends on besides the record itself.
pub(crate) struct RenderContext<'a> {
    pub tenant: &'a str,
    pub beta: bool,
}

struct User {
    index: u64,
}

const FIRST_NAMES: [&str; 16] = [
    "Alex", "Blair", "Casey", "Drew", "Emery", "Finley", "Gray", "Harper", "Indy", "Jordan", "Kai",
    "Logan", "Morgan", "Noel", "Parker", "Quinn",
];
const LAST_NAMES: [&str; 16] = [
    "Adams", "Baker", "Carter", "Dalton", "Ellis", "Foster", "Garcia", "Hughes", "Irwin", "Jensen",
    "Keller", "Lopez", "Moreno", "Nolan", "Ortiz", "Price",
];

impl User {
    fn write_display_name(&self, out: &mut Vec<u8>) {
        out.put(FIRST_NAMES[(self.index % 16) as usize].as_bytes());
        out.put(b" ");
        out.put(LAST_NAMES[(self.index / 16 % 16) as usize].as_bytes());
    }

    fn write_upn(&self, out: &mut Vec<u8>) {
        out.put(b"user");
        write_u64(out, self.index);
        out.put(b"@contoso.example");
    }

    fn write_id(&self, out: &mut Vec<u8>) {
        write_seeded_guid(out, self.index ^ SALT_USER);
    }
}

/// (appId, displayName): Microsoft first-party applications, public constants.
const APPS: [(&str, &str); 6] = [
    ("de8bc8b5-d9f9-48b1-a8ad-b748da725064", "Graph Explorer"),
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
    (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "Microsoft Azure CLI",
    ),
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
];

const RESOURCES: [(&str, &str); 4] = [
    ("00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
    (
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
    ),
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    ),
];

const CLIENT_APPS: [&str; 4] = [
    "Browser",
    "Browser",
    "Mobile Apps and Desktop clients",
    "Exchange ActiveSync",
];

/// (operatingSystem, browser, userAgent)
const DEVICES: [(&str, &str, &str); 5] = [
    (
        "Windows 10",
        "Edge 120.0.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    ),
    (
        "Windows 11",
        "Chrome 121.0.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    ),
    (
        "MacOs",
        "Safari 17.2",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    ),
    (
        "Ios",
        "Mobile Safari 17.2",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    ),
    (
        "Linux",
        "Firefox 122.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    ),
];

/// (city, state, countryOrRegion, latitude, longitude): public city coordinates.
const LOCATIONS: [(&str, &str, &str, &str, &str); 6] = [
    (
        "Redmond",
        "Washington",
        "US",
        "47.68050003051758",
        "-122.12094116210938",
    ),
    ("Seattle", "Washington", "US", "47.60621", "-122.33207"),
    ("Dublin", "Dublin", "IE", "53.34981", "-6.26031"),
    ("Amsterdam", "Noord-Holland", "NL", "52.37403", "4.88969"),
    ("Sydney", "New South Wales", "AU", "-33.86785", "151.20732"),
    ("Tokyo", "Tokyo", "JP", "35.6895", "139.69171"),
];

/// (errorCode, failureReason JSON, additionalDetails JSON)
const FAILURES: [(u32, &str, &str); 4] = [
    (
        50126,
        "\"Error validating credentials due to invalid username or password.\"",
        "\"The user didn't enter the right credentials.\"",
    ),
    (50074, "\"Strong Authentication is required.\"", "null"),
    (
        50140,
        "\"This error occurred due to 'Keep me signed in' interrupt when the user was signing in.\"",
        "null",
    ),
    (
        53003,
        "\"Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.\"",
        "null",
    ),
];

const POLICIES: [(&str, &str); 3] = [
    ("Require MFA for administrators", "\"Mfa\""),
    ("Block legacy authentication", "\"Block\""),
    ("Require compliant device", "\"RequireCompliantDevice\""),
];

const POLICY_RESULTS: [&str; 4] = ["success", "notApplied", "notEnabled", "reportOnlySuccess"];

fn write_ip(out: &mut Vec<u8>, mixer: &mut Mixer) {
    let value = mixer.next();
    if value.is_multiple_of(10) {
        out.put(b"2001:db8::");
        let mut hex = [0u8; 4];
        for (index, slot) in hex.iter_mut().enumerate() {
            *slot = HEX[((value >> (8 + 4 * index)) & 0xF) as usize];
        }
        out.put(&hex);
    } else {
        out.put(b"10.");
        write_u64(out, (value >> 8) & 0xFF);
        out.put(b".");
        write_u64(out, (value >> 16) & 0xFF);
        out.put(b".");
        write_u64(out, 1 + (value >> 24) % 254);
    }
}

/// Appends one interactive sign-in as JSON. `republished` selects version 1 of a re-published
/// record.
pub(crate) fn write_signin(out: &mut Vec<u8>, rec: &Rec, republished: bool, ctx: &RenderContext) {
    write_user_signin(out, rec, republished, ctx, true);
}

/// Appends one user sign-in as JSON: interactive, or non-interactive (`isInteractive` false,
/// `signInEventTypes` `nonInteractiveUser`, no authentication steps: a token refresh).
pub(crate) fn write_user_signin(
    out: &mut Vec<u8>,
    rec: &Rec,
    republished: bool,
    ctx: &RenderContext,
    interactive: bool,
) {
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT);
    let user = User {
        index: mixer.below(256),
    };
    let app = *mixer.pick(&APPS);
    let resource = *mixer.pick(&RESOURCES);
    let client_app = *mixer.pick(&CLIENT_APPS);
    let device = *mixer.pick(&DEVICES);
    let location = *mixer.pick(&LOCATIONS);
    let failure = if mixer.percent(12) {
        Some(*mixer.pick(&FAILURES))
    } else {
        None
    };
    let mfa = mixer.percent(40) && interactive;

    out.put(b"{\"id\":\"");
    write_signin_id(out, rec.bits);
    out.put(b"\",\"createdDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"userDisplayName\":\"");
    user.write_display_name(out);
    out.put(b"\",\"userPrincipalName\":\"");
    user.write_upn(out);
    out.put(b"\",\"userId\":\"");
    user.write_id(out);
    out.put(b"\",\"appId\":\"");
    out.put(app.0.as_bytes());
    out.put(b"\",\"appDisplayName\":\"");
    out.put(app.1.as_bytes());
    out.put(b"\",\"ipAddress\":\"");
    write_ip(out, &mut mixer);
    out.put(b"\",\"clientAppUsed\":\"");
    out.put(client_app.as_bytes());
    out.put(b"\",\"correlationId\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"conditionalAccessStatus\":\"");
    out.put(if failure.is_some_and(|f| f.0 == 53003) {
        b"failure".as_slice()
    } else if mixer.percent(60) {
        b"success".as_slice()
    } else {
        b"notApplied".as_slice()
    });
    out.put(if interactive {
        b"\",\"isInteractive\":true,\"riskDetail\":\"none\",\"riskLevelAggregated\":\"".as_slice()
    } else {
        b"\",\"isInteractive\":false,\"riskDetail\":\"none\",\"riskLevelAggregated\":\"".as_slice()
    });
    if republished {
        out.put(b"medium\",\"riskLevelDuringSignIn\":\"none\",\"riskState\":\"atRisk\",\"riskEventTypes\":[\"unfamiliarFeatures\"],\"riskEventTypes_v2\":[\"unfamiliarFeatures\"]");
    } else {
        out.put(b"none\",\"riskLevelDuringSignIn\":\"none\",\"riskState\":\"none\",\"riskEventTypes\":[],\"riskEventTypes_v2\":[]");
    }
    out.put(b",\"resourceDisplayName\":\"");
    out.put(resource.1.as_bytes());
    out.put(b"\",\"resourceId\":\"");
    out.put(resource.0.as_bytes());
    out.put(b"\",\"status\":{\"errorCode\":");
    match failure {
        Some((code, reason, details)) => {
            write_u64(out, u64::from(code));
            out.put(b",\"failureReason\":");
            out.put(reason.as_bytes());
            out.put(b",\"additionalDetails\":");
            out.put(details.as_bytes());
        }
        None => out.put(b"0,\"failureReason\":null,\"additionalDetails\":null"),
    }
    out.put(b"},\"deviceDetail\":{\"deviceId\":");
    match mixer.below(10) {
        0..=5 => out.put(b"\"\""),
        6 => out.put(b"null"),
        _ => {
            out.put(b"\"");
            write_seeded_guid(out, mixer.next());
            out.put(b"\"");
        }
    }
    out.put(b",\"displayName\":null,\"operatingSystem\":\"");
    out.put(device.0.as_bytes());
    out.put(b"\",\"browser\":\"");
    out.put(device.1.as_bytes());
    out.put(b"\",\"isCompliant\":");
    out.put(if mixer.percent(50) {
        b"true".as_slice()
    } else {
        b"false".as_slice()
    });
    out.put(b",\"isManaged\":null,\"trustType\":null},\"location\":{\"city\":\"");
    out.put(location.0.as_bytes());
    out.put(b"\",\"state\":\"");
    out.put(location.1.as_bytes());
    out.put(b"\",\"countryOrRegion\":\"");
    out.put(location.2.as_bytes());
    out.put(b"\",\"geoCoordinates\":{\"altitude\":null,\"latitude\":");
    out.put(location.3.as_bytes());
    out.put(b",\"longitude\":");
    out.put(location.4.as_bytes());
    out.put(b"}},\"appliedConditionalAccessPolicies\":[");
    let policy_count = mixer.below(3);
    for index in 0..policy_count {
        let policy = POLICIES[index as usize];
        if index > 0 {
            out.put(b",");
        }
        out.put(b"{\"id\":\"");
        write_seeded_guid(out, index ^ SALT_POLICY);
        out.put(b"\",\"displayName\":\"");
        out.put(policy.0.as_bytes());
        out.put(b"\",\"enforcedGrantControls\":[");
        out.put(policy.1.as_bytes());
        out.put(b"],\"enforcedSessionControls\":[],\"result\":\"");
        out.put(mixer.pick(&POLICY_RESULTS).as_bytes());
        out.put(b"\"}");
    }
    out.put(b"]");
    if ctx.beta {
        out.put(if interactive {
            b",\"signInEventTypes\":[\"interactiveUser\"],\"userType\":\"member\",\"authenticationRequirement\":\"".as_slice()
        } else {
            b",\"signInEventTypes\":[\"nonInteractiveUser\"],\"userType\":\"member\",\"authenticationRequirement\":\"".as_slice()
        });
        out.put(if mfa {
            b"multiFactorAuthentication".as_slice()
        } else {
            b"singleFactorAuthentication".as_slice()
        });
        out.put(b"\",\"authenticationDetails\":[");
        if interactive {
            out.put(b"{\"authenticationStepDateTime\":\"");
            write_timestamp(out, rec.time, 7);
            out.put(b"\",\"authenticationMethod\":\"Password\",\"authenticationMethodDetail\":\"Password in the cloud\",\"succeeded\":");
            out.put(if failure.is_some() {
                b"false".as_slice()
            } else {
                b"true".as_slice()
            });
            out.put(b",\"authenticationStepResultDetail\":\"");
            out.put(if failure.is_some() {
                b"Invalid username or password or Invalid on-premise username or password."
                    .as_slice()
            } else {
                b"Correct password".as_slice()
            });
            out.put(b"\",\"authenticationStepRequirement\":\"Primary authentication\"}");
        }
        if mfa {
            out.put(b",{\"authenticationStepDateTime\":\"");
            write_timestamp(out, rec.time, 7);
            out.put(b"\",\"authenticationMethod\":\"Mobile app notification\",\"authenticationMethodDetail\":null,\"succeeded\":true,\"authenticationStepResultDetail\":\"MFA successfully completed\",\"authenticationStepRequirement\":\"Multi-factor authentication\"}");
        }
        out.put(b"],\"authenticationMethodsUsed\":[],\"authenticationProcessingDetails\":[],\"authenticationProtocol\":\"none\",\"authenticationRequirementPolicies\":[],\"authenticationContextClassReferences\":[],\"appliedEventListeners\":[],\"appTokenProtectionStatus\":null,\"autonomousSystemNumber\":");
        write_u64(out, 64_512 + mixer.below(1000));
        out.put(b",\"clientCredentialType\":\"none\",\"conditionalAccessAudiences\":[],\"crossTenantAccessType\":\"none\",\"federatedCredentialId\":\"\",\"flaggedForReview\":false,\"homeTenantId\":\"");
        out.put(ctx.tenant.as_bytes());
        out.put(b"\",\"homeTenantName\":\"\",\"incomingTokenType\":\"none\",\"ipAddressFromResourceProvider\":\"\",\"isTenantRestricted\":false,\"isThroughGlobalSecureAccess\":false,\"managedServiceIdentity\":{\"msiType\":\"none\",\"associatedResourceId\":null,\"federatedTokenId\":null,\"federatedTokenIssuer\":null},\"networkLocationDetails\":[],\"originalRequestId\":\"");
        write_signin_id(out, rec.bits);
        out.put(b"\",\"originalTransferMethod\":\"none\",\"privateLinkDetails\":{\"policyId\":\"\",\"policyName\":\"\",\"resourceId\":\"\",\"policyTenantId\":\"\"},\"processingTimeInMilliseconds\":");
        write_u64(out, 20 + mixer.below(400));
        out.put(b",\"resourceServicePrincipalId\":\"");
        write_seeded_guid(out, mixer.next());
        out.put(b"\",\"resourceTenantId\":\"");
        out.put(ctx.tenant.as_bytes());
        out.put(b"\",\"servicePrincipalCredentialKeyId\":\"\",\"servicePrincipalCredentialThumbprint\":\"\",\"servicePrincipalId\":\"\",\"servicePrincipalName\":null,\"sessionLifetimePolicies\":[],\"signInIdentifier\":\"");
        user.write_upn(out);
        out.put(b"\",\"signInIdentifierType\":\"userPrincipalName\",\"signInTokenProtectionStatus\":\"none\",\"tokenIssuerName\":\"\",\"tokenIssuerType\":\"AzureAD\",\"uniqueTokenIdentifier\":\"");
        write_seeded_guid(out, mixer.next());
        out.put(b"\",\"userAgent\":\"");
        out.put(device.2.as_bytes());
        out.put(b"\",\"mfaDetail\":null");
    }
    out.put(b"}");
}

/// Appends one generated record of `resource` as JSON. `republished` selects version 1 of a
/// re-published sign-in.
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    resource: Resource,
    rec: &Rec,
    republished: bool,
    ctx: &RenderContext,
) {
    match resource {
        Resource::DirectoryAudits => write_audit(out, rec, ctx),
        Resource::SignIns => write_signin(out, rec, republished, ctx),
        Resource::NonInteractiveSignIns => write_user_signin(out, rec, republished, ctx, false),
        Resource::ServicePrincipalSignIns => write_workload_signin(out, rec, ctx, false),
        Resource::ManagedIdentitySignIns => write_workload_signin(out, rec, ctx, true),
        Resource::Provisioning => write_provisioning(out, rec, ctx),
        Resource::RiskDetections => write_risk_detection(out, rec),
        Resource::ServicePrincipalRiskDetections => write_sp_risk_detection(out, rec),
    }
}

/// One kind of directory audit event.
pub(crate) struct AuditActivity {
    pub id_prefix: &'static str,
    pub category: &'static str,
    pub activity: &'static str,
    pub service: &'static str,
    pub operation: &'static str,
    pub target_type: &'static str,
    pub modified: &'static str,
}

const ACTIVITIES: [AuditActivity; 10] = [
    AuditActivity {
        id_prefix: "Directory",
        category: "UserManagement",
        activity: "Update user",
        service: "Core Directory",
        operation: "Update",
        target_type: "User",
        modified: r#"[{"displayName":"AccountEnabled","oldValue":"[true]","newValue":"[false]"},{"displayName":"Included Updated Properties","oldValue":null,"newValue":"\"AccountEnabled\""}]"#,
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "GroupManagement",
        activity: "Add member to group",
        service: "Core Directory",
        operation: "Assign",
        target_type: "Group",
        modified: r#"[{"displayName":"Action Client Name","oldValue":null,"newValue":"\"DirectorySync\""}]"#,
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "GroupManagement",
        activity: "Add group",
        service: "Core Directory",
        operation: "Add",
        target_type: "Group",
        modified: r#"[{"displayName":"DisplayName","oldValue":"[]","newValue":"[\"Project team\"]"}]"#,
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "ApplicationManagement",
        activity: "Update application",
        service: "Core Directory",
        operation: "Update",
        target_type: "Application",
        modified: r#"[{"displayName":"AppAddress","oldValue":"[]","newValue":"[{\"AddressType\":0,\"Address\":\"https://app.contoso.example/signin\"}]"}]"#,
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "RoleManagement",
        activity: "Add member to role",
        service: "Core Directory",
        operation: "Assign",
        target_type: "Role",
        modified: r#"[{"displayName":"Role.DisplayName","oldValue":null,"newValue":"\"Reports Reader\""}]"#,
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "Policy",
        activity: "Update conditional access policy",
        service: "Core Directory",
        operation: "Update",
        target_type: "Policy",
        modified: r#"[{"displayName":"ConditionalAccessPolicy","oldValue":"{\"state\":\"disabled\"}","newValue":"{\"state\":\"enabled\"}"}]"#,
    },
    AuditActivity {
        id_prefix: "SSPR",
        category: "UserManagement",
        activity: "Reset password (self-service)",
        service: "Self-service Password Management",
        operation: "Update",
        target_type: "User",
        modified: "[]",
    },
    AuditActivity {
        id_prefix: "Authentication Methods",
        category: "UserManagement",
        activity: "User registered security info",
        service: "Authentication Methods",
        operation: "Add",
        target_type: "User",
        modified: "[]",
    },
    AuditActivity {
        id_prefix: "Authentication Methods",
        category: "UserManagement",
        activity: "User started security info registration",
        service: "Authentication Methods",
        operation: "Add",
        target_type: "User",
        modified: "[]",
    },
    AuditActivity {
        id_prefix: "Directory",
        category: "UserManagement",
        activity: "Invite external user",
        service: "Invited Users",
        operation: "Add",
        target_type: "User",
        modified: r#"[{"displayName":"InvitedUserEmailAddress","oldValue":null,"newValue":"\"guest7@fabrikam.example\""}]"#,
    },
];

fn audit_activity(bits: u64) -> &'static AuditActivity {
    &ACTIVITIES[(mix64(bits ^ SALT_AUDIT_KIND) % ACTIVITIES.len() as u64) as usize]
}

/// Appends one directory audit as JSON.
pub(crate) fn write_audit(out: &mut Vec<u8>, rec: &Rec, ctx: &RenderContext) {
    let activity = audit_activity(rec.bits);
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT);
    let actor = User {
        index: mixer.below(256),
    };
    let target = User {
        index: mixer.below(256),
    };
    let failed = mixer.percent(5);
    let by_app = mixer.percent(30);
    let app_index = mixer.below(APPS.len() as u64);
    let app = APPS[app_index as usize];
    let device = *mixer.pick(&DEVICES);

    out.put(b"{\"id\":\"");
    write_audit_id(out, rec.bits);
    out.put(b"\",\"category\":\"");
    out.put(activity.category.as_bytes());
    out.put(b"\",\"correlationId\":\"");
    write_audit_correlation(out, rec.bits);
    out.put(b"\",\"result\":\"");
    if failed {
        out.put(
            b"failure\",\"resultReason\":\"Microsoft.Online.Workflows.ObjectAlreadyExistsException",
        );
    } else {
        out.put(b"success\",\"resultReason\":\"");
    }
    out.put(b"\",\"activityDisplayName\":\"");
    out.put(activity.activity.as_bytes());
    out.put(b"\",\"activityDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"loggedByService\":\"");
    out.put(activity.service.as_bytes());
    out.put(b"\",\"operationType\":\"");
    out.put(activity.operation.as_bytes());
    out.put(b"\",\"initiatedBy\":{");
    if by_app {
        out.put(b"\"user\":null,\"app\":{\"appId\":\"");
        out.put(app.0.as_bytes());
        out.put(b"\",\"displayName\":\"");
        out.put(app.1.as_bytes());
        out.put(b"\",\"servicePrincipalId\":\"");
        write_seeded_guid(out, app_index ^ SALT_APP_SP);
        out.put(b"\",\"servicePrincipalName\":null}}");
    } else {
        out.put(b"\"user\":{\"id\":\"");
        actor.write_id(out);
        out.put(b"\",\"displayName\":null,\"userPrincipalName\":\"");
        actor.write_upn(out);
        out.put(b"\",\"ipAddress\":\"");
        write_ip(out, &mut mixer);
        if ctx.beta {
            out.put(b"\",\"userType\":\"Member\",\"homeTenantId\":\"");
            out.put(ctx.tenant.as_bytes());
            out.put(b"\",\"homeTenantName\":null");
        } else {
            out.put(b"\"");
        }
        out.put(b"},\"app\":null}");
    }
    out.put(b",\"targetResources\":[{\"id\":\"");
    match activity.target_type {
        "User" => {
            target.write_id(out);
            out.put(b"\",\"displayName\":null,\"type\":\"User\",\"userPrincipalName\":\"");
            target.write_upn(out);
            out.put(b"\",\"groupType\":null");
        }
        "Group" => {
            write_seeded_guid(out, mixer.next());
            out.put(b"\",\"displayName\":\"Project team\",\"type\":\"Group\",\"userPrincipalName\":null,\"groupType\":\"unifiedGroups\"");
        }
        other => {
            write_seeded_guid(out, mixer.next());
            out.put(b"\",\"displayName\":\"");
            out.put(other.as_bytes());
            out.put(b" object\",\"type\":\"");
            out.put(other.as_bytes());
            out.put(b"\",\"userPrincipalName\":null,\"groupType\":null");
        }
    }
    out.put(b",\"modifiedProperties\":");
    out.put(activity.modified.as_bytes());
    out.put(b"}],\"additionalDetails\":[{\"key\":\"User-Agent\",\"value\":\"");
    out.put(device.2.as_bytes());
    out.put(b"\"}");
    if activity.target_type == "User" {
        out.put(b",{\"key\":\"UserType\",\"value\":\"Member\"}");
    }
    out.put(b"]");
    if ctx.beta {
        if by_app {
            out.put(b",\"userAgent\":null");
        } else {
            out.put(b",\"userAgent\":\"");
            out.put(device.2.as_bytes());
            out.put(b"\"");
        }
    }
    out.put(b"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(bits: u64) -> Rec {
        Rec {
            time: 1_700_000_000_123_456_700,
            visible_at: 0,
            republish_at: i64::MAX,
            bits,
            precision: 7,
        }
    }

    const CTX_V1: RenderContext = RenderContext {
        tenant: "00000000-0000-0000-0000-0000000000aa",
        beta: false,
    };
    const CTX_BETA: RenderContext = RenderContext {
        tenant: "00000000-0000-0000-0000-0000000000aa",
        beta: true,
    };

    #[test]
    fn every_rendered_record_is_valid_json_with_its_id() {
        for bits in 0..2000u64 {
            let bits = mix64(bits);
            for ctx in [&CTX_V1, &CTX_BETA] {
                for republished in [false, true] {
                    let mut out = Vec::new();
                    write_signin(&mut out, &rec(bits), republished, ctx);
                    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
                    let mut id = IdBuf::new();
                    write_signin_id(&mut id, bits);
                    assert_eq!(value["id"], id.as_str());
                    assert_eq!(value["createdDateTime"], "2023-11-14T22:13:20.1234567Z");
                    assert_eq!(value.get("signInEventTypes").is_some(), ctx.beta);
                }
                let mut out = Vec::new();
                write_audit(&mut out, &rec(bits), ctx);
                let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
                let mut id = IdBuf::new();
                write_audit_id(&mut id, bits);
                assert_eq!(value["id"], id.as_str());
                assert_eq!(value.get("userAgent").is_some(), ctx.beta);
            }
        }
    }

    #[test]
    fn audit_ids_follow_the_graph_pattern() {
        let mut saw_space = false;
        for bits in 0..200u64 {
            let mut id = IdBuf::new();
            write_audit_id(&mut id, mix64(bits));
            let id = id.as_str();
            let parts: Vec<&str> = id.rsplitn(3, '_').collect();
            assert_eq!(parts[0].len(), 8, "{id}");
            assert_eq!(parts[1].len(), 5, "{id}");
            saw_space |= id.starts_with("Authentication Methods_");
        }
        assert!(saw_space);
    }

    #[test]
    fn guids_have_version_four_shape() {
        let mut id = IdBuf::new();
        write_guid(&mut id, u64::MAX, 0);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-8000-000000000000");
    }
}

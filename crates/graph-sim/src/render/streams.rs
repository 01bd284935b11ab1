//! Records of the streams beyond user sign-ins and directory audits: service-principal and
//! managed-identity sign-ins (beta), provisioning events and the two Identity Protection risk
//! detection collections. Like the parent module, everything is derived from the record's seed
//! bits and written straight into the page buffer; strings are ASCII without characters that
//! need escaping except where an escape is written literally (`additionalInfo`, which Graph
//! sends as a JSON-encoded string).

use super::{
    DEVICES, HEX, LOCATIONS, Mixer, RESOURCES, RenderContext, SALT_CONTENT, Sink, User, mix64,
    write_ip, write_seeded_guid, write_signin_id, write_u64,
};
use crate::store::Rec;
use crate::timefmt::{NS_PER_SEC, write_timestamp};

const SALT_WORKLOAD: u64 = 0x1D5E_0000_0000_0010;
const SALT_WORKLOAD_SP: u64 = 0x1D5E_0000_0000_0011;
const SALT_PROVISIONING_JOB: u64 = 0x1D5E_0000_0000_0012;
const SALT_HEX_ID: u64 = 0x1D5E_0000_0000_0013;

/// Writes `len` lowercase hex digits derived from `bits` (risk detection ids).
pub(crate) fn write_hex_id(out: &mut impl Sink, bits: u64, len: usize) {
    let mut buf = [0u8; 64];
    let len = len.min(buf.len());
    for (chunk_index, chunk) in buf[..len].chunks_mut(16).enumerate() {
        let mut value = mix64(bits ^ SALT_HEX_ID ^ (chunk_index as u64).wrapping_mul(0x9E37));
        for slot in chunk {
            *slot = HEX[(value >> 60) as usize];
            value <<= 4;
        }
    }
    out.put(&buf[..len]);
}

/// (displayName, credential type, credential detail in `authenticationProcessingDetails`):
/// synthetic workload applications of the tenant.
const SERVICE_PRINCIPALS: [(&str, &str, &str); 5] = [
    ("Contoso Nightly Sync", "clientSecret", "Client secret"),
    ("Fabrikam HR Connector", "certificate", "Client certificate"),
    ("entra-export", "clientSecret", "Client secret"),
    (
        "GitHub Actions deploy",
        "federatedIdentityCredential",
        "Federated identity credential",
    ),
    ("Backup Agent", "clientAssertion", "Client assertion"),
];

/// (name, msiType, associatedResourceId suffix after the resource group).
const MANAGED_IDENTITIES: [(&str, &str, &str); 3] = [
    (
        "func-entra-export",
        "systemAssigned",
        "providers/Microsoft.Web/sites/func-entra-export",
    ),
    (
        "id-backup",
        "userAssigned",
        "providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-backup",
    ),
    (
        "vm-build-01",
        "systemAssigned",
        "providers/Microsoft.Compute/virtualMachines/vm-build-01",
    ),
];

/// Resources workloads sign in to: Microsoft Graph and the management API from the user table,
/// plus Key Vault and Storage (public first-party application ids).
const WORKLOAD_RESOURCES: [(&str, &str); 4] = [
    RESOURCES[0],
    RESOURCES[1],
    ("cfa8b339-82a2-471a-a3c9-0fc0be7a4093", "Azure Key Vault"),
    ("e406a681-f3d4-42a8-90b6-c2b029497af1", "Azure Storage"),
];

/// (errorCode, failureReason JSON).
const WORKLOAD_FAILURES: [(u32, &str); 3] = [
    (7_000_215, "\"Invalid client secret provided.\""),
    (700_027, "\"Client assertion failed signature validation.\""),
    (7_000_112, "\"Application is disabled.\""),
];

/// Appends one service-principal (`managed` false) or managed-identity sign-in as JSON: no user
/// fields, `servicePrincipalId`/`servicePrincipalName` set, `clientCredentialType` and (for
/// managed identities) `managedServiceIdentity` filled in. Always the beta shape: these streams
/// exist only on beta.
pub(crate) fn write_workload_signin(
    out: &mut Vec<u8>,
    rec: &Rec,
    ctx: &RenderContext,
    managed: bool,
) {
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT ^ SALT_WORKLOAD);
    let app_index = if managed {
        mixer.below(MANAGED_IDENTITIES.len() as u64)
    } else {
        mixer.below(SERVICE_PRINCIPALS.len() as u64)
    };
    let (name, credential_type, credential_detail) = if managed {
        let identity = MANAGED_IDENTITIES[app_index as usize];
        (identity.0, "managedIdentity", "Managed identity")
    } else {
        SERVICE_PRINCIPALS[app_index as usize]
    };
    let app_salt = app_index ^ SALT_WORKLOAD_SP ^ (u64::from(managed) << 8);
    let resource = *mixer.pick(&WORKLOAD_RESOURCES);
    let location = *mixer.pick(&LOCATIONS);
    let failure = if mixer.percent(3) {
        Some(*mixer.pick(&WORKLOAD_FAILURES))
    } else {
        None
    };

    out.put(b"{\"id\":\"");
    write_signin_id(out, rec.bits);
    out.put(b"\",\"createdDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"userDisplayName\":\"\",\"userPrincipalName\":\"\",\"userId\":\"\",\"appId\":\"");
    write_seeded_guid(out, app_salt);
    out.put(b"\",\"appDisplayName\":\"");
    out.put(name.as_bytes());
    out.put(b"\",\"ipAddress\":\"");
    write_ip(out, &mut mixer);
    out.put(b"\",\"clientAppUsed\":\"\",\"correlationId\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"conditionalAccessStatus\":\"notApplied\",\"isInteractive\":false,\"riskDetail\":\"none\",\"riskLevelAggregated\":\"none\",\"riskLevelDuringSignIn\":\"none\",\"riskState\":\"none\",\"riskEventTypes\":[],\"riskEventTypes_v2\":[],\"resourceDisplayName\":\"");
    out.put(resource.1.as_bytes());
    out.put(b"\",\"resourceId\":\"");
    out.put(resource.0.as_bytes());
    out.put(b"\",\"status\":{\"errorCode\":");
    match failure {
        Some((code, reason)) => {
            write_u64(out, u64::from(code));
            out.put(b",\"failureReason\":");
            out.put(reason.as_bytes());
            out.put(b",\"additionalDetails\":null");
        }
        None => out.put(b"0,\"failureReason\":null,\"additionalDetails\":null"),
    }
    out.put(b"},\"deviceDetail\":{\"deviceId\":\"\",\"displayName\":\"\",\"operatingSystem\":\"\",\"browser\":\"\",\"isCompliant\":false,\"isManaged\":false,\"trustType\":\"\"},\"location\":{\"city\":\"");
    out.put(location.0.as_bytes());
    out.put(b"\",\"state\":\"");
    out.put(location.1.as_bytes());
    out.put(b"\",\"countryOrRegion\":\"");
    out.put(location.2.as_bytes());
    out.put(b"\",\"geoCoordinates\":{\"altitude\":null,\"latitude\":");
    out.put(location.3.as_bytes());
    out.put(b",\"longitude\":");
    out.put(location.4.as_bytes());
    out.put(b"}},\"appliedConditionalAccessPolicies\":[],\"signInEventTypes\":[");
    out.put(if managed {
        b"\"managedIdentity\"".as_slice()
    } else {
        b"\"servicePrincipal\"".as_slice()
    });
    out.put(b"],\"userType\":null,\"authenticationRequirement\":\"singleFactorAuthentication\",\"authenticationDetails\":[],\"authenticationMethodsUsed\":[],\"authenticationProcessingDetails\":[{\"key\":\"Authentication credential used\",\"value\":\"");
    out.put(credential_detail.as_bytes());
    out.put(b"\"}],\"authenticationProtocol\":\"none\",\"authenticationRequirementPolicies\":[],\"authenticationContextClassReferences\":[],\"appliedEventListeners\":[],\"appTokenProtectionStatus\":null,\"autonomousSystemNumber\":");
    write_u64(out, 8075);
    out.put(b",\"clientCredentialType\":\"");
    out.put(credential_type.as_bytes());
    out.put(b"\",\"conditionalAccessAudiences\":[],\"crossTenantAccessType\":\"none\",\"federatedCredentialId\":\"");
    if credential_type == "federatedIdentityCredential" {
        write_seeded_guid(out, app_salt ^ 0xFED);
    }
    out.put(b"\",\"flaggedForReview\":false,\"homeTenantId\":\"\",\"homeTenantName\":\"\",\"incomingTokenType\":\"none\",\"ipAddressFromResourceProvider\":\"\",\"isTenantRestricted\":false,\"isThroughGlobalSecureAccess\":false,\"managedServiceIdentity\":{\"msiType\":\"");
    if managed {
        let identity = MANAGED_IDENTITIES[app_index as usize];
        out.put(identity.1.as_bytes());
        out.put(b"\",\"associatedResourceId\":\"/subscriptions/");
        write_seeded_guid(out, SALT_WORKLOAD_SP);
        out.put(b"/resourceGroups/rg-contoso/");
        out.put(identity.2.as_bytes());
        out.put(b"\",");
    } else {
        out.put(b"none\",\"associatedResourceId\":null,");
    }
    out.put(b"\"federatedTokenId\":null,\"federatedTokenIssuer\":null},\"networkLocationDetails\":[],\"originalRequestId\":\"");
    write_signin_id(out, rec.bits);
    out.put(b"\",\"originalTransferMethod\":\"none\",\"privateLinkDetails\":{\"policyId\":\"\",\"policyName\":\"\",\"resourceId\":\"\",\"policyTenantId\":\"\"},\"processingTimeInMilliseconds\":");
    write_u64(out, 5 + mixer.below(120));
    out.put(b",\"resourceServicePrincipalId\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"resourceTenantId\":\"");
    out.put(ctx.tenant.as_bytes());
    out.put(b"\",\"servicePrincipalCredentialKeyId\":\"");
    if matches!(
        credential_type,
        "clientSecret" | "certificate" | "clientAssertion"
    ) {
        write_seeded_guid(out, app_salt ^ 0xC4ED);
    }
    out.put(b"\",\"servicePrincipalCredentialThumbprint\":\"");
    if credential_type == "certificate" {
        let mut thumbprint = Vec::with_capacity(40);
        write_hex_id(&mut thumbprint, app_salt, 40);
        thumbprint.make_ascii_uppercase();
        out.put(&thumbprint);
    }
    out.put(b"\",\"servicePrincipalId\":\"");
    write_seeded_guid(out, app_salt ^ 0x0B1E);
    out.put(b"\",\"servicePrincipalName\":\"");
    out.put(name.as_bytes());
    out.put(b"\",\"sessionLifetimePolicies\":[],\"signInIdentifier\":\"\",\"signInIdentifierType\":null,\"signInTokenProtectionStatus\":\"none\",\"tokenIssuerName\":\"\",\"tokenIssuerType\":\"AzureAD\",\"uniqueTokenIdentifier\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"userAgent\":\"\",\"mfaDetail\":null}");
}

/// One provisioning job: (template id, application display name, inbound to Entra ID, error
/// code of a failed export).
const PROVISIONING_JOBS: [(&str, &str, bool, &str); 3] = [
    (
        "servicenow",
        "ServiceNow",
        false,
        "ServiceNowDuplicateUserName",
    ),
    (
        "salesforce",
        "Salesforce",
        false,
        "SalesforceDuplicateUserName",
    ),
    (
        "workday",
        "Workday to Microsoft Entra user provisioning",
        true,
        "EntryConflict",
    ),
];

/// (provisioningAction, past tense for step descriptions); updates are the most frequent.
const PROVISIONING_ACTIONS: [(&str, &str); 8] = [
    ("update", "updated"),
    ("update", "updated"),
    ("update", "updated"),
    ("update", "updated"),
    ("create", "created"),
    ("disable", "disabled"),
    ("delete", "deleted"),
    ("other", "processed"),
];

/// Appends one provisioning event (`provisioningObjectSummary`) as JSON, shaped like the v1.0
/// documentation example, with `servicePrincipal` as a single object (as on the wire) and
/// `initiatedBy.initiatorType` (the schema's spelling).
pub(crate) fn write_provisioning(out: &mut Vec<u8>, rec: &Rec, ctx: &RenderContext) {
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT ^ SALT_PROVISIONING_JOB);
    let job_index = mixer.below(PROVISIONING_JOBS.len() as u64);
    let (template, app_name, inbound, error_code) = PROVISIONING_JOBS[job_index as usize];
    let user = User {
        index: mixer.below(256),
    };
    let (action, done) = *mixer.pick(&PROVISIONING_ACTIONS);
    let status = match mixer.below(100) {
        0..70 => "success",
        70..90 => "skipped",
        90..98 => "failure",
        _ => "warning",
    };
    let job_salt = job_index ^ SALT_PROVISIONING_JOB;
    // A job runs a cycle every 40 minutes; its events share the cycle id.
    let cycle = rec.time.div_euclid(40 * 60 * NS_PER_SEC) as u64;
    let (source, target) = if inbound {
        (app_name, "Microsoft Entra ID")
    } else {
        ("Microsoft Entra ID", app_name)
    };

    out.put(b"{\"id\":\"");
    write_signin_id(out, rec.bits);
    out.put(b"\",\"activityDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"tenantId\":\"");
    out.put(ctx.tenant.as_bytes());
    out.put(b"\",\"jobId\":\"");
    out.put(template.as_bytes());
    out.put(b".");
    let tenant_hex: Vec<u8> = ctx.tenant.bytes().filter(|byte| *byte != b'-').collect();
    out.put(&tenant_hex);
    out.put(b".");
    write_seeded_guid(out, job_salt);
    out.put(b"\",\"cycleId\":\"");
    write_seeded_guid(out, job_salt ^ cycle.wrapping_mul(0x1_0000_0001));
    out.put(b"\",\"changeId\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"provisioningAction\":\"");
    out.put(action.as_bytes());
    out.put(b"\",\"durationInMilliseconds\":");
    write_u64(out, 200 + mixer.below(6000));
    out.put(b",\"provisioningStatusInfo\":{\"status\":\"");
    out.put(status.as_bytes());
    out.put(b"\",\"errorInformation\":");
    match status {
        "failure" => {
            out.put(b"{\"errorCode\":\"");
            out.put(error_code.as_bytes());
            out.put(b"\",\"reason\":\"The user could not be provisioned because a user with the same user name already exists in ");
            out.put(app_name.as_bytes());
            out.put(b".\",\"additionalDetails\":null,\"errorCategory\":\"NonServiceFailure\",\"recommendedAction\":null}");
        }
        "skipped" => out.put(b"{\"errorCode\":null,\"reason\":\"The user is not in scope of the provisioning configuration.\",\"additionalDetails\":null,\"errorCategory\":null,\"recommendedAction\":null}"),
        _ => out.put(b"null"),
    }
    out.put(b"},\"provisioningSteps\":[{\"name\":\"EntryImport\",\"provisioningStepType\":\"import\",\"status\":\"success\",\"description\":\"Retrieved User '");
    user.write_upn(out);
    out.put(b"' from ");
    out.put(source.as_bytes());
    out.put(b"\",\"details\":{}},{\"name\":\"EntrySynchronizationScoping\",\"provisioningStepType\":\"scoping\",\"status\":\"");
    out.put(if status == "skipped" {
        b"skipped".as_slice()
    } else {
        b"success".as_slice()
    });
    out.put(b"\",\"description\":\"Determine if User in scope by evaluating against each scoping filter\",\"details\":{}}");
    if status != "skipped" {
        out.put(
            b",{\"name\":\"EntryExportUpdate\",\"provisioningStepType\":\"export\",\"status\":\"",
        );
        out.put(if status == "failure" {
            b"failure".as_slice()
        } else {
            b"success".as_slice()
        });
        out.put(b"\",\"description\":\"User '");
        user.write_upn(out);
        out.put(b"' was ");
        out.put(done.as_bytes());
        out.put(b" in ");
        out.put(target.as_bytes());
        out.put(b"\",\"details\":{\"ReportableIdentifier\":\"");
        user.write_upn(out);
        out.put(b"\"}}");
    }
    out.put(b"],\"modifiedProperties\":[{\"displayName\":\"accountEnabled\",\"oldValue\":null,\"newValue\":\"");
    out.put(if action == "disable" {
        b"False".as_slice()
    } else {
        b"True".as_slice()
    });
    out.put(b"\"},{\"displayName\":\"userPrincipalName\",\"oldValue\":null,\"newValue\":\"");
    user.write_upn(out);
    out.put(b"\"},{\"displayName\":\"displayName\",\"oldValue\":null,\"newValue\":\"");
    user.write_display_name(out);
    out.put(b"\"}],\"servicePrincipal\":{\"id\":\"");
    write_seeded_guid(out, job_salt ^ 0x5B);
    out.put(b"\",\"displayName\":\"");
    out.put(app_name.as_bytes());
    out.put(b"\"},\"sourceSystem\":{\"id\":\"");
    write_seeded_guid(out, job_salt ^ u64::from(inbound) ^ 0x50);
    out.put(b"\",\"displayName\":\"");
    out.put(source.as_bytes());
    out.put(b"\",\"details\":{}},\"targetSystem\":{\"id\":\"");
    write_seeded_guid(out, job_salt ^ u64::from(!inbound) ^ 0x50);
    out.put(b"\",\"displayName\":\"");
    out.put(target.as_bytes());
    out.put(b"\",\"details\":{\"ApplicationId\":\"");
    write_seeded_guid(out, job_salt ^ 0xA9);
    out.put(b"\",\"ServicePrincipalId\":\"");
    write_seeded_guid(out, job_salt ^ 0x5B);
    out.put(b"\",\"ServicePrincipalDisplayName\":\"");
    out.put(app_name.as_bytes());
    out.put(b"\"}},\"initiatedBy\":{\"id\":\"\",\"displayName\":\"Azure AD Provisioning Service\",\"initiatorType\":\"system\"},\"sourceIdentity\":{\"id\":\"");
    user.write_id(out);
    out.put(b"\",\"displayName\":\"");
    user.write_display_name(out);
    out.put(b"\",\"identityType\":\"User\",\"details\":{}},\"targetIdentity\":{\"id\":\"");
    write_seeded_guid(out, mixer.next());
    out.put(b"\",\"displayName\":\"");
    user.write_display_name(out);
    out.put(b"\",\"identityType\":\"User\",\"details\":{}}}");
}

/// (riskEventType, detectionTimingType, activity).
const RISK_EVENTS: [(&str, &str, &str); 6] = [
    ("unfamiliarFeatures", "realtime", "signin"),
    ("anonymizedIPAddress", "realtime", "signin"),
    ("unlikelyTravel", "offline", "signin"),
    ("passwordSpray", "offline", "signin"),
    ("leakedCredentials", "offline", "user"),
    ("investigationsThreatIntelligence", "offline", "user"),
];

const RISK_LEVELS: [&str; 3] = ["low", "medium", "high"];

/// (riskState, riskDetail).
const RISK_STATES: [(&str, &str); 4] = [
    ("atRisk", "none"),
    ("atRisk", "none"),
    ("remediated", "userPerformedSecuredPasswordReset"),
    ("dismissed", "adminDismissedAllRiskForUser"),
];

/// Appends one risk detection as JSON, shaped like a live v1.0 record: `detectedDateTime` is the
/// record's time; `activityDateTime` precedes it (by seconds for real-time detections, by up to
/// two days for offline ones); `additionalInfo` is a JSON-encoded string.
pub(crate) fn write_risk_detection(out: &mut Vec<u8>, rec: &Rec) {
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT);
    let (event, timing, activity) = *mixer.pick(&RISK_EVENTS);
    let level = *mixer.pick(&RISK_LEVELS);
    let (state, detail) = *mixer.pick(&RISK_STATES);
    let user = User {
        index: mixer.below(256),
    };
    let location = *mixer.pick(&LOCATIONS);
    let device = *mixer.pick(&DEVICES);
    let before = if timing == "realtime" {
        mixer.below(5 * NS_PER_SEC as u64) as i64
    } else {
        (600 + mixer.below(2 * 86_400 - 600)) as i64 * NS_PER_SEC
    };

    out.put(b"{\"id\":\"");
    write_hex_id(out, rec.bits, 64);
    out.put(b"\",\"requestId\":");
    write_optional_guid(out, activity == "signin", mixer.next());
    out.put(b",\"correlationId\":");
    write_optional_guid(out, activity == "signin", mixer.next());
    out.put(b",\"riskEventType\":\"");
    out.put(event.as_bytes());
    out.put(b"\",\"riskState\":\"");
    out.put(state.as_bytes());
    out.put(b"\",\"riskLevel\":\"");
    out.put(level.as_bytes());
    out.put(b"\",\"riskDetail\":\"");
    out.put(detail.as_bytes());
    out.put(b"\",\"source\":\"IdentityProtection\",\"detectionTimingType\":\"");
    out.put(timing.as_bytes());
    out.put(b"\",\"activity\":\"");
    out.put(activity.as_bytes());
    out.put(b"\",\"tokenIssuerType\":\"AzureAD\",\"ipAddress\":\"");
    write_ip(out, &mut mixer);
    out.put(b"\",\"activityDateTime\":\"");
    write_timestamp(out, rec.time - before, 7);
    out.put(b"\",\"detectedDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"lastUpdatedDateTime\":\"");
    write_timestamp(
        out,
        rec.time + mixer.below(3 * 3600 * NS_PER_SEC as u64) as i64,
        6,
    );
    out.put(b"\",\"userId\":\"");
    user.write_id(out);
    out.put(b"\",\"userDisplayName\":\"");
    user.write_display_name(out);
    out.put(b"\",\"userPrincipalName\":\"");
    user.write_upn(out);
    out.put(b"\",\"additionalInfo\":\"[{\\\"Key\\\":\\\"userAgent\\\",\\\"Value\\\":\\\"");
    out.put(device.2.as_bytes());
    out.put(b"\\\"}");
    if event == "anonymizedIPAddress" {
        out.put(b",{\\\"Key\\\":\\\"mitreTechniques\\\",\\\"Value\\\":\\\"T1090.003,T1078\\\"}");
    }
    out.put(b"]\",\"location\":{\"city\":\"");
    out.put(location.0.as_bytes());
    out.put(b"\",\"state\":\"");
    out.put(location.1.as_bytes());
    out.put(b"\",\"countryOrRegion\":\"");
    out.put(location.2.as_bytes());
    out.put(b"\",\"geoCoordinates\":{\"latitude\":");
    out.put(location.3.as_bytes());
    out.put(b",\"longitude\":");
    out.put(location.4.as_bytes());
    out.put(b"}}}");
}

/// riskEventType values of service-principal risk detections.
const SP_RISK_EVENTS: [&str; 4] = [
    "investigationsThreatIntelligence",
    "suspiciousSignins",
    "leakedCredentials",
    "anomalousServicePrincipalActivity",
];

/// Appends one service-principal risk detection as JSON, shaped like the v1.0 documentation
/// example: offline, `activity` `servicePrincipal`, `requestId`/`correlationId`/`ipAddress`/
/// `location` null except for suspicious sign-ins, `keyIds` a collection.
pub(crate) fn write_sp_risk_detection(out: &mut Vec<u8>, rec: &Rec) {
    let mut mixer = Mixer::new(rec.bits ^ SALT_CONTENT);
    let event = *mixer.pick(&SP_RISK_EVENTS);
    let level = *mixer.pick(&RISK_LEVELS);
    let (state, detail) = *mixer.pick(&RISK_STATES);
    let app_index = mixer.below(SERVICE_PRINCIPALS.len() as u64);
    let app_salt = app_index ^ SALT_WORKLOAD_SP;
    let signin = event == "suspiciousSignins";
    let location = *mixer.pick(&LOCATIONS);
    let before = (600 + mixer.below(86_400 - 600)) as i64 * NS_PER_SEC;

    out.put(b"{\"id\":\"");
    write_hex_id(out, rec.bits, 52);
    out.put(b"\",\"requestId\":");
    write_optional_guid(out, signin, mixer.next());
    out.put(b",\"correlationId\":");
    write_optional_guid(out, signin, mixer.next());
    out.put(b",\"riskEventType\":\"");
    out.put(event.as_bytes());
    out.put(b"\",\"riskState\":\"");
    out.put(state.as_bytes());
    out.put(b"\",\"riskLevel\":\"");
    out.put(level.as_bytes());
    out.put(b"\",\"riskDetail\":\"");
    out.put(detail.as_bytes());
    out.put(b"\",\"source\":\"IdentityProtection\",\"detectionTimingType\":\"offline\",\"activity\":\"servicePrincipal\",\"tokenIssuerType\":\"AzureAD\",\"ipAddress\":");
    if signin {
        out.put(b"\"");
        write_ip(out, &mut mixer);
        out.put(b"\",\"location\":{\"city\":\"");
        out.put(location.0.as_bytes());
        out.put(b"\",\"state\":\"");
        out.put(location.1.as_bytes());
        out.put(b"\",\"countryOrRegion\":\"");
        out.put(location.2.as_bytes());
        out.put(b"\",\"geoCoordinates\":null}");
    } else {
        out.put(b"null,\"location\":null");
    }
    out.put(b",\"activityDateTime\":\"");
    write_timestamp(out, rec.time - before, 0);
    out.put(b"\",\"detectedDateTime\":\"");
    write_timestamp(out, rec.time, rec.precision);
    out.put(b"\",\"lastUpdatedDateTime\":\"");
    write_timestamp(
        out,
        rec.time + mixer.below(6 * 3600 * NS_PER_SEC as u64) as i64,
        7,
    );
    out.put(b"\",\"servicePrincipalId\":\"");
    write_seeded_guid(out, app_salt ^ 0x0B1E);
    out.put(b"\",\"servicePrincipalDisplayName\":\"");
    out.put(SERVICE_PRINCIPALS[app_index as usize].0.as_bytes());
    out.put(b"\",\"appId\":\"");
    write_seeded_guid(out, app_salt);
    out.put(b"\",\"keyIds\":[\"");
    write_seeded_guid(out, app_salt ^ 0xC4ED);
    out.put(b"\"],\"additionalInfo\":\"[{\\\"Key\\\":\\\"alertUrl\\\",\\\"Value\\\":null}]\"}");
}

/// A quoted seeded GUID, or `null`.
fn write_optional_guid(out: &mut Vec<u8>, present: bool, seed: u64) {
    if present {
        out.put(b"\"");
        write_seeded_guid(out, seed);
        out.put(b"\"");
    } else {
        out.put(b"null");
    }
}

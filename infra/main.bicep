// entra-export: infrastructure for one deployment (one tenant, one resource group).
//
// Creates:
//   - a Log Analytics workspace and a workspace-based Application Insights component, an action
//     group, scheduled-query alert rules (failed runs, runs without progress, checkpoint lag) and
//     an Azure Monitor workbook (modules/alerts.bicep);
//   - the log storage account (data containers + state container), versioning, soft delete,
//     optional time-based (version-level) immutability per data container, a lifecycle rule that
//     ages out the state container's written-id shards and old versions, an optional
//     CanNotDelete lock;
//   - the host storage account (AzureWebJobsStorage, the package / deployment container);
//   - a Linux Function App (custom handler) with a system-assigned managed identity and every
//     entra-export app setting, on one of three plans (hostingPlan):
//       FlexConsumption  FC1, functionAppConfig (runtime custom, identity-based deployment
//                        storage, maximum instance count)            modules/function-app-flex.bicep
//       Dedicated        Linux App Service plan B1-B3 / P0v3 / P1v3 with Always On (default)
//       Consumption      Y1, legacy: retires 30 September 2028          modules/function-app.bicep
//     No plan needs a storage account key; only Consumption with hostStorageIdentityBased=false
//     (for "az functionapp deployment source config-zip") puts one in the app settings;
//   - inbound access restrictions on the app and its SCM site (operatorIpRanges);
//   - the RBAC the identity needs: a custom role on the log account that can create, write, read,
//     list, lease and set metadata but not delete (modules/roles.bicep).
//
// Works in Azure public and Azure US Government: every endpoint comes from environment() or from a
// resource's primaryEndpoints, never from a hard-coded suffix.
//
// Streams: one data container per stream of src/job.rs, all created whatever is enabled (see
// `streams` below); SIGNIN_EVENT_TYPES (signinEventTypes) and AUDIT_STREAMS (auditStreams +
// riskStreams) choose what the two timers run.
//
// Not done here (ARM has no resource for it): the Microsoft Graph application permissions
// AuditLog.Read.All and Directory.Read.All (provisioning), plus IdentityRiskEvent.Read.All with
// riskStreams. Run infra/grant-graph-permissions.sh (--risk with riskStreams) after this deployment.
//
// Deploy:  see docs/deploy.md.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Naming and placement
// ---------------------------------------------------------------------------------------------

@description('Azure region. Defaults to the resource group region (e.g. usgovvirginia, usgovarizona, eastus2).')
param location string = resourceGroup().location

@description('Short lowercase prefix for resource names (letters and digits, 3-11 chars).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'entraexp'

@description('Suffix that makes the global names (storage accounts, function app host name) unique.')
@minLength(3)
@maxLength(13)
param nameSuffix string = uniqueString(resourceGroup().id)

@description('Function App name; also the first label of its host name (see the functionAppHostName output).')
@maxLength(60)
param functionAppName string = '${namePrefix}-${nameSuffix}'

@description('Log storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param logStorageAccountName string = take(toLower('${namePrefix}log${nameSuffix}'), 24)

@description('Host storage account name for AzureWebJobsStorage (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param hostStorageAccountName string = take(toLower('${namePrefix}host${nameSuffix}'), 24)

@description('Tags applied to every resource.')
param tags object = {
  application: 'entra-export'
}

// ---------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------

@description('Hosting plan. Dedicated (default): a Linux App Service plan with Always On, offered in every Azure Government region, no Azure Files, no key. FlexConsumption: serverless successor of Consumption, where offered (az functionapp list-flexconsumption-locations). Consumption: Linux Y1, legacy, retires 30 September 2028, runs at most 10 minutes. See docs/deploy.md.')
@allowed([
  'FlexConsumption'
  'Dedicated'
  'Consumption'
])
param hostingPlan string = 'Dedicated'

@description('Dedicated plan SKU (Linux). B1 is the smallest with Always On; P0v3 adds zone-redundancy options and more memory.')
@allowed([
  'B1'
  'B2'
  'B3'
  'P0v3'
  'P1v3'
])
param dedicatedSku string = 'B1'

@description('Flex Consumption: maximum instances the app may scale out to (functionAppConfig.scaleAndConcurrency.maximumInstanceCount). Each timer function scales on its own instances; entra-export shares the Graph budget between them (graph-share blobs). Microsoft documents 40 as the lowest accepted value in most versions of its docs.')
@minValue(1)
@maxValue(1000)
param flexMaximumInstanceCount int = 40

@description('Flex Consumption: instance memory in MB. entra-export peaks at about 60 MiB (docs/operations.md, Memory).')
@allowed([
  512
  2048
  4096
])
param flexInstanceMemoryMB int = 2048

@description('Consumption only: maximum instances (functionAppScaleLimit). Keep 1: both timers fit in one instance.')
@minValue(1)
@maxValue(20)
param maxInstances int = 1

@description('Consumption only. true (default): identity-based AzureWebJobsStorage, no key anywhere; the package runs from packageUrl. false: a key-based AzureWebJobsStorage connection string and Azure Files content share (the account key), which "az functionapp deployment source config-zip" needs on Linux Consumption; turns shared-key access on for the host account. Flex Consumption and Dedicated are always identity-based.')
param hostStorageIdentityBased bool = true

@description('Consumption: the https URL of the zip in the host storage "deployments" container (read with the managed identity, no SAS), or empty before the first upload. Dedicated: empty means WEBSITE_RUN_FROM_PACKAGE=1 (the zip pushed by config-zip); a URL works too. Flex Consumption: unused (functionAppConfig.deployment names the container).')
param packageUrl string = ''

@description('Host id (AzureFunctionsWebHost__hostid, Consumption and Dedicated): lowercase letters, digits and dashes, at most 32 chars. Empty = the platform default (the app name truncated to 32 chars). Flex Consumption derives its own.')
@maxLength(32)
param hostId string = ''

@description('Allow basic-auth (publishing profile) access to the SCM/Kudu site. FTP basic auth is always off. Leave false; recent Azure CLI versions deploy with Entra ID tokens.')
param allowScmBasicAuth bool = false

@description('Public IP ranges (CIDR, e.g. 203.0.113.0/24) allowed to reach the app (admin API: manual runs) and its SCM site (config-zip deployments). Everything else is denied. Empty = nobody: the timers need no inbound traffic; add your workstation or pipeline range to run a function by hand or deploy with config-zip.')
param operatorIpRanges array = []

@description('Leave the SCM (Kudu) site open to all networks (Entra ID auth still required), e.g. for a hosted CI runner whose address is unknown. The app\'s own endpoint stays restricted to operatorIpRanges.')
param scmAllowAllNetworks bool = false

@description('Optional object id of the person, group or pipeline that uploads packages: gets Storage Blob Data Contributor on the host storage account (for "az storage blob upload --auth-mode login").')
param deployerPrincipalId string = ''

@description('Principal type of deployerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Log storage
// ---------------------------------------------------------------------------------------------

@description('Log storage replication. GZRS/RAGZRS are not offered in every Gov region.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param logStorageSku string = 'Standard_GRS'

@description('Allow shared-key (account key / account or service SAS) access to the log storage account. Off: entra-export and readers use Entra ID tokens or a user-delegation SAS (docs/snowflake.md). Turn on only for a reader that cannot use either.')
param logStorageAllowSharedKey bool = false

@description('Soft-delete retention, in days, for blobs and containers of the log storage account.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 30

@description('Time-based immutability (version-level WORM) on every data container (one per stream, enabled or not), in days; 0 = none. Recommended: 365 (OMB M-21-31 asks for 12 months of active storage of logs). Created unlocked; lock it by hand once verified (irreversible). The state container never gets one. auditImmutabilityDays / signinImmutabilityDays / streamImmutabilityDays override it per container.')
@minValue(0)
@maxValue(146000)
param immutabilityDays int = 0

@description('Immutability of the audit data container (directory audits), in days (default: immutabilityDays).')
@minValue(0)
@maxValue(146000)
param auditImmutabilityDays int = immutabilityDays

@description('Immutability of the interactive sign-in data container, in days (default: immutabilityDays).')
@minValue(0)
@maxValue(146000)
param signinImmutabilityDays int = immutabilityDays

@description('Immutability per stream, in days, keyed by the stream\'s name (the run report\'s job): audit, signin, signin-noninteractive, signin-serviceprincipal, signin-managedidentity, provisioning, riskdetections, spriskdetections. A stream not named keeps immutabilityDays (audit and signin: auditImmutabilityDays, signinImmutabilityDays). Example: {"signin-noninteractive": 90}.')
param streamImmutabilityDays object = {}

@description('Days after which the lifecycle rule deletes the state container\'s written-id shards (<stream container>/ids/) and the state container\'s previous blob versions. Raised automatically to more than reconcileWindowHours (the sweep needs the shards of its whole window).')
@minValue(2)
@maxValue(365)
param stateRetentionDays int = 3

@description('Put a CanNotDelete lock on the log storage account (stops deleting the account or its containers through Resource Manager). Creating a lock needs Owner or User Access Administrator.')
param logStorageLock bool = false

@description('Optional public IP ranges (CIDR) allowed to reach the log storage account in addition to Azure services. Empty = all networks (access still needs an Entra ID role). Consumption plans have no VNet integration, so a deny-by-default firewall would lock out the function app.')
param logStorageAllowedIpRanges array = []

@description('Resource id of an existing role definition to give the exporter identity on the log account instead of creating the custom role here (for subscriptions where a security team owns role definitions). Empty = create "entra-export log writer".')
param exporterRoleDefinitionId string = ''

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logAnalyticsRetentionDays int = 90

@description('Require Entra ID auth for Application Insights ingestion (DisableLocalAuth, APPLICATIONINSIGHTS_AUTHENTICATION_STRING, Monitoring Metrics Publisher role). Default: on for Flex Consumption and Dedicated; off on legacy Consumption, where the host\'s Entra ID telemetry path is unconfirmed.')
param appInsightsEntraAuth bool = hostingPlan != 'Consumption'

@description('E-mail addresses the action group notifies.')
param alertEmails array = []

@description('Optional webhook (https) the action group calls with the common alert schema, e.g. a ticketing or chat endpoint. Secure: it often carries a token.')
@secure()
param alertWebhookUrl string = ''

@description('Runs in a row without progress (runs_without_progress) that raise the "no progress" alert. 3 = 45 minutes at the default schedule.')
@minValue(1)
@maxValue(100)
param noProgressAlertRuns int = 3

@description('Checkpoint lag, in minutes, that raises the "checkpoint lag" alert: now minus the checkpoint of each enabled stream\'s latest run. A healthy job lags QUERY_LAG plus up to one schedule interval (about 20 minutes at the defaults).')
@minValue(30)
@maxValue(2880)
param checkpointLagAlertMinutes int = 120

@description('Create the alert rules (they need alertEmails or alertWebhookUrl to notify anyone; without either they still fire in the portal).')
param deployAlerts bool = true

// ---------------------------------------------------------------------------------------------
// entra-export settings (src/config.rs documents each)
// ---------------------------------------------------------------------------------------------

@description('AZURE_TENANT_ID: the tenant whose logs are exported (GUID or primary domain). Defaults to the deployment tenant.')
param tenantId string = tenant().tenantId

@description('AZURE_CLOUD. Empty = derived from the ARM environment (AzureUSGovernment, AzureChina or AzurePublic). Set AzureUSGovernmentDoD for DoD (L5) tenants: ARM cannot tell L4 from L5.')
@allowed([
  ''
  'AzurePublic'
  'AzureUSGovernment'
  'AzureUSGovernmentDoD'
  'AzureChina'
])
param azureCloud string = ''

@description('GRAPH_ENDPOINT override (https). Empty = the cloud default.')
param graphEndpoint string = ''

@description('AZURE_AUTHORITY_HOST override (https). Empty = the cloud default.')
param authorityHost string = ''

@description('AZURE_CLIENT_ID: client id of a user-assigned identity. Empty = the system-assigned identity.')
param managedIdentityClientId string = ''

@description('GRAPH_CLOUD: the cloud of the tenant whose logs are read, when it is not the Function App\'s (AzurePublic for a commercial or GCC Moderate tenant read from Azure Government). Empty = AZURE_CLOUD. Another cloud needs graphTenantId and graphClientId.')
@allowed([
  ''
  'AzurePublic'
  'AzureUSGovernment'
  'AzureUSGovernmentDoD'
  'AzureChina'
])
param graphCloud string = ''

@description('GRAPH_TENANT_ID: the tenant whose logs are read, when it is not tenantId (GUID or primary domain). Empty = tenantId.')
param graphTenantId string = ''

@description('GRAPH_CLIENT_ID: an app registration of that tenant, with the Graph permissions, for Graph tokens. Empty = Graph uses the managed identity, as storage does.')
param graphClientId string = ''

@description('The secret identifier of the Key Vault certificate of graphClientId (https://<vault host>/secrets/<certificate name>/, no version to follow renewals): GRAPH_CLIENT_CERTIFICATE becomes a Key Vault reference to it. The Function App\'s system-assigned identity needs the Key Vault Secrets User role on the vault (docs/deploy.md). Empty = none.')
param graphClientCertificateSecretUri string = ''

@description('GRAPH_API_VERSION')
@allowed([
  'v1.0'
  'beta'
])
param graphApiVersion string = 'v1.0'

@description('SIGNIN_EVENT_TYPES: the sign-in streams SignInTimer runs, each into its own container: interactiveUser (v1.0/auditLogs/signIns, as before), nonInteractiveUser, servicePrincipal and managedIdentity (beta/auditLogs/signIns). Sign-in logs need Entra ID P1 or P2: on a Free tenant pass [] (SignInTimer then runs nothing). Default: all four.')
@allowed([
  'interactiveUser'
  'nonInteractiveUser'
  'servicePrincipal'
  'managedIdentity'
])
param signinEventTypes array = [
  'interactiveUser'
  'nonInteractiveUser'
  'servicePrincipal'
  'managedIdentity'
]

@description('AUDIT_STREAMS (with riskStreams): directoryAudits (v1.0/auditLogs/directoryAudits) and provisioning (v1.0/auditLogs/provisioning, needs Directory.Read.All besides AuditLog.Read.All, and Entra ID P1/P2). Default: both.')
@allowed([
  'directoryAudits'
  'provisioning'
])
param auditStreams array = [
  'directoryAudits'
  'provisioning'
]

@description('Identity Protection risk streams AuditTimer also runs (added to AUDIT_STREAMS), off by default: riskDetections (users, Entra ID P2) and servicePrincipalRiskDetections (Workload Identities Premium). Both need the Graph permission IdentityRiskEvent.Read.All: run infra/grant-graph-permissions.sh with --risk.')
@allowed([
  'riskDetections'
  'servicePrincipalRiskDetections'
])
param riskStreams array = []

@description('AUDIT_CONTAINER: data container and checkpoint of the directory audits (stream audit).')
@minLength(3)
@maxLength(63)
param auditContainer string = 'logs-audit'

@description('SIGNIN_CONTAINER: data container and checkpoint of the interactive sign-ins (stream signin).')
@minLength(3)
@maxLength(63)
param signinContainer string = 'logs-signin'

@description('SIGNIN_NONINTERACTIVE_CONTAINER: data container and checkpoint of the non-interactive user sign-ins (stream signin-noninteractive).')
@minLength(3)
@maxLength(63)
param signinNonInteractiveContainer string = 'logs-signin-noninteractive'

@description('SIGNIN_SERVICEPRINCIPAL_CONTAINER: data container and checkpoint of the service-principal sign-ins (stream signin-serviceprincipal).')
@minLength(3)
@maxLength(63)
param signinServicePrincipalContainer string = 'logs-signin-serviceprincipal'

@description('SIGNIN_MANAGEDIDENTITY_CONTAINER: data container and checkpoint of the managed-identity sign-ins (stream signin-managedidentity).')
@minLength(3)
@maxLength(63)
param signinManagedIdentityContainer string = 'logs-signin-managedidentity'

@description('PROVISIONING_CONTAINER: data container and checkpoint of the provisioning logs (stream provisioning).')
@minLength(3)
@maxLength(63)
param provisioningContainer string = 'logs-provisioning'

@description('RISKDETECTIONS_CONTAINER: data container and checkpoint of the user risk detections (stream riskdetections). Created even while the stream is off.')
@minLength(3)
@maxLength(63)
param riskDetectionsContainer string = 'logs-riskdetections'

@description('SPRISKDETECTIONS_CONTAINER: data container and checkpoint of the service-principal risk detections (stream spriskdetections). Created even while the stream is off.')
@minLength(3)
@maxLength(63)
param spRiskDetectionsContainer string = 'logs-spriskdetections'

@description('STATE_CONTAINER: ids already written inside the replay window.')
@minLength(3)
@maxLength(63)
param stateContainer string = 'logs-state'

@description('AUDIT_SCHEDULE (NCRONTAB, six fields, UTC).')
param auditSchedule string = '0 */15 * * * *'

@description('SIGNIN_SCHEDULE (NCRONTAB, six fields, UTC).')
param signinSchedule string = '0 */15 * * * *'

@description('INITIAL_LOOKBACK: how far back a first run starts (at most 30d).')
param initialLookback string = '7d'

@description('QUERY_LAG: a run never asks for records newer than now minus this. 5m: Microsoft\'s published latency of audit and sign-in logs is 2 min at the 95th percentile, 5 min at the 99th. 0s is refused unless acceptLateRecordLoss.')
param queryLag string = '5m'

@description('REPLAY_WINDOW: each run re-reads this much before its checkpoint. 2h: MFA details may take up to two hours to reach a sign-in (Microsoft Entra monitoring and health FAQ). 0s is refused unless acceptLateRecordLoss.')
param replayWindow string = '2h'

@description('RECONCILE_INTERVAL: how often a run also sweeps the older past (RECONCILE_WINDOW) for records Graph published after the replay window (15 min to 7 days).')
param reconcileInterval string = '6h'

@description('RECONCILE_WINDOW in hours: the sweep re-reads [now - this, checkpoint - REPLAY_WINDOW) and writes only records never written; 0 disables it; at most 720 (30 days). The written-id shards it needs are kept for longer than this (stateRetentionDays).')
@minValue(0)
@maxValue(720)
param reconcileWindowHours int = 24

@description('ACCEPT_LATE_RECORD_LOSS: allows queryLag and replayWindow of 0s, which lose records Graph publishes late. Leave false.')
param acceptLateRecordLoss bool = false

@description('RUN_TIME_BUDGET: a run stops starting new work after this. The budget, its grace period (an eighth of it) and 30 s of final writes must fit in functionTimeout, or entra-export refuses the configuration. Empty = the plan\'s default (planTimeouts below: 8m on Consumption, 25m on Flex Consumption and Dedicated).')
param runTimeBudget string = ''

@description('functionTimeout of the Functions host (hh:mm:ss, or -1 for none on Flex Consumption and Dedicated), set as AzureFunctionsJobHost__functionTimeout and as FUNCTION_TIMEOUT, so entra-export checks runTimeBudget against it. Empty = the plan\'s default (planTimeouts below). Consumption: at most 00:10:00 (the host refuses more). host.json keeps 00:10:00 so that the one package runs on every plan.')
param functionTimeout string = ''

@description('SLICE_WIDTH: width of the UTC grid cells that name blob partitions.')
param sliceWidth string = '1h'

@description('GRAPH_MAX_REQUESTS_PER_10S: Graph reporting throttle budget shared by every stream.')
@minValue(1)
@maxValue(1000)
param graphMaxRequestsPer10s int = 5

@description('GRAPH_PAGE_SIZE ($top).')
@minValue(1)
@maxValue(1000)
param graphPageSize int = 1000

@description('GRAPH_MAX_ATTEMPTS: attempts per page for transient failures.')
@minValue(1)
@maxValue(100)
param graphMaxAttempts int = 6

@description('GRAPH_REQUEST_TIMEOUT: one Graph request, headers and body.')
param graphRequestTimeout string = '120s'

@description('GRAPH_MIN_WINDOW: failing windows are split in half down to this width.')
param graphMinWindow string = '1m'

@description('GRAPH_PAGE_BUFFER: bytes of received Graph pages held at once (each page counted twice: the page and the blob built from it), 256KiB to 1GiB.')
param graphPageBuffer string = '4MiB'

@description('MAX_RECORDS_PER_BLOB: records in one data blob, 1 to 1000 (a blob never spans Graph pages).')
@minValue(1)
@maxValue(1000)
param maxRecordsPerBlob int = 1000

@description('OUTPUT_FORMAT: graph-page = {"value":[...]} per blob; ndjson = one record per line.')
@allowed([
  'graph-page'
  'ndjson'
])
param outputFormat string = 'graph-page'

@description('OUTPUT_COMPRESSION')
@allowed([
  'none'
  'gzip'
])
param outputCompression string = 'none'

@description('REPUBLISH_UPDATES: write a later version of a record whose content changed.')
param republishUpdates bool = false

@description('PARALLEL_SLICES: windows fetched at once, auto (twice the request budget, at most 10) or 1 to 64.')
param parallelSlices string = 'auto'

@description('LOCK_LEASE: the run lock lease, 15s to 60s; a crashed run\'s lock lapses after it.')
param lockLease string = '60s'

@description('LOG_FORMAT (json in Azure: one JSON object per stdout/stderr line).')
@allowed([
  'auto'
  'json'
  'pretty'
])
param logFormat string = 'json'

@description('EXTRA_CA_FILE: path (inside the app) of extra PEM CA certificates, e.g. for a TLS-inspecting proxy. Empty = none.')
param extraCaFile string = ''

// ---------------------------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------------------------

var armCloud = environment().name
var resolvedCloud = !empty(azureCloud) ? azureCloud : (armCloud == 'AzureUSGovernment' ? 'AzureUSGovernment' : (armCloud == 'AzureChinaCloud' ? 'AzureChina' : 'AzurePublic'))

var isFlex = hostingPlan == 'FlexConsumption'
var isConsumption = hostingPlan == 'Consumption'

// The function timeout each plan gets unless functionTimeout is set, and the RUN_TIME_BUDGET that
// fits in it by src/config.rs's rule (budget + budget/8 + 30 s <= timeout):
//   Consumption      00:10:00 (the host's maximum there; host.json's value)  8m:  570 s <= 600 s
//   FlexConsumption  00:30:00 (the host's default there)                     25m: 1717.5 s <= 1800 s
//   Dedicated        00:30:00 (the host's default there)                     25m: 1717.5 s <= 1800 s
// scripts/check_infra.py checks each row against config.rs's rule and host.json.
var planTimeouts = {
  FlexConsumption: {
    functionTimeout: '00:30:00'
    runTimeBudget: '25m'
  }
  Dedicated: {
    functionTimeout: '00:30:00'
    runTimeBudget: '25m'
  }
  Consumption: {
    functionTimeout: '00:10:00'
    runTimeBudget: '8m'
  }
}
var effectiveFunctionTimeout = empty(functionTimeout) ? planTimeouts[hostingPlan].functionTimeout : functionTimeout
var effectiveRunTimeBudget = empty(runTimeBudget) ? planTimeouts[hostingPlan].runTimeBudget : runTimeBudget

// Only legacy Consumption with hostStorageIdentityBased=false uses the host account's key.
var hostStorageNeedsKey = isConsumption && !hostStorageIdentityBased

// The written-id shards must outlive the reconcile sweep's window (whole days, rounded up, plus one).
var effectiveStateRetentionDays = max(stateRetentionDays, (reconcileWindowHours + 23) / 24 + 1)

// Every stream of src/job.rs, in its order: job (the run report's `job`, the CLI's name), setting
// (its name in SIGNIN_EVENT_TYPES / AUDIT_STREAMS), container, immutability, enabled.
// scripts/check_infra.py compares this table with src/job.rs.
//
// Every stream's container is created, whether the stream is enabled or not. entra-export would
// create a missing container itself on its first run, but without version-level immutability, which
// can only be switched on when a container is created (later it is a migration, docs/deploy.md).
// Created here, a stream turned on later (riskStreams, or the app setting) writes from its first
// blob into a container that already has its WORM policy; an empty container costs nothing.
var streams = [
  {
    job: 'audit'
    setting: 'directoryAudits'
    container: auditContainer
    immutabilityDays: contains(streamImmutabilityDays, 'audit') ? streamImmutabilityDays.audit : auditImmutabilityDays
    enabled: contains(auditStreams, 'directoryAudits')
  }
  {
    job: 'signin'
    setting: 'interactiveUser'
    container: signinContainer
    immutabilityDays: contains(streamImmutabilityDays, 'signin') ? streamImmutabilityDays.signin : signinImmutabilityDays
    enabled: contains(signinEventTypes, 'interactiveUser')
  }
  {
    job: 'signin-noninteractive'
    setting: 'nonInteractiveUser'
    container: signinNonInteractiveContainer
    immutabilityDays: contains(streamImmutabilityDays, 'signin-noninteractive') ? streamImmutabilityDays['signin-noninteractive'] : immutabilityDays
    enabled: contains(signinEventTypes, 'nonInteractiveUser')
  }
  {
    job: 'signin-serviceprincipal'
    setting: 'servicePrincipal'
    container: signinServicePrincipalContainer
    immutabilityDays: contains(streamImmutabilityDays, 'signin-serviceprincipal') ? streamImmutabilityDays['signin-serviceprincipal'] : immutabilityDays
    enabled: contains(signinEventTypes, 'servicePrincipal')
  }
  {
    job: 'signin-managedidentity'
    setting: 'managedIdentity'
    container: signinManagedIdentityContainer
    immutabilityDays: contains(streamImmutabilityDays, 'signin-managedidentity') ? streamImmutabilityDays['signin-managedidentity'] : immutabilityDays
    enabled: contains(signinEventTypes, 'managedIdentity')
  }
  {
    job: 'provisioning'
    setting: 'provisioning'
    container: provisioningContainer
    immutabilityDays: contains(streamImmutabilityDays, 'provisioning') ? streamImmutabilityDays.provisioning : immutabilityDays
    enabled: contains(auditStreams, 'provisioning')
  }
  {
    job: 'riskdetections'
    setting: 'riskDetections'
    container: riskDetectionsContainer
    immutabilityDays: contains(streamImmutabilityDays, 'riskdetections') ? streamImmutabilityDays.riskdetections : immutabilityDays
    enabled: contains(riskStreams, 'riskDetections')
  }
  {
    job: 'spriskdetections'
    setting: 'servicePrincipalRiskDetections'
    container: spRiskDetectionsContainer
    immutabilityDays: contains(streamImmutabilityDays, 'spriskdetections') ? streamImmutabilityDays.spriskdetections : immutabilityDays
    enabled: contains(riskStreams, 'servicePrincipalRiskDetections')
  }
]

var dataContainers = [for s in streams: {
  name: s.container
  immutabilityDays: s.immutabilityDays
}]

// The written-id shards of every stream (a lifecycle rule takes at most 10 prefixes: 8 streams).
var stateIdPrefixes = [for s in streams: '${s.container}/ids/']

// The enabled streams, by job name: the alert rules expect a run report from each of them.
var enabledJobLists = [for s in streams: s.enabled ? [
  s.job
] : []]
var enabledJobs = flatten(enabledJobLists)

// App settings hold strings, and an empty one counts as unset (so the default streams would run):
// an empty list is written as a lone comma, a list with no names, which runs no stream.
var allAuditStreams = concat(auditStreams, riskStreams)
var signinEventTypesSetting = empty(signinEventTypes) ? ',' : join(signinEventTypes, ',')
var auditStreamsSetting = empty(allAuditStreams) ? ',' : join(allAuditStreams, ',')

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: '${namePrefix}-law-${nameSuffix}'
    appInsightsName: '${namePrefix}-ai-${nameSuffix}'
    retentionDays: logAnalyticsRetentionDays
    entraAuthOnly: appInsightsEntraAuth
  }
}

module logStorage 'modules/log-storage.bicep' = {
  name: 'log-storage'
  params: {
    location: location
    tags: tags
    accountName: logStorageAccountName
    skuName: logStorageSku
    allowSharedKeyAccess: logStorageAllowSharedKey
    dataContainers: dataContainers
    stateContainer: stateContainer
    stateIdPrefixes: stateIdPrefixes
    stateRetentionDays: effectiveStateRetentionDays
    softDeleteRetentionDays: softDeleteRetentionDays
    allowedIpRanges: logStorageAllowedIpRanges
    lockAccount: logStorageLock
    workspaceId: monitoring.outputs.workspaceId
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  params: {
    location: location
    tags: tags
    accountName: hostStorageAccountName
    allowSharedKeyAccess: hostStorageNeedsKey
    softDeleteRetentionDays: softDeleteRetentionDays
    workspaceId: monitoring.outputs.workspaceId
  }
}

// Every variable of src/config.rs, in its order. Empty values count as unset there.
// scripts/check_infra.py evaluates this block for each plan and cloud; scripts/test-package.sh runs
// `entra-export config check` on the result.
var exportSettings = {
  AZURE_TENANT_ID: tenantId
  AZURE_CLOUD: resolvedCloud
  AUTH_MODE: 'managed_identity'
  AZURE_CLIENT_ID: managedIdentityClientId
  // AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE: not set (AUTH_MODE=managed_identity needs neither).
  // AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_CERTIFICATE, AZURE_CLIENT_CERTIFICATE_PASSWORD: not set (likewise).
  // GRAPH_AUTH_MODE, GRAPH_CLIENT_SECRET, GRAPH_CLIENT_CERTIFICATE_PATH, GRAPH_CLIENT_CERTIFICATE_PASSWORD: not set (a certificate from Key Vault, below, or the managed identity).
  // GRAPH_FEDERATED_TOKEN_FILE, GRAPH_AUTHORITY_HOST: not set (Graph's authority is GRAPH_CLOUD's).
  AZURE_AUTHORITY_HOST: authorityHost
  GRAPH_ENDPOINT: graphEndpoint
  GRAPH_API_VERSION: graphApiVersion
  GRAPH_CLOUD: graphCloud
  GRAPH_TENANT_ID: graphTenantId
  GRAPH_CLIENT_ID: graphClientId
  // The platform resolves the reference to the certificate's base64 PFX before entra-export starts.
  GRAPH_CLIENT_CERTIFICATE: empty(graphClientCertificateSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${graphClientCertificateSecretUri})'
  STORAGE_ACCOUNT_URL: logStorage.outputs.blobEndpoint
  // STORAGE_CONNECTION_STRING: not set (exactly one of it and STORAGE_ACCOUNT_URL; the log account has shared keys off).
  // ARM_ENDPOINT, ARM_MAX_REQUESTS_PER_10S: not set (the cloud's Resource Manager; no timer reads the Activity Log yet).
  SIGNIN_EVENT_TYPES: signinEventTypesSetting
  AUDIT_STREAMS: auditStreamsSetting
  AUDIT_CONTAINER: auditContainer
  SIGNIN_CONTAINER: signinContainer
  SIGNIN_NONINTERACTIVE_CONTAINER: signinNonInteractiveContainer
  SIGNIN_SERVICEPRINCIPAL_CONTAINER: signinServicePrincipalContainer
  SIGNIN_MANAGEDIDENTITY_CONTAINER: signinManagedIdentityContainer
  PROVISIONING_CONTAINER: provisioningContainer
  RISKDETECTIONS_CONTAINER: riskDetectionsContainer
  SPRISKDETECTIONS_CONTAINER: spRiskDetectionsContainer
  STATE_CONTAINER: stateContainer
  INITIAL_LOOKBACK: initialLookback
  QUERY_LAG: queryLag
  REPLAY_WINDOW: replayWindow
  RECONCILE_INTERVAL: reconcileInterval
  RECONCILE_WINDOW: '${reconcileWindowHours}h'
  ACCEPT_LATE_RECORD_LOSS: acceptLateRecordLoss ? 'true' : 'false'
  RUN_TIME_BUDGET: effectiveRunTimeBudget
  FUNCTION_TIMEOUT: effectiveFunctionTimeout
  // Read by the Functions host: overrides host.json's functionTimeout with the value FUNCTION_TIMEOUT tells entra-export.
  AzureFunctionsJobHost__functionTimeout: effectiveFunctionTimeout
  SLICE_WIDTH: sliceWidth
  GRAPH_MAX_REQUESTS_PER_10S: string(graphMaxRequestsPer10s)
  GRAPH_PAGE_SIZE: string(graphPageSize)
  GRAPH_MAX_ATTEMPTS: string(graphMaxAttempts)
  GRAPH_REQUEST_TIMEOUT: graphRequestTimeout
  GRAPH_MIN_WINDOW: graphMinWindow
  GRAPH_PAGE_BUFFER: graphPageBuffer
  MAX_RECORDS_PER_BLOB: string(maxRecordsPerBlob)
  OUTPUT_FORMAT: outputFormat
  OUTPUT_COMPRESSION: outputCompression
  REPUBLISH_UPDATES: republishUpdates ? 'true' : 'false'
  LOCK_LEASE: lockLease
  PARALLEL_SLICES: parallelSlices
  EXTRA_CA_FILE: extraCaFile
  LOG_FORMAT: logFormat
  // Read by AuditTimer/function.json and SignInTimer/function.json (%AUDIT_SCHEDULE%, %SIGNIN_SCHEDULE%).
  AUDIT_SCHEDULE: auditSchedule
  SIGNIN_SCHEDULE: signinSchedule
}

module flexApp 'modules/function-app-flex.bicep' = if (isFlex) {
  name: 'function-app-flex'
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    planName: '${namePrefix}-plan-${nameSuffix}'
    maximumInstanceCount: flexMaximumInstanceCount
    instanceMemoryMB: flexInstanceMemoryMB
    hostStorageBlobUri: hostStorage.outputs.blobUri
    hostStorageQueueUri: hostStorage.outputs.queueUri
    hostStorageTableUri: hostStorage.outputs.tableUri
    deploymentContainerUrl: hostStorage.outputs.deploymentsContainerUrl
    allowScmBasicAuth: allowScmBasicAuth
    operatorIpRanges: operatorIpRanges
    scmAllowAllNetworks: scmAllowAllNetworks
    appInsightsConnectionString: monitoring.outputs.connectionString
    appInsightsEntraAuth: appInsightsEntraAuth
    exportSettings: exportSettings
  }
}

module classicApp 'modules/function-app.bicep' = if (!isFlex) {
  name: 'function-app'
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    planName: '${namePrefix}-plan-${nameSuffix}'
    hostingPlan: hostingPlan
    dedicatedSku: dedicatedSku
    maxInstances: maxInstances
    hostStorageAccountName: hostStorage.outputs.accountName
    hostStorageBlobUri: hostStorage.outputs.blobUri
    hostStorageQueueUri: hostStorage.outputs.queueUri
    hostStorageTableUri: hostStorage.outputs.tableUri
    hostStorageIdentityBased: !hostStorageNeedsKey
    packageUrl: packageUrl
    hostId: hostId
    allowScmBasicAuth: allowScmBasicAuth
    operatorIpRanges: operatorIpRanges
    scmAllowAllNetworks: scmAllowAllNetworks
    appInsightsConnectionString: monitoring.outputs.connectionString
    appInsightsEntraAuth: appInsightsEntraAuth
    workspaceId: monitoring.outputs.workspaceId
    exportSettings: exportSettings
  }
}

var principalId = isFlex ? flexApp.outputs.principalId : classicApp.outputs.principalId
var defaultHostName = isFlex ? flexApp.outputs.defaultHostName : classicApp.outputs.defaultHostName

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: principalId
    logStorageAccountName: logStorage.outputs.accountName
    hostStorageAccountName: hostStorage.outputs.accountName
    appInsightsName: monitoring.outputs.appInsightsName
    appInsightsEntraAuth: appInsightsEntraAuth
    exporterRoleDefinitionId: exporterRoleDefinitionId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    namePrefix: '${namePrefix}-${nameSuffix}'
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmails: alertEmails
    alertWebhookUrl: alertWebhookUrl
    noProgressRuns: noProgressAlertRuns
    checkpointLagMinutes: checkpointLagAlertMinutes
    jobs: enabledJobs
    deployAlerts: deployAlerts
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (docs/deploy.md uses them)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionAppName
output functionAppHostName string = defaultHostName
output principalId string = principalId
output azureCloud string = resolvedCloud
output hostingPlan string = hostingPlan
output isConsumption bool = isConsumption
output functionTimeout string = effectiveFunctionTimeout
output runTimeBudget string = effectiveRunTimeBudget
output logStorageAccountName string = logStorage.outputs.accountName
output dataContainers array = [for s in streams: s.container]
output enabledStreams array = enabledJobs
output riskStreamsEnabled bool = !empty(riskStreams)
output storageAccountUrl string = logStorage.outputs.blobEndpoint
output hostStorageAccountName string = hostStorage.outputs.accountName
output packageContainerUrl string = hostStorage.outputs.deploymentsContainerUrl
output exporterRoleDefinitionId string = roles.outputs.exporterRoleDefinitionId
output appInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName
output workbookId string = alerts.outputs.workbookId
output actionGroupId string = alerts.outputs.actionGroupId

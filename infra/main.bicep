// entra-export: infrastructure for one deployment (one tenant, one resource group).
//
// Creates:
//   - a Log Analytics workspace and a workspace-based Application Insights component;
//   - the log storage account (data containers + state container), versioning, soft delete,
//     optional time-based (version-level) immutability on the data containers;
//   - the host storage account (AzureWebJobsStorage + the plan's Azure Files content share);
//   - a Linux Function App (custom handler) on Consumption (Y1, default) or Elastic Premium (EP1-3),
//     with a system-assigned managed identity and every entra-export app setting;
//   - the RBAC role assignments the identity needs.
//
// Works in Azure public and Azure US Government: every endpoint comes from environment() or from a
// resource's primaryEndpoints, never from a hard-coded suffix.
//
// Not done here (ARM has no resource for it): the Microsoft Graph application permission
// AuditLog.Read.All. Run infra/grant-graph-permissions.sh after this deployment.
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

@description('Plan SKU. Y1 = Linux Consumption (functionTimeout at most 10 min). EP1-EP3 = Elastic Premium.')
@allowed([
  'Y1'
  'EP1'
  'EP2'
  'EP3'
])
param planSku string = 'Y1'

@description('Maximum instances the app may scale out to. Keep 1: both timers fit in one instance, and the Graph throttle budget (GRAPH_MAX_REQUESTS_PER_10S) is per process.')
@minValue(1)
@maxValue(20)
param maxInstances int = 1

@description('Identity-based AzureWebJobsStorage (AzureWebJobsStorage__credential=managedidentity). Set false to use a key-based connection string, which "az functionapp deployment source config-zip" needs on Linux Consumption (see docs/deploy.md).')
param hostStorageIdentityBased bool = true

@description('WEBSITE_RUN_FROM_PACKAGE. Linux Consumption: the https URL of the zip in the host storage "deployments" container (read with the managed identity, no SAS), or empty before the first upload. Elastic Premium: empty means "1" (the zip pushed by config-zip).')
param packageUrl string = ''

@description('Host id (AzureFunctionsWebHost__hostid): lowercase letters, digits and dashes, at most 32 chars. Empty = the platform default (the app name truncated to 32 chars). Set a distinct value when two apps or slots share a host storage account or their names share the first 32 characters.')
@maxLength(32)
param hostId string = ''

@description('Allow basic-auth (publishing profile) access to the SCM/Kudu site. FTP basic auth is always off. Leave false; recent Azure CLI versions deploy with Entra ID tokens.')
param allowScmBasicAuth bool = false

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

@description('Allow shared-key (account key / SAS) access to the log storage account. Off: entra-export and readers use Entra ID tokens. Turn on only for a reader that needs a SAS (e.g. a Snowflake stage with a SAS token).')
param logStorageAllowSharedKey bool = false

@description('Soft-delete retention, in days, for blobs and containers of the log storage account.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 30

@description('Time-based immutability (version-level WORM) on the data containers, in days; 0 = none. The policy is created unlocked; lock it by hand once verified (irreversible). The state container never gets one.')
@minValue(0)
@maxValue(146000)
param immutabilityDays int = 0

@description('Optional public IP ranges (CIDR) allowed to reach the log storage account in addition to Azure services. Empty = all networks (access still needs an Entra ID role). Consumption plans have no VNet integration, so a deny-by-default firewall would lock out the function app.')
param logStorageAllowedIpRanges array = []

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logAnalyticsRetentionDays int = 90

@description('Require Entra ID auth for Application Insights ingestion (DisableLocalAuth, APPLICATIONINSIGHTS_AUTHENTICATION_STRING, Monitoring Metrics Publisher role).')
param appInsightsEntraAuth bool = false

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

@description('GRAPH_API_VERSION')
@allowed([
  'v1.0'
  'beta'
])
param graphApiVersion string = 'v1.0'

@description('AUDIT_CONTAINER: data container and checkpoint of the audit job.')
@minLength(3)
@maxLength(63)
param auditContainer string = 'logs-audit'

@description('SIGNIN_CONTAINER: data container and checkpoint of the sign-in job.')
@minLength(3)
@maxLength(63)
param signinContainer string = 'logs-signin'

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

@description('ACCEPT_LATE_RECORD_LOSS: allows queryLag and replayWindow of 0s, which lose records Graph publishes late. Leave false.')
param acceptLateRecordLoss bool = false

@description('RUN_TIME_BUDGET: a run stops starting new work after this. The budget, its grace period (an eighth of it) and 30 s of final writes must fit in functionTimeout, or entra-export refuses the configuration: at most 506s with 00:10:00.')
param runTimeBudget string = '8m'

@description('functionTimeout of the Functions host, hh:mm:ss (host.json\'s value by default), set as AzureFunctionsJobHost__functionTimeout and as FUNCTION_TIMEOUT, so entra-export checks runTimeBudget against it. Y1: at most 00:10:00 (the host refuses more). EP1-EP3: longer runs, e.g. 00:30:00 with runTimeBudget 25m; -1 = no limit.')
param functionTimeout string = '00:10:00'

@description('SLICE_WIDTH: width of the UTC grid cells that name blob partitions.')
param sliceWidth string = '1h'

@description('GRAPH_MAX_REQUESTS_PER_10S: Graph reporting throttle budget shared by both jobs.')
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

var isConsumption = planSku == 'Y1'
var dataContainers = [
  auditContainer
  signinContainer
]

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
    softDeleteRetentionDays: softDeleteRetentionDays
    immutabilityDays: immutabilityDays
    allowedIpRanges: logStorageAllowedIpRanges
    workspaceId: monitoring.outputs.workspaceId
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  params: {
    location: location
    tags: tags
    accountName: hostStorageAccountName
    softDeleteRetentionDays: softDeleteRetentionDays
    workspaceId: monitoring.outputs.workspaceId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    planName: '${namePrefix}-plan-${nameSuffix}'
    planSku: planSku
    maxInstances: maxInstances
    hostStorageAccountName: hostStorage.outputs.accountName
    hostStorageBlobUri: hostStorage.outputs.blobUri
    hostStorageQueueUri: hostStorage.outputs.queueUri
    hostStorageTableUri: hostStorage.outputs.tableUri
    hostStorageIdentityBased: hostStorageIdentityBased
    packageUrl: packageUrl
    hostId: hostId
    allowScmBasicAuth: allowScmBasicAuth
    appInsightsConnectionString: monitoring.outputs.connectionString
    appInsightsEntraAuth: appInsightsEntraAuth
    workspaceId: monitoring.outputs.workspaceId
    // Every variable of src/config.rs, in its order. Empty values count as unset there.
    exportSettings: {
      AZURE_TENANT_ID: tenantId
      AZURE_CLOUD: resolvedCloud
      AUTH_MODE: 'managed_identity'
      AZURE_CLIENT_ID: managedIdentityClientId
      // AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE: not set (AUTH_MODE=managed_identity needs neither).
      AZURE_AUTHORITY_HOST: authorityHost
      GRAPH_ENDPOINT: graphEndpoint
      GRAPH_API_VERSION: graphApiVersion
      STORAGE_ACCOUNT_URL: logStorage.outputs.blobEndpoint
      // STORAGE_CONNECTION_STRING: not set (exactly one of it and STORAGE_ACCOUNT_URL; the log account has shared keys off).
      AUDIT_CONTAINER: auditContainer
      SIGNIN_CONTAINER: signinContainer
      STATE_CONTAINER: stateContainer
      INITIAL_LOOKBACK: initialLookback
      QUERY_LAG: queryLag
      REPLAY_WINDOW: replayWindow
      ACCEPT_LATE_RECORD_LOSS: acceptLateRecordLoss ? 'true' : 'false'
      RUN_TIME_BUDGET: runTimeBudget
      FUNCTION_TIMEOUT: functionTimeout
      // Read by the Functions host: overrides host.json's functionTimeout with the value FUNCTION_TIMEOUT tells entra-export.
      AzureFunctionsJobHost__functionTimeout: functionTimeout
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
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    logStorageAccountName: logStorage.outputs.accountName
    hostStorageAccountName: hostStorage.outputs.accountName
    appInsightsName: monitoring.outputs.appInsightsName
    appInsightsEntraAuth: appInsightsEntraAuth
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (docs/deploy.md uses them)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionAppName
output functionAppHostName string = functionApp.outputs.defaultHostName
output principalId string = functionApp.outputs.principalId
output azureCloud string = resolvedCloud
output planSku string = planSku
output isConsumption bool = isConsumption
output logStorageAccountName string = logStorage.outputs.accountName
output storageAccountUrl string = logStorage.outputs.blobEndpoint
output hostStorageAccountName string = hostStorage.outputs.accountName
output packageContainerUrl string = hostStorage.outputs.deploymentsContainerUrl
output appInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName

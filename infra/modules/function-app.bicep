// The Linux Function App that runs entra-export as an Azure Functions custom handler
// (host.json customHandler -> ./entra-export serve), and its plan, for the two plans configured
// with app settings:
//
//   Dedicated    a Linux App Service plan (B1-B3, P0v3, P1v3) with Always On, which timers need
//                on a Dedicated plan. The package is the zip pushed by config-zip
//                (WEBSITE_RUN_FROM_PACKAGE=1, kept on the app's own file system) or a URL. No
//                Azure Files, no key.
//   Consumption  Linux Y1, legacy (retires 30 September 2028, functionTimeout at most 10 minutes).
//                Runs the package from a URL read with the managed identity; no Azure Files, no
//                key, unless hostStorageIdentityBased=false (for config-zip), which puts the host
//                account's key in AzureWebJobsStorage and the content share settings.
//
// Flex Consumption is modules/function-app-flex.bicep.

param location string
param tags object
param functionAppName string
param planName string

@allowed([
  'Dedicated'
  'Consumption'
])
param hostingPlan string

@allowed([
  'B1'
  'B2'
  'B3'
  'P0v3'
  'P1v3'
])
param dedicatedSku string

@description('Consumption: functionAppScaleLimit.')
@minValue(1)
@maxValue(20)
param maxInstances int

param hostStorageAccountName string

@description('Host storage service endpoints without the trailing slash.')
param hostStorageBlobUri string
param hostStorageQueueUri string
param hostStorageTableUri string

@description('false only for Consumption with a key-based AzureWebJobsStorage (config-zip).')
param hostStorageIdentityBased bool
param packageUrl string
param hostId string
param allowScmBasicAuth bool

@description('CIDR ranges allowed to reach the app and its SCM site; everything else is denied.')
param operatorIpRanges array
param scmAllowAllNetworks bool

param appInsightsConnectionString string
param appInsightsEntraAuth bool

@description('Log Analytics workspace for the FunctionAppLogs diagnostic category.')
param workspaceId string

@description('entra-export settings (name -> value). Empty values are left out: the service treats them as unset.')
param exportSettings object

var isConsumption = hostingPlan == 'Consumption'

// The only key-based path of any plan: legacy Consumption with hostStorageIdentityBased=false.
var useKeys = isConsumption && !hostStorageIdentityBased

var dedicatedTiers = {
  B1: 'Basic'
  B2: 'Basic'
  B3: 'Basic'
  P0v3: 'Premium0V3'
  P1v3: 'PremiumV3'
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

// Identity-based host storage. Explicit service URIs: the host would otherwise assume the public cloud's suffix.
var hostStorageIdentitySettings = {
  AzureWebJobsStorage__credential: useKeys ? '' : 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: useKeys ? '' : hostStorageBlobUri
  AzureWebJobsStorage__queueServiceUri: useKeys ? '' : hostStorageQueueUri
  AzureWebJobsStorage__tableServiceUri: useKeys ? '' : hostStorageTableUri
}

// Consumption only runs from a URL (empty before the first upload); Dedicated runs the zip that
// config-zip stores ("1") unless given a URL.
var runFromPackage = !empty(packageUrl) ? packageUrl : (isConsumption ? '' : '1')

var platformSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'custom'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: appInsightsEntraAuth ? 'Authorization=AAD' : ''
  WEBSITE_RUN_FROM_PACKAGE: runFromPackage
  // A prebuilt binary: no Oryx build on the SCM site.
  SCM_DO_BUILD_DURING_DEPLOYMENT: 'false'
  ENABLE_ORYX_BUILD: 'false'
  AzureFunctionsWebHost__hostid: hostId
}

// Only module parameters in this loop (values known when the module starts); empty values are left
// out rather than sent empty. The key-based settings are appended after it, and only when useKeys.
var namedSettings = union(platformSettings, hostStorageIdentitySettings, exportSettings)
var settingsList = [for s in items(namedSettings): {
  name: s.key
  value: s.value
}]
// ARM evaluates only the branch of if() that applies, so listKeys() runs only when useKeys.
var keySettings = useKeys ? [
  {
    name: 'AzureWebJobsStorage'
    value: 'DefaultEndpointsProtocol=https;AccountName=${hostStorage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${hostStorage.listKeys().keys[0].value}'
  }
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: 'DefaultEndpointsProtocol=https;AccountName=${hostStorage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${hostStorage.listKeys().keys[0].value}'
  }
  {
    name: 'WEBSITE_CONTENTSHARE'
    value: take(toLower(replace(functionAppName, '--', '-')), 63)
  }
] : []
var appSettings = concat(filter(settingsList, s => !empty(s.value)), keySettings)

// Inbound access restrictions: the listed operator ranges, everything else denied (main site and
// SCM site alike, unless scmAllowAllNetworks).
var allowRules = [for (cidr, i) in operatorIpRanges: {
  ipAddress: cidr
  action: 'Allow'
  priority: 100 + i
  name: 'operator-${i}'
  description: 'entra-export operators (operatorIpRanges)'
}]

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy needs Premium v3 with at least 3 instances (Dedicated) and is not offered on Consumption (Y1); a missed 15-minute run is caught up by the next one (the checkpoint never passes unwritten data).
  name: planName
  location: location
  tags: tags
  kind: isConsumption ? 'functionapp' : 'linux'
  sku: isConsumption ? {
        name: 'Y1'
        tier: 'Dynamic'
      } : {
        name: dedicatedSku
        tier: dedicatedTiers[dedicatedSku]
        capacity: 1
      }
  // reserved = Linux
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222: operators start runs through the host admin API (/admin/functions/<name>, master key), reachable only from operatorIpRanges (ipSecurityRestrictions, default deny); Linux Consumption has no private endpoints. There are no HTTP-triggered functions.
  // checkov:skip=CKV_AZURE_17: no HTTP-triggered functions; the only inbound calls are to the admin API, authenticated by the host master key and limited to operatorIpRanges.
  // checkov:skip=CKV_AZURE_212: one instance by design (maxInstances = 1 on Consumption, capacity 1 on Dedicated): the jobs take per-job leases; a missed run is caught up by the next timer.
  // checkov:skip=CKV_AZURE_213: health check pings an HTTP route of the app; a timer-only custom handler has none, and Consumption plans do not run health checks.
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: ''
      appSettings: appSettings
      // Timers on a Dedicated plan fire only while the app is loaded.
      alwaysOn: !isConsumption
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      use32BitWorkerProcess: false
      functionAppScaleLimit: isConsumption ? maxInstances : null
      cors: {
        allowedOrigins: []
      }
      ipSecurityRestrictions: allowRules
      ipSecurityRestrictionsDefaultAction: 'Deny'
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictions: scmAllowAllNetworks ? [] : allowRules
      scmIpSecurityRestrictionsDefaultAction: scmAllowAllNetworks ? 'Allow' : 'Deny'
    }
  }
}

resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: allowScmBasicAuth
  }
}

// FunctionAppLogs to Log Analytics on Dedicated. Not on Linux Consumption, where this category's
// availability is unconfirmed; Application Insights receives the same logs on every plan.
resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!isConsumption) {
  scope: site
  name: 'functionapplogs-to-log-analytics'
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
output siteId string = site.id

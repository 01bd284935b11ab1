// The Linux Function App that runs entra-export as an Azure Functions custom handler
// (host.json customHandler -> ./entra-export serve), and its plan.

param location string
param tags object
param functionAppName string
param planName string

@allowed([
  'Y1'
  'EP1'
  'EP2'
  'EP3'
])
param planSku string

@minValue(1)
@maxValue(20)
param maxInstances int

param hostStorageAccountName string

@description('Host storage service endpoints without the trailing slash.')
param hostStorageBlobUri string
param hostStorageQueueUri string
param hostStorageTableUri string

param hostStorageIdentityBased bool
param packageUrl string
param hostId string
param allowScmBasicAuth bool
param appInsightsConnectionString string
param appInsightsEntraAuth bool

@description('Log Analytics workspace for the FunctionAppLogs diagnostic category.')
param workspaceId string

@description('entra-export settings (name -> value). Empty values are left out: the service treats them as unset.')
param exportSettings object

var isConsumption = planSku == 'Y1'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

// Azure Files content shares only take an account key (Consumption and Elastic Premium alike).
var hostStorageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${hostStorage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${hostStorage.listKeys().keys[0].value}'

// Identity-based host storage. Explicit service URIs: the host would otherwise assume the public cloud's suffix.
var hostStorageIdentitySettings = {
  AzureWebJobsStorage__credential: hostStorageIdentityBased ? 'managedidentity' : ''
  AzureWebJobsStorage__blobServiceUri: hostStorageIdentityBased ? hostStorageBlobUri : ''
  AzureWebJobsStorage__queueServiceUri: hostStorageIdentityBased ? hostStorageQueueUri : ''
  AzureWebJobsStorage__tableServiceUri: hostStorageIdentityBased ? hostStorageTableUri : ''
}

// Linux Consumption only runs from a URL; Elastic Premium runs the zip that config-zip stores ("1").
var runFromPackage = !empty(packageUrl) ? packageUrl : (isConsumption ? '' : '1')

var platformSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'custom'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: appInsightsEntraAuth ? 'Authorization=AAD' : ''
  WEBSITE_CONTENTSHARE: take(toLower(replace(functionAppName, '--', '-')), 63)
  WEBSITE_RUN_FROM_PACKAGE: runFromPackage
  // A prebuilt binary: no Oryx build on the SCM site.
  SCM_DO_BUILD_DURING_DEPLOYMENT: 'false'
  ENABLE_ORYX_BUILD: 'false'
  AzureFunctionsWebHost__hostid: hostId
}

// Only module parameters in this loop (values known when the module starts); empty values are left
// out rather than sent empty. The key-based settings are appended after it.
var namedSettings = union(platformSettings, hostStorageIdentitySettings, exportSettings)
var settingsList = [for s in items(namedSettings): {
  name: s.key
  value: s.value
}]
var keySettings = concat([
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: hostStorageConnectionString
  }
], hostStorageIdentityBased ? [] : [
  {
    name: 'AzureWebJobsStorage'
    value: hostStorageConnectionString
  }
])
var appSettings = concat(filter(settingsList, s => !empty(s.value)), keySettings)

resource plan 'Microsoft.Web/serverfarms@2022-09-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is not available on Consumption (Y1) and needs at least 3 always-ready instances on Elastic Premium; a missed 15-minute run is caught up by the next one (the checkpoint never passes unwritten data).
  name: planName
  location: location
  tags: tags
  kind: isConsumption ? 'functionapp' : 'elastic'
  sku: isConsumption ? {
        name: 'Y1'
        tier: 'Dynamic'
      } : {
        name: planSku
        tier: 'ElasticPremium'
      }
  // reserved = Linux
  properties: isConsumption ? {
    reserved: true
  } : {
    reserved: true
    maximumElasticWorkerCount: maxInstances
  }
}

resource site 'Microsoft.Web/sites@2022-09-01' = {
  // checkov:skip=CKV_AZURE_222: operators start runs through the host admin API (/admin/functions/<name>, master key); Linux Consumption has no private endpoints. There are no HTTP-triggered functions.
  // checkov:skip=CKV_AZURE_17: no HTTP-triggered functions; the only inbound calls are to the admin API, authenticated by the host master key.
  // checkov:skip=CKV_AZURE_212: one instance by design (maxInstances = 1): the jobs take per-job leases and the Graph throttle budget is per process; a missed run is caught up by the next timer.
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
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      use32BitWorkerProcess: false
      functionAppScaleLimit: maxInstances
      minimumElasticInstanceCount: isConsumption ? 0 : 1
      cors: {
        allowedOrigins: []
      }
    }
  }
}

resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2022-09-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2022-09-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: allowScmBasicAuth
  }
}

// FunctionAppLogs to Log Analytics on Elastic Premium. Not on Linux Consumption, where this category's
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

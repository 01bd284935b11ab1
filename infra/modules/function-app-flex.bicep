// The Linux Function App that runs entra-export as an Azure Functions custom handler on a Flex
// Consumption plan (FC1), the serverless successor of Linux Consumption.
//
// Differences from modules/function-app.bicep, all from Microsoft's Flex Consumption docs:
//   - the runtime, the deployment storage and the scale settings live in functionAppConfig, not in
//     app settings: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE,
//     WEBSITE_CONTENT*, SCM_DO_BUILD_DURING_DEPLOYMENT, ENABLE_ORYX_BUILD and
//     AzureFunctionsWebHost__hostid are not set (deprecated or rejected on Flex);
//   - the package is read from a blob container of the host account with the app's managed
//     identity (functionAppConfig.deployment.storage.authentication SystemAssignedIdentity): no key,
//     no SAS, no Azure Files;
//   - each non-HTTP function scales on its own instances: AuditTimer and SignInTimer may run in two
//     processes, which share Graph's throttle budget through the graph-share/ blobs;
//   - siteConfig carries only what Flex accepts (no linuxFxVersion, alwaysOn, functionAppScaleLimit,
//     use32BitWorkerProcess; no CORS).

param location string
param tags object
param functionAppName string
param planName string

@description('functionAppConfig.scaleAndConcurrency.maximumInstanceCount.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Host storage service endpoints without the trailing slash.')
param hostStorageBlobUri string
param hostStorageQueueUri string
param hostStorageTableUri string

@description('URL of the blob container the platform reads the package from (the host account\'s "deployments").')
param deploymentContainerUrl string

param allowScmBasicAuth bool

@description('CIDR ranges allowed to reach the app and its SCM site; everything else is denied.')
param operatorIpRanges array
param scmAllowAllNetworks bool

param appInsightsConnectionString string
param appInsightsEntraAuth bool

@description('entra-export settings (name -> value). Empty values are left out: the service treats them as unset.')
param exportSettings object

// Identity-based host storage (timer status and locks). Explicit service URIs: the host would
// otherwise assume the public cloud's suffix.
var platformSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: hostStorageBlobUri
  AzureWebJobsStorage__queueServiceUri: hostStorageQueueUri
  AzureWebJobsStorage__tableServiceUri: hostStorageTableUri
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: appInsightsEntraAuth ? 'Authorization=AAD' : ''
}

var namedSettings = union(platformSettings, exportSettings)
var settingsList = [for s in items(namedSettings): {
  name: s.key
  value: s.value
}]
var appSettings = filter(settingsList, s => !empty(s.value))

var allowRules = [for (cidr, i) in operatorIpRanges: {
  ipAddress: cidr
  action: 'Allow'
  priority: 100 + i
  name: 'operator-${i}'
  description: 'entra-export operators (operatorIpRanges)'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption needs always-ready instances (at least two per function), billed around the clock; a missed 15-minute run is caught up by the next one (the checkpoint never passes unwritten data).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: operators start runs through the host admin API (/admin/functions/<name>, master key), reachable only from operatorIpRanges (ipSecurityRestrictions, default deny). There are no HTTP-triggered functions.
  // checkov:skip=CKV_AZURE_17: no HTTP-triggered functions; the only inbound calls are to the admin API, authenticated by the host master key and limited to operatorIpRanges.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per function from zero; each timer needs one instance at a time.
  // checkov:skip=CKV_AZURE_213: health check pings an HTTP route of the app; a timer-only custom handler has none.
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
    siteConfig: {
      appSettings: appSettings
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      ipSecurityRestrictions: allowRules
      ipSecurityRestrictionsDefaultAction: 'Deny'
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictions: scmAllowAllNetworks ? [] : allowRules
      scmIpSecurityRestrictionsDefaultAction: scmAllowAllNetworks ? 'Allow' : 'Deny'
    }
  }
}

resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: allowScmBasicAuth
  }
}

// No diagnostic setting (FunctionAppLogs): some versions of the Flex Consumption docs say diagnostic
// settings are not supported there. Application Insights receives the same logs.

output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
output siteId string = site.id

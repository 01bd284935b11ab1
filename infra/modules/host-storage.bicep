// The Functions host storage account (AzureWebJobsStorage): timer schedule status and singleton
// locks (azure-webjobs-hosts), host keys (azure-webjobs-secrets) and the "deployments" container
// that holds the zip package (run from a URL on Consumption, functionAppConfig.deployment on Flex
// Consumption).
//
// Shared-key access is off unless the deployment chose legacy Consumption with key-based host
// storage (hostStorageIdentityBased=false): only then does the app get a connection string with
// the account key (AzureWebJobsStorage and the Azure Files content share,
// WEBSITE_CONTENTAZUREFILECONNECTIONSTRING, which takes nothing but a key). Every other path reads
// and writes here with the app's managed identity.

param location string
param tags object
@minLength(3)
@maxLength(24)
param accountName string

@description('Allow shared-key access: true only for Consumption with key-based host storage.')
param allowSharedKeyAccess bool

@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Log Analytics workspace for the blob service diagnostic logs.')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the Functions host is reached over the public endpoint: Linux Consumption has no VNet integration or private endpoints, and the default Dedicated and Flex deployments have no VNet. Holds no log data; access is Entra ID RBAC (shared keys off).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35.
  // checkov:skip=CKV_AZURE_206: host state only (timer status, locks, host keys, the deployment zip), all re-created by a redeploy; LRS is what Microsoft's templates use.
  // checkov:skip=CKV_AZURE_43: the name is a parameter (3-24 chars, validated by @minLength/@maxLength here and by ARM); the check only reads literal names.
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: allowSharedKeyAccess
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'deployments'
  properties: {
    publicAccess: 'None'
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: blobService
  name: 'blob-to-log-analytics'
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output accountName string = account.name
output accountId string = account.id
// primaryEndpoints.* end with '/'; the Functions host takes service URIs without it.
output blobUri string = substring(account.properties.primaryEndpoints.blob, 0, length(account.properties.primaryEndpoints.blob) - 1)
output queueUri string = substring(account.properties.primaryEndpoints.queue, 0, length(account.properties.primaryEndpoints.queue) - 1)
output tableUri string = substring(account.properties.primaryEndpoints.table, 0, length(account.properties.primaryEndpoints.table) - 1)
output deploymentsContainerUrl string = '${account.properties.primaryEndpoints.blob}deployments'

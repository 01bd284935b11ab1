// The Functions host storage account (AzureWebJobsStorage): timer schedule status and singleton
// locks (azure-webjobs-hosts), host keys (azure-webjobs-secrets), the Azure Files content share that
// Consumption and Elastic Premium plans mount, and the "deployments" container that holds the zip
// package run from a URL on Linux Consumption.
//
// Kept apart from the log storage account so that one can keep shared-key access off: Azure Files
// content shares (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) only work with an account key.

param location string
param tags object
@minLength(3)
@maxLength(24)
param accountName string

@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Log Analytics workspace for the blob service diagnostic logs.')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the Functions host and the plan's content share are reached over the public endpoint: Linux Consumption has no VNet integration or private endpoints. Holds no log data.
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
    // The plan's Azure Files content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) needs the key.
    allowSharedKeyAccess: true
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
// primaryEndpoints.* end with '/'; the Functions host takes service URIs without it.
output blobUri string = substring(account.properties.primaryEndpoints.blob, 0, length(account.properties.primaryEndpoints.blob) - 1)
output queueUri string = substring(account.properties.primaryEndpoints.queue, 0, length(account.properties.primaryEndpoints.queue) - 1)
output tableUri string = substring(account.properties.primaryEndpoints.table, 0, length(account.properties.primaryEndpoints.table) - 1)
output deploymentsContainerUrl string = '${account.properties.primaryEndpoints.blob}deployments'

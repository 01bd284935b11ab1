// The log storage account: where entra-export writes the data blobs, its checkpoints (container
// metadata last_datetime / last_run_report) and its replay-window state.

param location string
param tags object
@minLength(3)
@maxLength(24)
param accountName string
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'
param allowSharedKeyAccess bool

@description('Data containers (one per job). Checkpoints live in their metadata.')
param dataContainers array

@description('State container (ids written inside the replay window). Never immutable: its blobs are replaced.')
param stateContainer string

@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Version-level WORM retention on the data containers, in days; 0 = none.')
param immutabilityDays int

@description('Extra public IP ranges (CIDR) allowed by the firewall; empty = all networks.')
param allowedIpRanges array

@description('Log Analytics workspace for the blob service diagnostic logs (reads, writes, deletes).')
param workspaceId string

var restrictNetwork = !empty(allowedIpRanges)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Linux Consumption has no VNet integration and no fixed outbound IP, so a deny-by-default firewall locks the function app out; access needs an Entra ID role (shared keys are off). Set logStorageAllowedIpRanges to deny other networks on Elastic Premium with VNet integration.
  // checkov:skip=CKV_AZURE_43: the name is a parameter (3-24 chars, validated by @minLength/@maxLength here and by ARM); the check only reads literal names.
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public network access is required by Consumption; data-plane access is Entra ID RBAC only.
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
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
      defaultAction: restrictNetwork ? 'Deny' : 'Allow'
      ipRules: [for ipRange in allowedIpRanges: {
        value: ipRange
        action: 'Allow'
      }]
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
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

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in dataContainers: {
  parent: blobService
  name: name
  properties: {
    publicAccess: 'None'
    // Version-level immutability must be switched on when the container is created to be usable later.
    immutableStorageWithVersioning: {
      enabled: immutabilityDays > 0
    }
  }
}]

// With version-level immutability on the container, this is the default time-based policy every new
// blob version inherits. Created unlocked: lock it by hand (irreversible) once the retention is right.
resource immutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = [for (name, i) in dataContainers: if (immutabilityDays > 0) {
  parent: containers[i]
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityDays
    allowProtectedAppendWrites: false
  }
}]

resource state 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: stateContainer
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
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output accountName string = account.name
// primaryEndpoints.blob ends with '/': entra-export wants https://<account>.blob.<suffix> without it.
output blobEndpoint string = endsWith(account.properties.primaryEndpoints.blob, '/') ? substring(account.properties.primaryEndpoints.blob, 0, length(account.properties.primaryEndpoints.blob) - 1) : account.properties.primaryEndpoints.blob

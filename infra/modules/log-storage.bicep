// The log storage account: where entra-export writes the data blobs (one container per stream:
// audit, the four sign-in types, provisioning, the two risk detection streams), its checkpoints
// (container metadata last_datetime / last_run_report), its run locks (a lease on each stream's
// container) and its state (STATE_CONTAINER: written-ids state, written-id shards
// <stream container>/ids/, journals, the graph-share/ heartbeats).
//
// The exporter identity cannot delete here (modules/roles.bicep): old state goes through the
// lifecycle rule below, which the platform runs, never the app.

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

@description('Data containers (one per stream, whether the stream is enabled or not), each {name, immutabilityDays}: version-level WORM retention in days, 0 = none. Checkpoints live in their metadata.')
param dataContainers array

@description('State container. Never immutable: its state blobs are replaced and its shards appended to.')
param stateContainer string

@description('Prefixes inside the state container (without the container) of the written-id shards the lifecycle rule ages out, one per stream, e.g. logs-audit/ids/. A rule takes at most 10 prefixes.')
@maxLength(10)
param stateIdPrefixes array

@description('Days after the last write at which the lifecycle rule deletes written-id shards, and days after creation at which it deletes previous versions of state blobs.')
@minValue(1)
param stateRetentionDays int

@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Extra public IP ranges (CIDR) allowed by the firewall; empty = all networks.')
param allowedIpRanges array

@description('Put a CanNotDelete management lock on the account.')
param lockAccount bool

@description('Log Analytics workspace for the blob service diagnostic logs (reads, writes, deletes).')
param workspaceId string

var restrictNetwork = !empty(allowedIpRanges)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Linux Consumption has no VNet integration and no fixed outbound IP, so a deny-by-default firewall locks the function app out; access needs an Entra ID role (shared keys are off). Set logStorageAllowedIpRanges to deny other networks when the app reaches the account through a VNet (Flex Consumption, Dedicated).
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

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in dataContainers: {
  parent: blobService
  name: c.name
  properties: {
    publicAccess: 'None'
    // Version-level immutability must be switched on when the container is created to be usable
    // later (an existing container needs a migration, see docs/deploy.md).
    immutableStorageWithVersioning: {
      enabled: c.immutabilityDays > 0
    }
  }
}]

// With version-level immutability on the container, this is the default time-based policy every new
// blob version inherits. Created unlocked: lock it by hand (irreversible) once the retention is
// right. It protects blob versions only: the checkpoint (container metadata) and the run lock
// (container lease) stay writable (docs/deploy.md, "Immutability and entra-export's writes").
resource immutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = [for (c, i) in dataContainers: if (c.immutabilityDays > 0) {
  parent: containers[i]
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: c.immutabilityDays
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

// The exporter never deletes (its role has no delete action), so the state container would only
// grow: one written-id shard per stream and hour of event time, and, with versioning on, a previous
// version for every state and heartbeat write. The platform deletes them instead. Only the state
// container is named: data containers are never touched by a lifecycle rule.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'state-written-id-shards'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'appendBlob'
                'blockBlob'
              ]
              prefixMatch: [for p in stateIdPrefixes: '${stateContainer}/${p}']
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: stateRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'state-previous-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${stateContainer}/'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: stateRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    state
  ]
}

resource lock 'Microsoft.Authorization/locks@2020-05-01' = if (lockAccount) {
  scope: account
  name: 'entra-export-log-archive'
  properties: {
    level: 'CanNotDelete'
    notes: 'entra-export log archive: remove this lock deliberately before deleting the account or a container.'
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
output accountId string = account.id
// primaryEndpoints.blob ends with '/': entra-export wants https://<account>.blob.<suffix> without it.
output blobEndpoint string = endsWith(account.properties.primaryEndpoints.blob, '/') ? substring(account.properties.primaryEndpoints.blob, 0, length(account.properties.primaryEndpoints.blob) - 1) : account.properties.primaryEndpoints.blob

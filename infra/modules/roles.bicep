// RBAC for the Function App's system-assigned identity (and, optionally, the package uploader).
// Role assignment names are guid(scope, principal, role), so re-deploying is idempotent.
//
// On the log account the identity gets "entra-export log writer", a custom role that can do what
// entra-export does and nothing that removes data: create containers, read and set their metadata
// (checkpoints, run reports), lease them (the run lock), list, read, create and write blobs
// (data blobs, state blobs, appends to journals and written-id shards). It has no delete of blobs,
// blob versions or containers, no permanent delete, no move (rename), no tags, no immutability
// policy action: the archive cannot be destroyed through this identity. Storage Blob Data
// Contributor, which it replaces, can delete the archive it exists to protect.

param principalId string
param logStorageAccountName string
param hostStorageAccountName string
param appInsightsName string
param appInsightsEntraAuth bool

@description('Resource id of an existing role definition to use instead of creating the custom role (empty = create it).')
param exporterRoleDefinitionId string
param deployerPrincipalId string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param deployerPrincipalType string

// Built-in role definition ids (the same in every cloud).
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource logStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: logStorageAccountName
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// What each Blob service operation entra-export calls needs (Microsoft's "Permissions for Blob
// service operations" table, authorize-with-azure-active-directory):
//   Create Container, Set Container Metadata, Lease Container (acquire/renew/release/break)
//                                               containers/write
//   Get Container Properties / Metadata        containers/read
//   List Blobs, Get Blob, Get Blob Properties  containers/blobs/read
//   Put Blob (create or replace a state blob), Put Block, Put Block List, Lease Blob
//                                               containers/blobs/write
//   Put Blob (new blob only), Append Block     containers/blobs/add/action (or write)
// Not granted: containers/delete, containers/blobs/delete, blobs/deleteBlobVersion/action,
// blobs/permanentDelete/action, blobs/move/action, blobs/tags/*, blobs/immutableStorage/*,
// generateUserDelegationKey. scripts/check_infra.py fails if a delete or a wildcard appears.
var exporterActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/lease/action'
]
var exporterDataActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
]

var createRole = empty(exporterRoleDefinitionId)

// A custom role is stored at the subscription, assignable here only (this resource group). Its
// name must be unique in the tenant, hence the resource group and account in it.
resource exporterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (createRole) {
  name: guid(subscription().id, resourceGroup().id, logStorageAccountName, 'entra-export-log-writer')
  properties: {
    roleName: 'entra-export log writer (${resourceGroup().name}/${logStorageAccountName})'
    description: 'entra-export: create, write, read, list, lease and set metadata on blob containers and blobs; no delete of any kind.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: exporterActions
        notActions: []
        dataActions: exporterDataActions
        notDataActions: []
      }
    ]
  }
}

// Custom roles live at the subscription: a role assignment takes the subscription-level id.
var exporterRoleId = createRole ? subscriptionResourceId('Microsoft.Authorization/roleDefinitions', exporterRole.name) : exporterRoleDefinitionId

// entra-export: data blobs, container metadata (checkpoints, run reports), leases, state blobs.
resource logWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: logStorage
  name: guid(logStorage.id, principalId, 'entra-export-log-writer')
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: exporterRoleId
    description: 'entra-export writes log blobs and checkpoints; cannot delete'
  }
  dependsOn: [
    exporterRole
  ]
}

// Functions host: timer status and locks (blob), plus queue/table as in Microsoft's identity-based
// host storage samples; also lets the identity read the run-from-package zip in "deployments".
resource hostBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, storageBlobDataOwner)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    description: 'Functions host storage (identity-based AzureWebJobsStorage) and run-from-package URL'
  }
}

resource hostQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, storageQueueDataContributor)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    description: 'Functions host storage (identity-based AzureWebJobsStorage)'
  }
}

resource hostTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, storageTableDataContributor)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    description: 'Functions host storage (identity-based AzureWebJobsStorage)'
  }
}

resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (appInsightsEntraAuth) {
  scope: appInsights
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    description: 'Application Insights ingestion with Entra ID auth'
  }
}

resource deployer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  scope: hostStorage
  name: guid(hostStorage.id, deployerPrincipalId, storageBlobDataContributor)
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'Uploads entra-export packages to the deployments container'
  }
}

output exporterRoleDefinitionId string = exporterRoleId

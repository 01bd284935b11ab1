// RBAC for the Function App's system-assigned identity (and, optionally, the package uploader).
// Role assignment names are guid(scope, principal, role), so re-deploying is idempotent.

param principalId string
param logStorageAccountName string
param hostStorageAccountName string
param appInsightsName string
param appInsightsEntraAuth bool
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

// entra-export: data blobs, container metadata (checkpoints, run reports), leases, state blobs.
resource logWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: logStorage
  name: guid(logStorage.id, principalId, storageBlobDataContributor)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'entra-export writes log blobs and checkpoints'
  }
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

// Log Analytics workspace + workspace-based Application Insights.
// The connection string carries the cloud's own ingestion endpoint (Gov included), so the app uses
// APPLICATIONINSIGHTS_CONNECTION_STRING and never an instrumentation key.

param location string
param tags object
param workspaceName string
param appInsightsName string

@minValue(30)
@maxValue(730)
param retentionDays int

@description('Disable local (key) auth: ingestion then needs an Entra ID token and the Monitoring Metrics Publisher role.')
param entraAuthOnly bool

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
      // No agent writes here with the workspace key: diagnostic settings and workspace-based
      // Application Insights ingest without it.
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: entraAuthOnly
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
output connectionString string = appInsights.properties.ConnectionString

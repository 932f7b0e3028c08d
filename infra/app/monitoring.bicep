// Logs and telemetry, keyless: the workspace refuses shared-key ingestion, Application Insights accepts only
// Microsoft Entra-authenticated telemetry (the Functions app sends it with its managed identity, which rbac.bicep
// grants Monitoring Metrics Publisher), and the Container Apps environment ships its logs through a diagnostic
// setting (worker.bicep) instead of the workspace's shared key.
// https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication
param location string
param tags object
@minLength(13)
@maxLength(13)
param token string

resource law 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
    features: { disableLocalAuth: true }
  }
}

resource appi 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: { Application_Type: 'web', WorkspaceResourceId: law.id, DisableLocalAuth: true }
}

output logAnalyticsWorkspaceId string = law.id
output appInsightsName string = appi.name
// Not a secret once local authentication is off: it names the resource and its ingestion endpoint.
output appInsightsConnectionString string = appi.properties.ConnectionString

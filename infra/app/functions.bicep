// The Functions app (Flex Consumption, .NET 10 isolated): HTTP API and Event Grid blob intake.
param location string
param tags object
@minLength(13)
@maxLength(13)
param token string
param storageAccountName string
param deploymentContainerName string
param identityId string
param identityClientId string
param appInsightsConnectionString string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${token}'
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identityId}': {} } }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'dotnet-isolated', version: '10.0' }
    }
    siteConfig: {
      appSettings: [
        { name: 'AzureWebJobsStorage__blobServiceUri', value: account.properties.primaryEndpoints.blob }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: account.properties.primaryEndpoints.queue }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: account.properties.primaryEndpoints.table }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'CloudSoupStorage__blobServiceUri', value: account.properties.primaryEndpoints.blob }
        { name: 'CloudSoupStorage__queueServiceUri', value: account.properties.primaryEndpoints.queue }
        { name: 'CloudSoupStorage__tableServiceUri', value: account.properties.primaryEndpoints.table }
        { name: 'CloudSoupStorage__credential', value: 'managedidentity' }
        { name: 'CloudSoupStorage__clientId', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        // Application Insights has local authentication off: the host sends telemetry with the identity.
        // https://learn.microsoft.com/azure/azure-functions/functions-app-settings#applicationinsights_authentication_string
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
      ]
    }
  }
}

output name string = app.name
// Flex Consumption apps may get a unique default host name rather than <name>.azurewebsites.net: use this.
output defaultHostName string = app.properties.defaultHostName
output url string = 'https://${app.properties.defaultHostName}'

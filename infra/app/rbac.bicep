// Least privilege: data-plane roles on the one storage account and telemetry publishing on the one
// Application Insights resource; nothing at subscription scope. Role ids are Azure built-in roles:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
param storageAccountName string
param appInsightsName string
param functionPrincipalId string
param workerPrincipalId string
param userPrincipalId string = ''
@allowed([ 'User', 'ServicePrincipal' ])
param userPrincipalType string = 'User'

var blobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'        // blob trigger receipts need Owner
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var queueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var tableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'   // Entra-authenticated telemetry

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appi 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The managed identities were created moments ago: principalType 'ServicePrincipal' lets the assignment go
// through before the new principal has replicated. The deploying principal's type comes from azd.
var storageAssignments = concat([
  { principalId: functionPrincipalId, role: blobDataOwner, type: 'ServicePrincipal' }
  { principalId: functionPrincipalId, role: queueDataContributor, type: 'ServicePrincipal' }
  { principalId: functionPrincipalId, role: tableDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: blobDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: queueDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: tableDataContributor, type: 'ServicePrincipal' }
], empty(userPrincipalId) ? [] : [
  { principalId: userPrincipalId, role: blobDataContributor, type: userPrincipalType }
  { principalId: userPrincipalId, role: queueDataContributor, type: userPrincipalType }
  { principalId: userPrincipalId, role: tableDataContributor, type: userPrincipalType }
])

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in storageAssignments: {
  name: guid(account.id, a.principalId, a.role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)
    principalId: a.principalId
    principalType: a.type
  }
}]

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appi.id, functionPrincipalId, monitoringMetricsPublisher)
  scope: appi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

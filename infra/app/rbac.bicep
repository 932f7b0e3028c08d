// Least privilege: data-plane roles on the one storage account, nothing at subscription scope.
param storageAccountName string
param functionPrincipalId string
param workerPrincipalId string
param userPrincipalId string = ''

var blobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'        // blob trigger receipts need Owner
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var queueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var tableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

var assignments = concat([
  { principalId: functionPrincipalId, role: blobDataOwner, type: 'ServicePrincipal' }
  { principalId: functionPrincipalId, role: queueDataContributor, type: 'ServicePrincipal' }
  { principalId: functionPrincipalId, role: tableDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: blobDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: queueDataContributor, type: 'ServicePrincipal' }
  { principalId: workerPrincipalId, role: tableDataContributor, type: 'ServicePrincipal' }
], empty(userPrincipalId) ? [] : [
  { principalId: userPrincipalId, role: blobDataContributor, type: 'User' }
  { principalId: userPrincipalId, role: queueDataContributor, type: 'User' }
  { principalId: userPrincipalId, role: tableDataContributor, type: 'User' }
])

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for a in assignments: {
  name: guid(account.id, a.principalId, a.role)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)
    principalId: a.principalId
    principalType: a.type
  }
}]

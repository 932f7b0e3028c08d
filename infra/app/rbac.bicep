// Least privilege: data-plane roles on the one storage account and telemetry publishing on the one
// Application Insights resource; nothing at subscription scope. Role ids are Azure built-in roles:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// The worker runs code that came with a job (evaluation models, in a sandbox: docs/sandbox.md), so its identity gets
// roles on the containers, queues and table it uses, not on the account: it reads checkpoints/, eval/ and jobs/,
// writes merged/, and nothing else (scoping an assignment to a container:
// https://learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access).
param storageAccountName string
param appInsightsName string
param functionPrincipalId string
param workerPrincipalId string
param userPrincipalId string = ''
@allowed([ 'User', 'ServicePrincipal' ])
param userPrincipalType string = 'User'

var blobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'        // blob trigger receipts need Owner
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var blobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
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

// The worker's blob roles, one container each (names as in storage.bicep and CloudSoupOptions).
var workerContainerRoles = [
  { container: 'checkpoints', role: blobDataReader }
  { container: 'eval', role: blobDataReader }
  { container: 'jobs', role: blobDataReader }          // the stored recipe of each job
  { container: 'merged', role: blobDataContributor }   // the outputs it commits
]

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource workerContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for c in workerContainerRoles: {
  parent: blobService
  name: c.container
}]

resource workerContainerAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (c, i) in workerContainerRoles: {
  name: guid(workerContainers[i].id, workerPrincipalId, c.role)
  scope: workerContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', c.role)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// The job queue and its poison queue (receive, renew, delete; park), and the jobs table (claims, progress, results).
var workerQueues = [ 'merge-jobs', 'merge-jobs-poison' ]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [for q in workerQueues: {
  parent: queueService
  name: q
}]

resource workerQueueAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (q, i) in workerQueues: {
  name: guid(queues[i].id, workerPrincipalId, queueDataContributor)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueDataContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource jobsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: 'jobs'
}

resource workerTableAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(jobsTable.id, workerPrincipalId, tableDataContributor)
  scope: jobsTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', tableDataContributor)
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appi.id, functionPrincipalId, monitoringMetricsPublisher)
  scope: appi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

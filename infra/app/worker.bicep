// The merge worker: an event-driven Container Apps job on a serverless GPU profile. KEDA's azure-queue
// scaler starts one execution per queued message (zero executions, zero cost, while the queue is empty);
// each execution runs `cloudsoup worker --once`, which receives one message, keeps it invisible while
// it merges, deletes it after the outputs are committed, and exits. A split job (docs/fanout.md) is one message per
// part, so its parts start as executions of their own, up to maxExecutions at once; the rest wait in the queue.
param location string
param tags object
@minLength(13)
@maxLength(13)
param token string
param storageAccountName string
param identityId string
param identityClientId string
param identityPrincipalId string
param logAnalyticsWorkspaceId string
param gpuProfileType string
@description('At most this many executions at once: also the most parts of one split job running side by side')
param maxExecutions int
@description('CloudSoup__Parallelism__PartBytes: parallelism: auto makes one part per this many bytes of input')
param partBytes string
param image string

var acrPullRole = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var gpuSize = gpuProfileType == 'Consumption-GPU-NC24-A100' ? { cpu: 24, memory: '220Gi' } : { cpu: 8, memory: '56Gi' }

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Premium: geo-replication and artifact streaming for the multi-GB CUDA image (streaming is not turned on
// here; infra/README.md says how to measure the cold start first).
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: 'cr${token}'
  location: location
  tags: tags
  sku: { name: 'Premium' }
  properties: { adminUserEnabled: false }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityId, acrPullRole)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRole)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: 'cae-${token}'
  location: location
  tags: tags
  properties: {
    // Logs leave through the diagnostic setting below (Azure Monitor), not the workspace's shared key.
    // https://learn.microsoft.com/azure/container-apps/log-options
    appLogsConfiguration: { destination: 'azure-monitor' }
    workloadProfiles: [
      { name: 'Consumption', workloadProfileType: 'Consumption' }
      { name: 'gpu', workloadProfileType: gpuProfileType }
    ]
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: environment
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

resource job 'Microsoft.App/jobs@2025-01-01' = {
  name: 'caj-merge-${token}'
  location: location
  tags: union(tags, { 'azd-service-name': 'merge-worker' })
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${identityId}': {} } }
  dependsOn: [ acrPull ]
  properties: {
    environmentId: environment.id
    workloadProfileName: 'gpu'
    configuration: {
      triggerType: 'Event'
      replicaTimeout: 14400          // 4 h: above the longest merge we expect; a timeout frees the message for a retry
      replicaRetryLimit: 0           // retries come from the queue's dequeue count and the poison queue
      registries: [ { server: registry.properties.loginServer, identity: identityId } ]
      eventTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
        scale: {
          minExecutions: 0
          maxExecutions: maxExecutions
          pollingInterval: 30
          rules: [
            {
              name: 'merge-jobs'
              type: 'azure-queue'
              identity: identityId     // KEDA authenticates with the job's identity: no secrets
              metadata: { accountName: account.name, queueName: 'merge-jobs', queueLength: '1' }
            }
          ]
        }
      }
    }
    template: {
      containers: [
        {
          name: 'worker'
          image: !empty(image) ? image : 'mcr.microsoft.com/k8se/quickstart-jobs:latest'
          args: [ 'worker', '--once' ]
          resources: { cpu: gpuSize.cpu, memory: gpuSize.memory }
          env: [
            { name: 'AZURE_CLIENT_ID', value: identityClientId }
            { name: 'CloudSoupStorage__blobServiceUri', value: account.properties.primaryEndpoints.blob }
            { name: 'CloudSoupStorage__queueServiceUri', value: account.properties.primaryEndpoints.queue }
            { name: 'CloudSoupStorage__tableServiceUri', value: account.properties.primaryEndpoints.table }
            { name: 'CloudSoupStorage__credential', value: 'managedidentity' }
            { name: 'CloudSoupStorage__clientId', value: identityClientId }
            { name: 'CloudSoup__Device', value: 'cuda' }
            { name: 'CloudSoup__Parallelism__PartBytes', value: partBytes }
          ]
        }
      ]
    }
  }
}

output registryLoginServer string = registry.properties.loginServer
output jobName string = job.name

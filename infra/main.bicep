// CloudSoup on Azure: storage (inputs, outputs, queue, jobs table), the Functions app (HTTP API + blob
// intake, Flex Consumption) and the GPU merge worker (a Container Apps job scaled from zero by the queue).
// No keys or connection strings anywhere: every service talks to storage with a user-assigned identity, and
// telemetry is ingested with Microsoft Entra authentication (infra/README.md lists the keys that remain).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to derive resource names')
param environmentName string

@minLength(1)
@description('Region for every resource (must offer Flex Consumption and serverless GPUs)')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying principal (azd: AZURE_PRINCIPAL_ID), granted data access for uploads and inspection')
param principalId string = ''

// azd resolves AZURE_PRINCIPAL_TYPE to the type of the signed-in principal: User on a workstation,
// ServicePrincipal in CI (azd auth login --client-id ...). A role assignment whose principalType does not
// match the principal fails with UnmatchedPrincipalType.
@allowed([ 'User', 'ServicePrincipal' ])
@description('Type of the deploying principal (azd: AZURE_PRINCIPAL_TYPE)')
param principalType string = 'User'

@allowed([ 'Consumption-GPU-NC8as-T4', 'Consumption-GPU-NC24-A100' ])
@description('Serverless GPU profile for the merge worker')
param gpuProfileType string = 'Consumption-GPU-NC8as-T4'

// One execution per queue message, and a split job is one message per part (docs/fanout.md): this is also how many
// parts of one job run at once. 64 is the most parts a recipe may ask for (RecipeLimits.MaxParts).
@minValue(1)
@maxValue(64)
@description('Upper bound of concurrent worker executions, and so of the parts of a split job that run at once (cap it by your GPU quota)')
param maxWorkerExecutions int = 8

@description('parallelism: auto splits a job into one part per this many bytes of input (CloudSoup__Parallelism__PartBytes)')
param parallelismPartBytes string = '20000000000'

// main.parameters.json maps this to SERVICE_MERGE_WORKER_IMAGE_NAME, which azd records after each deploy of
// the merge-worker service: a later `azd provision` keeps the deployed image instead of resetting it. Empty
// (first provision, before any deploy) selects a public placeholder image.
@description('Worker image (azd: SERVICE_MERGE_WORKER_IMAGE_NAME)')
param workerImage string = ''

var tags = { 'azd-env-name': environmentName }
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module identities 'app/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: { location: location, tags: tags, token: token }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.accountName
    appInsightsName: monitoring.outputs.appInsightsName
    functionPrincipalId: identities.outputs.functionPrincipalId
    workerPrincipalId: identities.outputs.workerPrincipalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module functions 'app/functions.bicep' = {
  name: 'functions'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    storageAccountName: storage.outputs.accountName
    deploymentContainerName: storage.outputs.deploymentContainerName
    identityId: identities.outputs.functionIdentityId
    identityClientId: identities.outputs.functionClientId
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
  }
  dependsOn: [ rbac ]
}

module worker 'app/worker.bicep' = {
  name: 'worker'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    storageAccountName: storage.outputs.accountName
    identityId: identities.outputs.workerIdentityId
    identityClientId: identities.outputs.workerClientId
    identityPrincipalId: identities.outputs.workerPrincipalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    gpuProfileType: gpuProfileType
    maxExecutions: maxWorkerExecutions
    partBytes: parallelismPartBytes
    image: workerImage
  }
  dependsOn: [ rbac ]
}

output AZURE_LOCATION string = location
output RESOURCE_GROUP string = rg.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.accountName
output AZURE_FUNCTION_APP_NAME string = functions.outputs.name
output AZURE_FUNCTION_URL string = functions.outputs.url
output AZURE_FUNCTION_APP_HOST_NAME string = functions.outputs.defaultHostName
output EVENTGRID_SYSTEM_TOPIC_NAME string = storage.outputs.systemTopicName
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = worker.outputs.registryLoginServer
output WORKER_JOB_NAME string = worker.outputs.jobName

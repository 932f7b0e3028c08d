// The storage account CloudSoup lives in. The container, queue and table names must be the defaults of
// CloudSoupOptions (tests/CloudSoup.Tests/Infra/ConfigurationDriftTests.cs compares the compiled template).
param location string
param tags object
@minLength(13)   // toLower(uniqueString(...)) in main.bicep: 13 characters
@maxLength(13)
param token string

var containerNames = [ 'checkpoints', 'recipes', 'merged', 'eval', 'jobs' ]
var queueNames = [ 'merge-jobs', 'merge-jobs-poison' ]
var tableName = 'jobs'
var deploymentContainerName = 'app-package-${token}'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${token}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false          // identities only
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }   // Event Grid needs the bypass behind a VNet
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in concat(containerNames, [ deploymentContainerName ]): {
  parent: blobService
  name: c
  properties: { publicAccess: 'None' }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for q in queueNames: {
  parent: queueService
  name: q
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource jobsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: tableName
}

// BlobCreated events reach the Functions blob trigger through this topic; the webhook subscription itself
// needs the app's blobs_extension key, which exists only after deployment (scripts/post-deploy.sh).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${token}'
  location: location
  tags: tags
  properties: { source: account.id, topicType: 'Microsoft.Storage.StorageAccounts' }
}

output accountName string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainerName
output systemTopicName string = systemTopic.name

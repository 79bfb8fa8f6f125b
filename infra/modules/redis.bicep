// Azure Managed Redis: one cluster, its single database `default`, and the access policy
// assignments that let Microsoft Entra principals in. Access keys are disabled, so a principal
// without an access policy assignment cannot connect at all; Azure role assignments on the
// cluster do not grant data access.

@description('Cluster name: 1-60 letters, digits and single hyphens.')
param name string

param location string
param tags object = {}

@description('Azure Managed Redis SKU. Balanced_B0 is the smallest that runs RediSearch and RedisJSON.')
param skuName string = 'Balanced_B0'

@description('Replicate the data to a second node. Disabled halves the price but risks data loss.')
@allowed([
  'Enabled'
  'Disabled'
])
param highAvailability string = 'Enabled'

@description('Object id of the web app managed identity: always gets data access.')
param appPrincipalId string

@description('Object id of the deploying user, for local development. Empty: no assignment.')
param userPrincipalId string = ''

@description('Log Analytics workspace that receives the connection audit log.')
param logAnalyticsWorkspaceId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability
    // Required from API version 2025-07-01. Public, because App Service (without a virtual
    // network) and developers' machines connect to it; Entra ID and TLS guard the endpoint.
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    // One endpoint behind a proxy: what a non-cluster client such as redis-py expects, and what
    // lets FT.SEARCH see the whole index.
    clusteringPolicy: 'EnterpriseCluster'
    // RediSearch requires NoEviction; chat history must never be dropped silently anyway.
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: 'Disabled'
    modules: [
      {
        name: 'RediSearch'
      }
      {
        name: 'RedisJSON'
      }
    ]
    // Append-only file, flushed every second: a restart loses at most a second of messages.
    persistence: {
      aofEnabled: true
      aofFrequency: '1s'
      rdbEnabled: false
    }
  }
}

// Assignment names allow letters and digits only, hence the object id without its hyphens.
resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: replace(appPrincipalId, '-', '')
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: appPrincipalId
    }
  }
}

resource userAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = if (!empty(userPrincipalId)) {
  parent: database
  name: replace(userPrincipalId, '-', '')
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: userPrincipalId
    }
  }
  // One assignment at a time: the database rejects concurrent updates.
  dependsOn: [
    appAccess
  ]
}

// Every connection, authentication (which Entra principal, success or not) and disconnection
// of the database, kept in the Log Analytics workspace (table REDConnectionEvents).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: database
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'ConnectionEvents'
        enabled: true
      }
    ]
  }
}

output name string = cluster.name
output hostName string = cluster.properties.hostName
output port int = database.properties.port

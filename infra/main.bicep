// redis-chat-memory on Azure: `azd up` creates everything below in one resource group, and
// `azd down --purge` removes it. Nothing here creates or hands out a key or a password: the web
// app runs as a user-assigned managed identity, the developer as their own Entra login.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource (except Azure OpenAI when openAiLocation is set).')
param location string

@description('Object id of the principal running azd (AZURE_PRINCIPAL_ID): gets data access to Redis and the model for local development. Empty: none.')
param principalId string = ''

@description('Kind of that principal: User for a person, ServicePrincipal for a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Azure Managed Redis SKU (Balanced_B0 is the smallest with RediSearch and RedisJSON).')
param redisSkuName string = 'Balanced_B0'

@description('Replicate Redis to a second node. Disabled roughly halves its price but risks data loss.')
@allowed([
  'Enabled'
  'Disabled'
])
param redisHighAvailability string = 'Enabled'

@description('App Service plan SKU.')
param appServiceSkuName string = 'B1'

@description('App Service instances (one app process each); people are spread over them with session affinity.')
@minValue(1)
@maxValue(30)
param appServiceInstances int = 1

@description('Region of Azure OpenAI when it differs from location (model availability and quota). Empty: location.')
param openAiLocation string = ''

@description('Name of the chat model deployment; the app calls it by this name.')
param openAiDeploymentName string = 'gpt-4o'

@description('Model behind the deployment.')
param openAiModelName string = 'gpt-4o'

@description('Model version; see the Azure OpenAI models page for what a region offers.')
param openAiModelVersion string = '2024-11-20'

@description('Deployment type of the model.')
param openAiDeploymentSkuName string = 'GlobalStandard'

@description('Rate limit of the deployment in thousands of tokens per minute.')
@minValue(1)
param openAiDeploymentCapacity int = 30

@description('Name of the embedding model deployment (search and recall by meaning).')
param openAiEmbeddingDeploymentName string = 'text-embedding-3-small'

@description('Rate limit of the embedding deployment in thousands of tokens per minute.')
@minValue(1)
param openAiEmbeddingCapacity int = 30

@description('Public demo (PUBLIC_DEMO): no sign-in, anyone on the internet can read and clear every conversation. Off: Microsoft Entra sign-in (Easy Auth) in front of the app.')
param publicDemo bool = false

@description('Comma-separated object ids of the users or groups allowed to sign in (AUTH_ALLOWED_PRINCIPALS). Empty: everyone in the tenant.')
param authAllowedPrincipals string = ''

@description('Comma-separated user ids allowed to clear all history (ADMIN_USERS).')
param adminUsers string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// Private unless a public demo is asked for: Easy Auth, its app registration and
// AUTH_MODE=easyauth all hang on this one switch.
var easyAuthEnabled = !publicDemo
var webAppName = '${abbrs.webSitesAppService}web-${resourceToken}'
var allowedPrincipals = filter(map(split(authAllowedPrincipals, ','), id => trim(id)), id => !empty(id))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}web-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    name: '${abbrs.cacheRedisEnterprise}${resourceToken}'
    location: location
    tags: tags
    skuName: redisSkuName
    highAvailability: redisHighAvailability
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesOpenAI}${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSkuName: openAiDeploymentSkuName
    deploymentCapacity: openAiDeploymentCapacity
    embeddingDeploymentName: openAiEmbeddingDeploymentName
    embeddingCapacity: openAiEmbeddingCapacity
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module signIn 'modules/signin.bicep' = if (easyAuthEnabled) {
  name: 'signin'
  scope: rg
  params: {
    uniqueName: 'redis-chat-memory-${resourceToken}'
    displayName: 'redis-chat-memory (${environmentName})'
    webHostName: '${webAppName}.azurewebsites.net'
    identityPrincipalId: identity.outputs.principalId
    allowedPrincipalIds: allowedPrincipals
    deployingPrincipalId: principalType == 'User' ? principalId : ''
  }
}

module web 'modules/web.bicep' = {
  name: 'web'
  scope: rg
  params: {
    planName: '${abbrs.webServerFarms}${resourceToken}'
    appName: webAppName
    location: location
    tags: tags
    skuName: appServiceSkuName
    instanceCount: appServiceInstances
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    redisHost: redis.outputs.hostName
    redisPort: redis.outputs.port
    openAiEndpoint: openAi.outputs.endpoint
    openAiDeploymentName: openAi.outputs.deploymentName
    openAiEmbeddingDeploymentName: openAi.outputs.embeddingDeploymentName
    openAiModelName: openAiModelName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    enableEasyAuth: easyAuthEnabled
    authClientId: easyAuthEnabled ? signIn!.outputs.clientId : ''
    adminUsers: adminUsers
  }
}

// azd stores these in .azure/<env>/.env; `azd env get-values > .env` hands them to a local run,
// which then signs in as the developer. AZURE_CLIENT_ID is deliberately absent: it switches the
// app to ManagedIdentityCredential and belongs to the web app alone.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output REDIS_HOST string = redis.outputs.hostName
output REDIS_PORT int = redis.outputs.port
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_OPENAI_DEPLOYMENT string = openAi.outputs.deploymentName
output AZURE_OPENAI_MODEL string = openAiModelName
output AZURE_OPENAI_EMBEDDING_DEPLOYMENT string = openAi.outputs.embeddingDeploymentName
output SERVICE_WEB_NAME string = web.outputs.name
output SERVICE_WEB_URI string = web.outputs.uri
// Which one `azd up` made: 'easyauth' (Microsoft Entra sign-in) or 'demo' (public demo).
output WEB_AUTH_MODE string = easyAuthEnabled ? 'easyauth' : 'demo'

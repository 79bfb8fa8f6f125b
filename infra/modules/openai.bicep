// Azure OpenAI with key authentication disabled, a chat model deployment, an embedding model
// deployment (search and recall by meaning), and the "Cognitive Services OpenAI User" role for
// the web app identity and the deploying user.

@description('Account name, also its custom subdomain (<name>.openai.azure.com).')
param name string

param location string
param tags object = {}

param deploymentName string = 'gpt-4o'
param modelName string = 'gpt-4o'
param modelVersion string = '2024-11-20'

@description('Deployment type. GlobalStandard bills per token and has the widest regional availability.')
param deploymentSkuName string = 'GlobalStandard'

@description('Rate limit in thousands of tokens per minute; it costs nothing by itself.')
@minValue(1)
param deploymentCapacity int = 30

@description('Name of the embedding model deployment; the app calls it by this name.')
param embeddingDeploymentName string = 'text-embedding-3-small'
param embeddingModelName string = 'text-embedding-3-small'
param embeddingModelVersion string = '1'

@description('Rate limit of the embedding deployment in thousands of tokens per minute.')
@minValue(1)
param embeddingCapacity int = 30

@description('Object id of the web app managed identity.')
param appPrincipalId string

@description('Object id of the deploying user or service principal. Empty: no role assignment.')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

@description('Log Analytics workspace that receives the audit and request logs.')
param logAnalyticsWorkspaceId string

var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' // Cognitive Services OpenAI User
var logCategories = [
  'Audit'
  'RequestResponse'
  'AzureOpenAIRequestUsage'
  'Trace'
]

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    // Entra ID tokens only: no API key can be used, even if one leaked.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSkuName
    capacity: deploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    versionUpgradeOption: 'OnceCurrentVersionExpired'
    raiPolicyName: 'Microsoft.DefaultV2'
  }
}

// Messages are embedded in the background; the same keyless role covers this deployment.
// One deployment at a time per account: Azure refuses concurrent ones.
resource embeddingDeployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: embeddingDeploymentName
  dependsOn: [
    deployment
  ]
  sku: {
    name: deploymentSkuName
    capacity: embeddingCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: embeddingModelName
      version: embeddingModelVersion
    }
    versionUpgradeOption: 'OnceCurrentVersionExpired'
    raiPolicyName: 'Microsoft.DefaultV2'
  }
}

resource appRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: account
  name: guid(account.id, appPrincipalId, openAiUserRoleId)
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAiUserRoleId)
  }
}

resource userRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  scope: account
  name: guid(account.id, userPrincipalId, openAiUserRoleId)
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAiUserRoleId)
  }
}

// Who called the model and what it cost, kept in the Log Analytics workspace: control-plane
// audit, each request (caller, deployment, status, duration) and its token usage.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      for category in logCategories: {
        category: category
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
output embeddingDeploymentName string = embeddingDeployment.name

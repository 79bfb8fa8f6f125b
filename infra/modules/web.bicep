// App Service plan (Linux) and the Streamlit web app, its app settings, logs, and optional
// Easy Auth. Every app setting the app reads is named here, in `appSettings`; the tests compare
// that list with chatbot/config.py SETTINGS.

param planName string
param appName string
param location string
param tags object = {}

@description('App Service plan SKU. B1 is the cheapest with Always On, WebSockets and no quotas.')
param skuName string = 'B1'

@description('Instances of the plan (each runs one app process; see README "How many people one instance serves"). B1 allows 3, S1 10, P0v3 30.')
@minValue(1)
@maxValue(30)
param instanceCount int = 1

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity: AZURE_CLIENT_ID makes the app use ManagedIdentityCredential.')
param identityClientId string

param redisHost string
param redisPort int
param openAiEndpoint string
param openAiDeploymentName string
param openAiEmbeddingDeploymentName string
param openAiModelName string
param applicationInsightsConnectionString string
param logAnalyticsWorkspaceId string

@description('Require Microsoft Entra sign-in in front of the app (App Service Easy Auth). Off only for a public demo.')
param enableEasyAuth bool = true

@description('Client id of the Entra app registration Easy Auth signs users in with (modules/signin.bicep).')
param authClientId string = ''

@description('Comma-separated user ids allowed to clear all history.')
param adminUsers string = ''

// Streamlit on the port App Service routes to (8000 for Python), on every interface, with no
// browser to open, no file watcher (nothing edits the code in production) and no usage
// statistics sent out. Oryx's start-up script activates the virtualenv first, so `python` has
// streamlit. One string: tests/test_startup_command.py runs exactly this.
var startupCommand = 'python -m streamlit run app.py --server.port 8000 --server.address 0.0.0.0 --server.headless true --server.fileWatcherType none --browser.gatherUsageStats false'

// Always On keeps the single Streamlit process warm; the Free and Shared tiers do not offer it.
var alwaysOn = !contains([
  'F1'
  'FREE'
  'D1'
  'SHARED'
], toUpper(skuName))

var appSettings = union(
  {
    // chatbot/config.py, Scope.AZURE
    REDIS_HOST: redisHost
    REDIS_PORT: string(redisPort)
    AZURE_OPENAI_ENDPOINT: openAiEndpoint
    AZURE_OPENAI_DEPLOYMENT: openAiDeploymentName
    AZURE_OPENAI_EMBEDDING_DEPLOYMENT: openAiEmbeddingDeploymentName
    AZURE_OPENAI_MODEL: openAiModelName
    AZURE_CLIENT_ID: identityClientId
    AUTH_MODE: enableEasyAuth ? 'easyauth' : 'demo'
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    // chatbot/config.py, Scope.OPTIONAL
    ADMIN_USERS: adminUsers
    // App Service: install requirements.txt with Oryx when azd deploys the code.
    SCM_DO_BUILD_DURING_DEPLOYMENT: 'true'
    ENABLE_ORYX_BUILD: 'true'
  },
  enableEasyAuth
    ? {
        // Easy Auth proves itself to Entra with a token of this managed identity (a federated
        // identity credential on the app registration) instead of a client secret.
        OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
        // Streamlit maps App Service's identity headers into st.user (chatbot/identity.py).
        STREAMLIT_SERVER_TRUSTED_USER_HEADERS: '{"X-MS-CLIENT-PRINCIPAL-ID": "oid", "X-MS-CLIENT-PRINCIPAL-NAME": "name"}'
      }
    : {
        // The public demo, asked for with PUBLIC_DEMO: demo mode on the deployed Redis,
        // which the app otherwise refuses (chatbot/services.py check_demo_storage).
        ALLOW_DEMO_WITH_REMOTE_REDIS: 'true'
        // Keys and index of its own, never the signed-in users' `chat` (memory/namespaces.py),
        // so PUBLIC_DEMO false makes the environment private again with none of the demo's
        // data; the app refuses to run the demo while this Redis holds signed-in users' data.
        CHAT_INDEX_NAME: 'chat-demo'
      }
)

var logCategories = [
  'AppServiceConsoleLogs'
  'AppServiceHTTPLogs'
  'AppServiceAppLogs'
  'AppServicePlatformLogs'
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: skuName
    capacity: instanceCount
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': 'web'
  })
  kind: 'app,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Streamlit keeps each session in the memory of one instance: pin browsers to it.
    clientAffinityEnabled: true
    siteConfig: {
      linuxFxVersion: 'PYTHON|3.11'
      appCommandLine: startupCommand
      // Streamlit talks to the browser over a WebSocket.
      webSocketsEnabled: true
      alwaysOn: alwaysOn
      healthCheckPath: '/_stcore/health'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
  }
}

resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No publishing passwords: azd deploys with an Entra token.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (enableEasyAuth) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          // The NAME of the app setting holding the managed identity's client id, not a secret.
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: true
      }
    }
  }
  // Site config writes are serialized; the app setting it names must exist first.
  dependsOn: [
    appSettingsConfig
  ]
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
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

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}'

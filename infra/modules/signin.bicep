// The Microsoft Entra app registration App Service Authentication (Easy Auth) signs people in
// with, declared with the Microsoft Graph Bicep extension (infra/bicepconfig.json names its
// version; Bicep 0.36.1 or newer). It holds no secret: its federated identity credential lets
// the web app's user-assigned managed identity prove itself instead.
extension microsoftGraphV1

@description('Unique name of the app registration (idempotent redeploys find it by this).')
param uniqueName string

@description('Display name shown on the sign-in and consent pages.')
param displayName string

@description('Host name of the web app: the redirect URI is https://<host>/.auth/login/aad/callback.')
param webHostName string

@description('Object (principal) id of the web app\'s user-assigned managed identity.')
param identityPrincipalId string

@description('Object ids of the users or groups allowed to sign in. Empty: everyone in the tenant.')
param allowedPrincipalIds array = []

@description('Object id of the person running azd; allowed too when an allow-list is set.')
param deployingPrincipalId string = ''

var restricted = !empty(allowedPrincipalIds)
// Without an app role of its own, an assignment uses the default access role (all zeros).
var defaultAccessRole = '00000000-0000-0000-0000-000000000000'
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
var userReadScope = 'e1fe6dd8-ba31-4d61-89e7-88639da4683d'
var allowed = union(allowedPrincipalIds, restricted && !empty(deployingPrincipalId) ? [deployingPrincipalId] : [])

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  web: {
    redirectUris: [
      'https://${webHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableIdTokenIssuance: true
    }
  }
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          id: userReadScope
          type: 'Scope'
        }
      ]
    }
  ]

  // Easy Auth presents a token of the managed identity (app setting
  // OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID) as the client assertion: no client secret exists.
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${app.uniqueName}/web-app-managed-identity'
    audiences: [
      'api://AzureADTokenExchange'
    ]
    issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    subject: identityPrincipalId
  }
}

// With an allow-list, Entra itself refuses a sign-in by anyone not assigned to the app.
resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
  appRoleAssignmentRequired: restricted
}

resource assignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for principal in allowed: {
    appRoleId: defaultAccessRole
    principalId: principal
    resourceId: servicePrincipal.id
  }
]

@description('Client id of the app registration: what Easy Auth signs people in as.')
output clientId string = app.appId

// The web app's user-assigned managed identity. Redis access policies, the OpenAI role and the
// Application Insights role are granted to it, so the app never holds a key or a password.

@description('Name of the identity.')
param name string

param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
@description('Object (principal) id: what access policies and role assignments are granted to.')
output principalId string = identity.properties.principalId
@description('Client id: what the app passes to ManagedIdentityCredential (AZURE_CLIENT_ID).')
output clientId string = identity.properties.clientId

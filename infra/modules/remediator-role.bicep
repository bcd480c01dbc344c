// The custom role "ACI Image Pull Remediator": exactly the writes the remediation needs beyond
// Reader, and nothing else. Role names are unique in a tenant, so there is one definition,
// assignable in every target subscription, created once in the first of them.

targetScope = 'subscription'

@description('Role name; unique in the tenant. The role definition GUID is derived from it.')
param roleName string

@description('Subscriptions the role may be assigned in.')
@minLength(1)
param assignableSubscriptionIds array

resource remediatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // Deterministic: redeploying updates the same definition instead of clashing on the name.
  name: guid(tenant().tenantId, roleName)
  properties: {
    roleName: roleName
    description: 'Redeploy container groups, set a registry\'s network bypass, and read deployment templates, for the ACI image-pull remediation function.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // Redeploy the container group whose image pull failed.
          'Microsoft.ContainerInstance/containerGroups/write'
          // Allow trusted Azure services through a network-restricted registry (networkRuleBypassOptions).
          'Microsoft.ContainerRegistry/registries/write'
          // Redeploying a group that runs as a user-assigned identity requires assigning that identity.
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
          // Recover the failed definition from the template deployment that carried it.
          'Microsoft.Resources/deployments/exportTemplate/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [for id in assignableSubscriptionIds: '/subscriptions/${id}']
  }
}

output roleDefinitionGuid string = remediatorRole.name

// One custom role of the remediator at a subscription: "ACI Image Pull Remediator" at an allowed
// scope that is a whole subscription, or its "(subscription reads)" role at the subscription of
// an allowed scope that is a resource group.

targetScope = 'subscription'

@description('Object id of the remediator (the function app\'s user-assigned identity).')
param remediatorPrincipalId string

@description('GUID of the custom role assigned here (remediator-role.bicep).')
param roleDefinitionGuid string

@description('Description of the assignment.')
param roleDescription string

// Names are deterministic GUIDs of (scope, principal, role), so a redeployment finds the same
// assignment instead of failing with RoleAssignmentExists; principalType ServicePrincipal avoids
// PrincipalNotFound while a new identity replicates.
resource remediatorCustomRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, remediatorPrincipalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: roleDescription
  }
}

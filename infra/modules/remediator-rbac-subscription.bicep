// The remediator's custom role at one allowed scope that is a whole subscription.

targetScope = 'subscription'

@description('Object id of the remediator (the function app\'s user-assigned identity).')
param remediatorPrincipalId string

@description('GUID of the "ACI Image Pull Remediator" custom role (remediator-role.bicep).')
param remediatorRoleDefinitionGuid string

// Names are deterministic GUIDs of (scope, principal, role), so a redeployment finds the same
// assignment instead of failing with RoleAssignmentExists; principalType ServicePrincipal avoids
// PrincipalNotFound while a new identity replicates.
resource remediatorCustomRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, remediatorPrincipalId, remediatorRoleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', remediatorRoleDefinitionGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: read what it diagnoses, redeploy container groups'
  }
}

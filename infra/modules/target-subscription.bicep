// Deployed once per target subscription (the subscriptions whose ACI deployments are healed):
// the remediator's three role assignments at subscription scope, and the Event Grid system topic
// of the subscription with the event subscription that calls the function.

targetScope = 'subscription'

@description('Object id of the remediator (the function app\'s user-assigned identity).')
param remediatorPrincipalId string

@description('GUID of the "ACI Image Pull Remediator" custom role (remediator-role.bicep).')
param remediatorRoleDefinitionGuid string

@description('Resource group, created in this subscription, that holds its Event Grid system topic.')
param eventsResourceGroupName string

param location string
param tags object = {}

@description('Resource id of the function app (in the app\'s subscription).')
param functionAppId string

@description('Create the event subscription; the function must already be published (see README).')
param deployEventSubscription bool

@description('Resource id of the user-assigned identity Event Grid dead-letters with.')
param deadLetterIdentityId string

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string

param deadLetterContainerName string

// Built-in roles.
var readerRoleGuid = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var rbacAdministratorRoleGuid = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'

// The only roles the remediator may grant or remove, and only to service principals (managed
// identities are service principals): AcrPull (7f951dda-4ed3-4680-a7ca-43fe172d538d) and
// Container Registry Repository Reader (b93aa761-3e63-49ed-ac28-beffa264f7ac, for registries in
// ABAC repository-permission mode). Writes are checked on the request (@Request), deletes on the
// existing assignment (@Resource). Structure, from the RBAC delegation examples:
//   ((!(ActionMatches{write})) OR (@Request role IN {AcrPull, Repository Reader} AND @Request principal type = ServicePrincipal))
//   AND
//   ((!(ActionMatches{delete})) OR (@Resource role IN {AcrPull, Repository Reader}))
var delegationCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d, b93aa761-3e63-49ed-ac28-beffa264f7ac} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d, b93aa761-3e63-49ed-ac28-beffa264f7ac}))'

// ---------------------------------------------------------------------------------------------
// The remediator's roles. Names are deterministic GUIDs of (scope, principal, role), so a
// redeployment finds the same assignments instead of failing with RoleAssignmentExists.
// principalType ServicePrincipal avoids PrincipalNotFound while a new identity replicates.
// ---------------------------------------------------------------------------------------------

resource remediatorReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, remediatorPrincipalId, readerRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: read everything it diagnoses'
  }
}

resource remediatorRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, remediatorPrincipalId, rbacAdministratorRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: may assign or remove only AcrPull and Container Registry Repository Reader, to service principals'
    condition: delegationCondition
    conditionVersion: '2.0'
  }
}

resource remediatorCustomRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, remediatorPrincipalId, remediatorRoleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', remediatorRoleDefinitionGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: redeploy groups, update registries'
  }
}

// ---------------------------------------------------------------------------------------------
// Event Grid: this subscription's system topic and the subscription to the function
// ---------------------------------------------------------------------------------------------

resource eventsResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: tags
}

module events 'target-events.bicep' = {
  name: 'aci-remediation-events'
  scope: eventsResourceGroup
  params: {
    source: subscription().id
    tags: tags
    functionAppId: functionAppId
    deployEventSubscription: deployEventSubscription
    deadLetterIdentityId: deadLetterIdentityId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}

output systemTopicId string = events.outputs.systemTopicId

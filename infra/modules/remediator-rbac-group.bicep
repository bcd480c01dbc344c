// The remediator's rights at one resource group: at an allowed scope, its custom role; at a
// registries' scope (a resource group holding registries), the registry role, Role Based Access
// Control Administrator under the delegation condition, and optionally the Deny policy on public
// network access. remediator-rbac-registry.bicep does the same at one registry.

targetScope = 'resourceGroup'

@description('Object id of the remediator (the function app\'s user-assigned identity).')
param remediatorPrincipalId string

@description('GUID of the custom role assigned here: "ACI Image Pull Remediator" at an allowed scope, its "(registries)" role at a registries\' scope.')
param roleDefinitionGuid string

@description('The delegation condition of main.bicep; empty: no Role Based Access Control Administrator here (an allowed scope).')
param delegationCondition string = ''

@description('Assign the built-in policy that denies public network access on registries here.')
param denyRegistryPublicNetworkAccess bool = false

@description('Description of the custom role\'s assignment.')
param roleDescription string

var rbacAdministratorRoleGuid = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
// "Public network access should be disabled for Container registries" (Audit, Deny or Disabled):
// Azure/azure-policy built-in-policies/policyDefinitions/Container Registry/ACR_PublicNetworkAccess_AuditDeny.json
var registryPublicNetworkAccessPolicyGuid = '0fdf0491-d080-4575-b627-ad0e843cba0f'

resource customRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, remediatorPrincipalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: roleDescription
  }
}

resource rbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(delegationCondition)) {
  name: guid(resourceGroup().id, remediatorPrincipalId, rbacAdministratorRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: may only add AcrPull or Container Registry Repository Reader assignments, for other service principals; never delete one'
    condition: delegationCondition
    conditionVersion: '2.0'
  }
}

resource denyPublicNetworkAccess 'Microsoft.Authorization/policyAssignments@2024-04-01' = if (denyRegistryPublicNetworkAccess) {
  name: 'deny-acr-public-network-access'
  properties: {
    displayName: 'Container registries here must keep public network access disabled (ACI image-pull remediation)'
    policyDefinitionId: tenantResourceId('Microsoft.Authorization/policyDefinitions', registryPublicNetworkAccessPolicyGuid)
    parameters: {
      effect: {
        value: 'Deny'
      }
    }
    enforcementMode: 'Default'
  }
}

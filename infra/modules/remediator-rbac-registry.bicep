// The remediator's rights at one registry (a registries' scope given as a registry id): the
// registry role, Role Based Access Control Administrator under the delegation condition, and
// optionally the Deny policy on public network access. remediator-rbac-group.bicep does the same
// at a resource group.

targetScope = 'resourceGroup'

@description('Name of the registry, in this resource group.')
param registryName string

@description('Object id of the remediator (the function app\'s user-assigned identity).')
param remediatorPrincipalId string

@description('GUID of the "ACI Image Pull Remediator (registries)" custom role (remediator-role.bicep).')
param roleDefinitionGuid string

@description('The delegation condition of main.bicep.')
param delegationCondition string

@description('Assign the built-in policy that denies public network access on this registry.')
param denyRegistryPublicNetworkAccess bool

var rbacAdministratorRoleGuid = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
// "Public network access should be disabled for Container registries" (Audit, Deny or Disabled):
// Azure/azure-policy built-in-policies/policyDefinitions/Container Registry/ACR_PublicNetworkAccess_AuditDeny.json
var registryPublicNetworkAccessPolicyGuid = '0fdf0491-d080-4575-b627-ad0e843cba0f'

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

resource customRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, remediatorPrincipalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: remediatorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'ACI image-pull remediator: set the registry\'s network bypass, look up images'
  }
}

resource rbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, remediatorPrincipalId, rbacAdministratorRoleGuid)
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
  scope: registry
  name: 'deny-acr-public-network-access'
  properties: {
    displayName: 'This registry must keep public network access disabled (ACI image-pull remediation)'
    policyDefinitionId: tenantResourceId('Microsoft.Authorization/policyDefinitions', registryPublicNetworkAccessPolicyGuid)
    parameters: {
      effect: {
        value: 'Deny'
      }
    }
    enforcementMode: 'Default'
  }
}

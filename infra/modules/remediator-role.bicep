// The remediator's custom roles, each with exactly the actions the app performs where it is
// assigned (tests/test_least_privilege.py runs every bundled scenario with these roles and checks
// that the sandbox authorized exactly these actions, no more, no fewer). Role names are unique in
// a tenant, so each is one definition, created once in the first target subscription.
//   - "ACI Image Pull Remediator", at the allowed scopes: the reads of a diagnosis, the redeploy
//     (containerGroups/write, with assign/action on the group's user-assigned identities), and
//     the export of the failed deployment's template. It replaces Reader.
//   - "ACI Image Pull Remediator (registries)", at the registries' scopes only: the network
//     bypass fix (registries/write) and the image lookup of a diagnosis (registries/pull/read).
//     Azure RBAC cannot condition registries/write (conditions apply to data actions and to role
//     assignments), so it is confined by scope here and by Azure Policy (remediator-rbac-*.bicep).
//   - "ACI Image Pull Remediator (subscription reads)", only where an allowed scope is a resource
//     group: the subscription-wide reads a diagnosis makes (below).

targetScope = 'subscription'

@description('Name of the role assigned at the allowed scopes; unique in the tenant.')
param roleName string

@description('Name of the role assigned at the registries\' scopes; unique in the tenant.')
param registryRoleName string

@description('Subscription or resource group ids the first role may be assigned at (the allowed scopes).')
@minLength(1)
param assignableScopes array

@description('Subscription or resource group ids holding the registries\' scopes; empty: no registry role.')
param registryAssignableScopes array

@description('Name of the role assigned at the subscriptions of allowed scopes that are resource groups; unique in the tenant.')
param subscriptionReadsRoleName string

@description('Subscriptions holding allowed scopes that are resource groups; empty: no subscription reads role.')
param subscriptionReadsAssignableScopes array

resource remediatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // Deterministic: redeploying updates the same definition instead of clashing on the name.
  name: guid(tenant().tenantId, roleName)
  properties: {
    roleName: roleName
    description: 'Read and redeploy the container groups whose image pull failed, for the ACI image-pull remediation function.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // What a diagnosis reads: the group, its identities, registries and their endpoints,
          // role assignments and definitions (who may pull, who deployed), the Activity Log, the
          // deployment that carried the write, and every blocker of a fix (locks, deny
          // assignments, Azure Policy).
          'Microsoft.Authorization/denyAssignments/read'
          'Microsoft.Authorization/locks/read'
          'Microsoft.Authorization/policyAssignments/read'
          'Microsoft.Authorization/policyDefinitions/read'
          'Microsoft.Authorization/roleAssignments/read'
          'Microsoft.Authorization/roleDefinitions/read'
          'Microsoft.ContainerInstance/containerGroups/read'
          'Microsoft.ContainerRegistry/registries/privateEndpointConnections/read'
          'Microsoft.ContainerRegistry/registries/read'
          'Microsoft.Insights/eventtypes/values/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
          'Microsoft.Network/privateDnsZones/read'
          'Microsoft.Network/privateDnsZones/virtualNetworkLinks/read'
          'Microsoft.Network/privateEndpoints/read'
          'Microsoft.Network/virtualNetworks/read'
          'Microsoft.Resources/deployments/operations/read'
          'Microsoft.Resources/deployments/read'
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          // Redeploy the container group whose image pull failed.
          'Microsoft.ContainerInstance/containerGroups/write'
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
    assignableScopes: assignableScopes
  }
}

resource registryRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(registryAssignableScopes)) {
  name: guid(tenant().tenantId, registryRoleName)
  properties: {
    roleName: registryRoleName
    description: 'Let trusted Azure services through a network-restricted registry and look up its images, for the ACI image-pull remediation function.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // Allow trusted Azure services through a network-restricted registry (networkRuleBypassOptions).
          'Microsoft.ContainerRegistry/registries/write'
          // Look up the image's repository and tag (ACR_IMAGE_NOT_FOUND) through the registry's data plane.
          'Microsoft.ContainerRegistry/registries/pull/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: registryAssignableScopes
  }
}

// The app reads some lists of a whole subscription (the Activity Log, locks, deny and policy
// assignments, each filtered in code), and role and policy definitions by their subscription-level
// ids, so an allowed scope that is a resource group needs these reads at its subscription;
// nothing else is granted there.
resource subscriptionReadsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(subscriptionReadsAssignableScopes)) {
  name: guid(tenant().tenantId, subscriptionReadsRoleName)
  properties: {
    roleName: subscriptionReadsRoleName
    description: 'Read the Activity Log, locks, deny and policy assignments, role and policy definitions of a subscription, for the ACI image-pull remediation function.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Authorization/denyAssignments/read'
          'Microsoft.Authorization/locks/read'
          'Microsoft.Authorization/policyAssignments/read'
          'Microsoft.Authorization/policyDefinitions/read'
          'Microsoft.Authorization/roleDefinitions/read'
          'Microsoft.Insights/eventtypes/values/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: subscriptionReadsAssignableScopes
  }
}

output roleDefinitionGuid string = remediatorRole.name
output registryRoleDefinitionGuid string = registryRole.name
output subscriptionReadsRoleDefinitionGuid string = subscriptionReadsRole.name

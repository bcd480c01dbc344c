// Broken, a module: the same module, but the group names the identity and registry by their ids and
// names, not through the module, so nothing orders it after the module's AcrPull assignment.
param location string = resourceGroup().location
param registryName string = 'contosoapps${uniqueString(resourceGroup().id)}'

var identityId = resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id-aci-pull')
var server = '${toLower(registryName)}.azurecr.io'

module pull './modules/registry-with-pull.bicep' = {
  name: 'registry-with-pull'
  params: {
    location: location
    registryName: registryName
  }
}

resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: 'cg-app'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    osType: 'Linux'
    containers: [
      {
        name: 'app'
        properties: {
          image: '${server}/app:1.0'
          resources: {
            requests: {
              cpu: 1
              memoryInGB: 1
            }
          }
        }
      }
    ]
    imageRegistryCredentials: [
      {
        server: server
        identity: identityId
      }
    ]
  }
}

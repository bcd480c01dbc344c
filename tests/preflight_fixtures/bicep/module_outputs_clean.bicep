// Clean, a module: the registry, identity and assignment come from a local module; the group uses
// the module's outputs, so it is deployed after everything the module deploys.
param location string = resourceGroup().location
param registryName string = 'contosoapps${uniqueString(resourceGroup().id)}'

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
      '${pull.outputs.identityId}': {}
    }
  }
  properties: {
    osType: 'Linux'
    containers: [
      {
        name: 'app'
        properties: {
          image: '${pull.outputs.loginServer}/app:1.0'
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
        server: pull.outputs.loginServer
        identity: pull.outputs.identityId
      }
    ]
  }
}

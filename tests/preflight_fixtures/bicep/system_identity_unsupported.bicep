// Broken: the credential names the system-assigned identity. The registry is not declared here
// (an existing one elsewhere), so nothing is decided about pull rights.
param location string = resourceGroup().location
param registryName string = 'contosoapps${uniqueString(resourceGroup().id)}'

resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: 'cg-app'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    osType: 'Linux'
    restartPolicy: 'Always'
    containers: [
      {
        name: 'app'
        properties: {
          image: 'contososhared.azurecr.io/app:1.0'
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
        server: 'contososhared.azurecr.io'
        identity: '[system]'
      }
    ]
  }
}

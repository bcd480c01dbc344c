// Clean, the shape of the ARM example in the ACI docs' "deploy from ACR with a managed identity"
// article, written as Bicep, with the credential naming the identity the group attaches (myACRId).
// Neither the identity nor the registry is declared here, so pull rights are not decided offline.
param location string = 'norwayeast'

var attached = resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'myACRId')
var named = resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'myACRId')

resource myacr 'Microsoft.ContainerInstance/containerGroups@2021-09-01' = {
  name: 'myacr'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${attached}': {}
    }
  }
  properties: {
    containers: [
      {
        name: 'mycontainer'
        properties: {
          image: 'myacr.azurecr.io/hello-world:latest'
          ports: [
            {
              port: 80
              protocol: 'TCP'
            }
          ]
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
        server: 'myacr.azurecr.io'
        identity: named
      }
    ]
    ipAddress: {
      ports: [
        {
          port: 80
          protocol: 'TCP'
        }
      ]
      type: 'Public'
    }
    osType: 'Linux'
  }
}

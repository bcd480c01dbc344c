// Clean, a multi-container shape: two containers from the declared registry with one identity
// credential, and a public sidecar image that needs none.
param location string = resourceGroup().location
param registryName string = 'contosoapps${uniqueString(resourceGroup().id)}'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  sku: {
    name: 'Standard'
  }
  properties: {
    adminUserEnabled: false
  }
}

resource pullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-aci-pull'
  location: location
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullIdentity.id, '7f951dda-4ed3-4680-a7ca-43fe172d538d')
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
    principalId: pullIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: 'cg-multi'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${pullIdentity.id}': {}
    }
  }
  properties: {
    osType: 'Linux'
    containers: [
      {
        name: 'api'
        properties: {
          image: '${registry.properties.loginServer}/api:2.1'
          ports: [
            {
              port: 8080
            }
          ]
          resources: {
            requests: {
              cpu: json('0.5')
              memoryInGB: json('1.5')
            }
          }
        }
      }
      {
        name: 'worker'
        properties: {
          image: '${registry.properties.loginServer}/worker:2.1'
          resources: {
            requests: {
              cpu: json('0.5')
              memoryInGB: 1
            }
          }
        }
      }
      {
        name: 'proxy'
        properties: {
          image: 'mcr.microsoft.com/oss/nginx/nginx:1.25'
          ports: [
            {
              port: 80
            }
          ]
          resources: {
            requests: {
              cpu: json('0.25')
              memoryInGB: json('0.5')
            }
          }
        }
      }
    ]
    imageRegistryCredentials: [
      {
        server: registry.properties.loginServer
        identity: pullIdentity.id
      }
    ]
    ipAddress: {
      type: 'Public'
      ports: [
        {
          port: 80
          protocol: 'TCP'
        }
      ]
    }
  }
  dependsOn: [
    acrPull
  ]
}

// Broken: the registry's private endpoint is put in the subnet delegated to ACI (a nested subnet).
param location string = resourceGroup().location
param registryName string = 'contosoapps${uniqueString(resourceGroup().id)}'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  sku: {
    name: 'Premium'
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

resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {
  name: 'vnet-app'
  location: location
  properties: {
    addressSpace: {
      addressPrefixes: [
        '10.10.0.0/16'
      ]
    }
  }

  resource aciSubnet 'subnets' = {
    name: 'snet-aci'
    properties: {
      addressPrefix: '10.10.1.0/24'
      delegations: [
        {
          name: 'aci'
          properties: {
            serviceName: 'Microsoft.ContainerInstance/containerGroups'
          }
        }
      ]
    }
  }
}

resource peSubnet 'Microsoft.Network/virtualNetworks/subnets@2023-04-01' = {
  parent: vnet
  name: 'snet-endpoints'
  properties: {
    addressPrefix: '10.10.2.0/24'
  }
}

resource registryEndpoint 'Microsoft.Network/privateEndpoints@2023-04-01' = {
  name: 'pe-registry'
  location: location
  properties: {
    subnet: {
      id: vnet::aciSubnet.id
    }
    privateLinkServiceConnections: [
      {
        name: 'registry'
        properties: {
          privateLinkServiceId: registry.id
          groupIds: [
            'registry'
          ]
        }
      }
    ]
  }
}

resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: 'cg-app'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${pullIdentity.id}': {}
    }
  }
  properties: {
    osType: 'Linux'
    restartPolicy: 'Always'
    containers: [
      {
        name: 'app'
        properties: {
          image: '${registry.properties.loginServer}/app:1.0'
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
        server: registry.properties.loginServer
        identity: pullIdentity.id
      }
    ]
    subnetIds: [
      {
        id: vnet::aciSubnet.id
      }
    ]
  }
  dependsOn: [
    acrPull
  ]
}

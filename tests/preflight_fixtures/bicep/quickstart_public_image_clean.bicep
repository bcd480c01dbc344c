// Clean, a quickstart-like shape: one container from a public image with a public IP, no registry
// credential, so nothing about pulling with an identity applies.
@description('Name for the container group')
param name string = 'aci-helloworld'

@description('Location for all resources.')
param location string = resourceGroup().location

@description('Container image to deploy.')
param image string = 'mcr.microsoft.com/azuredocs/aci-helloworld'

param port int = 80
param cpuCores int = 1
param memoryInGb int = 2

@allowed([
  'Always'
  'Never'
  'OnFailure'
])
param restartPolicy string = 'Always'

resource containerGroup 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
  name: name
  location: location
  properties: {
    containers: [
      {
        name: name
        properties: {
          image: image
          ports: [
            {
              port: port
              protocol: 'TCP'
            }
          ]
          resources: {
            requests: {
              cpu: cpuCores
              memoryInGB: memoryInGb
            }
          }
        }
      }
    ]
    osType: 'Linux'
    restartPolicy: restartPolicy
    ipAddress: {
      type: 'Public'
      ports: [
        {
          port: port
          protocol: 'TCP'
        }
      ]
    }
  }
}

output containerIPv4Address string = containerGroup.properties.ipAddress.ip

// Deployed once per target subscription (the subscriptions whose ACI deployments are healed): the
// Event Grid system topic of the subscription with the event subscription that calls the function.
// The remediator's roles are assigned at the allowed and the registries' scopes instead
// (main.bicep, remediator-rbac-*.bicep).

targetScope = 'subscription'

@description('Resource group, created in this subscription, that holds its Event Grid system topic.')
param eventsResourceGroupName string

param location string
param tags object = {}

@description('Resource id of the function app (in the app\'s subscription).')
param functionAppId string

@description('Create the event subscription; the function must already be published (see README).')
param deployEventSubscription bool

@description('Resource id of the user-assigned identity Event Grid dead-letters with.')
param deadLetterIdentityId string

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string

param deadLetterContainerName string

// ---------------------------------------------------------------------------------------------
// Event Grid: this subscription's system topic and the subscription to the function
// ---------------------------------------------------------------------------------------------

resource eventsResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: tags
}

module events 'target-events.bicep' = {
  name: 'aci-remediation-events'
  scope: eventsResourceGroup
  params: {
    source: subscription().id
    tags: tags
    functionAppId: functionAppId
    deployEventSubscription: deployEventSubscription
    deadLetterIdentityId: deadLetterIdentityId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}

output systemTopicId string = events.outputs.systemTopicId

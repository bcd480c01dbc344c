// The Event Grid system topic of one target subscription and the event subscription that
// delivers failed container-group writes to the function's Event Grid trigger.
//
// Property names and shapes follow Microsoft.EventGrid 2025-02-15 (Azure/azure-rest-api-specs,
// specification/eventgrid/resource-manager/Microsoft.EventGrid/stable/2025-02-15/EventGrid.json:
// AzureFunctionEventSubscriptionDestinationProperties, StringInAdvancedFilter, RetryPolicy,
// DeadLetterWithResourceIdentity, StorageBlobDeadLetterDestinationProperties).

targetScope = 'resourceGroup'

@description('The event source: /subscriptions/<id> of the target subscription.')
param source string

param tags object = {}

@description('Resource id of the function app; the trigger is its function on_resource_write_failure.')
param functionAppId string

@description('Create the event subscription. Event Grid checks that the function exists and is an Event Grid trigger, so publish the code first.')
param deployEventSubscription bool

@description('Resource id of the user-assigned identity Event Grid dead-letters with.')
param deadLetterIdentityId string

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string

param deadLetterContainerName string

// The name of the Python function (function_app.py) that receives the events.
var triggerFunctionName = 'on_resource_write_failure'

// A subscription is a global event source: its system topic lives in location 'global'. Only one
// system topic may exist per source; see README if the subscription already has one.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'aci-remediation-${last(split(source, '/'))}'
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${deadLetterIdentityId}': {}
    }
  }
  properties: {
    source: source
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource toFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deployEventSubscription) {
  parent: systemTopic
  name: 'aci-image-pull-remediation'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${triggerFunctionName}'
        // One event per delivery: a failed delivery retries (and dead-letters) only that event.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      // Only failed creates/updates. A pull that fails after ACI accepted the group (the
      // asynchronous path) also ends in ResourceWriteFailure, when ARM closes the long-running
      // operation, so no other event type is needed...
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteFailure'
      ]
      // ...of container groups, and of private endpoints (a registry's endpoint refused in the
      // ACI-delegated subnet; the app skips endpoints of anything else). String comparisons in
      // Event Grid filters are case-insensitive.
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.ContainerInstance/containerGroups/write'
            'Microsoft.Network/privateEndpoints/write'
          ]
        }
      ]
    }
    // The app also accepts CloudEvents 1.0: 'CloudEventSchemaV1_0' works here too, with the same
    // data.operationName filter key. Event Grid schema is kept because it is what the dead-letter
    // records and the replay route are documented with.
    eventDeliverySchema: 'EventGridSchema'
    // Event Grid's defaults, stated so that a change is deliberate: retries for up to 24 hours.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    // Events that still fail land in the dead-letter container; POST /api/replay accepts them.
    // The storage account refuses shared keys, so Event Grid writes with its user-assigned identity.
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: deadLetterIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output systemTopicId string = systemTopic.id

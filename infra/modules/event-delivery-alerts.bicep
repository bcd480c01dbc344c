// Metric alerts on one target subscription's Event Grid system topic, deployed in the topic's
// resource group: events dead-lettered (the blobs POST /api/replay reads back) and events dropped
// (dead-lettering itself failed, so nothing is left to replay).
//
// Metric names: MicrosoftDocs/azure-reference-other,
// azure-monitor-ref/supported-metrics/includes/Microsoft-EventGrid-systemTopics-metrics-include.md
// (DeadLetteredCount and DroppedEventCount, unit Count, aggregation Total, PT1M grain).
// Shape: azure-rest-api-specs, specification/monitor/resource-manager/Microsoft.Insights/stable/2018-03-01
// (metricAlert_API.json).

targetScope = 'resourceGroup'

@description('Short lowercase prefix (letters and digits) for resource names.')
@maxLength(8)
param namePrefix string

param tags object = {}

@description('Resource id of the Event Grid system topic (target-events.bicep).')
param systemTopicId string

@description('Action groups to notify (monitoring.bicep); may be empty.')
param actionGroupIds array

var topicName = last(split(systemTopicId, '/'))

resource deadLetteredAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-deadlettered-${topicName}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid dead-lettered failed-write events of this subscription: the function did not take them within the retry policy. Replay the dead-letter blobs with POST /api/replay.'
    severity: 2
    enabled: true
    scopes: [
      systemTopicId
    ]
    targetResourceType: 'Microsoft.EventGrid/systemTopics'
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLettered'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [for id in actionGroupIds: {
      actionGroupId: id
    }]
  }
}

resource droppedAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-dropped-${topicName}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid dropped failed-write events of this subscription: they could not be delivered nor dead-lettered, so no blob is left to replay. Check the dead-letter container and the Event Grid identity\'s access to it.'
    severity: 1
    enabled: true
    scopes: [
      systemTopicId
    ]
    targetResourceType: 'Microsoft.EventGrid/systemTopics'
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'Dropped'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DroppedEventCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [for id in actionGroupIds: {
      actionGroupId: id
    }]
  }
}

// Observability in the portal, in the app's resource group: a workbook on the Application
// Insights component, and log alerts on the app's own metrics for failed runs and for jobs the
// queue gave up on (the poison queue). The dead-letter alerts sit beside each target
// subscription's Event Grid system topic (event-delivery-alerts.bicep).
//
// The queries use the component's classic table names (customMetrics, traces, customDimensions):
// queries, workbooks and log alerts scoped to a workspace-based component keep accepting them
// (MicrosoftDocs/azure-docs, articles/azure-monitor/app/convert-classic-resource.md, "Table
// structure" and "Table schemas"); the workspace itself calls the tables AppMetrics and AppTraces.
// What the app writes there, and under which names, is remediation/telemetry.py;
// tests/test_monitoring.py checks every query against it.

targetScope = 'resourceGroup'

@description('Region of the workbook and the log alert rules (the app\'s).')
param location string

@description('Short lowercase prefix (letters and digits) for resource names.')
@maxLength(8)
param namePrefix string

param tags object = {}

@description('Resource id of the app\'s Application Insights component (the workbook\'s source and the log alerts\' scope).')
param appInsightsId string

@description('E-mail address the alerts notify, through an action group created here; ignored when existingActionGroupId is set.')
param alertEmailAddress string = ''

@description('Resource id of an existing action group for the alerts. With this and alertEmailAddress both empty, the alerts only show in the portal.')
param existingActionGroupId string = ''

var createActionGroup = empty(existingActionGroupId) && !empty(alertEmailAddress)

// Shape: azure-rest-api-specs, specification/monitor/resource-manager/Microsoft.Insights/stable/2023-01-01 (actionGroups).
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (createActionGroup) {
  name: 'ag-${namePrefix}-remediation'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('${namePrefix}-rem', 12) // at most 12 characters, shown in SMS and e-mail
    enabled: true
    emailReceivers: [
      {
        name: 'remediation-owner'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroupIds = !empty(existingActionGroupId) ? [existingActionGroupId] : (createActionGroup ? [actionGroup.id] : [])

// Shape: azure-rest-api-specs, specification/applicationinsights/resource-manager/Microsoft.Insights/stable/2023-06-01
// (workbooks_API.json). The name must be a GUID; this one is stable across redeployments.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'aci-remediation-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'ACI image-pull remediation'
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: appInsightsId
    serializedData: string(union(loadJsonContent('../workbook.json'), {
      fallbackResourceIds: [
        appInsightsId
      ]
    }))
  }
}

// Log alerts: the counters are exported as deltas, so a window's total of valueSum is how many
// happened in it. Stateful (autoMitigate): one notification when it fires, one when it resolves.
// Shape: azure-rest-api-specs, specification/monitor/resource-manager/Microsoft.Insights/stable/2023-12-01
// (scheduledQueryRule_API.json, examples/createOrUpdateScheduledQueryRule.json).
resource failedRunsAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-failed-runs'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACI remediation: a run failed'
    description: 'A remediation run ended with outcome "failed": the run itself could not finish. Its report (GET /api/remediations?resourceId=...) says why; the workbook lists the runs.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == "remediation.runs"
| where tostring(customDimensions.outcome) == "failed"
'''
          timeAggregation: 'Total'
          metricMeasureColumn: 'valueSum'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

// The poison-queue function consumes each message as it arrives, so the queue is non-empty only
// for a moment: the alert counts arrivals, recorded before anything else the function does.
resource poisonedJobsAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-poisoned-jobs'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACI remediation: a job reached the poison queue'
    description: 'A remediation job failed every delivery (host.json maxDequeueCount) and was moved to the poison queue; its failure is stored as a failed report.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == "remediation.jobs.poisoned"
'''
          timeAggregation: 'Total'
          metricMeasureColumn: 'valueSum'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

@description('The action groups the alerts notify (none, one created here, or the existing one).')
output actionGroupIds array = actionGroupIds
output workbookId string = workbook.id

// ACI ⇄ ACR managed-identity pull remediation: what a platform team deploys.
//
// Deploy at the scope of the subscription that hosts the function app:
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters @infra/main.parameters.json
// See infra/README.md for the two-phase rollout (infrastructure, publish code, event subscriptions).

targetScope = 'subscription'

// ---- where ----
@description('Region of the app\'s resources; must offer Flex Consumption.')
param location string

@description('Resource group of the function app and its storage, monitoring and Key Vault.')
param resourceGroupName string = 'rg-aci-remediation'

@description('Short lowercase prefix (letters and digits) for resource names.')
@maxLength(8)
param namePrefix string = 'acirem'

param tags object = {
  workload: 'aci-image-pull-remediation'
}

@description('azd environment name (AZURE_ENV_NAME); tags the resource group so azd finds it. Empty outside azd.')
param environmentName string = ''

// azd finds the app's resource group by the AZURE_RESOURCE_GROUP output below, or by this tag.
var azdTags = empty(environmentName) ? {} : {
  'azd-env-name': environmentName
}

// ---- what the remediator watches and may change ----
@description('Subscriptions whose ACI deployments are healed. Each gets the remediator\'s roles and an Event Grid system topic.')
@minLength(1)
param targetSubscriptionIds array

@description('Resource group created in each target subscription for its Event Grid system topic.')
param eventsResourceGroupName string = 'rg-aci-remediation-events'

@description('Create the event subscriptions. Leave false until the function code is published (Event Grid validates the function).')
param deployEventSubscriptions bool = false

@description('Name of the custom role; unique in the tenant.')
param remediatorRoleName string = 'ACI Image Pull Remediator'

// ---- storage names the app uses ----
param deadLetterContainerName string = 'remediation-deadletters'
param reportsContainerName string = 'remediation-reports'
param jobsQueueName string = 'remediation-jobs'
param ledgerTableName string = 'remediationledger'

// ---- hosting ----
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// ---- app settings (CONTRACT.md §6, local.settings.sample.json) ----
@description('Plan only, write nothing. Start true; switch to false once the reports look right.')
param dryRun bool = true
@description('Comma-separated scopes the app may act in; empty means exactly the target subscriptions.')
param allowedScopes string = ''
param fixTrustedServices bool = true
param optOutTag string = 'aci-remediation'
@minValue(1)
param maxAttempts int = 3
@minValue(1)
param attemptWindowMinutes int = 60
@minValue(0)
param redeployBudgetSeconds int = 600
@minValue(0)
param activityLogWaitSeconds int = 120
param applyDefinitionFixes bool = false
@description('Custom Event Grid topic for "remediation completed" events; empty: none.')
param eventGridTopicEndpoint string = ''

// ---- Key Vault secret names for the secret settings; '' leaves the setting empty ----
param teamsWebhookUrlSecretName string = ''
param slackWebhookUrlSecretName string = ''
param webhookUrlSecretName string = ''
param webhookSecretSecretName string = ''
param eventGridTopicKeySecretName string = ''

// ---- monitoring: workbook and alerts (modules/monitoring.bicep, modules/event-delivery-alerts.bicep) ----
@description('E-mail address the alerts notify, through an action group created for them; ignored when alertActionGroupId is set.')
param alertEmailAddress string = ''
@description('Resource id of an existing action group for the alerts. With this and alertEmailAddress both empty, the alerts only show in the portal.')
param alertActionGroupId string = ''

resource appResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: union(tags, azdTags)
}

module app 'modules/app.bicep' = {
  name: 'aci-remediation-app'
  scope: appResourceGroup
  params: {
    location: location
    namePrefix: namePrefix
    tags: tags
    targetSubscriptionIds: targetSubscriptionIds
    deadLetterContainerName: deadLetterContainerName
    reportsContainerName: reportsContainerName
    jobsQueueName: jobsQueueName
    ledgerTableName: ledgerTableName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    dryRun: dryRun
    allowedScopes: allowedScopes
    fixTrustedServices: fixTrustedServices
    optOutTag: optOutTag
    maxAttempts: maxAttempts
    attemptWindowMinutes: attemptWindowMinutes
    redeployBudgetSeconds: redeployBudgetSeconds
    activityLogWaitSeconds: activityLogWaitSeconds
    applyDefinitionFixes: applyDefinitionFixes
    eventGridTopicEndpoint: eventGridTopicEndpoint
    teamsWebhookUrlSecretName: teamsWebhookUrlSecretName
    slackWebhookUrlSecretName: slackWebhookUrlSecretName
    webhookUrlSecretName: webhookUrlSecretName
    webhookSecretSecretName: webhookSecretSecretName
    eventGridTopicKeySecretName: eventGridTopicKeySecretName
  }
}

// One custom role definition for the tenant, assignable in every target subscription.
module remediatorRole 'modules/remediator-role.bicep' = {
  name: 'aci-remediation-role'
  scope: subscription(targetSubscriptionIds[0])
  params: {
    roleName: remediatorRoleName
    assignableSubscriptionIds: targetSubscriptionIds
  }
}

// Per target subscription: the remediator's roles and the Event Grid wiring.
module targets 'modules/target-subscription.bicep' = [for (targetSubscriptionId, i) in targetSubscriptionIds: {
  name: 'aci-remediation-target-${i}'
  scope: subscription(targetSubscriptionId)
  params: {
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    remediatorRoleDefinitionGuid: remediatorRole.outputs.roleDefinitionGuid
    eventsResourceGroupName: eventsResourceGroupName
    location: location
    tags: tags
    functionAppId: app.outputs.functionAppId
    deployEventSubscription: deployEventSubscriptions
    deadLetterIdentityId: app.outputs.eventGridDeadLetterIdentityId
    deadLetterStorageAccountId: app.outputs.storageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}]

// The workbook and the log alerts (failed runs, poison-queue arrivals), on Application Insights.
module monitoring 'modules/monitoring.bicep' = {
  name: 'aci-remediation-monitoring'
  scope: appResourceGroup
  params: {
    location: location
    namePrefix: namePrefix
    tags: tags
    appInsightsId: app.outputs.appInsightsId
    alertEmailAddress: alertEmailAddress
    existingActionGroupId: alertActionGroupId
  }
}

// Per target subscription, beside its system topic: alerts on dead-lettered and dropped events.
module deliveryAlerts 'modules/event-delivery-alerts.bicep' = [for (targetSubscriptionId, i) in targetSubscriptionIds: {
  name: 'aci-remediation-delivery-alerts-${i}'
  scope: resourceGroup(targetSubscriptionId, eventsResourceGroupName)
  params: {
    namePrefix: namePrefix
    tags: tags
    systemTopicId: targets[i].outputs.systemTopicId
    actionGroupIds: monitoring.outputs.actionGroupIds
  }
}]

output functionAppName string = app.outputs.functionAppName
output remediatorPrincipalId string = app.outputs.remediatorPrincipalId
output remediatorClientId string = app.outputs.remediatorClientId
output storageAccountName string = app.outputs.storageAccountName
output keyVaultName string = app.outputs.keyVaultName
output remediatorRoleDefinitionGuid string = remediatorRole.outputs.roleDefinitionGuid
output workbookId string = monitoring.outputs.workbookId

// What azd reads after provisioning (it stores outputs as environment values): the outputs of the
// Flex Consumption azd templates (Azure-Samples/functions-quickstart-python-http-azd,
// infra/main.bicep) plus the resource group. None of them is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appResourceGroup.name
output AZURE_FUNCTION_NAME string = app.outputs.functionAppName
output AZURE_FUNCTION_URL string = app.outputs.functionAppUrl
output SERVICE_REMEDIATOR_NAME string = app.outputs.functionAppName

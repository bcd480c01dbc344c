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

// ---- the remediator's RBAC (infra/README.md, "The remediator's rights") ----
@description('Subscription or resource group ids (/subscriptions/<id>[/resourceGroups/<name>]) the remediator may act in: its custom role is assigned exactly there, and REMEDIATION_ALLOWED_SCOPES is set to them. Empty: the target subscriptions.')
param allowedScopes array = []

@description('Registry ids, or ids of resource groups holding registries, where the remediator may add AcrPull or Container Registry Repository Reader assignments and set a registry\'s network bypass. Empty: it may do neither; those causes are only diagnosed.')
param registryScopes array = []

@description('Assign the built-in Azure Policy "Public network access should be disabled for Container registries" with effect Deny at each of the registries\' scopes (see infra/README.md for the trade-off).')
param denyRegistryPublicNetworkAccess bool = true

@description('Name of the custom role at the allowed scopes; unique in the tenant.')
param remediatorRoleName string = 'ACI Image Pull Remediator'

@description('Name of the custom role at the registries\' scopes; unique in the tenant.')
param remediatorRegistryRoleName string = 'ACI Image Pull Remediator (registries)'

@description('Name of the custom role at the subscriptions of allowed resource groups; unique in the tenant.')
param remediatorSubscriptionReadsRoleName string = 'ACI Image Pull Remediator (subscription reads)'

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
    allowedScopes: join(remediatorAllowedScopes, ',')
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

// ---- the remediator's RBAC ----
// Scopes by kind (a module's scope is fixed per file): '/subscriptions/<id>' has 3 segments, a
// resource group 5, a registry 9. Each module below loops over one list with an `if` on that
// count; the derived lists are top-level for expressions, and flatten() of one-or-none lists stands
// in for a filter (flatten as MicrosoftDocs/azure-docs articles/azure-resource-manager/bicep/
// bicep-functions-array.md has it): checkov's Bicep parser (pycep-parser 0.5.1) reads neither
// lambdas nor a for expression inside a call. `if(` has no space and the ternary's test is in
// parentheses because the tests' pycep-parser 0.7.1 reads only those forms right (Bicep reads both
// the same: Azure/bicep src/Bicep.Core/Parsing/BaseParser.cs, ForBody and Expression). Split indexes
// stay valid for every kind a loop sees (last() for the final segment): ARM may evaluate them for
// an item the `if` skips.
var targetSubscriptionScopes = [for id in targetSubscriptionIds: '/subscriptions/${id}']
var remediatorAllowedScopes = empty(allowedScopes) ? targetSubscriptionScopes : allowedScopes
var allowedGroupSubscriptionLists = [for s in remediatorAllowedScopes: (length(split(s, '/')) == 5) ? [join(take(split(s, '/'), 3), '/')] : []]
var allowedGroupSubscriptions = union(flatten(allowedGroupSubscriptionLists), [])
var registryResourceGroupList = [for s in registryScopes: join(take(split(s, '/'), 5), '/')]

// Role Based Access Control Administrator may only add AcrPull (7f951dda-4ed3-4680-a7ca-43fe172d538d)
// or Container Registry Repository Reader (b93aa761-3e63-49ed-ac28-beffa264f7ac) assignments, only
// for service principals (managed identities are), never for the remediator itself, and may delete
// none. Attributes and operators as MicrosoftDocs/azure-docs documents them in
// articles/role-based-access-control/delegate-role-assignments-examples.md ("Constrain ACR
// management": RoleDefinitionId and PrincipalType; "Constrain roles and specific groups":
// @Request[...:PrincipalId]; "Allow most roles, but don't allow others to assign roles":
// ForAnyOfAllValues:GuidNotEquals) and conditions-format.md; a delete matches no allowed branch.
var remediatorDelegationCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {7f951dda-4ed3-4680-a7ca-43fe172d538d, b93aa761-3e63-49ed-ac28-beffa264f7ac} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${app.outputs.remediatorPrincipalId}})) AND (!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'}))'

// The custom roles, one definition each for the tenant. A role cannot be assignable at a single
// resource, so the registry role is assignable at the registries' resource groups.
module remediatorRole 'modules/remediator-role.bicep' = {
  name: 'aci-remediation-role'
  scope: subscription(targetSubscriptionIds[0])
  params: {
    roleName: remediatorRoleName
    registryRoleName: remediatorRegistryRoleName
    assignableScopes: remediatorAllowedScopes
    registryAssignableScopes: union(registryResourceGroupList, [])
    subscriptionReadsRoleName: remediatorSubscriptionReadsRoleName
    subscriptionReadsAssignableScopes: allowedGroupSubscriptions
  }
}

module allowedSubscriptionRbac 'modules/remediator-rbac-subscription.bicep' = [for (s, i) in remediatorAllowedScopes: if(length(split(s, '/')) == 3) {
  name: 'aci-remediation-rbac-sub-${i}'
  scope: subscription(split(s, '/')[2])
  params: {
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    roleDefinitionGuid: remediatorRole.outputs.roleDefinitionGuid
    roleDescription: 'ACI image-pull remediator: read what it diagnoses, redeploy container groups'
  }
}]

module allowedGroupSubscriptionRbac 'modules/remediator-rbac-subscription.bicep' = [for (s, i) in allowedGroupSubscriptions: {
  name: 'aci-remediation-rbac-sub-reads-${i}'
  scope: subscription(split(s, '/')[2])
  params: {
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    roleDefinitionGuid: remediatorRole.outputs.subscriptionReadsRoleDefinitionGuid
    roleDescription: 'ACI image-pull remediator: read the subscription\'s Activity Log, locks, deny and policy assignments, role and policy definitions'
  }
}]

module allowedGroupRbac 'modules/remediator-rbac-group.bicep' = [for (s, i) in remediatorAllowedScopes: if(length(split(s, '/')) == 5) {
  name: 'aci-remediation-rbac-rg-${i}'
  scope: resourceGroup(split(s, '/')[2], last(split(s, '/')))
  params: {
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    roleDefinitionGuid: remediatorRole.outputs.roleDefinitionGuid
    roleDescription: 'ACI image-pull remediator: read what it diagnoses, redeploy container groups'
  }
}]

module registryGroupRbac 'modules/remediator-rbac-group.bicep' = [for (s, i) in registryScopes: if(length(split(s, '/')) == 5) {
  name: 'aci-remediation-rbac-acr-rg-${i}'
  scope: resourceGroup(split(s, '/')[2], split(s, '/')[4])
  params: {
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    roleDefinitionGuid: remediatorRole.outputs.registryRoleDefinitionGuid
    roleDescription: 'ACI image-pull remediator: set a registry\'s network bypass, look up images'
    delegationCondition: remediatorDelegationCondition
    denyRegistryPublicNetworkAccess: denyRegistryPublicNetworkAccess
  }
}]

module registryRbac 'modules/remediator-rbac-registry.bicep' = [for (s, i) in registryScopes: if(length(split(s, '/')) == 9) {
  name: 'aci-remediation-rbac-acr-${i}'
  scope: resourceGroup(split(s, '/')[2], split(s, '/')[4])
  params: {
    registryName: last(split(s, '/'))
    remediatorPrincipalId: app.outputs.remediatorPrincipalId
    roleDefinitionGuid: remediatorRole.outputs.registryRoleDefinitionGuid
    delegationCondition: remediatorDelegationCondition
    denyRegistryPublicNetworkAccess: denyRegistryPublicNetworkAccess
  }
}]

// Per target subscription: the Event Grid wiring.
module targets 'modules/target-subscription.bicep' = [for (targetSubscriptionId, i) in targetSubscriptionIds: {
  name: 'aci-remediation-target-${i}'
  scope: subscription(targetSubscriptionId)
  params: {
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
output remediatorRegistryRoleDefinitionGuid string = remediatorRole.outputs.registryRoleDefinitionGuid

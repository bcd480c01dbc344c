// The function app and everything it runs on, in the app's own resource group:
// the remediator identity, storage (AzureWebJobsStorage, ledger table, job queue, report and
// dead-letter containers), Log Analytics + Application Insights, a Key Vault for the secret
// settings, and a Linux Flex Consumption plan running Python 3.11.
//
// Nothing here uses a storage key or connection string: the storage account refuses shared-key
// access, the host and the app reach it with the remediator's user-assigned identity.

targetScope = 'resourceGroup'

@description('Region of the app\'s resources; must offer Flex Consumption.')
param location string

@description('Short lowercase prefix (letters and digits) for resource names.')
@maxLength(8)
param namePrefix string

param tags object = {}

@description('Subscriptions the remediator acts in; the default REMEDIATION_ALLOWED_SCOPES.')
param targetSubscriptionIds string[]

@description('Name of the blob container Event Grid dead-letters undeliverable events to.')
param deadLetterContainerName string

@description('Name of the blob container the app writes reports to.')
param reportsContainerName string

@description('Name of the queue the Event Grid trigger hands long remediations to.')
param jobsQueueName string

@description('Name of the table holding the audit ledger (attempts and reports).')
param ledgerTableName string

@description('Most instances Flex Consumption may scale out to.')
param maximumInstanceCount int

@description('Memory per instance in MB (Flex Consumption sizes).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

// ---- app settings that are not secrets (see local.settings.sample.json and CONTRACT.md §6) ----
param dryRun bool
@description('Comma-separated /subscriptions/<id>[/resourceGroups/<rg>] ids; empty: the target subscriptions.')
param allowedScopes string
param fixTrustedServices bool
param optOutTag string
param maxAttempts int
param attemptWindowMinutes int
param redeployBudgetSeconds int
param activityLogWaitSeconds int
param applyDefinitionFixes bool
param eventGridTopicEndpoint string

// ---- names of the Key Vault secrets behind the secret settings ('' leaves a setting empty) ----
param teamsWebhookUrlSecretName string
param slackWebhookUrlSecretName string
param webhookUrlSecretName string
param webhookSecretSecretName string
param eventGridTopicKeySecretName string

// Built-in role definition GUIDs used in this module (data-plane roles on this app's own resources).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

var token = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var storageAccountName = take(toLower('st${namePrefix}${token}'), 24)
var keyVaultName = take('kv-${namePrefix}-${token}', 24)
var functionAppName = 'func-${namePrefix}-${token}'
// Flex Consumption deploys the app package from this blob container.
var deploymentContainerName = 'app-package'

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

// The remediator: the identity the function runs as, and the only one granted rights in the
// target subscriptions (target-subscription.bicep).
resource remediator 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-remediator'
  location: location
  tags: tags
}

// Event Grid's identity for dead-lettering: attached to every system topic, allowed to write
// only into the dead-letter container. Kept apart from the remediator so Event Grid never holds
// the remediator's rights.
resource eventGridDeadLetterIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-eventgrid'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Identity-based access only (AzureWebJobsStorage__accountName, Event Grid's identity).
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    // Event Grid push delivery of dead letters and a Flex app without VNet integration reach the
    // account over its public endpoint; lock this down together with VNet integration if needed.
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource jobsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: jobsQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTableName
}

// The remediator's data-plane rights on its own storage: the Functions host needs blob (leases,
// deployment package), queue (jobs, poison queue) and table access; the app needs the same for
// reports, jobs and the ledger. Role assignment names are deterministic: guid(scope, identity, role).
resource remediatorBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, remediator.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: remediator.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function host and app: blobs of the app\'s own storage account'
  }
}

resource remediatorQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, remediator.id, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: remediator.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function host and app: queues of the app\'s own storage account'
  }
}

resource remediatorTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, remediator.id, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: remediator.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function app: the audit ledger table'
  }
}

// Event Grid writes dead letters with its identity; scoped to the one container, not the account.
resource eventGridDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridDeadLetterIdentity.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: eventGridDeadLetterIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid system topics: write undeliverable events to the dead-letter container'
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${namePrefix}-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${namePrefix}-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    // Telemetry is accepted only with an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    DisableLocalAuth: true
  }
}

resource remediatorMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, remediator.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: remediator.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function app: send telemetry to Application Insights with Entra authentication'
  }
}

// ---------------------------------------------------------------------------------------------
// Key Vault for the secret settings
// ---------------------------------------------------------------------------------------------

// The platform team stores the webhook URLs, the webhook signing secret and the Event Grid topic
// key here, then names the secrets in the *SecretName parameters. The app settings hold only Key
// Vault references, resolved by the platform with the remediator identity.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource remediatorSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, remediator.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: remediator.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function app: resolve the Key Vault references of its secret settings'
  }
}

// '@Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>)' is an App Service Key Vault reference.
var keyVaultReferencePrefix = '@Microsoft.KeyVault(VaultName=${vault.name};SecretName='

// ---------------------------------------------------------------------------------------------
// Function app: Linux Flex Consumption, Python 3.11
// ---------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${namePrefix}-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${remediator.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: remediator.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: remediator.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Replaces the FUNCTIONS_WORKER_RUNTIME app setting, which Flex Consumption rejects.
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    deploymentContainer
    remediatorBlobDataOwner
  ]
}

var defaultAllowedScopes = join(map(targetSubscriptionIds, id => '/subscriptions/${id}'), ',')

// Every setting of local.settings.sample.json, except FUNCTIONS_WORKER_RUNTIME (set by
// functionAppConfig.runtime above) and AzureWebJobsStorage (replaced by its identity-based form).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Host storage through the remediator identity: no connection string, no key.
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: remediator.properties.clientId
    // DefaultAzureCredential in the app picks the user-assigned identity by this client id.
    AZURE_CLIENT_ID: remediator.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    // Threads for invocations: up to 6 remediation jobs (queues batchSize 4 + newBatchThreshold 2 in
    // host.json) leave 10 for Event Grid deliveries and HTTP, so neither waits behind a job.
    PYTHON_THREADPOOL_THREAD_COUNT: '16'
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${remediator.properties.clientId};Authorization=AAD'

    REMEDIATION_DRY_RUN: dryRun ? 'true' : 'false'
    REMEDIATION_ALLOWED_SCOPES: empty(allowedScopes) ? defaultAllowedScopes : allowedScopes
    REMEDIATION_FIX_TRUSTED_SERVICES: fixTrustedServices ? 'true' : 'false'
    REMEDIATION_OPT_OUT_TAG: optOutTag
    ARM_ENDPOINT: environment().resourceManager
    // Loop guard: failures of writes the app made itself are never remediated.
    REMEDIATOR_PRINCIPAL_ID: remediator.properties.principalId
    REMEDIATION_MAX_ATTEMPTS: string(maxAttempts)
    REMEDIATION_ATTEMPT_WINDOW_MINUTES: string(attemptWindowMinutes)
    REMEDIATION_REDEPLOY_BUDGET_SECONDS: string(redeployBudgetSeconds)
    REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS: string(activityLogWaitSeconds)
    REMEDIATION_APPLY_DEFINITION_FIXES: applyDefinitionFixes ? 'true' : 'false'
    // Only the local sandbox needs a CA bundle; Azure's endpoints use public CAs.
    ARM_CA_BUNDLE: ''
    ACR_ENDPOINT_TEMPLATE: 'https://{loginServer}'
    EVENTGRID_TOPIC_ENDPOINT: eventGridTopicEndpoint
    REMEDIATION_NOTIFY_COOLDOWN_MINUTES: '30'
    REMEDIATION_STORM_THRESHOLD: '10'
    // The sweep's timer needs a schedule even while it is off.
    REMEDIATION_SWEEP_ENABLED: 'false'
    REMEDIATION_SWEEP_SCHEDULE: '0 0 */6 * * *'
    REMEDIATION_CLAIM_TTL_SECONDS: '180'
    REMEDIATION_RETENTION_DAYS: '30'
    REMEDIATION_LEDGER_TABLE: ledgerTableName
    REMEDIATION_JOBS_QUEUE: jobsQueueName
    // Replays answer 202 and queue their work unless the worst case fits in the 230 s HTTP limit.
    REMEDIATION_INLINE_BUDGET_SECONDS: '200'
    // A definition sent with a replay is only diagnosed: a function key must not deploy arbitrary containers.
    REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS: 'false'
    // A pull role assignment younger than this is waited for, never duplicated (Azure: up to 10 minutes).
    REMEDIATION_RBAC_PROPAGATION_MINUTES: '10'
    // ACR honours wildcard actions of custom roles only in tenants with Azure Resource Manager private link.
    REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK: 'false'
    // An unexplained image-pull failure (UNKNOWN) is redeployed once, unchanged: transient failures clear.
    REMEDIATION_RETRY_UNEXPLAINED: 'true'

    // Secrets: Key Vault references, or empty (that channel is off) when no secret is named.
    TEAMS_WEBHOOK_URL: empty(teamsWebhookUrlSecretName) ? '' : '${keyVaultReferencePrefix}${teamsWebhookUrlSecretName})'
    SLACK_WEBHOOK_URL: empty(slackWebhookUrlSecretName) ? '' : '${keyVaultReferencePrefix}${slackWebhookUrlSecretName})'
    WEBHOOK_URL: empty(webhookUrlSecretName) ? '' : '${keyVaultReferencePrefix}${webhookUrlSecretName})'
    WEBHOOK_SECRET: empty(webhookSecretSecretName) ? '' : '${keyVaultReferencePrefix}${webhookSecretSecretName})'
    EVENTGRID_TOPIC_KEY: empty(eventGridTopicKeySecretName) ? '' : '${keyVaultReferencePrefix}${eventGridTopicKeySecretName})'
  }
  dependsOn: [
    remediatorQueueDataContributor
    remediatorTableDataContributor
    remediatorMetricsPublisher
    remediatorSecretsUser
    jobsQueue
    ledgerTable
    reportsContainer
  ]
}

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output remediatorPrincipalId string = remediator.properties.principalId
output remediatorClientId string = remediator.properties.clientId
output remediatorIdentityId string = remediator.id
output eventGridDeadLetterIdentityId string = eventGridDeadLetterIdentity.id
output storageAccountId string = storage.id
output appInsightsId string = appInsights.id
output storageAccountName string = storage.name
output keyVaultName string = vault.name

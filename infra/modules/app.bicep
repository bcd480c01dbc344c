// The function app and everything it runs on, in the app's own resource group: four
// user-assigned identities, the app's storage (AzureWebJobsStorage, ledger table, jobs queue,
// report and dead-letter containers), a separate storage account for the code package, Log
// Analytics + Application Insights, a Key Vault for the secret settings, and a Linux Flex
// Consumption plan running Python 3.11.
//
// Nothing here uses a storage key or connection string: both storage accounts refuse shared-key
// access, and every reader and writer uses its own identity.
//
// Identities, each with only its own job (see infra/README.md, "Identities"):
// - remediator: Azure Resource Manager only (AZURE_CLIENT_ID); its rights are in the target
//   subscriptions, none here;
// - host: the AzureWebJobsStorage connection. The Functions host needs Storage Blob Data Owner on
//   that account for its locks, timers and keys (MicrosoftDocs/azure-docs,
//   includes/functions-azurewebjobsstorage-permissions.md), and the app's ledger and jobs queue
//   use the same connection (remediation/storage.py), so the table and queue roles are its too;
// - deployment: reads and writes the Flex code package, in its own account, container-scoped;
// - eventgrid: Event Grid's dead-lettering into one container.

targetScope = 'resourceGroup'

@description('Region of the app\'s resources; must offer Flex Consumption.')
param location string

@description('Short lowercase prefix (letters and digits) for resource names.')
@maxLength(8)
param namePrefix string

param tags object = {}

@description('Name azd finds the function app by (tag azd-service-name; azure.yaml names the service).')
param serviceName string = 'remediator'

@description('Subscriptions the remediator acts in; the default REMEDIATION_ALLOWED_SCOPES.')
param targetSubscriptionIds array

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
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

var token = uniqueString(subscription().id, resourceGroup().id, namePrefix)
var storageAccountName = take(toLower('st${namePrefix}${token}'), 24)
var packageStorageAccountName = take(toLower('stpkg${namePrefix}${token}'), 24)
var keyVaultName = take('kv-${namePrefix}-${token}', 24)
var functionAppName = 'func-${namePrefix}-${token}'
// Flex Consumption deploys the app package from this blob container.
var deploymentContainerName = 'app-package'
// The queues extension moves a message it gave up on to '<queue>-poison' (function_app.py reads it).
var poisonQueueName = '${jobsQueueName}-poison'

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

// The remediator: the identity the app calls Azure Resource Manager with, and the only one
// granted rights in the target subscriptions (target-subscription.bicep). It holds no role on
// this resource group's resources, so its token can neither read the ledger nor replace the code.
resource remediator 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-remediator'
  location: location
  tags: tags
}

// The Functions host's identity for AzureWebJobsStorage (also the ledger's and the jobs queue's,
// which the app reaches through that connection), Key Vault references and telemetry.
resource hostIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-host'
  location: location
  tags: tags
}

// Flex Consumption reads the code package with this identity; it can reach nothing else.
resource deploymentIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-deploy'
  location: location
  tags: tags
}

// Event Grid's identity for dead-lettering: attached to every system topic, allowed to write
// only into the dead-letter container. Kept apart from the others so Event Grid never holds
// their rights.
resource eventGridDeadLetterIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-eventgrid'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// The app's storage: AzureWebJobsStorage, the ledger, the jobs queues, reports and dead letters
// ---------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Event Grid dead-letters and the Flex app (no VNet integration) reach the account over its public endpoint; no key is accepted (allowSharedKeyAccess false)
  // checkov:skip=CKV_AZURE_59: same reason: public network access stays enabled, blob public access is off (allowBlobPublicAccess false)
  // checkov:skip=CKV_AZURE_206: LRS: the ledger's rows are an audit copy of writes that the Activity Log also records; choose ZRS where the region offers it
  // checkov:skip=CKV_AZURE_43: the name is an expression checkov cannot evaluate; take(toLower('st...'), 24) of letters and digits fits the rules
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
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
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

// Created here so the host's queue-scoped role covers it before the first message is poisoned.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTableName
}

// The host: blobs of the whole account (its locks, timer schedules and function keys live in
// containers it creates). Role assignment names are deterministic: guid(scope, identity, role).
resource hostBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostIdentity.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: its containers in the app storage account (AzureWebJobsStorage)'
  }
}

// The queue triggers and the app's own sends: the jobs queue and its poison queue, nothing else.
resource hostJobsQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(jobsQueue.id, hostIdentity.id, storageQueueDataContributor)
  scope: jobsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function app: the remediation jobs queue'
  }
}

resource hostPoisonQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poisonQueue.id, hostIdentity.id, storageQueueDataContributor)
  scope: poisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Function app: the poison queue of the remediation jobs'
  }
}

// The audit ledger: its one table.
resource hostLedgerTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ledgerTable.id, hostIdentity.id, storageTableDataContributor)
  scope: ledgerTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: hostIdentity.properties.principalId
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
// The code package: its own account, so no identity with blob rights on the app's storage (the
// host's account-wide Blob Data Owner included) can replace the code the app runs.
// ---------------------------------------------------------------------------------------------

resource packageStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration fetches the package over the public endpoint; no key is accepted (allowSharedKeyAccess false)
  // checkov:skip=CKV_AZURE_59: same reason: public network access stays enabled, blob public access is off (allowBlobPublicAccess false)
  // checkov:skip=CKV_AZURE_206: LRS: the package is rebuilt from source by azd deploy; replication adds nothing
  // checkov:skip=CKV_AZURE_43: the name is an expression checkov cannot evaluate; take(toLower('stpkg...'), 24) of letters and digits fits the rules
  name: packageStorageAccountName
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
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
  }
}

resource packageBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: packageStorage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: packageBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Read and write blobs of the package container only (the platform writes what a deployment uploads).
resource deploymentPackageContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, deploymentIdentity.id, storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deploymentIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Flex Consumption: the function app code package container'
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring: Application Insights on a Log Analytics workspace (workspace-based)
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

resource hostMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, hostIdentity.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host: send telemetry to Application Insights with Entra authentication'
  }
}

// ---------------------------------------------------------------------------------------------
// Key Vault for the secret settings
// ---------------------------------------------------------------------------------------------

// The platform team stores the webhook URLs, the webhook signing secret and the Event Grid topic
// key here, then names the secrets in the *SecretName parameters. The app settings hold only Key
// Vault references, which the platform resolves with the host identity (keyVaultReferenceIdentity).
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service resolves Key Vault references over the vault's public endpoint unless the app has VNet integration, which this deployment does not add; access is Entra RBAC only
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
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

resource hostSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, hostIdentity.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: hostIdentity.properties.principalId
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
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is offered only in some regions and bills an always-ready instance per zone; this app scales to zero
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

// azd deploys the service to the resource carrying this tag (azure.yaml's service name).
var azdServiceTag = {
  'azd-service-name': serviceName
}

// Shape from Azure-Samples/functions-quickstart-python-http-azd (infra/main.bicep and
// infra/core/host/functions-flexconsumption.bicep): functionAppConfig with a blob container,
// a user-assigned identity for it, and the azd-service-name tag azd deploys to.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid push delivery needs the function's public endpoint; HTTP routes require a function key
  // checkov:skip=CKV_AZURE_17: Event Grid cannot present a client certificate; callers authenticate with function keys
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design; failures are retried by Event Grid and the jobs queue
  // checkov:skip=CKV_AZURE_213: the App Service health check is not verified on Flex Consumption here; GET /api/health serves external probes
  name: functionAppName
  location: location
  tags: union(tags, azdServiceTag)
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${remediator.id}': {}
      '${hostIdentity.id}': {}
      '${deploymentIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: hostIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${packageStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: deploymentIdentity.id
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
    deploymentPackageContributor
  ]
}

var defaultAllowedScopeList = [for id in targetSubscriptionIds: '/subscriptions/${id}']
var defaultAllowedScopes = join(defaultAllowedScopeList, ',')

// Every setting of local.settings.sample.json, except FUNCTIONS_WORKER_RUNTIME (set by
// functionAppConfig.runtime above) and AzureWebJobsStorage (replaced by its identity-based form).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // This resource is the app settings dictionary; checkov reads it as a site configuration.
  // checkov:skip=CKV_AZURE_13: not a site configuration; HTTP routes require function keys, /api/health is anonymous by design
  // checkov:skip=CKV_AZURE_63: not a site configuration; the host logs every request to Application Insights
  // checkov:skip=CKV_AZURE_65: not a site configuration; errors go to Application Insights
  // checkov:skip=CKV_AZURE_66: not a site configuration; failed requests are in Application Insights
  // checkov:skip=CKV_AZURE_80: not a site configuration, and the app is Python, not .NET
  // checkov:skip=CKV_AZURE_88: not a site configuration; Flex Consumption runs from a blob container, not Azure Files
  // checkov:skip=CKV_AZURE_222: not a site configuration; see the function app's own skip
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Host storage through the host identity: no connection string, no key. The app's ledger and
    // jobs queue use the same connection (remediation/storage.py).
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: hostIdentity.properties.clientId
    // DefaultAzureCredential in the app picks the remediator identity by this client id (ARM only).
    AZURE_CLIENT_ID: remediator.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    // Read by the host and by the app's metrics exporter (azure-monitor-opentelemetry-exporter), which
    // then authenticates with this identity: the component accepts no instrumentation-key-only telemetry.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${hostIdentity.properties.clientId};Authorization=AAD'
    // Threads for invocations: up to 6 remediation jobs (queues batchSize 4 + newBatchThreshold 2 in
    // host.json) leave 10 for Event Grid deliveries and HTTP, so neither waits behind a job.
    PYTHON_THREADPOOL_THREAD_COUNT: '16'

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
    hostBlobDataOwner
    hostJobsQueueContributor
    hostPoisonQueueContributor
    hostLedgerTableContributor
    hostMetricsPublisher
    hostSecretsUser
    reportsContainer
  ]
}

output functionAppName string = functionApp.name
output functionAppId string = functionApp.id
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output remediatorPrincipalId string = remediator.properties.principalId
output remediatorClientId string = remediator.properties.clientId
output remediatorIdentityId string = remediator.id
output eventGridDeadLetterIdentityId string = eventGridDeadLetterIdentity.id
output storageAccountId string = storage.id
output appInsightsId string = appInsights.id
output storageAccountName string = storage.name
output keyVaultName string = vault.name

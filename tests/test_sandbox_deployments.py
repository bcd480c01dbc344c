"""Template deployments through the real ``DeploymentsMgmtClient``; the template language: test_sandbox_templates.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from sandbox.world import iso

from . import sdk
from .worlds import (
    GROUP_ID,
    IDENTITY_ID,
    IMAGE,
    REGISTRY_ID,
    REMEDIATOR,
    RG,
    RG_ID,
    SUB,
    assignment,
    identity,
    registry,
    world,
)

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
DEPLOYMENT_ID = f"{RG_ID}/providers/Microsoft.Resources/deployments/aci-deploy"


def aci_template(api_version: str = "2023-05-01") -> dict[str, Any]:
    """The docs' container group with a user-assigned pull identity, written with template expressions."""
    identity_id = "[variables('identityId')]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "groupName": {"type": "string", "defaultValue": "acrtestcontainergroup"},
            "image": {"type": "string"},
            "identityName": {"type": "string", "defaultValue": "myACRId"},
        },
        "variables": {
            "identityId": "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', "
                          "parameters('identityName'))]",
            "server": "[toLower(concat('MyAcr', '.azurecr.io'))]",
        },
        "resources": [{
            "type": "Microsoft.ContainerInstance/containerGroups",
            "apiVersion": api_version,
            "name": "[parameters('groupName')]",
            "location": "[resourceGroup().location]",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
            "properties": {
                "containers": [{"name": "worker", "properties": {
                    "image": "[parameters('image')]", "ports": [{"port": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}}}}],
                "imageRegistryCredentials": [{"server": "[variables('server')]", "identity": identity_id}],
                "osType": "Linux",
                "ipAddress": {"type": "Public", "ports": [{"port": 80, "protocol": "TCP"}]},
            },
        }],
        "outputs": {"groupId": {"type": "string",
                                "value": "[resourceId('Microsoft.ContainerInstance/containerGroups', "
                                         "parameters('groupName'))]"}},
    }


def deploy_body(template: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"properties": {"mode": "Incremental", "template": template,
                           "parameters": {k: {"value": v} for k, v in params.items()}}}


def can_pull() -> dict[str, Any]:
    return assignment(REGISTRY_ID, ACR_PULL)


def _activity(sb, correlation_id: str) -> list[Any]:
    flt = f"eventTimestamp ge '{iso(sb.world.now() - 3600)}' and correlationId eq '{correlation_id}'"
    return list(sdk.monitor(sb).activity_logs.list(filter=flt))


# --- end to end ------------------------------------------------------------------------------

def test_failed_container_group_deployment_end_to_end(make_sandbox):
    sb = make_sandbox(world())  # no AcrPull for the identity: the pull fails
    client = sdk.deployments(sb)
    poller = client.deployments.begin_create_or_update(RG, "aci-deploy", deploy_body(aci_template(), image=IMAGE))
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    err = info.value.error
    assert err.code == "DeploymentFailed"
    assert "list deployment operations" in err.message
    assert [d.code for d in err.details] == ["InaccessibleImage"]
    assert IMAGE in err.details[0].message

    ops = list(client.deployment_operations.list(RG, "aci-deploy"))
    assert len(ops) == 1
    op = ops[0].properties
    assert op.provisioning_state == "Failed" and op.status_code == "BadRequest"
    assert op.provisioning_operation == "Create"
    assert op.status_message.status == "Failed"
    assert op.status_message.error.code == "InaccessibleImage"
    assert op.target_resource.id.lower() == GROUP_ID.lower()
    assert op.target_resource.resource_type == "Microsoft.ContainerInstance/containerGroups"
    assert op.target_resource.resource_name == "acrtestcontainergroup"
    assert op.timestamp is not None and op.duration

    deployment = client.deployments.get(RG, "aci-deploy")
    assert deployment.properties.provisioning_state == "Failed"
    assert deployment.properties.error.code == "DeploymentFailed"
    assert deployment.properties.parameters["image"]["value"] == IMAGE
    assert deployment.properties.parameters["groupName"]["value"] == "acrtestcontainergroup"  # the default

    # no container group is left behind
    assert sb.world.get(GROUP_ID) is None
    with pytest.raises(ResourceNotFoundError):
        sdk.aci(sb).container_groups.get(RG, "acrtestcontainergroup")

    # events and Activity Log entries share the deployment's correlation id
    correlation = deployment.properties.correlation_id
    events = {e["subject"].lower(): e for e in sb.world.delivered}
    group_event, deployment_event = events[GROUP_ID.lower()], events[DEPLOYMENT_ID.lower()]
    assert group_event["eventType"] == "Microsoft.Resources.ResourceWriteFailure"
    assert deployment_event["eventType"] == "Microsoft.Resources.ResourceWriteFailure"
    assert group_event["data"]["correlationId"] == deployment_event["data"]["correlationId"] == correlation
    assert group_event["data"]["operationName"] == "Microsoft.ContainerInstance/containerGroups/write"

    records = _activity(sb, correlation)
    failed = {r.operation_name.value: r for r in records if r.status.value == "Failed"}
    assert set(failed) == {"Microsoft.ContainerInstance/containerGroups/write", "Microsoft.Resources/deployments/write"}
    group_failure = failed["Microsoft.ContainerInstance/containerGroups/write"]
    assert json.loads(group_failure.properties["statusMessage"])["error"]["code"] == "InaccessibleImage"
    sent = json.loads(group_failure.properties["requestbody"])
    assert sent["properties"]["imageRegistryCredentials"] == [{"server": "myacr.azurecr.io", "identity": IDENTITY_ID}]
    deployment_failure = failed["Microsoft.Resources/deployments/write"]
    assert json.loads(deployment_failure.properties["statusMessage"])["error"]["code"] == "DeploymentFailed"


def test_successful_deployment_creates_the_group(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), can_pull()]))
    client = sdk.deployments(sb)
    result = client.deployments.begin_create_or_update(
        RG, "aci-deploy", deploy_body(aci_template(), image=IMAGE)).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.outputs["groupId"]["value"] == GROUP_ID
    assert [r.id.lower() for r in result.properties.output_resources] == [GROUP_ID.lower()]

    group = sdk.aci(sb).container_groups.get(RG, "acrtestcontainergroup")
    assert group.provisioning_state == "Succeeded"
    assert group.location == "eastus"  # resourceGroup().location
    assert group.image_registry_credentials[0].identity == IDENTITY_ID
    assert list(group.identity.user_assigned_identities) == [IDENTITY_ID]

    ops = list(client.deployment_operations.list(RG, "aci-deploy"))
    assert [(o.properties.provisioning_state, o.properties.status_code) for o in ops] == [("Succeeded", "Created")]
    kinds = {e["subject"].lower(): e["eventType"] for e in sb.world.delivered}
    assert kinds[GROUP_ID.lower()] == "Microsoft.Resources.ResourceWriteSuccess"
    assert kinds[DEPLOYMENT_ID.lower()] == "Microsoft.Resources.ResourceWriteSuccess"
    assert [d.name for d in client.deployments.list_by_resource_group(RG)] == ["aci-deploy"]


def test_template_api_version_is_the_one_aci_sees(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), can_pull()]))
    poller = sdk.deployments(sb).deployments.begin_create_or_update(
        RG, "aci-deploy", deploy_body(aci_template("2019-12-01"), image=IMAGE))
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert [d.code for d in info.value.error.details] == ["InvalidImageRegistryCredentialType"]
    assert sb.world.get(GROUP_ID) is None


def test_get_hides_the_template_export_returns_it(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), can_pull()]))
    client = sdk.deployments(sb)
    template = aci_template()
    client.deployments.begin_create_or_update(RG, "aci-deploy", deploy_body(template, image=IMAGE)).result()
    shown = client.deployments.get(RG, "aci-deploy")
    assert "template" not in shown["properties"]
    exported = client.deployments.export_template(RG, "aci-deploy")
    assert exported.template == template
    with pytest.raises(ResourceNotFoundError) as info:
        client.deployments.get(RG, "nope")
    assert info.value.error.code == "DeploymentNotFound"


def test_dependent_resource_is_not_attempted_after_a_failure(make_sandbox):
    sb = make_sandbox(world())
    template = aci_template()
    template["resources"].append({
        "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "after",
        "location": "eastus", "properties": {},
        "dependsOn": ["[resourceId('Microsoft.ContainerInstance/containerGroups', parameters('groupName'))]"]})
    template["resources"].append({"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
                                  "name": "independent", "location": "eastus", "properties": {"x": "[[literal]"}})
    client = sdk.deployments(sb)
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(RG, "aci-deploy", deploy_body(template, image=IMAGE)).result()
    ops = client.deployment_operations.list(RG, "aci-deploy")
    names = sorted(o.properties.target_resource.resource_name for o in ops)
    assert names == ["acrtestcontainergroup", "independent"]
    stored = sb.world.get(f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/independent")
    assert stored["properties"]["x"] == "[literal]"
    assert sb.world.get(f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/after") is None


def test_dependencies_are_deployed_first(make_sandbox):
    # the identity is listed after the group that needs it; ARM orders by dependsOn, not position
    sb = make_sandbox(world(resources=[registry()]))
    template = aci_template()
    template["resources"][0]["dependsOn"] = ["[variables('identityId')]"]
    template["resources"].append({"type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                                  "apiVersion": "2023-01-31", "name": "[parameters('identityName')]",
                                  "location": "eastus",
                                  "properties": {"principalId": "cccccccc-0000-0000-0000-0000000000c1"}})
    client = sdk.deployments(sb)
    poller = client.deployments.begin_create_or_update(RG, "aci-deploy", deploy_body(template, image=IMAGE))
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    # the identity existed when the group was validated: the failure is the pull, not a missing identity
    assert [d.code for d in info.value.error.details] == ["InaccessibleImage"]
    ops = list(client.deployment_operations.list(RG, "aci-deploy"))
    assert [o.properties.target_resource.resource_type for o in ops] == [
        "Microsoft.ManagedIdentity/userAssignedIdentities", "Microsoft.ContainerInstance/containerGroups"]


def test_circular_or_unknown_dependencies_are_invalid_template(make_sandbox):
    sb = make_sandbox(world())
    loop = {"resources": [
        {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "a", "dependsOn": ["b"]},
        {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "b", "dependsOn": ["a"]}]}
    client = sdk.deployments(sb)
    with pytest.raises(HttpResponseError) as info:
        client.deployments.begin_create_or_update(RG, "loop", deploy_body(loop))
    assert info.value.error.code == "InvalidTemplate" and "Circular dependency" in info.value.error.message
    loop["resources"] = loop["resources"][:1]
    with pytest.raises(HttpResponseError) as info:
        client.deployments.begin_create_or_update(RG, "loop", deploy_body(loop))
    assert info.value.error.code == "InvalidTemplate" and "'b' is not defined" in info.value.error.message


def test_redeploy_after_the_fix_succeeds(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.deployments(sb)
    body = deploy_body(aci_template(), image=IMAGE)
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(RG, "aci-deploy", body).result()
    sb.world.put(can_pull())
    again = client.deployments.begin_create_or_update(RG, "aci-deploy", body).result()
    assert again.properties.provisioning_state == "Succeeded" and again.properties.error is None
    ops = list(client.deployment_operations.list(RG, "aci-deploy"))
    assert [o.properties.provisioning_state for o in ops] == ["Succeeded"]
    assert sb.world.get(GROUP_ID)["properties"]["provisioningState"] == "Succeeded"


def test_unsupported_expression_is_invalid_template(make_sandbox):
    sb = make_sandbox(world())
    template = aci_template()
    template["resources"][0]["name"] = "[uniqueString(resourceGroup().id)]"
    client = sdk.deployments(sb)
    with pytest.raises(HttpResponseError) as info:
        client.deployments.begin_create_or_update(RG, "aci-deploy", deploy_body(template, image=IMAGE))
    assert info.value.status_code == 400 and info.value.error.code == "InvalidTemplate"
    assert "uniqueString" in info.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.deployments.get(RG, "aci-deploy")  # a template refused in validation leaves no deployment


def test_missing_and_unknown_parameters_are_invalid_template(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.deployments(sb)
    with pytest.raises(HttpResponseError) as info:
        client.deployments.begin_create_or_update(RG, "d1", deploy_body(aci_template()))
    assert info.value.error.code == "InvalidTemplate" and "'image'" in info.value.error.message
    with pytest.raises(HttpResponseError) as info:
        client.deployments.begin_create_or_update(RG, "d2", deploy_body(aci_template(), image=IMAGE, colour="red"))
    assert info.value.error.code == "InvalidTemplate" and "colour" in info.value.error.message


def test_secure_parameters_are_not_shown_or_logged(make_sandbox):
    sb = make_sandbox(world())
    template = {"parameters": {"secret": {"type": "securestring"}}, "resources": [{
        "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "withsecret",
        "location": "eastus", "properties": {"note": "[concat('x', 'y')]"}}]}
    client = sdk.deployments(sb)
    result = client.deployments.begin_create_or_update(RG, "sec", deploy_body(template, secret="hunter2")).result()
    assert result.properties.parameters["secret"] == {"type": "SecureString"}
    logged = json.dumps([e.record for e in sb.world.activity])
    assert "hunter2" not in logged


def test_remediator_needs_write_on_every_template_resource(make_sandbox):
    deployer = {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                      "11111111-2222-3333-4444-555555555555",
                "properties": {"roleName": "Deployer", "type": "CustomRole",
                               "assignableScopes": [f"/subscriptions/{SUB}"],
                               "permissions": [{"actions": ["Microsoft.Resources/deployments/*"], "notActions": []}]}}
    grant = assignment(RG_ID, "11111111-2222-3333-4444-555555555555", principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(), identity(), can_pull(), grant], remediator=True,
                            roleDefinitions=[deployer]))
    with pytest.raises(HttpResponseError) as info:
        sdk.deployments(sb, REMEDIATOR).deployments.begin_create_or_update(
            RG, "aci-deploy", deploy_body(aci_template(), image=IMAGE))
    assert info.value.status_code == 403 and info.value.error.code == "InvalidTemplateDeployment"
    assert "Microsoft.ContainerInstance/containerGroups/write" in info.value.error.message

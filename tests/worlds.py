"""Small scenario worlds for tests, in the scenario file format (CONTRACT.md §3)."""

from __future__ import annotations

import copy
from typing import Any

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
RG = "acr-rg"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/myacr"
LOGIN_SERVER = "myacr.azurecr.io"
IDENTITY_ID = f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/myACRId"
IDENTITY_PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000001"
IDENTITY_CLIENT = "aaaaaaaa-0000-0000-0000-0000000000c1"
GROUP_ID = f"{RG_ID}/providers/Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup"
REMEDIATOR = "bbbbbbbb-0000-0000-0000-000000000001"
ACR_PULL_ROLE = (
    f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
)
IMAGE = f"{LOGIN_SERVER}/pythonworker:v1"


def registry(**props: Any) -> dict[str, Any]:
    base = {
        "loginServer": LOGIN_SERVER,
        "adminUserEnabled": False,
        "publicNetworkAccess": "Enabled",
        "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
        "networkRuleBypassOptions": "AzureServices",
        "roleAssignmentMode": "LegacyRegistryPermissions",
        "provisioningState": "Succeeded",
        "privateEndpointConnections": [],
        "anonymousPullEnabled": False,
    }
    base.update(props)
    return {
        "id": REGISTRY_ID,
        "name": "myacr",
        "type": "Microsoft.ContainerRegistry/registries",
        "location": "eastus",
        "sku": {"name": "Premium", "tier": "Premium"},
        "tags": {},
        "properties": base,
    }


def identity() -> dict[str, Any]:
    return {
        "id": IDENTITY_ID,
        "name": "myACRId",
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": "eastus",
        "tags": {},
        "properties": {"principalId": IDENTITY_PRINCIPAL, "clientId": IDENTITY_CLIENT, "tenantId": TENANT},
    }


def assignment(
    scope: str,
    role_guid: str,
    principal: str = IDENTITY_PRINCIPAL,
    name: str | None = None,
    condition: str | None = None,
) -> dict[str, Any]:
    name = name or f"{abs(hash((scope, role_guid, principal))) % 10**12:012d}-0000-4000-8000-000000000000"[:36]
    props: dict[str, Any] = {
        "scope": scope,
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
        "principalId": principal,
        "principalType": "ServicePrincipal",
    }
    if condition:
        props.update({"condition": condition, "conditionVersion": "2.0"})
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": props,
    }


def group_body(image: str = IMAGE, **overrides: Any) -> dict[str, Any]:
    """A container group PUT body that pulls ``image`` with the user-assigned identity."""
    body: dict[str, Any] = {
        "location": "eastus",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}},
        "properties": {
            "containers": [
                {
                    "name": "worker",
                    "properties": {
                        "image": image,
                        "ports": [{"port": 80, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}},
                    },
                }
            ],
            "imageRegistryCredentials": [{"server": LOGIN_SERVER, "identity": IDENTITY_ID}],
            "osType": "Linux",
            "restartPolicy": "Always",
            "ipAddress": {"type": "Public", "ports": [{"port": 80, "protocol": "TCP"}]},
        },
    }
    body.update(overrides)
    return copy.deepcopy(body)


def world(*, resources: list[dict[str, Any]] | None = None, remediator: bool = False, **extra: Any) -> dict[str, Any]:
    """A scenario dict: one Premium registry with ``pythonworker:v1``, one identity, no roles."""
    data: dict[str, Any] = {
        "name": "test-world",
        "tenantId": TENANT,
        "subscriptions": [SUB, SUB2],
        "resources": resources if resources is not None else [registry(), identity()],
        "images": {LOGIN_SERVER: {"pythonworker": ["v1", "v2"]}},
        "behaviour": {"rbacPropagationSeconds": 0, "activityLogLagSeconds": 0, "faults": []},
    }
    if remediator:
        data["remediator"] = {"principalId": REMEDIATOR}
    data.update(extra)
    return data


def failed_event(sb: Any, scenario: Any) -> dict[str, Any]:
    """Make the scenario's failing write in sandbox ``sb``; the container group's ResourceWriteFailure event."""
    from remediation.demo import user_write
    from sandbox.eventgrid import dispatcher

    events: list[dict[str, Any]] = []
    sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
    assert user_write(sb, scenario) is not None
    dispatcher(sb.world).wait_idle()
    return next(e for e in events if "/containergroups/" in e["subject"].lower())

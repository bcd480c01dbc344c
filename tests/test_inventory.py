"""The sweep's inventory: the container groups in the allowed scopes that pull with an identity."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

from remediation.azure.clients import AzureClients
from remediation.azure.inventory import groups_pulling_with_identity
from remediation.demo import user_write
from sandbox import Sandbox, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"


def test_only_groups_that_pull_with_an_identity_are_listed_once() -> None:
    scenario = load_scenario(ROOT / "scenarios/healthy.json")
    group_id = scenario.failed_write["resourceId"]
    # the same group, with an identity but pulling a public image without any registry credential
    plain = copy.deepcopy(scenario.failed_write)
    plain["resourceId"] = group_id.rsplit("/", 1)[0] + "/plain"
    plain["body"]["properties"].pop("imageRegistryCredentials")
    plain["body"]["properties"]["containers"][0]["properties"]["image"] = "mcr.microsoft.com/azuredocs/aci-helloworld"
    with Sandbox(scenario) as sb:
        assert user_write(sb, scenario) is None  # the group deploys, with an identity credential
        assert user_write(sb, SimpleNamespace(failed_write=plain)) is None
        clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle)
        try:
            assert groups_pulling_with_identity(clients, [SUB]) == [group_id]
            assert groups_pulling_with_identity(clients, [f"{SUB}/resourceGroups/myResourceGroup"]) == [group_id]
            assert groups_pulling_with_identity(clients, [SUB, f"{SUB}/resourceGroups/myResourceGroup"]) == [group_id]
            assert groups_pulling_with_identity(clients, []) == []
        finally:
            clients.close()

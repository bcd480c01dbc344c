"""The bundled scenario files (CONTRACT.md §3): they load, they are consistent, and bad files are
refused with a one-line message that names the problem. Needs no sandbox surface."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from remediation.checks import causes
from sandbox import ScenarioError, load_scenario, rbac
from sandbox.scenario import DEFAULT_SCENARIO, SCENARIO_DIR, bundled_scenarios
from tests import contract

FILES = bundled_scenarios()
REMEDIATOR = "bbbbbbbb-0000-0000-0000-000000000001"

# CONTRACT.md §1 and §2: the codes and outcomes outside checks rely on; the codes are the app's
# registry, which the contract test below holds to the contract's table.
CAUSE_CODES = {cause.code for cause in causes()}
# Retired by the contract: this version never emits them, so no check registers them (the current
# docs support VNet-injected and Windows groups with a user-assigned identity).
CONTRACT_RETIRED = {"ACI_VNET_UNSUPPORTED", "ACI_WINDOWS_UNSUPPORTED"}
OUTCOMES = {"remediated", "fixed-awaiting-redeploy", "diagnosed", "dry-run", "skipped", "failed"}
ACTION_KINDS = {"assign-role", "enable-trusted-services", "redeploy", "propose-definition"}
REMEDIATOR_ACTIONS = {
    "Microsoft.ContainerInstance/containerGroups/write",
    "Microsoft.ContainerRegistry/registries/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Microsoft.Resources/deployments/exportTemplate/action",
}
REGISTRY_KEYS = {"loginServer", "networkRuleSet", "publicNetworkAccess", "networkRuleBypassOptions",
                 "roleAssignmentMode", "privateEndpointConnections", "anonymousPullEnabled"}


def _raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _of_type(data: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [r for r in data["resources"] if r["type"].lower() == rtype.lower()]


def _ids(params: list[Path]) -> list[str]:
    return [p.stem for p in params]


def test_there_are_bundled_scenarios_and_the_default_is_missing_acrpull() -> None:
    assert len(FILES) >= 25
    assert DEFAULT_SCENARIO in FILES
    assert load_scenario(DEFAULT_SCENARIO).name == "missing-acrpull"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_file_loads_and_is_complete(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert len(scenario.description) > 60, "the description says what is wrong and what the engine should do"
    assert scenario.remediator == {"principalId": REMEDIATOR}
    assert scenario.failed_write is not None
    assert scenario.expect is not None
    assert scenario.expect["outcome"] in OUTCOMES
    assert set(scenario.expect["causes"]) <= CAUSE_CODES
    assert set(scenario.expect.get("actions", [])) <= ACTION_KINDS
    raw = _raw(path)
    assert "expectedError" in raw
    error = raw["expectedError"]
    if error is None:
        assert scenario.expect["causes"] == [] and scenario.expect["outcome"] == "skipped"
    else:
        assert set(error) == {"code", "message"} and error["code"] and error["message"]
        assert not error["message"].startswith("<"), "a placeholder message was never filled in"
    if scenario.expect["causes"]:
        assert error is not None, "a scenario with causes needs a failing write"


_WRITE = "Microsoft.Authorization/roleAssignments/write"
_DELETE = "Microsoft.Authorization/roleAssignments/delete"


def _delegation_allows(condition: str, sub: str, action: str, role: str,
                       principal_type: str = "ServicePrincipal") -> bool:
    role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    attrs = {"Microsoft.Authorization/roleAssignments:RoleDefinitionId": role_id,
             "Microsoft.Authorization/roleAssignments:PrincipalType": principal_type}
    return rbac.condition_allows(condition, rbac.ConditionInput(action, attrs, attrs))


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_remediator_holds_exactly_the_infra_roles(path: Path) -> None:
    data = _raw(path)
    roles = {rbac.guid_of(r["id"]): r for r in data["roleDefinitions"]}
    mine = [a for a in _of_type(data, "Microsoft.Authorization/roleAssignments")
            if a["properties"]["principalId"].lower() == REMEDIATOR]
    assert len(mine) == 3 * len(data["subscriptions"])
    for sub in data["subscriptions"]:
        at_sub = {rbac.guid_of(a["properties"]["roleDefinitionId"]): a for a in mine
                  if a["properties"]["scope"].lower() == f"/subscriptions/{sub}"}
        assert set(at_sub) >= {rbac.READER, rbac.RBAC_ADMINISTRATOR}
        delegated = at_sub[rbac.RBAC_ADMINISTRATOR]["properties"]
        assert delegated["conditionVersion"] == "2.0"
        custom = [g for g in at_sub if g not in (rbac.READER, rbac.RBAC_ADMINISTRATOR)]
        assert len(custom) == 1 and custom[0] in roles
        definition = roles[custom[0]]
        assert definition["id"].lower().startswith(f"/subscriptions/{data['subscriptions'][0]}/providers/"
                                                   "microsoft.authorization/roledefinitions/")
        assert definition["properties"]["roleName"] == "ACI Image Pull Remediator"
        assert definition["properties"]["type"] == "CustomRole"
        assert f"/subscriptions/{sub}" in definition["properties"]["assignableScopes"]
        assert set(definition["properties"]["permissions"][0]["actions"]) == REMEDIATOR_ACTIONS

        # the delegation condition lets it grant only the two pull roles, to service principals
        condition = delegated["condition"]
        for role in (rbac.ACR_PULL, rbac.REPOSITORY_READER):
            assert _delegation_allows(condition, sub, _WRITE, role)
            assert _delegation_allows(condition, sub, _DELETE, role)
        assert not _delegation_allows(condition, sub, _WRITE, rbac.OWNER)
        assert not _delegation_allows(condition, sub, _WRITE, rbac.ACR_PUSH)
        assert not _delegation_allows(condition, sub, _DELETE, rbac.CONTRIBUTOR)
        assert not _delegation_allows(condition, sub, _WRITE, rbac.ACR_PULL, "User")


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_references_resolve(path: Path) -> None:
    data = _raw(path)
    builtin = {rbac.guid_of(r["id"]) for r in rbac.builtin_role_definitions()}
    custom = {rbac.guid_of(r["id"]) for r in data["roleDefinitions"]}
    ids = {r["id"].lower() for r in data["resources"]}
    for a in _of_type(data, "Microsoft.Authorization/roleAssignments"):
        props = a["properties"]
        assert rbac.guid_of(props["roleDefinitionId"]) in builtin | custom, a["id"]
        assert a["id"].lower().startswith(props["scope"].lower() + "/providers/microsoft.authorization/")
        assert props["scope"].lower() in ids or props["scope"].count("/") == 2, f"scope {props['scope']} missing"
        # identities and the remediator are service principals; the deployer a user, a scenario's group a group
        deployer = (data.get("deployer") or {}).get("principalId", "").lower()
        groups = {g.lower() for g in data.get("groups", {})}
        expected = ("User" if props["principalId"].lower() == deployer
                    else "Group" if props["principalId"].lower() in groups else "ServicePrincipal")
        assert props["principalType"] == expected, a["id"]
    for reg in _of_type(data, "Microsoft.ContainerRegistry/registries"):
        missing = REGISTRY_KEYS - set(reg["properties"])
        assert not missing, f"{reg['id']} lacks {missing}"
    for ident in _of_type(data, "Microsoft.ManagedIdentity/userAssignedIdentities"):
        assert {"principalId", "clientId", "tenantId"} <= set(ident["properties"])
    failed = data["failedWrite"]
    group_rg = "/".join(failed["resourceId"].split("/")[:5]).lower()
    assert group_rg in ids, "the container group's resource group is listed"
    for identity_id in (failed["body"].get("identity", {}).get("userAssignedIdentities") or {}):
        assert identity_id.lower() in ids, f"attached identity {identity_id} is in the world"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_images_match_the_expected_diagnosis(path: Path) -> None:
    """A scenario expecting a redeploy to succeed has its image; one expecting ACR_IMAGE_NOT_FOUND does not."""
    data = _raw(path)
    images = {server.lower(): repos for server, repos in data["images"].items()}
    registries = {r["properties"]["loginServer"].lower()
                  for r in _of_type(data, "Microsoft.ContainerRegistry/registries")}
    causes = data["expect"]["causes"]
    # a private endpoint's write (the ACI-delegated subnet cause) pulls no image
    for container in data["failedWrite"]["body"]["properties"].get("containers", []):
        server, _, rest = container["properties"]["image"].partition("/")
        repo, _, tag = rest.partition(":")
        present = tag in images.get(server.lower(), {}).get(repo, [])
        if "ACR_NOT_FOUND" in causes:
            assert server.lower() not in registries
        elif "ACR_IMAGE_NOT_FOUND" in causes:
            assert server.lower() in registries and not present
        else:
            assert server.lower() in registries and present


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_networking_refers_to_networks_in_the_world(path: Path) -> None:
    """Private endpoints sit in subnets of listed virtual networks; peerings and DNS zone links name
    listed networks; a link lives under a listed zone; endpoints target listed registries."""
    data = _raw(path)
    vnets = {v["id"].lower(): v for v in _of_type(data, "Microsoft.Network/virtualNetworks")}
    subnets = {s["id"].lower() for v in vnets.values() for s in v["properties"].get("subnets", [])}
    registries = {r["id"].lower() for r in _of_type(data, "Microsoft.ContainerRegistry/registries")}
    zones = {z["id"].lower() for z in _of_type(data, "Microsoft.Network/privateDnsZones")}
    for vnet in vnets.values():
        for peering in vnet["properties"].get("virtualNetworkPeerings", []):
            assert peering["properties"]["remoteVirtualNetwork"]["id"].lower() in vnets, peering["id"]
    for endpoint in _of_type(data, "Microsoft.Network/privateEndpoints"):
        assert endpoint["properties"]["subnet"]["id"].lower() in subnets, endpoint["id"]
        for conn in endpoint["properties"].get("privateLinkServiceConnections", []):
            assert conn["properties"]["privateLinkServiceId"].lower() in registries, endpoint["id"]
    for link in _of_type(data, "Microsoft.Network/privateDnsZones/virtualNetworkLinks"):
        assert link["id"].lower().rsplit("/virtualnetworklinks/", 1)[0] in zones, link["id"]
        assert link["properties"]["virtualNetwork"]["id"].lower() in vnets, link["id"]
    failed = data["failedWrite"]
    if "/providers/microsoft.network/privateendpoints/" in failed["resourceId"].lower():
        assert failed["body"]["properties"]["subnet"]["id"].lower() in subnets


def test_every_contract_cause_code_is_exercised() -> None:
    seen = {code for path in FILES for code in _raw(path)["expect"]["causes"]}
    assert seen == CAUSE_CODES
    if contract.CONTRACT.is_file():  # the registered codes must follow the contract's table
        table = set(contract.cause_table())
        assert table == CAUSE_CODES
        assert set(contract.retired_codes()) == CONTRACT_RETIRED


def test_no_check_registers_or_expects_a_retired_code() -> None:
    assert not CONTRACT_RETIRED & CAUSE_CODES
    assert not CONTRACT_RETIRED & {code for path in FILES for code in _raw(path)["expect"]["causes"]}


@pytest.mark.parametrize("name", ["vnet-injected", "windows-group"])
def test_the_old_vnet_and_windows_scenarios_are_the_missing_acrpull_they_are_in_azure_now(name: str) -> None:
    data = _raw(SCENARIO_DIR / f"{name}.json")
    props = data["failedWrite"]["body"]["properties"]
    assert props.get("subnetIds") or props["osType"] == "Windows"
    assert data["expect"]["outcome"] == "remediated"
    assert data["expect"]["causes"] == ["ACR_PULL_PERMISSION_MISSING"]
    assert data["expect"]["actions"] == ["assign-role"]


def test_some_scenarios_have_two_causes_and_every_outcome_but_failed_appears() -> None:
    expects = [_raw(p)["expect"] for p in FILES]
    assert sum(1 for e in expects if len(e["causes"]) >= 2) >= 2
    assert {e["outcome"] for e in expects} == OUTCOMES - {"failed"}


def test_deployment_scenarios_carry_template_parameters_and_name() -> None:
    deployed = [_raw(p) for p in FILES if _raw(p)["failedWrite"]["via"] == "deployment"]
    assert deployed
    for data in deployed:
        failed = data["failedWrite"]
        template = failed["template"]
        assert template["$schema"].endswith("deploymentTemplate.json#")
        groups = [r for r in template["resources"] if r["type"] == "Microsoft.ContainerInstance/containerGroups"]
        assert len(groups) == 1 and groups[0]["apiVersion"] == failed["apiVersion"]
        assert set(failed["parameters"]) <= set(template["parameters"])
        assert all(set(v) == {"value"} for v in failed["parameters"].values())
        assert isinstance(failed["deploymentName"], str) and failed["deploymentName"]


# --- bad files ------------------------------------------------------------------------------


def _write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message, "the error is one line"
    assert str(path) in message, "the error names the file"
    return message


def _default() -> dict[str, Any]:
    return copy.deepcopy(_raw(SCENARIO_DIR / "missing-acrpull.json"))


def test_missing_name_is_named(tmp_path: Path) -> None:
    data = _default()
    del data["name"]
    assert "name" in _refused(_write(tmp_path, data))


def test_bad_guid_is_named(tmp_path: Path) -> None:
    data = _default()
    data["tenantId"] = "not-a-guid"
    assert "tenantId" in _refused(_write(tmp_path, data)) and "GUID" in _refused(_write(tmp_path, data))
    data = _default()
    data["subscriptions"] = ["00000000-0000-0000-0000-00000000000"]
    assert "subscriptions[0]" in _refused(_write(tmp_path, data))


def test_resource_outside_the_subscriptions_is_named(tmp_path: Path) -> None:
    data = _default()
    stray = copy.deepcopy(data["resources"][1])
    stray["id"] = stray["id"].replace(data["subscriptions"][0], "00000000-0000-0000-0000-0000000000ff")
    data["resources"].append(stray)
    message = _refused(_write(tmp_path, data))
    assert f"resources[{len(data['resources']) - 1}].id" in message
    assert "00000000-0000-0000-0000-0000000000ff" in message and "not in subscriptions" in message


def test_bad_fault_is_named(tmp_path: Path) -> None:
    data = _default()
    data["behaviour"]["faults"] = [{"match": "PUT */roleAssignments/*", "status": 429, "retryAfter": -1}]
    assert "behaviour.faults[0].retryAfter" in _refused(_write(tmp_path, data))
    data["behaviour"]["faults"] = [{"match": "*/roleAssignments/*", "status": 429}]
    assert "behaviour.faults[0].match" in _refused(_write(tmp_path, data))
    data["behaviour"]["faults"] = [{"match": "PUT */roleAssignments/*"}]
    assert "behaviour.faults[0]" in _refused(_write(tmp_path, data))


def test_not_json_gives_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(_default(), indent=2).splitlines()
    text[3] = text[3].rstrip(",")  # drop one comma: line 5 now starts where the parser expected ','
    message = _refused(_write(tmp_path, "\n".join(text)))
    assert "not valid JSON" in message
    assert re.search(r"line 5, column \d+", message), message


def test_missing_file_is_named(tmp_path: Path) -> None:
    message = _refused(tmp_path / "nope.json")
    assert "no such scenario file" in message


@pytest.mark.parametrize(("resource_type", "remove"), [
    ("Microsoft.Network/privateEndpoints", ("properties", "subnet")),
    ("Microsoft.Network/privateDnsZones/virtualNetworkLinks", ("properties", "virtualNetwork")),
    ("Microsoft.Network/virtualNetworks", ("properties", "virtualNetworkPeerings", 0, "properties",
                                           "remoteVirtualNetwork")),
])
def test_networking_without_the_reference_it_is_read_by_is_named(tmp_path: Path, resource_type: str,
                                                                  remove: tuple[Any, ...]) -> None:
    data = _raw(SCENARIO_DIR / "vnet-private-endpoint.json")
    index, resource = next((i, r) for i, r in enumerate(data["resources"]) if r["type"] == resource_type)
    parent: Any = resource
    for step in remove[:-1]:
        parent = parent[step]
    del parent[remove[-1]]
    assert f"resources[{index}]" in _refused(_write(tmp_path, data))


def test_a_private_endpoints_failed_write_is_accepted_and_another_type_is_named(tmp_path: Path) -> None:
    data = _raw(SCENARIO_DIR / "private-endpoint-in-delegated-subnet.json")
    load_scenario(_write(tmp_path, data, "ok.json"))
    data["failedWrite"]["resourceId"] = data["failedWrite"]["resourceId"].replace(
        "Microsoft.Network/privateEndpoints", "Microsoft.Network/virtualNetworks")
    assert "failedWrite.resourceId" in _refused(_write(tmp_path, data))

"""The Terraform plan loader: ``terraform show -json`` plans read into declared resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import SUBSCRIPTION, Declared, Definitions, key_of, principal_of
from remediation.preflight.terraform import load
from remediation.redaction import REDACTED

FIXTURES = Path(__file__).parent / "preflight_fixtures" / "terraform"
EXPECTED: dict[str, list[str]] = json.loads((FIXTURES / "expected.json").read_text())

GROUP = key_of("Microsoft.ContainerInstance/containerGroups", "aci-app")
IDENTITY = key_of("Microsoft.ManagedIdentity/userAssignedIdentities", "id-app-pull")
REGISTRY = key_of("Microsoft.ContainerRegistry/registries", "acrapp01")
GRANT = key_of("Microsoft.Authorization/roleAssignments", "azurerm_role_assignment.pull")
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-app"
IDENTITY_ID = f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app-pull"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acrapp01"
ACRPULL = "/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
SUBNET_ID = f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/vnet-app/subnets/%s"


def fixture(name: str) -> Definitions:
    return load(FIXTURES / name)


def by_key(definitions: Definitions) -> dict[str, Declared]:
    keys = [r.key for r in definitions.resources]
    assert len(keys) == len(set(keys)), keys
    return {r.key: r for r in definitions.resources}


def write_plan(tmp_path: Path, resources: list[dict[str, Any]], **extra: Any) -> Path:
    """A minimal plan in Terraform's format: each resource given as address, type, values and
    optionally unknown (after_unknown), expressions, depends_on, actions, index."""
    planned = []
    changes = []
    configuration: dict[str, Any] = {}
    for r in resources:
        base = {"address": r["address"], "mode": "managed", "type": r["type"], "name": r["address"].split(".")[-1]}
        if "index" in r:
            base["index"] = r["index"]
        if r.get("actions") != ["delete"]:
            planned.append({**base, "values": r["values"]})
        changes.append({**base, "change": {"actions": r.get("actions", ["create"]), "after": r["values"],
                                           "after_unknown": r.get("unknown", {})}})
        config_address = r["address"].split("[")[0]
        configuration.setdefault(config_address, {
            "address": config_address, "mode": "managed", "type": r["type"],
            "expressions": r.get("expressions", {}), **({"depends_on": r["depends_on"]} if "depends_on" in r else {})})
    document = {"format_version": "1.2", "planned_values": {"root_module": {"resources": planned}},
                "resource_changes": changes,
                "configuration": {"root_module": {"resources": list(configuration.values())}}, **extra}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    return path


def ref(*references: str) -> dict[str, Any]:
    return {"references": list(references)}


def identity(name: str = "pull", idname: str = "id-app-pull") -> dict[str, Any]:
    return {"address": f"azurerm_user_assigned_identity.{name}", "type": "azurerm_user_assigned_identity",
            "values": {"name": idname, "resource_group_name": "rg-app", "location": "westeurope"},
            "unknown": {"id": True, "principal_id": True}}


def registry(**values: Any) -> dict[str, Any]:
    return {"address": "azurerm_container_registry.acr", "type": "azurerm_container_registry",
            "values": {"name": "acrapp01", "resource_group_name": "rg-app", "sku": "Premium", **values},
            "unknown": {"id": True, "login_server": True}}


# -- every fixture --

def test_every_fixture_is_listed_and_every_listed_file_exists() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_loads_as_a_plan_without_lines(name: str) -> None:
    definitions = fixture(name)
    assert definitions.kind == "terraform-plan"
    assert definitions.path == str(FIXTURES / name)
    groups = [r for r in definitions.resources if r.type == "Microsoft.ContainerInstance/containerGroups"]
    assert groups, "every fixture declares a container group"
    for resource in definitions.resources:
        assert resource.location.file == str(FIXTURES / name)
        assert resource.location.line is None
        assert resource.symbol
        assert not resource.unresolved, (resource.symbol, resource.unresolved)


def test_every_offline_cause_has_a_broken_and_a_clean_fixture() -> None:
    causes = {"ACI_API_VERSION_TOO_OLD", "ACI_CREDENTIAL_AMBIGUOUS", "ACI_IDENTITY_NOT_ATTACHED",
              "ACI_SYSTEM_IDENTITY_UNSUPPORTED", "ACI_CREDENTIAL_SERVER_MISSING", "ACR_PULL_PERMISSION_MISSING",
              "ACR_ABAC_REPOSITORY_PERMISSIONS", "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY",
              "ACR_TRUSTED_SERVICES_DISABLED", "ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET",
              "ACR_PULL_PERMISSION_PROPAGATING"}
    broken = {name.removesuffix("-broken.json"): codes for name, codes in EXPECTED.items() if "-broken" in name}
    assert {code for codes in broken.values() for code in codes} == causes
    assert all(len(codes) == 1 for codes in broken.values())
    for stem in broken:
        assert EXPECTED[f"{stem}-clean.json"] == []


# -- the clean stack, resource by resource --

def test_the_clean_stack_in_arm_shape() -> None:
    resources = by_key(fixture("pull-propagating-race-clean.json"))
    assert set(resources) == {GROUP, IDENTITY, REGISTRY, GRANT}

    group = resources[GROUP]
    assert group.type == "Microsoft.ContainerInstance/containerGroups"
    assert group.symbol == "azurerm_container_group.app"
    assert group.resource_id == f"{RG_ID}/providers/Microsoft.ContainerInstance/containerGroups/aci-app"
    assert group.api_version is None  # the azurerm provider's api-version is not in a plan
    assert group.body["location"] == "westeurope"
    assert group.body["tags"] == {"app": "web"}
    assert group.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}
    props = group.body["properties"]
    assert props["osType"] == "Linux"
    assert props["ipAddress"] == {"type": "Public"}
    assert props["containers"] == [{"name": "app", "properties": {"image": "acrapp01.azurecr.io/app:1.4.2"}}]
    # server from the registry's login_server, identity from the identity's id: both known after apply
    assert props["imageRegistryCredentials"] == [{"server": "acrapp01.azurecr.io", "identity": IDENTITY_ID}]
    assert "subnetIds" not in props

    assert resources[IDENTITY].resource_id == IDENTITY_ID
    assert resources[IDENTITY].body == {"location": "westeurope"}

    acr = resources[REGISTRY]
    assert acr.resource_id == REGISTRY_ID
    assert acr.body["sku"] == {"name": "Premium"}
    assert acr.body["properties"]["loginServer"] == "acrapp01.azurecr.io"
    assert acr.body["properties"]["publicNetworkAccess"] == "Enabled"
    assert acr.body["properties"]["networkRuleBypassOptions"] == "AzureServices"
    assert "roleAssignmentMode" not in acr.body["properties"]

    grant = resources[GRANT]
    assert grant.type == "Microsoft.Authorization/roleAssignments"
    assert grant.scope == REGISTRY  # the declared registry's key, from the scope's reference to its id
    assert grant.resource_id is None  # its GUID name is known only after apply
    assert grant.body == {"properties": {"roleDefinitionName": "AcrPull", "principalId": principal_of(IDENTITY)}}
    assert grant.depends_on == {REGISTRY, IDENTITY}


def test_explicit_depends_on_orders_the_group_after_the_grant() -> None:
    clean = by_key(fixture("pull-propagating-race-clean.json"))[GROUP]
    race = by_key(fixture("pull-propagating-race-broken.json"))[GROUP]
    assert clean.depends_on == {GRANT, REGISTRY, IDENTITY}
    # the references alone order the group after the identity and registry, never after the grant
    assert race.depends_on == {REGISTRY, IDENTITY}


def test_no_grant_declared() -> None:
    resources = by_key(fixture("pull-permission-missing-broken.json"))
    assert set(resources) == {GROUP, IDENTITY, REGISTRY}


def test_role_definition_id_is_kept_as_given() -> None:
    grant = by_key(fixture("pull-permission-missing-clean.json"))[GRANT]
    assert grant.body["properties"]["roleDefinitionId"] == (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        "7f951dda-4ed3-4680-a7ca-43fe172d538d")
    assert "roleDefinitionName" not in grant.body["properties"]


def test_a_credential_with_username_password_and_identity_keeps_all_three_without_the_secret() -> None:
    path = FIXTURES / "credential-ambiguous-broken.json"
    assert "not-a-real-password" in path.read_text()
    group = by_key(load(path))[GROUP]
    assert group.body["properties"]["imageRegistryCredentials"] == [
        {"server": "acrapp01.azurecr.io", "username": "acrapp01", "identity": IDENTITY_ID, "password": REDACTED}]
    assert "not-a-real-password" not in json.dumps(group.body)


def test_an_admin_user_credential_without_identity() -> None:
    group = by_key(fixture("credential-ambiguous-clean.json"))[GROUP]
    assert "identity" not in group.body
    assert group.body["properties"]["imageRegistryCredentials"] == [
        {"server": "acrapp01.azurecr.io", "username": "acrapp01", "password": REDACTED}]


def test_identity_not_attached_names_an_identity_declared_elsewhere() -> None:
    group = by_key(fixture("identity-not-attached-broken.json"))[GROUP]
    credential = group.body["properties"]["imageRegistryCredentials"][0]
    assert credential["identity"].endswith("/userAssignedIdentities/id-elsewhere")
    assert list(group.body["identity"]["userAssignedIdentities"]) == [IDENTITY_ID]


def test_every_referenced_identity_is_attached() -> None:
    group = by_key(fixture("identity-not-attached-clean.json"))[GROUP]
    assert set(group.body["identity"]["userAssignedIdentities"]) == {
        IDENTITY_ID, f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app-ops"}


@pytest.mark.parametrize(("name", "bypass"), [("trusted-services-disabled-broken.json", "None"),
                                              ("trusted-services-disabled-clean.json", "AzureServices")])
def test_a_restricted_registry(name: str, bypass: str) -> None:
    props = by_key(fixture(name))[REGISTRY].body["properties"]
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkRuleSet"] == {"defaultAction": "Deny", "ipRules": []}
    assert props["networkRuleBypassOptions"] == bypass


@pytest.mark.parametrize(("name", "role", "condition"), [
    ("abac-repository-permissions-broken.json", "AcrPull", None),
    ("abac-repository-permissions-clean.json", "Container Registry Repository Reader", None),
    ("abac-condition-excludes-repository-broken.json", "Container Registry Repository Reader", "'tools'"),
    ("abac-condition-excludes-repository-clean.json", "Container Registry Repository Reader", "'app'"),
])
def test_an_abac_registry_and_its_grant(name: str, role: str, condition: str | None) -> None:
    resources = by_key(fixture(name))
    assert resources[REGISTRY].body["properties"]["roleAssignmentMode"] == "AbacRepositoryPermissions"
    props = resources[GRANT].body["properties"]
    assert props["roleDefinitionName"] == role
    if condition is None:
        assert "condition" not in props
    else:
        assert condition in props["condition"]
        assert props["conditionVersion"] == "2.0"


@pytest.mark.parametrize(("name", "subnet"), [("private-endpoint-delegated-subnet-broken.json", "aci"),
                                              ("private-endpoint-delegated-subnet-clean.json", "endpoints")])
def test_a_registry_private_endpoint_and_the_subnets(name: str, subnet: str) -> None:
    resources = by_key(fixture(name))
    endpoint = resources[key_of("Microsoft.Network/privateEndpoints", "pe-acrapp01")]
    assert endpoint.body["properties"]["subnet"] == {"id": SUBNET_ID % subnet}
    assert endpoint.body["properties"]["privateLinkServiceConnections"] == [
        {"name": "acrapp01-registry", "properties": {"groupIds": ["registry"], "privateLinkServiceId": REGISTRY_ID}}]
    aci = resources[key_of("Microsoft.Network/virtualNetworks/subnets", "vnet-app/aci")]
    assert aci.resource_id == SUBNET_ID % "aci"
    assert aci.body["properties"]["delegations"] == [{"name": "aci", "properties": {
        "serviceName": "Microsoft.ContainerInstance/containerGroups",
        "actions": ["Microsoft.Network/virtualNetworks/subnets/action"]}}]
    free = resources[key_of("Microsoft.Network/virtualNetworks/subnets", "vnet-app/endpoints")]
    assert free.body["properties"]["delegations"] == []
    assert key_of("Microsoft.Network/virtualNetworks", "vnet-app") in aci.depends_on
    group = resources[GROUP]
    assert group.body["properties"]["subnetIds"] == [{"id": SUBNET_ID % "aci"}]
    assert group.body["properties"]["ipAddress"] == {"type": "Private"}


# -- azapi_resource: the definition causes azurerm's schema rules out --

@pytest.mark.parametrize(("name", "api_version"), [("api-version-too-old-broken.json", "2021-03-01"),
                                                   ("api-version-too-old-clean.json", "2023-05-01")])
def test_azapi_carries_the_api_version_and_arms_body(name: str, api_version: str) -> None:
    group = by_key(fixture(name))[GROUP]
    assert group.symbol == "azapi_resource.app"
    assert group.api_version == api_version
    assert group.resource_id == f"{RG_ID}/providers/Microsoft.ContainerInstance/containerGroups/aci-app"
    props = group.body["properties"]
    assert props["containers"][0]["properties"]["image"] == "acrapp01.azurecr.io/app:1.4.2"
    # both leaves known after apply, each filled from the body expression's one fitting reference
    assert props["imageRegistryCredentials"] == [{"server": "acrapp01.azurecr.io", "identity": IDENTITY_ID}]
    assert group.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}
    assert group.body["location"] == "westeurope"
    assert GRANT in group.depends_on


def test_azapi_system_identity_credential() -> None:
    group = by_key(fixture("system-identity-broken.json"))[GROUP]
    assert group.body["identity"] == {"type": "SystemAssigned"}
    assert group.body["properties"]["imageRegistryCredentials"] == [
        {"server": "acrshared.azurecr.io", "identity": "[system]"}]


def test_azapi_credential_without_server() -> None:
    broken = by_key(fixture("credential-server-missing-broken.json"))[GROUP]
    assert broken.body["properties"]["imageRegistryCredentials"] == [{"identity": IDENTITY_ID}]
    clean = by_key(fixture("credential-server-missing-clean.json"))[GROUP]
    assert clean.body["properties"]["imageRegistryCredentials"] == [
        {"server": "acrshared.azurecr.io", "identity": IDENTITY_ID}]


def test_azapi_jsonencoded_body() -> None:
    group = by_key(fixture("azapi-jsonencode-body.json"))[GROUP]
    assert group.api_version == "2023-05-01"
    credential = group.body["properties"]["imageRegistryCredentials"][0]
    assert credential["server"] == "acrshared.azurecr.io"
    assert credential["identity"] in group.body["identity"]["userAssignedIdentities"]


# -- shapes --

def test_a_public_image_group_without_credentials() -> None:
    group = by_key(fixture("quickstart-public-image.json"))[GROUP]
    assert group.body["properties"]["containers"] == [
        {"name": "hello-world", "properties": {"image": "mcr.microsoft.com/azuredocs/aci-helloworld:latest"}}]
    assert "imageRegistryCredentials" not in group.body["properties"]
    assert "identity" not in group.body


def test_every_container_of_a_group() -> None:
    group = by_key(fixture("multi-container-sidecar.json"))[GROUP]
    assert [c["properties"]["image"] for c in group.body["properties"]["containers"]] == [
        "acrapp01.azurecr.io/web:3.1.0", "acrapp01.azurecr.io/log-shipper:0.9"]


def test_count_instances_each_become_a_declaration() -> None:
    resources = by_key(fixture("count-workers.json"))
    workers = [r for r in resources.values() if r.type == "Microsoft.ContainerInstance/containerGroups"]
    assert [(w.name, w.symbol) for w in workers] == [("aci-worker-0", "azurerm_container_group.worker[0]"),
                                                      ("aci-worker-1", "azurerm_container_group.worker[1]")]
    assert all(GRANT in w.depends_on for w in workers)


def test_resources_in_a_child_module() -> None:
    resources = by_key(fixture("module-stack.json"))
    grant = key_of("Microsoft.Authorization/roleAssignments", "module.aci.azurerm_role_assignment.pull")
    assert set(resources) == {GROUP, IDENTITY, REGISTRY, grant}
    assert resources[GROUP].symbol == "module.aci.azurerm_container_group.app"
    # references and depends_on inside the module name the module's own resources
    assert resources[GROUP].depends_on == {grant, REGISTRY, IDENTITY}
    assert resources[grant].scope == REGISTRY
    assert resources[grant].body["properties"]["principalId"] == principal_of(IDENTITY)


def test_what_exists_is_ordered_before_what_the_plan_creates() -> None:
    resources = by_key(fixture("existing-grant-new-group.json"))
    grant = key_of("Microsoft.Authorization/roleAssignments", "0f6e2a1c-3b5d-4f7e-9a8c-2d4b6f8a0c1e")
    group = resources[GROUP]
    assert grant in group.depends_on  # no depends_on in the configuration: the grant exists already
    assert resources[grant].depends_on == {REGISTRY, IDENTITY}  # a no-op is not ordered after other no-ops
    subscription = "3f2a7c1e-0b4d-4e8a-9c61-5d2e8f0a7b13"
    assert group.resource_id == (f"/subscriptions/{subscription}/resourceGroups/rg-app/providers/"
                                 "Microsoft.ContainerInstance/containerGroups/aci-app")
    assert resources[grant].scope == REGISTRY
    assert resources[IDENTITY].body["properties"]["principalId"] == resources[grant].body["properties"]["principalId"]


def test_a_delete_only_change_is_not_declared() -> None:
    resources = by_key(fixture("registry-deleted-alongside.json"))
    assert key_of("Microsoft.ContainerRegistry/registries", "acrold01") not in resources
    assert set(resources) == {GROUP, IDENTITY, REGISTRY, GRANT}


# -- one rule at a time, on small plans --

def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format_version": "1.2",')
    with pytest.raises(PreflightInputError, match=r"plan\.json: not valid JSON"):
        load(path)


@pytest.mark.parametrize("document", [[], {"format_version": "1.0", "values": {"root_module": {}}},
                                      {"planned_values": {"root_module": {}}}, {"resources": []}])
def test_not_a_plan(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PreflightInputError, match=r"state\.json: not a Terraform plan"):
        load(path)


def test_an_unknown_major_format_version(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [], format_version="2.0")
    with pytest.raises(PreflightInputError, match=r"format_version 2\.0 is not supported"):
        load(path)


def test_an_older_plan_format_is_read(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [identity()])
    document = json.loads(path.read_text())
    document["format_version"] = "0.2"
    path.write_text(json.dumps(document))
    assert [r.key for r in load(path).resources] == [IDENTITY]


def test_a_parameters_file_is_noted_not_used(tmp_path: Path) -> None:
    definitions = load(write_plan(tmp_path, [identity()]), tmp_path / "vars.json")
    assert definitions.notes == (f"parameters file {tmp_path / 'vars.json'} not used: a Terraform plan carries "
                                 "its variables",)


def test_the_providers_subscription_and_a_resource_groups_id(tmp_path: Path) -> None:
    rg = {"address": "azurerm_resource_group.rg", "type": "azurerm_resource_group",
          "values": {"name": "rg-app", "location": "westeurope"}, "unknown": {"id": True}}
    api = {"address": "azapi_resource.uai", "type": "azapi_resource",
           "values": {"type": "Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31", "name": "id-app-pull",
                      "body": {}}, "unknown": {"id": True, "parent_id": True},
           "expressions": {"parent_id": ref("azurerm_resource_group.rg.id", "azurerm_resource_group.rg")}}
    configuration = {"provider_config": {"azurerm": {"name": "azurerm", "expressions": {
        "subscription_id": {"constant_value": "11111111-2222-3333-4444-555555555555"}}}}}
    path = write_plan(tmp_path, [rg, api])
    document = json.loads(path.read_text())
    document["configuration"].update(configuration)
    path.write_text(json.dumps(document))
    (declared,) = load(path).resources
    assert declared.resource_id == ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-app/"
                                    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app-pull")
    assert declared.api_version == "2023-01-31"


def test_azapi_child_and_extension_resources(tmp_path: Path) -> None:
    vnet = {"address": "azurerm_virtual_network.vnet", "type": "azurerm_virtual_network",
            "values": {"name": "vnet-app", "resource_group_name": "rg-app", "address_space": ["10.0.0.0/16"]},
            "unknown": {"id": True}}
    subnet = {"address": "azapi_resource.aci", "type": "azapi_resource",
              "values": {"type": "Microsoft.Network/virtualNetworks/subnets@2024-05-01", "name": "aci",
                         "body": {"properties": {"delegations": [{"name": "aci", "properties": {
                             "serviceName": "Microsoft.ContainerInstance/containerGroups"}}]}}},
              "unknown": {"id": True, "parent_id": True},
              "expressions": {"parent_id": ref("azurerm_virtual_network.vnet.id", "azurerm_virtual_network.vnet")}}
    grant = {"address": "azapi_resource.pull", "type": "azapi_resource",
             "values": {"type": "Microsoft.Authorization/roleAssignments@2022-04-01",
                        "name": "2f1b8c3e-6a7d-4e9f-8b2c-4d6e8f0a1b3c", "parent_id": REGISTRY_ID,
                        "body": {"properties": {"roleDefinitionId": ACRPULL}}},
             "unknown": {"id": True, "body": {"properties": {"principalId": True}}},
             "expressions": {"body": ref("azurerm_user_assigned_identity.pull.principal_id",
                                         "azurerm_user_assigned_identity.pull")}}
    resources = by_key(load(write_plan(tmp_path, [vnet, subnet, grant, identity(), registry()])))
    child = resources[key_of("Microsoft.Network/virtualNetworks/subnets", "vnet-app/aci")]
    assert child.resource_id == SUBNET_ID % "aci"
    assert child.api_version == "2024-05-01"
    extension = resources[key_of("Microsoft.Authorization/roleAssignments", "2f1b8c3e-6a7d-4e9f-8b2c-4d6e8f0a1b3c")]
    assert extension.scope == REGISTRY  # parent_id is the declared registry's id
    assert extension.resource_id == (f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/"
                                     "2f1b8c3e-6a7d-4e9f-8b2c-4d6e8f0a1b3c")
    assert extension.body["properties"]["principalId"] == principal_of(IDENTITY)
    assert IDENTITY in extension.depends_on


def test_an_azapi_leaf_with_more_than_one_fitting_reference_is_unresolved(tmp_path: Path) -> None:
    group = {"address": "azapi_resource.app", "type": "azapi_resource",
             "values": {"type": "Microsoft.ContainerInstance/containerGroups@2023-05-01", "name": "aci-app",
                        "parent_id": RG_ID, "body": {"properties": {"imageRegistryCredentials": [
                            {"server": "acrapp01.azurecr.io"}]}}},
             "unknown": {"id": True, "body": {"properties": {"imageRegistryCredentials": [{"identity": True}]}}},
             "expressions": {"body": ref(*(f"azurerm_user_assigned_identity.{name}{attribute}"
                                           for name in ("pull", "ops") for attribute in (".id", "")))}}
    resources = by_key(load(write_plan(tmp_path, [group, identity(), identity("ops", "id-app-ops")])))
    declared = resources[GROUP]
    assert declared.body["properties"]["imageRegistryCredentials"] == [{"server": "acrapp01.azurecr.io"}]
    assert declared.unresolved == (
        "properties.imageRegistryCredentials[0].identity: azurerm_user_assigned_identity.pull.id "
        "azurerm_user_assigned_identity.pull azurerm_user_assigned_identity.ops.id azurerm_user_assigned_identity.ops",)


def test_an_azapi_body_known_only_after_apply_is_unresolved(tmp_path: Path) -> None:
    group = {"address": "azapi_resource.app", "type": "azapi_resource",
             "values": {"type": "Microsoft.ContainerInstance/containerGroups@2023-05-01", "name": "aci-app",
                        "parent_id": RG_ID},
             "unknown": {"id": True, "body": True}, "expressions": {"body": ref("local.group_body")}}
    (declared,) = load(write_plan(tmp_path, [group])).resources
    assert declared.body == {}
    assert declared.unresolved == ("body: local.group_body",)


def test_an_azapi_string_body_that_is_not_json(tmp_path: Path) -> None:
    group = {"address": "azapi_resource.app", "type": "azapi_resource",
             "values": {"type": "Microsoft.ContainerInstance/containerGroups@2023-05-01", "name": "aci-app",
                        "parent_id": RG_ID, "body": "{not json"}}
    (declared,) = load(write_plan(tmp_path, [group])).resources
    assert declared.unresolved == ("body: not a JSON object (jsonencode)",)


def test_a_templated_image_is_unresolved_not_guessed(tmp_path: Path) -> None:
    group = {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
             "values": {"name": "aci-app", "resource_group_name": "rg-app", "os_type": "Linux",
                        "container": [{"name": "app"}]},
             "unknown": {"id": True, "container": [{"image": True}]},
             "expressions": {"container": [{"image": ref("azurerm_container_registry.acr.login_server",
                                                         "azurerm_container_registry.acr")}]}}
    resources = by_key(load(write_plan(tmp_path, [group, registry()])))
    declared = resources[GROUP]
    assert declared.body["properties"]["containers"] == [{"name": "app", "properties": {}}]
    assert declared.unresolved == ("properties.containers[0].properties.image: "
                                   "azurerm_container_registry.acr.login_server azurerm_container_registry.acr",)
    assert REGISTRY in declared.depends_on


def test_a_value_from_a_variable_is_unresolved(tmp_path: Path) -> None:
    group = {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
             "values": {"name": "aci-app", "resource_group_name": "rg-app",
                        "identity": [{"type": "UserAssigned"}],
                        "image_registry_credential": [{"server": "acrapp01.azurecr.io"}]},
             "unknown": {"identity": [{"identity_ids": True}],
                         "image_registry_credential": [{"user_assigned_identity_id": True}]},
             "expressions": {"identity": [{"identity_ids": ref("var.identity_ids")}],
                             "image_registry_credential": [{"user_assigned_identity_id": ref(
                                 "module.identity.id", "module.identity")}]}}
    (declared,) = load(write_plan(tmp_path, [group])).resources
    assert declared.body["identity"] == {"type": "UserAssigned"}
    assert declared.body["properties"]["imageRegistryCredentials"] == [{"server": "acrapp01.azurecr.io"}]
    assert declared.unresolved == (
        "identity.userAssignedIdentities: var.identity_ids",
        "properties.imageRegistryCredentials[0].identity: module.identity.id module.identity")


def test_a_reference_to_one_of_several_instances(tmp_path: Path) -> None:
    identities = [{**identity(), "address": f"azurerm_user_assigned_identity.pull[{i}]", "index": i,
                   "values": {"name": f"id-pull-{i}", "resource_group_name": "rg-app"}} for i in range(2)]
    grants = [{"address": f"azurerm_role_assignment.pull[{i}]", "type": "azurerm_role_assignment", "index": i,
               "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID},
               "unknown": {"principal_id": True},
               "expressions": {"principal_id": ref("azurerm_user_assigned_identity.pull",
                                                   "count.index")}} for i in range(2)]
    fixed = {"address": "azurerm_role_assignment.first", "type": "azurerm_role_assignment",
             "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID}, "unknown": {"principal_id": True},
             "expressions": {"principal_id": ref("azurerm_user_assigned_identity.pull[1].principal_id",
                                                 "azurerm_user_assigned_identity.pull[1]",
                                                 "azurerm_user_assigned_identity.pull")}}
    other = {"address": "azurerm_role_assignment.any", "type": "azurerm_role_assignment",
             "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID}, "unknown": {"principal_id": True},
             "expressions": {"principal_id": ref("azurerm_user_assigned_identity.pull")}}
    resources = by_key(load(write_plan(tmp_path, [*identities, *grants, fixed, other, registry()])))
    uai = [key_of("Microsoft.ManagedIdentity/userAssignedIdentities", f"id-pull-{i}") for i in range(2)]
    grant = lambda address: resources[key_of("Microsoft.Authorization/roleAssignments", address)]  # noqa: E731
    # x[count.index] (Terraform names only x): the referring instance's own index, the attribute the
    # argument takes; x[1]: that instance; x alone from an unindexed resource: not decided
    for i in range(2):
        assert grant(f"azurerm_role_assignment.pull[{i}]").body["properties"]["principalId"] == principal_of(uai[i])
    assert grant("azurerm_role_assignment.first").body["properties"]["principalId"] == principal_of(uai[1])
    assert grant("azurerm_role_assignment.any").unresolved == (
        "properties.principalId: azurerm_user_assigned_identity.pull",)
    # the string scope is a declared resource's id: its key
    assert grant("azurerm_role_assignment.any").scope == REGISTRY
    # every instance of what an expression reads is deployed first
    assert grant("azurerm_role_assignment.any").depends_on == set(uai)
    assert grant("azurerm_role_assignment.first").depends_on == {uai[1]} | set(uai)


def test_count_index_picks_the_same_instance(tmp_path: Path) -> None:
    identities = [{**identity(), "address": f"azurerm_user_assigned_identity.pull[{i}]", "index": i,
                   "values": {"name": f"id-pull-{i}", "resource_group_name": "rg-app"}} for i in range(2)]
    grants = [{"address": f"azurerm_role_assignment.pull[{i}]", "type": "azurerm_role_assignment", "index": i,
               "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID},
               "unknown": {"principal_id": True},
               "expressions": {"principal_id": ref("azurerm_user_assigned_identity.pull.principal_id",
                                                   "azurerm_user_assigned_identity.pull", "count.index")}}
              for i in range(2)]
    resources = by_key(load(write_plan(tmp_path, [*identities, *grants])))
    for i in range(2):
        declared = resources[key_of("Microsoft.Authorization/roleAssignments", f"azurerm_role_assignment.pull[{i}]")]
        assert declared.body["properties"]["principalId"] == principal_of(
            key_of("Microsoft.ManagedIdentity/userAssignedIdentities", f"id-pull-{i}"))
        assert not declared.unresolved


def test_a_system_identitys_principal(tmp_path: Path) -> None:
    group = {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
             "values": {"name": "aci-app", "resource_group_name": "rg-app", "identity": [{"type": "SystemAssigned"}]},
             "unknown": {"identity": [{"principal_id": True}]}}
    grant = {"address": "azurerm_role_assignment.pull", "type": "azurerm_role_assignment",
             "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID}, "unknown": {"principal_id": True},
             "expressions": {"principal_id": ref("azurerm_container_group.app.identity[0].principal_id",
                                                 "azurerm_container_group.app.identity[0]",
                                                 "azurerm_container_group.app.identity",
                                                 "azurerm_container_group.app")}}
    resources = by_key(load(write_plan(tmp_path, [group, grant])))
    assert resources[GRANT].body["properties"]["principalId"] == principal_of(GROUP)
    assert resources[GRANT].depends_on == {GROUP}


def test_a_name_known_only_after_apply(tmp_path: Path) -> None:
    acr = {**registry(), "values": {"resource_group_name": "rg-app", "sku": "Basic"},
           "unknown": {"id": True, "name": True, "login_server": True},
           "expressions": {"name": ref("random_string.suffix.result", "random_string.suffix")}}
    suffix = {"address": "random_string.suffix", "type": "random_string", "values": {"length": 6},
              "unknown": {"result": True}}
    (declared,) = load(write_plan(tmp_path, [acr, suffix])).resources
    assert declared.name == "azurerm_container_registry.acr"
    assert "loginServer" not in declared.body["properties"]  # never a login server made of an address
    assert declared.unresolved == ("name: random_string.suffix.result random_string.suffix",)


def test_registry_attributes_in_arm_shape(tmp_path: Path) -> None:
    acr = registry(public_network_access_enabled=False, network_rule_bypass_option="None", admin_enabled=True,
                   anonymous_pull_enabled=False, role_assignment_mode="AbacRepositoryPermissions",
                   network_rule_set=[{"default_action": "Deny", "ip_rule": [{"action": "Allow",
                                                                             "ip_range": "203.0.113.0/24"}]}])
    (declared,) = load(write_plan(tmp_path, [acr])).resources
    assert declared.body == {"sku": {"name": "Premium"}, "properties": {
        "loginServer": "acrapp01.azurecr.io", "publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None",
        "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]},
        "roleAssignmentMode": "AbacRepositoryPermissions", "adminUserEnabled": True, "anonymousPullEnabled": False}}


def test_an_existing_identitys_known_principal(tmp_path: Path) -> None:
    known = {**identity(), "values": {"name": "id-app-pull", "resource_group_name": "rg-app", "principal_id": "p-1",
                                      "client_id": "c-1", "tenant_id": "t-1", "id": IDENTITY_ID},
             "unknown": {}, "actions": ["no-op"]}
    grant = {"address": "azurerm_role_assignment.pull", "type": "azurerm_role_assignment",
             "values": {"role_definition_name": "AcrPull", "scope": REGISTRY_ID, "principal_id": "p-1"},
             "expressions": {"principal_id": ref("azurerm_user_assigned_identity.pull.principal_id",
                                                 "azurerm_user_assigned_identity.pull")}}
    resources = by_key(load(write_plan(tmp_path, [known, grant])))
    assert resources[IDENTITY].body == {"properties": {"principalId": "p-1", "clientId": "c-1", "tenantId": "t-1"}}
    assert resources[GRANT].body["properties"]["principalId"] == "p-1"
    assert resources[GRANT].scope == REGISTRY_ID  # not declared here: the ARM id itself
    assert resources[GRANT].depends_on == {IDENTITY}


def test_inline_subnets_of_a_virtual_network(tmp_path: Path) -> None:
    vnet = {"address": "azurerm_virtual_network.vnet", "type": "azurerm_virtual_network",
            "values": {"name": "vnet-app", "resource_group_name": "rg-app", "address_space": ["10.0.0.0/16"],
                       "subnet": [{"name": "aci", "address_prefixes": ["10.0.1.0/24"], "delegation": [
                           {"name": "aci", "service_delegation": [
                               {"name": "Microsoft.ContainerInstance/containerGroups", "actions": []}]}]}]},
            "unknown": {"id": True, "subnet": [{"id": True}]}}
    resources = by_key(load(write_plan(tmp_path, [vnet])))
    network = resources[key_of("Microsoft.Network/virtualNetworks", "vnet-app")]
    subnet = resources[key_of("Microsoft.Network/virtualNetworks/subnets", "vnet-app/aci")]
    delegations = [{"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups",
                                                  "actions": []}}]
    assert network.body["properties"] == {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [
        {"name": "aci", "id": SUBNET_ID % "aci", "properties": {"addressPrefixes": ["10.0.1.0/24"],
                                                                 "delegations": delegations}}]}
    assert subnet.resource_id == SUBNET_ID % "aci"
    assert subnet.body == {"properties": {"addressPrefixes": ["10.0.1.0/24"], "delegations": delegations}}
    assert subnet.depends_on == {network.key}
    assert subnet.symbol == 'azurerm_virtual_network.vnet.subnet["aci"]'


def test_a_manual_private_endpoint_connection(tmp_path: Path) -> None:
    endpoint = {"address": "azurerm_private_endpoint.acr", "type": "azurerm_private_endpoint",
                "values": {"name": "pe-acr", "resource_group_name": "rg-app", "subnet_id": SUBNET_ID % "pe",
                           "private_service_connection": [{"name": "c", "is_manual_connection": True,
                                                           "private_connection_resource_id": REGISTRY_ID,
                                                           "subresource_names": ["registry"]}]}}
    (declared,) = load(write_plan(tmp_path, [endpoint])).resources
    assert declared.body["properties"] == {"subnet": {"id": SUBNET_ID % "pe"}, "manualPrivateLinkServiceConnections": [
        {"name": "c", "properties": {"groupIds": ["registry"], "privateLinkServiceId": REGISTRY_ID}}]}


def test_depends_on_a_module_orders_after_everything_in_it(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [
        {**identity(), "address": "module.grants.azurerm_user_assigned_identity.pull"},
        {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
         "values": {"name": "aci-app", "resource_group_name": "rg-app"}, "depends_on": ["module.grants"]}])
    document = json.loads(path.read_text())
    module_resource = document["configuration"]["root_module"]["resources"].pop(0)
    module_resource["address"] = "azurerm_user_assigned_identity.pull"
    document["configuration"]["root_module"]["module_calls"] = {"grants": {"module": {"resources": [module_resource]}}}
    document["planned_values"]["root_module"] = {
        "resources": [document["planned_values"]["root_module"]["resources"][1]],
        "child_modules": [{"address": "module.grants",
                           "resources": [document["planned_values"]["root_module"]["resources"][0]]}]}
    path.write_text(json.dumps(document))
    resources = by_key(load(path))
    assert resources[GROUP].depends_on == {IDENTITY}


def test_unsupported_resource_types_and_data_sources_are_not_declared(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [
        {"address": "azurerm_log_analytics_workspace.logs", "type": "azurerm_log_analytics_workspace",
         "values": {"name": "logs"}}, identity()])
    document = json.loads(path.read_text())
    data = {"address": "data.azurerm_user_assigned_identity.shared", "mode": "data",
            "type": "azurerm_user_assigned_identity", "name": "shared"}
    document["resource_changes"].append({**data, "change": {"actions": ["read"], "after": {"name": "id-shared"}}})
    path.write_text(json.dumps(document))
    assert [r.key for r in load(path).resources] == [IDENTITY]


def test_a_deposed_objects_delete_is_not_the_instances_change(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [identity()])
    document = json.loads(path.read_text())
    current = document["resource_changes"][0]
    # create_before_destroy: the new object is created, the deposed old one deleted
    document["resource_changes"].append({**current, "deposed": "8f2c1a7e", "change": {"actions": ["delete"]}})
    path.write_text(json.dumps(document))
    assert [r.key for r in load(path).resources] == [IDENTITY]


def test_without_resource_changes_what_the_prior_state_holds_exists_already(tmp_path: Path) -> None:
    group = {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
             "values": {"name": "aci-app", "resource_group_name": "rg-app"}}
    path = write_plan(tmp_path, [identity(), group])
    document = json.loads(path.read_text())
    del document["resource_changes"]
    document["prior_state"] = {"values": {"root_module": {"resources": [
        {"address": "azurerm_user_assigned_identity.pull", "mode": "managed",
         "type": "azurerm_user_assigned_identity", "values": {"name": "id-app-pull"}}]}}}
    path.write_text(json.dumps(document))
    resources = by_key(load(path))
    assert resources[GROUP].depends_on == {IDENTITY}
    assert resources[IDENTITY].depends_on == set()


def test_an_expression_reading_a_declared_resource_and_something_else(tmp_path: Path) -> None:
    vnet = {"address": "azurerm_virtual_network.vnet", "type": "azurerm_virtual_network",
            "values": {"name": "vnet-app", "resource_group_name": "rg-app"}}
    group = {"address": "azurerm_container_group.app", "type": "azurerm_container_group",
             "values": {"name": "aci-app", "resource_group_name": "rg-app", "ip_address_type": "None",
                        "identity": [{"type": "UserAssigned"}], "image_registry_credential": [{}]},
             "unknown": {"identity": [{"identity_ids": True}], "subnet_ids": True,
                         "image_registry_credential": [{"server": True}]},
             "expressions": {
                 # concat([azurerm_user_assigned_identity.pull.id], var.extra_identity_ids)
                 "identity": [{"identity_ids": ref("azurerm_user_assigned_identity.pull.id",
                                                   "azurerm_user_assigned_identity.pull", "var.extra_identity_ids")}],
                 # [for s in azurerm_virtual_network.vnet.subnet : s.id if s.name == "aci"]
                 "subnet_ids": ref("azurerm_virtual_network.vnet.subnet", "azurerm_virtual_network.vnet"),
                 # var.use_acr ? azurerm_container_registry.acr.login_server : var.registry_server
                 "image_registry_credential": [{"server": ref(
                     "var.use_acr", "azurerm_container_registry.acr.login_server", "azurerm_container_registry.acr",
                     "var.registry_server")}]}}
    resources = by_key(load(write_plan(tmp_path, [vnet, group, identity(), registry()])))
    declared = resources[GROUP]
    # the declared identity is attached whatever the variable adds; the rest is not decided
    assert declared.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}
    assert declared.body["properties"] == {"imageRegistryCredentials": [{}]}  # ip_address_type None: no ipAddress
    assert declared.unresolved == (
        "identity.userAssignedIdentities: azurerm_user_assigned_identity.pull.id azurerm_user_assigned_identity.pull "
        "var.extra_identity_ids",
        "properties.imageRegistryCredentials[0].server: var.use_acr azurerm_container_registry.acr.login_server "
        "azurerm_container_registry.acr var.registry_server",
        "properties.subnetIds: azurerm_virtual_network.vnet.subnet azurerm_virtual_network.vnet")


@pytest.mark.parametrize(("name", "role"), [("abac-mode-by-azapi-update-acrpull.json", "AcrPull"),
                                            ("abac-mode-by-azapi-update-reader.json",
                                             "Container Registry Repository Reader")])
def test_azapi_update_resource_sets_the_registrys_mode(name: str, role: str) -> None:
    definitions = fixture(name)
    resources = by_key(definitions)
    assert set(resources) == {GROUP, IDENTITY, REGISTRY, GRANT}  # the update is no resource of its own
    props = resources[REGISTRY].body["properties"]
    assert props["roleAssignmentMode"] == "AbacRepositoryPermissions"
    assert props["loginServer"] == "acrapp01.azurecr.io"  # merged into, not replaced
    assert resources[GRANT].body["properties"]["roleDefinitionName"] == role
    assert definitions.notes == ()


def test_azapi_update_resource_by_parent_and_name_or_of_something_not_declared(tmp_path: Path) -> None:
    by_parent = {"address": "azapi_update_resource.abac", "type": "azapi_update_resource",
                 "values": {"type": "Microsoft.ContainerRegistry/registries@2025-04-01", "name": "acrapp01",
                            "parent_id": RG_ID,
                            "body": {"properties": {"roleAssignmentMode": "AbacRepositoryPermissions"}}}}
    elsewhere = {"address": "azapi_update_resource.other", "type": "azapi_update_resource",
                 "values": {"type": "Microsoft.ContainerRegistry/registries@2025-04-01",
                            "resource_id": f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acrother",
                            "body": {"properties": {"networkRuleBypassOptions": "None"}}}}
    definitions = load(write_plan(tmp_path, [registry(), by_parent, elsewhere]))
    (acr,) = definitions.resources
    assert acr.body["properties"] == {"loginServer": "acrapp01.azurecr.io",
                                      "roleAssignmentMode": "AbacRepositoryPermissions"}
    assert definitions.notes == (f"azapi_update_resource.other changes {RG_ID}/providers/Microsoft.ContainerRegistry/"
                                 "registries/acrother, which this plan does not declare",)


def test_a_subnet_of_a_network_named_only_after_apply(tmp_path: Path) -> None:
    vnet = {"address": "azurerm_virtual_network.vnet", "type": "azurerm_virtual_network",
            "values": {"resource_group_name": "rg-app"}, "unknown": {"id": True, "name": True},
            "expressions": {"name": ref("random_pet.vnet.id", "random_pet.vnet")}}
    subnet = {"address": "azurerm_subnet.aci", "type": "azurerm_subnet",
              "values": {"name": "aci", "resource_group_name": "rg-app"}, "unknown": {"virtual_network_name": True},
              "expressions": {"virtual_network_name": ref("azurerm_virtual_network.vnet.name",
                                                          "azurerm_virtual_network.vnet")}}
    resources = {r.symbol: r for r in load(write_plan(tmp_path, [vnet, subnet])).resources}
    declared = resources["azurerm_subnet.aci"]
    assert declared.name == "azurerm_subnet.aci/aci"  # never the network's stand-in name
    assert declared.unresolved == (
        "virtual_network_name: azurerm_virtual_network.vnet.name azurerm_virtual_network.vnet",)

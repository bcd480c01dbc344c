"""The ARM template loader: what each template feature declares, and each ARM fixture's definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.preflight.arm import load, object_lines, without_comments
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    Declared,
    Definitions,
    key_of,
    ordered_after,
    principal_of,
)
from remediation.template import UnsupportedExpression, find_container_group

FIXTURES = Path(__file__).parent / "preflight_fixtures" / "arm"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
PARAMS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
GROUP = "Microsoft.ContainerInstance/containerGroups"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
REGISTRY = "Microsoft.ContainerRegistry/registries"
ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


def write(tmp_path: Path, resources: Any, name: str = "main.json", **extra: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"$schema": SCHEMA, "contentVersion": "1.0.0.0", **extra, "resources": resources},
                               indent=2))
    return path


def by_key(definitions: Definitions) -> dict[str, Declared]:
    return {r.key: r for r in definitions.resources}


def one(definitions: Definitions, resource_type: str) -> Declared:
    found = [r for r in definitions.resources if r.type.lower() == resource_type.lower()]
    assert len(found) == 1, found
    return found[0]


def group_with(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": GROUP, "apiVersion": "2023-05-01", "name": "web", "location": "westeurope",
            "properties": properties, **extra}


# -- parameters ------------------------------------------------------------------------------------------------


PARAMETERISED = [group_with({"osType": "[parameters('os')]"})]


def test_a_parameter_comes_from_its_default_without_a_parameters_file(tmp_path: Path) -> None:
    path = write(tmp_path, PARAMETERISED, parameters={"os": {"type": "string", "defaultValue": "Linux"}})
    assert one(load(path), GROUP).body["properties"] == {"osType": "Linux"}


def test_a_parameters_file_beside_the_template_is_read_without_being_named(tmp_path: Path) -> None:
    path = write(tmp_path, PARAMETERISED, parameters={"os": {"type": "string", "defaultValue": "Linux"}})
    (tmp_path / "main.parameters.json").write_text(json.dumps(
        {"$schema": PARAMS_SCHEMA, "contentVersion": "1.0.0.0", "parameters": {"os": {"value": "Windows"}}}))
    assert one(load(path), GROUP).body["properties"] == {"osType": "Windows"}


def test_a_named_parameters_file_wins_over_the_one_beside_and_may_be_the_bare_map(tmp_path: Path) -> None:
    path = write(tmp_path, PARAMETERISED, parameters={"os": {"type": "string"}})
    (tmp_path / "main.parameters.json").write_text(json.dumps({"parameters": {"os": {"value": "Windows"}},
                                                               "contentVersion": "1.0.0.0"}))
    given = tmp_path / "prod.json"
    given.write_text(json.dumps({"os": {"value": "Linux"}}))
    assert one(load(path, given), GROUP).body["properties"] == {"osType": "Linux"}


def test_a_parameter_without_value_or_default_leaves_its_uses_unresolved(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"osType": "[parameters('os')]", "restartPolicy": "Never"})],
                 parameters={"os": {"type": "string"}})
    group = one(load(path), GROUP)
    assert group.body["properties"] == {"restartPolicy": "Never"}
    assert group.unresolved == ("properties.osType: [parameters('os')]",)


def test_a_key_vault_reference_parameter_is_unresolved_not_its_default(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"imageRegistryCredentials": [
        {"server": "a.azurecr.io", "username": "a", "password": "[parameters('pw')]"}]})],
        parameters={"pw": {"type": "securestring", "defaultValue": "placeholder"}})
    given = tmp_path / "p.json"
    given.write_text(json.dumps({"$schema": PARAMS_SCHEMA, "parameters": {"pw": {"reference": {
        "keyVault": {"id": f"{RG_ID}/providers/Microsoft.KeyVault/vaults/kv"}, "secretName": "pw"}}}}))
    group = one(load(path, given), GROUP)
    assert group.body["properties"]["imageRegistryCredentials"] == [{"server": "a.azurecr.io", "username": "a"}]
    assert group.unresolved == ("properties.imageRegistryCredentials[0].password: [parameters('pw')]",)


def test_a_parameter_default_that_is_an_expression_is_evaluated_in_place(tmp_path: Path) -> None:
    path = write(tmp_path, [{**group_with({}), "location": "[parameters('location')]"}],
                 parameters={"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}})
    assert one(load(path), GROUP).body["location"] == LOCATION


# -- reference() and implicit dependencies ---------------------------------------------------------------------


def identity_registry_group(credential: dict[str, Any], image: str = "acme.azurecr.io/app:1",
                            registry_properties: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "Acme", "sku": {"name": "Basic"},
         "properties": registry_properties or {}},
        {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "pull"},
        group_with({"imageRegistryCredentials": [credential],
                    "containers": [{"name": "app", "properties": {"image": image}}]}),
    ]


def test_reference_by_name_gives_the_login_server_and_an_implicit_dependency(tmp_path: Path) -> None:
    path = write(tmp_path, identity_registry_group(
        {"server": "[reference('Acme').loginServer]", "identity": "[resourceId('" + IDENTITY + "', 'pull')]"}))
    group = one(load(path), GROUP)
    # the login server is the registry's name in lower case plus .azurecr.io
    assert group.body["properties"]["imageRegistryCredentials"][0] == {
        "server": "acme.azurecr.io", "identity": f"{RG_ID}/providers/{IDENTITY}/pull"}
    assert group.depends_on == {key_of(REGISTRY, "Acme")}


def test_reference_by_resource_id_creates_no_implicit_dependency(tmp_path: Path) -> None:
    path = write(tmp_path, identity_registry_group(
        {"server": "[reference(resourceId('" + REGISTRY + "', 'Acme'), '2023-07-01').loginServer]",
         "identity": "x"}))
    group = one(load(path), GROUP)
    assert group.body["properties"]["imageRegistryCredentials"][0]["server"] == "acme.azurecr.io"
    assert group.depends_on == frozenset()


def test_a_registry_with_a_hashed_domain_label_has_no_known_login_server(tmp_path: Path) -> None:
    path = write(tmp_path, identity_registry_group(
        {"server": "[reference('Acme').loginServer]", "identity": "x"},
        registry_properties={"autoGeneratedDomainNameLabelScope": "TenantReuse"}))
    group = one(load(path), GROUP)
    assert "server" not in group.body["properties"]["imageRegistryCredentials"][0]
    assert group.unresolved == ("properties.imageRegistryCredentials[0].server: [reference('Acme').loginServer]",)


def test_an_identity_principal_id_is_principal_of_its_key_plain_or_full(tmp_path: Path) -> None:
    identity_id = "[resourceId('" + IDENTITY + "', 'pull')]"
    path = write(tmp_path, [
        {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "pull"},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "a1",
         "properties": {"principalId": "[reference('pull').principalId]"}},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "a2",
         "properties": {
             "principalId": f"[reference({identity_id[1:-1]}, '2023-01-31', 'Full').properties.principalId]"}},
    ])
    declared = by_key(load(path))
    principal = principal_of(key_of(IDENTITY, "pull"))
    assert declared[key_of(ASSIGNMENT, "a1")].body["properties"]["principalId"] == principal
    assert declared[key_of(ASSIGNMENT, "a2")].body["properties"]["principalId"] == principal


def test_a_groups_system_identity_principal_is_principal_of_the_group(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {**group_with({}), "identity": {"type": "SystemAssigned"}},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "a1", "properties": {
            "principalId":
                "[reference(resourceId('" + GROUP + "', 'web'), '2023-05-01', 'Full').identity.principalId]"}},
    ])
    assignment = one(load(path), ASSIGNMENT)
    assert assignment.body["properties"]["principalId"] == principal_of(key_of(GROUP, "web"))


def test_reference_to_an_undeclared_resource_is_unresolved(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"imageRegistryCredentials": [
        {"server": "[reference('elsewhere').loginServer]", "identity": "x"}]})])
    group = one(load(path), GROUP)
    assert group.body["properties"]["imageRegistryCredentials"] == [{"identity": "x"}]
    assert group.unresolved == ("properties.imageRegistryCredentials[0].server: [reference('elsewhere').loginServer]",)


# -- the functions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'aci')]",
     f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"),
    ("[resourceId('other-rg', 'Microsoft.ContainerRegistry/registries', 'acr')]",
     f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other-rg/providers/Microsoft.ContainerRegistry/registries/acr"),
    ("[resourceId('sub-2', 'rg-2', 'Microsoft.ContainerRegistry/registries', 'acr')]",
     "/subscriptions/sub-2/resourceGroups/rg-2/providers/Microsoft.ContainerRegistry/registries/acr"),
    ("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '" + ACR_PULL + "')]",
     f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
    ("[subscriptionResourceId('sub-2', 'Microsoft.Authorization/roleDefinitions', 'r')]",
     "/subscriptions/sub-2/providers/Microsoft.Authorization/roleDefinitions/r"),
    ("[tenantResourceId('Microsoft.Authorization/roleDefinitions', 'r')]",
     "/providers/Microsoft.Authorization/roleDefinitions/r"),
    ("[extensionResourceId(resourceId('Microsoft.ContainerRegistry/registries', 'acr'), "
     "'Microsoft.Authorization/roleAssignments', 'g')]",
     f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acr/providers/Microsoft.Authorization/"
     "roleAssignments/g"),
    ("[resourceGroup().id]", RG_ID),
    ("[if(equals(parameters('mode'), 'prod'), 'Always', reference('nowhere').x)]", "Always"),
    ("[if(not(equals(parameters('mode'), 'prod')), reference('nowhere').x, 'Never')]", "Never"),
    ("[if(empty(''), 'yes', 'no')]", "yes"),
    ("[string(empty(createArray()))]", "True"),
    ("[last(split('a/b/c', '/'))]", "c"),
    ("[first(createArray('x', 'y'))]", "x"),
    ("[union(createObject('a', 'one'), createObject('b', 'two')).b]", "two"),
    ("[length(union(createArray('a', 'b'), createArray('b', 'c')))]", 3),
    ("[concat(toLower('ACME'), environment().suffixes.acrLoginServer)]", "acme.azurecr.io"),
    ("[if(and(true(), or(false, contains('abc', 'b'))), coalesce(null(), 'set'), 'unset')]", "set"),
    ("[[system]", "[system]"),
])
def test_expressions_templates_for_aci_use(tmp_path: Path, expression: str, expected: Any) -> None:
    path = write(tmp_path, [group_with({"value": expression})],
                 parameters={"mode": {"type": "string", "defaultValue": "prod"}})
    group = one(load(path), GROUP)
    assert group.body["properties"] == {"value": expected}
    assert group.unresolved == ()


def test_guid_and_unique_string_are_deterministic_stand_ins(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"a": "[guid('x', 'y')]", "b": "[guid('x', 'y')]", "c": "[guid('x', 'z')]",
                                        "d": "[uniqueString(resourceGroup().id)]"})])
    properties = one(load(path), GROUP).body["properties"]
    assert properties["a"] == properties["b"] != properties["c"]
    assert len(properties["a"]) == 36 and properties["a"].count("-") == 4
    assert len(properties["d"]) == 13


def test_an_unsupported_function_leaves_only_that_value_unresolved(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"osType": "Linux", "secret": "[listKeys('x', '2020-01-01').key1]"})])
    group = one(load(path), GROUP)
    assert group.body["properties"] == {"osType": "Linux"}
    assert group.unresolved == ("properties.secret: [listKeys('x', '2020-01-01').key1]",)


@pytest.mark.parametrize("expression", ["[first(createArray())]", "[parameters('loop')]", "[union('a', 1)]",
                                        "[int('x')]", "[createObject('odd')]", "[resourceId('noType')]"])
def test_a_value_that_fails_to_evaluate_is_unresolved_never_an_error(tmp_path: Path, expression: str) -> None:
    path = write(tmp_path, [group_with({"value": expression})],
                 parameters={"loop": {"type": "string", "defaultValue": "[parameters('loop')]"}})
    assert one(load(path), GROUP).unresolved == (f"properties.value: {expression}",)


def test_an_unresolvable_key_of_an_object_is_named_and_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, [{**group_with({}), "identity": {"type": "UserAssigned", "userAssignedIdentities": {
        "[parameters('missing')]": {}, "/subscriptions/s/resourceGroups/g/providers/" + IDENTITY + "/i": {}}}}],
        parameters={"missing": {"type": "string"}})
    group = one(load(path), GROUP)
    assert group.body["identity"]["userAssignedIdentities"] == {
        "/subscriptions/s/resourceGroups/g/providers/" + IDENTITY + "/i": {}}
    assert group.unresolved == ("identity.userAssignedIdentities.[parameters('missing')]: [parameters('missing')]",)


# -- conditions, loops, symbolic names, children ---------------------------------------------------------------


def test_a_resource_whose_condition_is_false_is_not_declared_and_an_unknown_one_is(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {**group_with({}), "name": "off", "condition": "[equals(parameters('mode'), 'test')]"},
        {**group_with({}), "name": "maybe", "condition": "[parameters('unknown')]"},
    ], parameters={"mode": {"type": "string", "defaultValue": "prod"}, "unknown": {"type": "bool"}})
    definitions = load(path)
    (maybe,) = definitions.resources
    assert maybe.name == "maybe"
    assert maybe.unresolved == ("condition: [parameters('unknown')]",)
    assert definitions.notes == ()


def test_depends_on_a_resource_not_deployed_is_no_note(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "optional", "condition": False},
        {**group_with({}), "dependsOn": ["optional", "[resourceId('" + IDENTITY + "', 'optional')]"]},
    ])
    definitions = load(path)
    assert one(definitions, GROUP).depends_on == frozenset()
    assert definitions.notes == ()


def test_an_api_version_expression_is_evaluated(tmp_path: Path) -> None:
    path = write(tmp_path, [{**group_with({}), "apiVersion": "[variables('aci')]"},
                            {**group_with({}), "name": "other", "apiVersion": "[variables('none')]"}],
                 variables={"aci": "2021-03-01"})
    declared = by_key(load(path))
    assert declared[key_of(GROUP, "web")].api_version == "2021-03-01"
    assert (declared[key_of(GROUP, "other")].api_version, declared[key_of(GROUP, "other")].unresolved) == (
        None, ("apiVersion: [variables('none')]",))


def test_a_copy_loop_with_a_parameter_count_is_expanded_and_depends_on_its_name_means_every_copy(
        tmp_path: Path) -> None:
    path = write(tmp_path, [
        {**group_with({"shard": "[copyIndex()]"}), "name": "[format('w-{0}', copyIndex(1))]",
         "copy": {"name": "workers", "count": "[parameters('n')]"}},
        {**group_with({}), "name": "after", "dependsOn": ["workers"]},
    ], parameters={"n": {"type": "int", "defaultValue": 2}})
    declared = by_key(load(path))
    assert declared[key_of(GROUP, "w-1")].body["properties"] == {"shard": 0}
    assert declared[key_of(GROUP, "w-2")].body["properties"] == {"shard": 1}
    assert declared[key_of(GROUP, "after")].depends_on == {key_of(GROUP, "w-1"), key_of(GROUP, "w-2")}


def test_a_property_copy_loop_builds_its_array_with_named_copy_index(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"osType": "Linux", "copy": [
        {"name": "containers", "count": "[length(parameters('images'))]", "input": {
            "name": "[format('c{0}', copyIndex('containers', 1))]",
            "properties": {"image": "[parameters('images')[copyIndex('containers')]]"}}},
        {"name": "volumes", "count": "[parameters('unknown')]", "input": {"name": "v"}},
    ]})], parameters={"images": {"type": "array", "defaultValue": ["acme.azurecr.io/a:1", "acme.azurecr.io/b:2"]},
                      "unknown": {"type": "int"}})
    group = one(load(path), GROUP)
    assert group.body["properties"] == {"osType": "Linux", "containers": [
        {"name": "c1", "properties": {"image": "acme.azurecr.io/a:1"}},
        {"name": "c2", "properties": {"image": "acme.azurecr.io/b:2"}}]}
    assert group.unresolved == ("properties.volumes: copy count [parameters('unknown')]",)


def test_a_variable_copy_loop_builds_its_array(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"containers": "[variables('containers')]", "n": "[variables('count')]"})],
                 variables={"count": 2, "copy": [{"name": "containers", "count": "[variables('count')]", "input": {
                     "name": "[concat('c', copyIndex('containers'))]"}}]})
    assert one(load(path), GROUP).body["properties"] == {"containers": [{"name": "c0"}, {"name": "c1"}], "n": 2}
    path = write(tmp_path, [group_with({"ports": "[variables('ports')]"})], variables={
        "ports": {"protocol": "TCP", "copy": [{"name": "list", "count": 2, "input": "[copyIndex('list', 80)]"}]}})
    assert one(load(path), GROUP).body["properties"] == {"ports": {"protocol": "TCP", "list": [80, 81]}}


def test_a_list_function_is_unresolved_but_orders_like_reference_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "acme", "properties": {"adminUserEnabled": True}},
        group_with({"imageRegistryCredentials": [{
            "server": "acme.azurecr.io", "username": "acme",
            "password": "[listCredentials('acme', '2023-07-01').passwords[0].value]"}]}),
    ])
    group = one(load(path), GROUP)
    assert group.depends_on == {key_of(REGISTRY, "acme")}
    assert group.unresolved == (
        "properties.imageRegistryCredentials[0].password: [listCredentials('acme', '2023-07-01').passwords[0].value]",)


def test_the_subscription_is_the_stand_in_and_its_tenant_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, [group_with({"sub": "[subscription().subscriptionId]",
                                        "tenant": "[subscription().tenantId]"})])
    group = one(load(path), GROUP)
    assert group.body["properties"] == {"sub": SUBSCRIPTION}
    assert group.unresolved == ("properties.tenant: [subscription().tenantId]",)


def test_a_copy_loop_whose_count_does_not_resolve_is_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, [{**group_with({}), "copy": {"name": "w", "count": "[parameters('n')]"}},
                            {**group_with({}), "copy": {"name": "many", "count": 801}}],
                 parameters={"n": {"type": "int"}})
    definitions = load(path)
    assert definitions.resources == ()
    assert [note.split(": ", 1)[1][:30] for note in definitions.notes] == [
        "copy loop w is not expanded: i", "copy loop many is not expanded"]
    assert "outside ARM's 0..800" in definitions.notes[1]


def test_symbolic_names_declare_symbols_and_order_by_dependson_and_reference(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "id": {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "pull"},
        "acr": {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "acme"},
        "cg": {**group_with({"server": "[reference('acr').loginServer]"}), "dependsOn": ["id"]},
    }, languageVersion="2.0")
    group = by_key(load(path))[key_of(GROUP, "web")]
    assert group.symbol == "cg"
    assert group.body["properties"] == {"server": "acme.azurecr.io"}
    assert group.depends_on == {key_of(IDENTITY, "pull"), key_of(REGISTRY, "acme")}


def test_an_existing_resource_is_not_declared_and_reference_to_it_is_unresolved(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "acr": {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "shared", "existing": True},
        "cg": group_with({"server": "[reference('acr').loginServer]"}),
    }, languageVersion="2.0")
    (group,) = load(path).resources
    assert group.unresolved == ("properties.server: [reference('acr').loginServer]",)


def test_a_subscription_template_declares_subscription_level_ids(tmp_path: Path) -> None:
    path = tmp_path / "sub.json"
    path.write_text(json.dumps({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "resources": [{"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "g", "properties": {
            "roleDefinitionId": "[resourceId('Microsoft.Authorization/roleDefinitions', 'r')]"}}]}))
    (assignment,) = load(path).resources
    assert assignment.scope == f"/subscriptions/{SUBSCRIPTION}"
    assert assignment.resource_id == f"/subscriptions/{SUBSCRIPTION}/providers/{ASSIGNMENT}/g"
    assert assignment.body["properties"]["roleDefinitionId"] == (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/r")


def test_a_nested_child_resource_has_the_full_type_and_name_and_no_implicit_parent_dependency(
        tmp_path: Path) -> None:
    path = write(tmp_path, [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01", "name": "vnet",
                             "resources": [{"type": "subnets", "apiVersion": "2023-09-01", "name": "aci",
                                            "properties": {"addressPrefix": "10.0.1.0/24"}}]}])
    subnet = one(load(path), "Microsoft.Network/virtualNetworks/subnets")
    assert (subnet.key, subnet.name) == ("microsoft.network/virtualnetworks/subnets/vnet/aci", "vnet/aci")
    assert subnet.resource_id == f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    assert subnet.depends_on == frozenset()


def test_depends_on_by_resource_id_type_and_name_or_name(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "one"},
        {"type": IDENTITY, "apiVersion": "2023-01-31", "name": "two"},
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "three"},
        {**group_with({}), "dependsOn": ["[resourceId('" + IDENTITY + "', 'one')]", IDENTITY + "/two", "three"]},
    ])
    assert one(load(path), GROUP).depends_on == {key_of(IDENTITY, "one"), key_of(IDENTITY, "two"),
                                                  key_of(REGISTRY, "three")}


def test_depends_on_something_undeclared_is_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, [{**group_with({}), "dependsOn": ["ghost"]}])
    definitions = load(path)
    assert one(definitions, GROUP).depends_on == frozenset()
    assert definitions.notes == (f"{key_of(GROUP, 'web')}: dependsOn 'ghost' names nothing this template declares",)


# -- extension resources ---------------------------------------------------------------------------------------


def test_a_role_assignment_scope_is_the_declared_registry_key_or_the_id_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "acme"},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "here", "scope": REGISTRY + "/acme"},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "there",
         "scope": "[resourceId('other-rg', '" + REGISTRY + "', 'shared')]"},
        {"type": ASSIGNMENT, "apiVersion": "2022-04-01", "name": "group-wide"},
        {"type": "Microsoft.Authorization/locks", "apiVersion": "2020-05-01", "name": "keep",
         "scope": "[resourceId('" + REGISTRY + "', 'acme')]", "properties": {"level": "CanNotDelete"}},
    ])
    declared = by_key(load(path))
    here = declared[key_of(ASSIGNMENT, "here")]
    assert here.scope == key_of(REGISTRY, "acme")
    assert here.resource_id == f"{RG_ID}/providers/{REGISTRY}/acme/providers/{ASSIGNMENT}/here"
    shared = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other-rg/providers/{REGISTRY}/shared"
    assert declared[key_of(ASSIGNMENT, "there")].scope == shared
    assert declared[key_of(ASSIGNMENT, "group-wide")].scope == RG_ID
    assert declared[key_of("Microsoft.Authorization/locks", "keep")].scope == key_of(REGISTRY, "acme")


def test_the_legacy_parent_providers_form_is_a_role_assignment_scoped_to_the_parent(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "acme"},
        {"type": REGISTRY + "/providers/roleAssignments", "apiVersion": "2022-04-01",
         "name": "acme/Microsoft.Authorization/g1", "properties": {"principalId": "p"}},
    ])
    assignment = one(load(path), ASSIGNMENT)
    assert (assignment.key, assignment.scope) == (key_of(ASSIGNMENT, "g1"), key_of(REGISTRY, "acme"))
    assert assignment.resource_id == f"{RG_ID}/providers/{REGISTRY}/acme/providers/{ASSIGNMENT}/g1"


# -- nested deployments ----------------------------------------------------------------------------------------


def nested(scope: str | None, inner_template_parameters: dict[str, Any] | None = None,
           given: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "mode": "Incremental",
        "parameters": given or {},
        "template": {"$schema": SCHEMA, "contentVersion": "1.0.0.0",
                     "parameters": inner_template_parameters or {},
                     "resources": [{"type": IDENTITY, "apiVersion": "2023-01-31", "name": "[parameters('name')]"}]},
    }
    if scope is not None:
        properties["expressionEvaluationOptions"] = {"scope": scope}
    return {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner",
            "resourceGroup": "other-rg", "dependsOn": ["first"], "properties": properties}


def test_an_inner_scope_nested_template_reads_the_parameters_its_deployment_gives(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "first"},
        nested("inner", {"name": {"type": "string", "defaultValue": "inner-default"}},
               {"name": {"value": "[concat(parameters('name'), '-given')]"}}),
    ], parameters={"name": {"type": "string", "defaultValue": "outer"}})
    declared = by_key(load(path))
    identity = declared[key_of(IDENTITY, "outer-given")]
    assert identity.resource_id == (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other-rg/providers/{IDENTITY}/"
                                    "outer-given")
    # deployed after what its deployment depends on; the deployment completes after it
    assert identity.depends_on == {key_of(REGISTRY, "first")}
    assert declared[key_of("Microsoft.Resources/deployments", "inner")].depends_on == {
        key_of(REGISTRY, "first"), identity.key}


@pytest.mark.parametrize("scope", [None, "outer"])
def test_an_outer_scope_nested_template_reads_the_parents_parameters(tmp_path: Path, scope: str | None) -> None:
    path = write(tmp_path, [
        {"type": REGISTRY, "apiVersion": "2023-07-01", "name": "first"},
        nested(scope, {"name": {"type": "string", "defaultValue": "inner-default"}}),
    ], parameters={"name": {"type": "string", "defaultValue": "outer"}})
    assert key_of(IDENTITY, "outer") in by_key(load(path))


def test_a_linked_template_is_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, [{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "linked",
                             "properties": {"mode": "Incremental", "templateLink": {"uri": "https://x/t.json"}}}])
    assert load(path).notes == ("deployment linked: its linked template (templateLink) is not read offline",)


# -- lines and errors ------------------------------------------------------------------------------------------


def test_object_lines_are_the_lines_of_opening_braces_whatever_the_strings_hold() -> None:
    text = '{\n  "a": "{ not [ an object",\n  "b": [\n    1,\n    {"c": "\\"}"}\n  ],\n  "d":\n    {}\n}'
    assert object_lines(text) == {(): 1, ("b", 1): 5, ("d",): 8}


def test_comments_are_blanked_outside_strings_keeping_every_position() -> None:
    text = '{"a": "// kept", // gone\n "b": /* gone\n too */ "x/*y*/"}//'
    blanked = without_comments(text)
    assert len(blanked) == len(text) and blanked.count("\n") == 2
    assert json.loads(blanked) == {"a": "// kept", "b": "x/*y*/"}


def test_a_template_with_comments_and_a_multi_line_expression_is_read(tmp_path: Path) -> None:
    path = tmp_path / "extended.json"
    path.write_text('{"$schema": "' + SCHEMA + '", // the CLI reads these\n'
                    '"resources": [ /* one group */\n'
                    '  {"type": "' + GROUP + '", "name": "web",\n'
                    '   "location": "[\n    resourceGroup().location\n  ]"}\n]}')
    (group,) = load(path).resources
    assert (group.body, group.location.line) == ({"location": LOCATION}, 3)


def test_each_resource_is_located_at_the_line_of_its_opening_brace(tmp_path: Path) -> None:
    text = ('{"$schema": "' + SCHEMA + '",\n"resources": [\n{"type": "' + IDENTITY + '", "name": "a"},\n\n'
            '  {\n    "type": "' + GROUP + '", "name": "b",\n    "resources": [{"type": "x", "name": "c"}]}\n]}\n')
    path = tmp_path / "t.json"
    path.write_text(text)
    lines = {r.name: r.location.line for r in load(path).resources}
    assert lines == {"a": 3, "b": 5, "b/c": 7}
    assert all(r.location.file == str(path) for r in load(path).resources)


@pytest.mark.parametrize(("text", "problem"), [
    ("{ not json", "not valid JSON"),
    ('{"resources": []}', "not an ARM template"),
    ('["' + SCHEMA + '"]', "not an ARM template"),
    ('{"$schema": "' + SCHEMA + '", "resources": "none"}', "not an ARM template"),
])
def test_a_file_that_is_not_a_template_is_an_input_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(PreflightInputError, match=problem) as raised:
        load(path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def test_a_parameters_file_that_is_not_json_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    given = tmp_path / "p.json"
    given.write_text("{")
    with pytest.raises(PreflightInputError, match=r"p\.json: not valid JSON"):
        load(path, given)
    with pytest.raises(PreflightInputError, match="cannot read"):
        load(tmp_path / "absent.json")


def test_the_deployment_source_keeps_its_own_smaller_function_set() -> None:
    # the loader's extensions must not change what the engine redeploys from (it gives up on if())
    template = {"resources": [group_with({"osType": "[if(true(), 'Linux', 'Windows')]"})]}
    with pytest.raises(UnsupportedExpression):
        find_container_group(template, {}, resource_id=f"{RG_ID}/providers/{GROUP}/web")
    found = find_container_group({"resources": [group_with({"osType": "[parameters('os')]"})]}, {"os": "Linux"},
                                 resource_id=f"{RG_ID}/providers/{GROUP}/web")
    assert found is not None and found[0]["properties"] == {"osType": "Linux"}


# -- the fixtures ----------------------------------------------------------------------------------------------

EXPECTED: dict[str, list[str]] = json.loads((FIXTURES / "expected.json").read_text())


def test_expected_json_lists_every_template_and_only_templates() -> None:
    templates = {p.name for p in FIXTURES.glob("*.json")} - {"expected.json"}
    assert set(EXPECTED) == {t for t in templates if not t.endswith(".parameters.json")}


def groups_and_assignments(definitions: Definitions) -> tuple[list[Declared], list[Declared]]:
    groups = [r for r in definitions.resources if r.type.lower() == GROUP.lower()]
    assignments = [r for r in definitions.resources if r.type.lower() == ASSIGNMENT.lower()]
    return groups, assignments


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_declares_its_groups_resolved_and_ordered_as_its_codes_say(name: str) -> None:
    definitions = load(FIXTURES / name)
    assert definitions.kind == "arm" and definitions.path == str(FIXTURES / name)
    groups, assignments = groups_and_assignments(definitions)
    assert groups, name
    assert all(g.location.line is not None and g.api_version for g in groups)
    after = ordered_after(definitions.resources)
    pull_assignments = {a.key for a in assignments if a.scope and a.scope.startswith("microsoft.containerregistry")}
    raced = "ACR_PULL_PERMISSION_PROPAGATING" in EXPECTED[name]
    for group in groups:
        assert raced == bool(pull_assignments - after[group.key]), (name, group.key, after[group.key])


FIXTURE_FACTS: dict[str, dict[str, Any]] = {
    "clean_pull_permission.json": {"keys": {
        key_of(REGISTRY, "contosoacr"), key_of(IDENTITY, "aci-pull"), key_of(GROUP, "web"),
        key_of(ASSIGNMENT, "eb497bfb-c30c-5958-a59b-8488cf769723")}, "unresolved": ()},
    "broken_api_version_too_old.json": {"api_version": "2021-03-01"},
    "broken_system_identity.json": {"credential": {"server": "contosoacr.azurecr.io", "identity": "[system]"}},
    "broken_credential_server_missing.json": {"credential": {
        "identity": f"{RG_ID}/providers/{IDENTITY}/aci-pull"}},
    "clean_credential_username.json": {"credential": {"server": "fabrikamacr.azurecr.io", "username": "fabrikamacr"},
                                       "unresolved": (
                                           "properties.imageRegistryCredentials[0].password: "
                                           "[parameters('registryPassword')]",)},
    "shape_registry_outside_template.json": {"unresolved": (
        "properties.imageRegistryCredentials[0].server: [parameters('registryServer')]",
        "properties.containers[0].properties.image: [format('{0}/ci/runner:{1}', parameters('registryServer'), "
        "if(parameters('useTls'), 'tls', 'plain'))]")},
    "shape_copy_loop_workers.json": {"groups": {"worker-1", "worker-2", "worker-3"}},
    "shape_symbolic_multi_container.json": {"images": [
        "shopacradfd75942a508.azurecr.io/shop/app:3.1", "shopacradfd75942a508.azurecr.io/shop/cache:7",
        "mcr.microsoft.com/oss/nginx/nginx:1.25"]},
}


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_fixture_facts(name: str) -> None:
    definitions = load(FIXTURES / name)
    facts = FIXTURE_FACTS[name]
    groups, _ = groups_and_assignments(definitions)
    if "keys" in facts:
        assert {r.key for r in definitions.resources} == facts["keys"]
    if "api_version" in facts:
        assert groups[0].api_version == facts["api_version"]
    if "credential" in facts:
        assert groups[0].body["properties"]["imageRegistryCredentials"] == [facts["credential"]]
    if "unresolved" in facts:
        assert tuple(u for r in definitions.resources for u in r.unresolved) == facts["unresolved"]
    if "groups" in facts:
        assert {g.name for g in groups} == facts["groups"]
    if "images" in facts:
        assert [c["properties"]["image"] for c in groups[0].body["properties"]["containers"]] == facts["images"]


def test_the_nested_fixture_grants_in_the_registrys_own_resource_group() -> None:
    declared = by_key(load(FIXTURES / "shape_nested_role_assignment.json"))
    registry = declared[key_of(REGISTRY, "sharedacr")]
    assert registry.resource_id == (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/shared-registry-rg/providers/"
                                    f"{REGISTRY}/sharedacr")
    (assignment,) = [r for r in declared.values() if r.type == ASSIGNMENT]
    assert assignment.scope == registry.key
    assert assignment.body["properties"]["principalId"] == principal_of(key_of(IDENTITY, "jobs-pull"))

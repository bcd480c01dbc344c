"""The Bicep loader (remediation/preflight/bicep.py): what it reads into the declared model, per
feature on small inline files and per fixture under tests/preflight_fixtures/bicep/."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from remediation.preflight import bicep
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import RESOURCE_GROUP, SUBSCRIPTION, Declared, Definitions, ordered_after, principal_of

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "preflight_fixtures" / "bicep"
RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"


def _write(tmp_path: Path, text: str, name: str = "main.bicep") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _load(tmp_path: Path, text: str, parameters: Path | None = None) -> Definitions:
    return bicep.load(_write(tmp_path, text), parameters)


def _by_symbol(definitions: Definitions) -> dict[str, Declared]:
    return {r.symbol or "": r for r in definitions.resources}


IDENTITY_AND_REGISTRY = """
    resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
      name: 'ContosoApps'
      location: resourceGroup().location
      sku: {
        name: 'Standard'
      }
    }

    resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
      name: 'id-pull'
      location: 'westeurope'
      tags: {
        team: 'apps'
      }
    }
"""


# --- resources: key, name, type, api-version, line, id, body ------------------------------------------------------


def test_a_resource_reads_as_its_key_type_name_api_version_line_id_and_body(tmp_path: Path) -> None:
    definitions = _load(tmp_path, IDENTITY_AND_REGISTRY)
    assert definitions.kind == "bicep" and definitions.notes == ()
    acr, uami = definitions.resources
    assert acr.key == "microsoft.containerregistry/registries/contosoapps"
    assert (acr.type, acr.name, acr.api_version, acr.symbol) == (
        "Microsoft.ContainerRegistry/registries", "ContosoApps", "2023-07-01", "acr")
    assert acr.location.file.endswith("main.bicep") and acr.location.line == 2
    assert acr.resource_id == f"{RG}/providers/Microsoft.ContainerRegistry/registries/ContosoApps"
    assert acr.body == {"location": bicep.LOCATION, "sku": {"name": "Standard"}}
    assert uami.body == {"location": "westeurope", "tags": {"team": "apps"}}
    assert uami.location.line == 10 and acr.unresolved == () and acr.depends_on == frozenset()


def test_a_file_pycep_cannot_parse_is_bad_input_named_with_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "resource x 'A.B/c@2020-01-01' = {\n  name:\n}\n")
    with pytest.raises(PreflightInputError) as raised:
        bicep.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: pycep-parser cannot parse it: ") and "line 3" in message
    assert "\n" not in message


def test_a_file_that_is_not_text_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "main.bicep"
    path.write_bytes(b"\xff\xfe\x00resource")
    with pytest.raises(PreflightInputError, match="cannot read the file"):
        bicep.load(path)


def test_the_parser_is_imported_only_when_a_bicep_file_is_loaded() -> None:
    # the function app imports remediation/, never preflight; still, the module itself stays light
    code = "import sys, remediation.preflight.bicep; assert 'pycep' not in sys.modules, 'pycep imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- existing, parent:, nested, scope: ------------------------------------------------------------------------------


def test_an_existing_resource_is_marked_and_orders_nothing(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, """
        resource shared 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
          name: 'sharedacr'
        }
        resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'id-pull'
          tags: {
            registry: shared.id
            server: shared.properties.loginServer
          }
        }
    """))
    shared, uami = resources["shared"], resources["uami"]
    assert shared.body == {"existing": True}
    assert shared.resource_id == f"{RG}/providers/Microsoft.ContainerRegistry/registries/sharedacr"
    assert uami.body["tags"] == {"registry": shared.resource_id, "server": "sharedacr.azurecr.io"}
    assert uami.depends_on == frozenset()


def test_a_parent_child_and_a_nested_child_have_full_names_ids_and_depend_on_the_parent(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, """
        resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {
          name: 'vnet'
          resource aci 'subnets' = {
            name: 'aci'
            properties: {
              addressPrefix: '10.0.1.0/24'
            }
          }
        }
        resource pe 'Microsoft.Network/virtualNetworks/subnets@2023-04-01' = {
          parent: vnet
          name: 'pe'
        }
        resource nic 'Microsoft.Network/networkInterfaces@2023-04-01' = {
          name: 'nic'
          properties: {
            subnet: vnet::aci.id
          }
        }
    """))
    aci, pe, nic = resources["vnet::aci"], resources["pe"], resources["nic"]
    vnet_key = "microsoft.network/virtualnetworks/vnet"
    assert (aci.key, aci.name, aci.api_version) == ("microsoft.network/virtualnetworks/subnets/vnet/aci", "vnet/aci",
                                                    "2023-04-01")
    assert aci.resource_id == f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    assert aci.body == {"properties": {"addressPrefix": "10.0.1.0/24"}}
    assert (pe.key, pe.name) == ("microsoft.network/virtualnetworks/subnets/vnet/pe", "vnet/pe")
    assert aci.depends_on == pe.depends_on == frozenset({vnet_key})
    assert nic.body["properties"]["subnet"] == aci.resource_id and nic.depends_on == frozenset({aci.key})


def test_nested_resources_pycep_drops_are_noted(tmp_path: Path) -> None:
    definitions = _load(tmp_path, """
        resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {
          name: 'vnet'
          resource first 'subnets' = {
            name: 'a'
          }
          resource second 'subnets' = {
            name: 'b'
          }
        }
    """)
    assert [r.symbol for r in definitions.resources] == ["vnet", "vnet::second"]
    (note,) = definitions.notes
    assert "nested resource(s) first not read" in note


def test_a_role_assignment_applies_to_its_scope_resource_or_the_resource_group(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + f"""
        resource onRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {{
          name: guid(acr.id, uami.id, '{ACR_PULL}')
          scope: acr
          properties: {{
            roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{ACR_PULL}')
            principalId: uami.properties.principalId
          }}
        }}
        resource onGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = {{
          name: 'ab0b0f6c-0000-4000-8000-000000000001'
          properties: {{
            roleDefinitionId: '{ACR_PULL}'
            principalId: uami.properties.principalId
          }}
        }}
    """))
    acr, uami, on_registry, on_group = (resources[s] for s in ("acr", "uami", "onRegistry", "onGroup"))
    assert on_registry.scope == acr.key
    assert on_registry.resource_id == (f"{acr.resource_id}/providers/Microsoft.Authorization/roleAssignments/"
                                       f"{on_registry.name}")
    assert on_registry.body["properties"] == {
        "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
                            f"{ACR_PULL}",
        "principalId": principal_of(uami.key)}
    assert on_registry.depends_on == frozenset({acr.key, uami.key})
    assert on_group.scope == RG
    assert on_group.resource_id == f"{RG}/providers/Microsoft.Authorization/roleAssignments/{on_group.name}"


def test_a_scope_function_gives_the_scope_id(tmp_path: Path) -> None:
    (assignment,) = _load(tmp_path, """
        resource atOther 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
          name: 'ab0b0f6c-0000-4000-8000-000000000002'
          scope: resourceGroup('shared-rg')
          properties: {
            principalId: 'p'
          }
        }
    """).resources
    assert assignment.scope == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/shared-rg"


# --- dependencies ---------------------------------------------------------------------------------------------------


def test_depends_on_is_explicit_dependsOn_plus_every_symbolic_reference(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + """
        resource late 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'late'
        }
        resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
          name: 'cg'
          properties: {
            imageRegistryCredentials: [
              {
                server: acr.properties.loginServer
              }
            ]
          }
          dependsOn: [
            late
          ]
        }
    """))
    group = resources["group"]
    assert group.depends_on == frozenset({resources["acr"].key, resources["late"].key})
    assert resources["uami"].key not in group.depends_on


def test_dependencies_through_a_variable_count(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + """
        var server = acr.properties.loginServer
        resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
          name: 'cg'
          properties: {
            imageRegistryCredentials: [
              {
                server: server
              }
            ]
          }
        }
    """))
    assert resources["group"].depends_on == frozenset({resources["acr"].key})
    assert resources["group"].body["properties"]["imageRegistryCredentials"] == [{"server": "contosoapps.azurecr.io"}]


def test_without_a_reference_or_dependsOn_nothing_is_ordered(tmp_path: Path) -> None:
    definitions = _load(tmp_path, (FIXTURES / "acr_pull_propagating.bicep").read_text(encoding="utf-8"))
    resources = _by_symbol(definitions)
    after = ordered_after(definitions.resources)
    assert resources["acrPull"].key not in after[resources["group"].key]
    assert resources["pullIdentity"].key in after[resources["group"].key]


# --- loops and conditions -------------------------------------------------------------------------------------------


def test_a_loop_over_a_literal_array_or_range_is_expanded(tmp_path: Path) -> None:
    definitions = _load(tmp_path, """
        param apps array = [
          'web'
          'api'
        ]
        resource ids 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for app in apps: {
          name: 'id-${app}'
        }]
        resource counted 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for i in range(1, 2): {
          name: 'n${i}'
        }]
        resource indexed 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for (app, i) in apps: {
          name: '${app}-${i}'
        }]
        resource first 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'x'
          tags: {
            of: ids[1].name
          }
        }
    """)
    names = [(r.symbol, r.name) for r in definitions.resources]
    assert names == [("ids[0]", "id-web"), ("ids[1]", "id-api"), ("counted[0]", "n1"), ("counted[1]", "n2"),
                     ("indexed[0]", "web-0"), ("indexed[1]", "api-1"), ("first", "x")]
    first = definitions.resources[-1]
    assert first.body["tags"] == {"of": "id-api"} and first.depends_on == frozenset(
        {"microsoft.managedidentity/userassignedidentities/id-api"})


def test_a_loop_that_does_not_resolve_is_one_declaration_and_a_note(tmp_path: Path) -> None:
    definitions = _load(tmp_path, """
        param apps array
        resource ids 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for app in apps: {
          name: 'id-${app}'
          location: 'westeurope'
        }]
    """)
    (one,) = definitions.resources
    assert one.symbol == "ids[?]" and one.resource_id is None and one.body == {"location": "westeurope"}
    assert one.unresolved == ("name: 'id-${app}'", "for: apps")
    assert definitions.notes == (f"{tmp_path / 'main.bicep'}: the loop of ids is not expanded: apps does not "
                                 "resolve offline; one declaration stands for all its items",)


def test_conditions_keep_true_drop_false_and_say_when_they_do_not_resolve(tmp_path: Path) -> None:
    definitions = _load(tmp_path, """
        param deployExtra bool = false
        param unknown bool
        resource yes 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (true) {
          name: 'yes'
        }
        resource no 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (deployExtra) {
          name: 'no'
        }
        resource maybe 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (unknown) {
          name: 'maybe'
        }
        resource some 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for n in range(0, 3): if(n!=1) {
          name: 'n${n}'
        }]
    """)
    assert [r.name for r in definitions.resources] == ["yes", "maybe", "n0", "n2"]
    maybe = definitions.resources[1]
    assert maybe.unresolved == ("condition: unknown",)
    assert definitions.notes == (f"{tmp_path / 'main.bicep'}: the condition of maybe does not resolve offline: "
                                 "unknown; read as deployed",)


# --- parameters -----------------------------------------------------------------------------------------------------

PARAMETERIZED = """
    param registryName string = 'defaultacr'
    param identityName string
    resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
      name: registryName
    }
    resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
      name: identityName
    }
"""


def test_a_parameter_without_a_value_is_unresolved_and_a_default_is_used(tmp_path: Path) -> None:
    acr, uami = _load(tmp_path, PARAMETERIZED).resources
    assert acr.name == "defaultacr"
    assert uami.unresolved == ("name: identityName",) and uami.resource_id is None
    assert uami.key == "microsoft.managedidentity/userassignedidentities/{uami}" and uami.name == "{uami}"


def test_a_bicepparam_file_sets_parameters(tmp_path: Path) -> None:
    params = _write(tmp_path, """
        using './main.bicep'

        param registryName = 'fromparams'
        param identityName = 'id-${registryName}'
    """, "main.bicepparam")
    acr, uami = _load(tmp_path, PARAMETERIZED, params).resources
    assert (acr.name, uami.name) == ("fromparams", "id-fromparams")


def test_a_bicepparam_value_that_does_not_resolve_leaves_the_default_with_a_note(tmp_path: Path) -> None:
    params = _write(tmp_path, """
        using './main.bicep'

        param registryName = readEnvironmentVariable('REGISTRY')
        param identityName = 'id-fixed'
    """, "main.bicepparam")
    definitions = _load(tmp_path, PARAMETERIZED, params)
    assert [r.name for r in definitions.resources] == ["defaultacr", "id-fixed"]
    assert definitions.notes == (f"{params}: parameter registryName does not resolve offline; its default is used",)


def test_an_arm_parameters_file_sets_parameters_and_a_key_vault_reference_does_not(tmp_path: Path) -> None:
    params = tmp_path / "main.parameters.json"
    params.write_text(json.dumps({"parameters": {
        "registryName": {"reference": {"keyVault": {"id": "/kv"}, "secretName": "s"}},
        "identityName": {"value": "id-json"}}}), encoding="utf-8")
    acr, uami = _load(tmp_path, PARAMETERIZED, params).resources
    assert (acr.name, uami.name) == ("defaultacr", "id-json")


def test_a_parameters_file_that_is_not_one_is_bad_input(tmp_path: Path) -> None:
    params = tmp_path / "bad.json"
    params.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PreflightInputError, match="not a parameters file"):
        _load(tmp_path, PARAMETERIZED, params)


# --- expressions ----------------------------------------------------------------------------------------------------


def test_scope_functions_ids_guid_and_uniqueString_resolve_to_stand_ins(tmp_path: Path) -> None:
    (resource,) = _load(tmp_path, """
        var suffix = uniqueString(resourceGroup().id)
        resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'id-${suffix}'
          tags: {
            sub: subscription().subscriptionId
            rg: resourceGroup().name
            loc: resourceGroup().location
            two: resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'aci')
            three: resourceId('other-rg', 'Microsoft.ManagedIdentity/userAssignedIdentities', 'x')
            four: resourceId('11111111-2222-3333-4444-555555555555', 'other-rg', 'Microsoft.Web/sites', 'y')
            role: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r')
            guid: guid('a', 'b')
            again: guid('a', 'b')
            other: guid('a', 'c')
            text: toLower(concat('A', format('{0}-{1}', 'B', 2)))
            escaped: 'it\\'s \\${not} ${length('abc')}'
            size: json('1.5')
            short: take('contosoregistry', 8)
            rest: skip('contosoregistry', 7)
            middle: substring('contosoregistry', 7, 3)
            last: last(split('/a/b/c', '/'))
            first: first([
              'x'
              'y'
            ])
            joined: join(split('a,b;c', [
              ','
              ';'
            ]), '-')
            trimmed: trim('  t  ')
            server: 'contosoapps${environment().suffixes.acrLoginServer}'
            portal: environment().portal
          }
        }
    """).resources
    tags = resource.body["tags"]
    assert len(resource.name) == len("id-") + 13 and resource.name.startswith("id-")
    assert tags["sub"] == SUBSCRIPTION and tags["rg"] == RESOURCE_GROUP and tags["loc"] == bicep.LOCATION
    assert tags["two"] == f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
    assert tags["three"] == (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/other-rg/providers/"
                             "Microsoft.ManagedIdentity/userAssignedIdentities/x")
    assert tags["four"] == ("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/other-rg/"
                            "providers/Microsoft.Web/sites/y")
    assert tags["role"] == f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/r"
    assert tags["guid"] == tags["again"] != tags["other"] and len(tags["guid"]) == 36
    assert tags["text"] == "ab-2" and tags["escaped"] == "it's ${not} 3" and tags["size"] == 1.5
    assert (tags["short"], tags["rest"], tags["middle"], tags["last"], tags["first"]) == (
        "contosor", "registry", "reg", "c", "x")
    assert tags["joined"] == "a-b-c" and tags["trimmed"] == "t" and tags["server"] == "contosoapps.azurecr.io"
    assert "portal" not in tags and resource.unresolved == ("tags.portal: environment().portal",)


def test_principal_ids_and_login_servers_of_declared_resources(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + """
        resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
          name: 'cg'
          identity: {
            type: 'SystemAssigned'
          }
        }
        resource grants 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
          name: 'ab0b0f6c-0000-4000-8000-000000000003'
          properties: {
            principalId: group.identity.principalId
            description: '${uami.properties.principalId} ${acr.properties.loginServer}'
          }
        }
    """))
    uami, group, grants = resources["uami"], resources["group"], resources["grants"]
    assert grants.body["properties"] == {
        "principalId": principal_of(group.key),
        "description": f"{principal_of(uami.key)} contosoapps.azurecr.io"}


def test_what_does_not_resolve_offline_is_named_with_its_path_not_guessed(tmp_path: Path) -> None:
    (group,) = _load(tmp_path, """
        param mode string = 'a'
        resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
          name: 'cg'
          properties: {
            containers: [
              {
                name: 'app'
                properties: {
                  image: reference('x').image
                }
              }
            ]
            imageRegistryCredentials: [
              {
                server: mode == 'a' ? 'one.azurecr.io' : 'two.azurecr.io'
                identity: 'id'
              }
            ]
            osType: 'Linux'
          }
        }
    """).resources
    assert group.body["properties"] == {"containers": [{"name": "app", "properties": {}}],
                                        "imageRegistryCredentials": [{"identity": "id"}], "osType": "Linux"}
    assert group.unresolved == (
        "properties.containers[0].properties.image: reference('x').image",
        # pycep reads it as mode == ('a' ? ...): an operator over an operator is not decided
        "properties.imageRegistryCredentials[0].server: mode == 'a' ? 'one.azurecr.io' : 'two.azurecr.io'",
    )


def test_an_operator_over_an_operator_is_not_decided(tmp_path: Path) -> None:
    # Bicep reads (flag == true) && other, false here; pycep's tree is flag == (true && other), true
    (uami,) = _load(tmp_path, """
        param flag bool = false
        param other bool = false
        resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'id'
          tags: {
            both: flag == true && other
          }
        }
    """).resources
    assert uami.body == {"tags": {}} and uami.unresolved == ("tags.both: flag == true && other",)


def test_a_parameter_without_a_value_is_not_read_as_null(tmp_path: Path) -> None:
    (uami,) = _load(tmp_path, """
        param owner string
        resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'id'
          tags: {
            owner: owner
          }
        }
    """).resources
    assert uami.body == {"tags": {}} and uami.unresolved == ("tags.owner: owner",)


def test_a_child_whose_parent_name_does_not_resolve_says_so(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, """
        param accountName string
        resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
          name: accountName
          resource blobs 'blobServices' = {
            name: 'default'
          }
        }
    """))
    assert resources["storage::blobs"].unresolved == ("name: storage.name/'default'",)


def test_a_child_of_an_existing_parent_in_another_group_lives_in_that_group(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, """
        resource hub 'Microsoft.Network/virtualNetworks@2023-04-01' existing = {
          name: 'hub'
          scope: resourceGroup('net-rg')
        }
        resource aci 'Microsoft.Network/virtualNetworks/subnets@2023-04-01' existing = {
          parent: hub
          name: 'aci'
        }
    """))
    hub_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/hub"
    assert resources["hub"].resource_id == hub_id
    assert resources["aci"].resource_id == f"{hub_id}/subnets/aci"
    assert resources["aci"].body == {"existing": True} and resources["aci"].depends_on == frozenset()


def test_a_for_in_a_body_is_read_item_by_item(tmp_path: Path) -> None:
    (group,) = _load(tmp_path, """
        param apps array = [
          'web'
          'api'
        ]
        var versions = {
          web: '1.0'
        }
        resource group 'Microsoft.ContainerInstance/containerGroups@2023-05-01' = {
          name: 'cg'
          properties: {
            containers: [for (app, i) in apps: {
              name: app
              properties: {
                image: 'contoso.azurecr.io/${app}:${versions[app]}'
                index: i
              }
            }]
          }
        }
    """).resources
    assert group.body["properties"]["containers"] == [
        {"name": "web", "properties": {"image": "contoso.azurecr.io/web:1.0", "index": 0}},
        {"name": "api", "properties": {"index": 1}}]
    assert group.unresolved == (
        "properties.containers[1].properties.image: 'contoso.azurecr.io/${app}:${versions[app]}'",)


def test_a_reference_to_a_resource_whose_condition_is_false_orders_nothing(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, """
        resource never 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (false) {
          name: 'never'
        }
        resource after 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'after'
          dependsOn: [
            never
          ]
        }
    """))
    assert list(resources) == ["after"]
    assert resources["after"].depends_on == frozenset() and resources["after"].unresolved == ()


def test_a_resource_or_scope_object_is_not_a_body_value(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + """
        resource user 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'user'
          tags: {
            whole: acr
            group: resourceGroup()
          }
        }
    """))
    assert resources["user"].body == {"tags": {}}
    assert resources["user"].unresolved == ("tags.whole: acr", "tags.group: resourceGroup()")


def test_a_value_read_from_another_declaration_is_a_copy(tmp_path: Path) -> None:
    resources = _by_symbol(_load(tmp_path, IDENTITY_AND_REGISTRY + """
        resource user 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'user'
          tags: acr.sku
        }
    """))
    resources["user"].body["tags"]["name"] = "Premium"
    assert resources["acr"].body["sku"] == {"name": "Standard"}


def test_a_simple_conditional_and_comparison_resolve(tmp_path: Path) -> None:
    (uami,) = _load(tmp_path, """
        param useProd bool = true
        param env string = 'prod'
        var isProd = env == 'prod'
        resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: useProd ? 'id-prod' : 'id-dev'
          tags: {
            prod: isProd ? 'yes' : 'no'
            notProd: !isProd
          }
        }
    """).resources
    assert uami.name == "id-prod" and uami.body["tags"] == {"prod": "yes", "notProd": False}


def test_a_subscription_target_scope_puts_ids_at_the_subscription(tmp_path: Path) -> None:
    (assignment,) = _load(tmp_path, """
        targetScope = 'subscription'
        resource grant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
          name: 'ab0b0f6c-0000-4000-8000-000000000004'
          properties: {
            principalId: 'p'
          }
        }
    """).resources
    assert assignment.scope == f"/subscriptions/{SUBSCRIPTION}"
    assert assignment.resource_id == (f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/"
                                      "roleAssignments/ab0b0f6c-0000-4000-8000-000000000004")


# --- modules --------------------------------------------------------------------------------------------------------


def test_a_local_module_is_read_with_its_params_and_orders_what_uses_its_outputs(tmp_path: Path) -> None:
    _write(tmp_path, """
        param name string
        param location string = 'northeurope'
        resource inner 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: name
          location: location
        }
        output id string = inner.id
    """, "modules/identity.bicep")
    definitions = _load(tmp_path, """
        resource first 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'first'
        }
        module ident './modules/identity.bicep' = {
          name: 'ident'
          params: {
            name: 'from-${first.name}'
          }
        }
        resource user 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'user'
          tags: {
            of: ident.outputs.id
          }
        }
    """)
    resources = _by_symbol(definitions)
    inner = resources["ident.inner"]
    assert inner.name == "from-first" and inner.body == {"location": "northeurope"}
    assert inner.location.file == str(tmp_path / "modules" / "identity.bicep") and inner.location.line == 4
    assert inner.depends_on == frozenset({resources["first"].key})
    assert resources["user"].body["tags"] == {"of": inner.resource_id}
    assert resources["user"].depends_on == frozenset({inner.key})


def test_a_module_deployed_to_a_declared_resource_group_reads_its_resources_there(tmp_path: Path) -> None:
    _write(tmp_path, """
        resource inner 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
          name: 'id-${uniqueString(resourceGroup().id)}'
        }
    """, "identity.bicep")
    resources = _by_symbol(_load(tmp_path, """
        targetScope = 'subscription'
        resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
          name: 'apps-rg'
          location: 'westeurope'
        }
        module ident './identity.bicep' = {
          name: 'ident'
          scope: rg
        }
    """))
    rg, inner = resources["rg"], resources["ident.inner"]
    assert rg.resource_id == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/apps-rg"
    assert inner.resource_id is not None and inner.resource_id.startswith(
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/apps-rg/providers/Microsoft.ManagedIdentity/")
    assert inner.depends_on == frozenset({rg.key}) and inner.unresolved == ()


def test_a_registry_module_or_a_missing_module_file_is_a_note(tmp_path: Path) -> None:
    definitions = _load(tmp_path, """
        module fromRegistry 'br/public:avm/res/container-instance/container-group:0.4.0' = {
          name: 'a'
        }
        module missing './nowhere.bicep' = {
          name: 'b'
        }
    """)
    assert definitions.resources == ()
    assert [n.split(": ", 1)[1] for n in definitions.notes] == [
        "module fromRegistry (br/public:avm/res/container-instance/container-group:0.4.0) is not read: only "
        "local module files are",
        "module missing: ./nowhere.bicep is not a file here; its resources are not read",
    ]


# --- fixtures -------------------------------------------------------------------------------------------------------

EXPECTED: dict[str, list[str]] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def test_expected_json_lists_every_bicep_fixture() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in FIXTURES.glob("*.bicep"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_reads_whole_with_nothing_unresolved(name: str) -> None:
    definitions = bicep.load(FIXTURES / name)
    assert definitions.notes == ()
    assert [r.unresolved for r in definitions.resources if r.unresolved] == []
    groups = [r for r in definitions.resources if r.type == "Microsoft.ContainerInstance/containerGroups"]
    assert groups and all(g.location.line for g in groups)


def _fixture(name: str) -> dict[str, Declared]:
    return _by_symbol(bicep.load(FIXTURES / name))


def _group(resources: dict[str, Declared]) -> Declared:
    (group,) = [r for r in resources.values() if r.type == "Microsoft.ContainerInstance/containerGroups"]
    return group


def test_the_clean_fixture_declares_an_ordered_acr_pull_for_the_attached_identity() -> None:
    definitions = bicep.load(FIXTURES / "clean_acr_pull.bicep")
    resources = _by_symbol(definitions)
    group, identity, registry, pull = (resources[s] for s in ("group", "pullIdentity", "registry", "acrPull"))
    credential = group.body["properties"]["imageRegistryCredentials"][0]
    assert credential == {"server": registry.name.lower() + ".azurecr.io", "identity": identity.resource_id}
    assert group.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity.resource_id: {}}}
    assert pull.scope == registry.key and pull.body["properties"]["principalId"] == principal_of(identity.key)
    assert pull.body["properties"]["roleDefinitionId"].endswith(ACR_PULL)
    assert pull.key in ordered_after(definitions.resources)[group.key]


@pytest.mark.parametrize(("name", "api_version"), [("api_version_too_old.bicep", "2021-03-01"),
                                                   ("api_version_minimum_clean.bicep", "2021-07-01")])
def test_the_api_version_fixtures(name: str, api_version: str) -> None:
    assert _group(_fixture(name)).api_version == api_version


def test_the_credential_fixtures() -> None:
    def credential(name: str) -> dict[str, str]:
        first: dict[str, str] = _group(_fixture(name)).body["properties"]["imageRegistryCredentials"][0]
        return first

    assert set(credential("credential_ambiguous.bicep")) == {"server", "username", "identity"}
    assert set(credential("credential_server_missing.bicep")) == {"identity"}
    clean = _fixture("credential_identity_only_clean.bicep")
    assert credential("credential_identity_only_clean.bicep")["identity"] == clean["pullIdentity"].resource_id
    assert credential("credential_server_clean.bicep")["server"].endswith(".azurecr.io")
    assert credential("system_identity_unsupported.bicep") == {"server": "contososhared.azurecr.io",
                                                                "identity": "[system]"}


def test_the_seed_document_fixtures_differ_in_the_credential_identity_only() -> None:
    broken, clean = (_group(_fixture(n)) for n in ("seed_doc_identity_typo.bicep", "seed_doc_clean.bicep"))
    attached = next(iter(broken.body["identity"]["userAssignedIdentities"]))
    assert attached.endswith("/userAssignedIdentities/myACRId")
    assert broken.body["properties"]["imageRegistryCredentials"][0]["identity"].endswith("/myACRIdt")
    assert clean.body["properties"]["imageRegistryCredentials"][0]["identity"] == attached


def test_the_registry_fixtures() -> None:
    abac = _fixture("abac_condition_excludes_repository.bicep")
    assert abac["registry"].body["properties"] == {"roleAssignmentMode": "AbacRepositoryPermissions"}
    condition = abac["acrPull"].body["properties"]["condition"]
    assert condition.endswith("StringEqualsIgnoreCase 'tools'))") and "\\" not in condition
    assert abac["acrPull"].body["properties"]["conditionVersion"] == "2.0"
    restricted = _fixture("trusted_services_disabled.bicep")["registry"].body["properties"]
    assert restricted == {"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None"}
    assert "acrPull" not in _fixture("acr_pull_missing.bicep")


def test_the_private_endpoint_fixtures() -> None:
    broken, clean = (_fixture(n) for n in ("private_endpoint_in_delegated_subnet.bicep",
                                           "private_endpoint_own_subnet_clean.bicep"))
    delegated = broken["vnet::aciSubnet"]
    assert delegated.body["properties"]["delegations"][0]["properties"]["serviceName"] == (
        "Microsoft.ContainerInstance/containerGroups")
    assert broken["registryEndpoint"].body["properties"]["subnet"] == {"id": delegated.resource_id}
    assert clean["registryEndpoint"].body["properties"]["subnet"] == {"id": clean["peSubnet"].resource_id}
    assert _group(clean).body["properties"]["subnetIds"] == [{"id": clean["vnet::aciSubnet"].resource_id}]


@pytest.mark.parametrize(("name", "ordered"), [("acr_pull_propagating.bicep", False), ("module_race.bicep", False),
                                               ("acr_pull_ordered_by_reference_clean.bicep", True),
                                               ("module_outputs_clean.bicep", True),
                                               ("existing_registry_clean.bicep", True)])
def test_the_ordering_fixtures(name: str, ordered: bool) -> None:
    definitions = bicep.load(FIXTURES / name)
    resources = _by_symbol(definitions)
    group = _group(resources)
    (pull,) = [r for r in resources.values() if r.type == "Microsoft.Authorization/roleAssignments"]
    identity = group.body["properties"]["imageRegistryCredentials"][0]["identity"]
    assert pull.body["properties"]["principalId"] == principal_of(
        next(r.key for r in resources.values() if r.resource_id == identity))
    assert (pull.key in ordered_after(definitions.resources)[group.key]) is ordered


def test_the_loop_fixture_expands_one_group_per_app() -> None:
    resources = _fixture("loop_groups_clean.bicep")
    assert [r.name for r in resources.values() if r.type.endswith("containerGroups")] == ["cg-web", "cg-worker"]
    assert resources["groups[1]"].body["properties"]["containers"][0]["properties"]["image"].endswith("/worker:1.0")
    assert resources["acrPull"].key in resources["groups[0]"].depends_on


def test_the_existing_registry_fixture_marks_the_registry_and_scopes_the_assignment_to_it() -> None:
    resources = _fixture("existing_registry_clean.bicep")
    assert resources["registry"].body == {"existing": True}
    assert resources["acrPull"].scope == resources["registry"].key

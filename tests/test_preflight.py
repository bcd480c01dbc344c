"""``python -m remediation preflight``: the checks on declared resources, the race rule, unresolved values,
the command's exit codes and one-line errors, the directory walk and the text and JSON outputs.

The checks are tested on :class:`Declared` objects built by hand (the shape every loader produces,
``remediation/preflight/model.py``), so they do not depend on any one format's loader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from remediation.__main__ import main
from remediation.preflight import inputs
from remediation.preflight.checks import check_definitions
from remediation.preflight.command import Request, preflight
from remediation.preflight.context import default_id
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import Declared, Definitions, Location, key_of, principal_of
from remediation.preflight.output import Result, document, text

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "preflight_fixtures" / "containers"
ACR_PULL = "/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER = "/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac"
GROUP = "Microsoft.ContainerInstance/containerGroups"
REGISTRY = "Microsoft.ContainerRegistry/registries"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
FILE = "main.bicep"


def declared(resource_type: str, name: str, line: int, body: dict[str, Any] | None = None, **extra: Any) -> Declared:
    return Declared(key=key_of(resource_type, name), type=resource_type, name=name, location=Location(FILE, line),
                    resource_id=default_id(resource_type, name), body=body or {}, **extra)


def registry(name: str = "contosoacr", **props: Any) -> Declared:
    return declared(REGISTRY, name, 2, {"location": "eastus", "sku": {"name": "Premium"}, "properties": props})


def identity(name: str = "pull") -> Declared:
    return declared(IDENTITY, name, 8, {"location": "eastus"})


def assignment(name: str = "pull-acrpull", role: str = ACR_PULL, principal: str | None = None,
               scope: str | None = None, **props: Any) -> Declared:
    properties = {"roleDefinitionId": role, "principalId": principal or principal_of(identity().key),
                  "principalType": "ServicePrincipal", **props}
    return declared(ASSIGNMENT, name, 12, {"properties": properties},
                    scope=key_of(REGISTRY, "contosoacr") if scope is None else scope)


def group(name: str = "web", *, after: tuple[str, ...] = (assignment().key,),
          image: str = "contosoacr.azurecr.io/web:1", credential: dict[str, Any] | None = None,
          unresolved: tuple[str, ...] = (), api_version: str = "2023-05-01") -> Declared:
    uai = identity().resource_id
    body = {
        "location": "eastus",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {uai: {}}},
        "properties": {
            "containers": [{"name": "web", "properties": {"image": image}}],
            "imageRegistryCredentials": [credential if credential is not None else
                                         {"server": "contosoacr.azurecr.io", "identity": uai}],
            "osType": "Linux",
        },
    }
    return declared(GROUP, name, 20, body, api_version=api_version, depends_on=frozenset(after),
                    unresolved=unresolved, symbol=name)


def codes(*resources: Declared) -> list[str]:
    outcome = check_definitions(Definitions(FILE, "bicep", resources))
    return [f.code for f in outcome.findings]


def notes(*resources: Declared) -> list[str]:
    return [n.message for n in check_definitions(Definitions(FILE, "bicep", resources)).notes]


# --- the checks on declared resources ---------------------------------------------------------------------------


def test_a_clean_deployment_raises_nothing() -> None:
    assert codes(registry(), identity(), assignment(), group()) == []


def test_identity_and_registry_declared_without_a_pull_role_is_missing_permission() -> None:
    assert codes(registry(), identity(), group(after=())) == ["ACR_PULL_PERMISSION_MISSING"]


def test_a_registry_not_declared_is_unknown_never_not_found() -> None:
    assert codes(identity(), group(after=())) == []


def test_an_identity_not_declared_raises_nothing_about_pull_rights() -> None:
    assert codes(registry(), group(after=())) == []


def _named(role_name: str) -> Declared:
    named = assignment(role="")
    body = {"properties": {**{k: v for k, v in named.body["properties"].items() if k != "roleDefinitionId"},
                           "roleDefinitionName": role_name}}
    return Declared(**{**named.__dict__, "body": body})


def test_a_role_named_not_by_id_resolves_through_the_built_in_table() -> None:
    # the grant is recognised: unordered, it is the race; ordered, nothing
    assert codes(registry(), identity(), _named("AcrPull"), group(after=())) == ["ACR_PULL_PERMISSION_PROPAGATING"]
    assert codes(registry(), identity(), _named("acrpull"), group()) == []
    # a name the table does not hold decides nothing
    assert codes(registry(), identity(), _named("Custom Puller"), group(after=())) == []
    assert any("names no principal or role that resolves" in n
               for n in notes(registry(), identity(), _named("Custom Puller"), group(after=())))


def test_acrpull_on_an_abac_registry_is_the_abac_cause() -> None:
    abac = registry(roleAssignmentMode="AbacRepositoryPermissions")
    assert codes(abac, identity(), assignment(), group()) == ["ACR_ABAC_REPOSITORY_PERMISSIONS"]


def test_a_repository_condition_that_leaves_the_image_out_is_the_condition_cause() -> None:
    abac = registry(roleAssignmentMode="AbacRepositoryPermissions")
    condition = ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR "
                 "(@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'api'))")
    reader = assignment(role=REPOSITORY_READER, condition=condition, conditionVersion="2.0")
    assert codes(abac, identity(), reader, group()) == ["ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY"]
    # Azure keeps one assignment per principal, role and scope: the fix is the held condition, widened
    [finding] = check_definitions(Definitions(FILE, "bicep", (abac, identity(), reader, group()))).findings
    assert finding.fix.startswith("widen the condition of the assignment already declared to: ")
    assert "'web'" in finding.fix
    allowed = assignment(role=REPOSITORY_READER, condition=condition.replace("'api'", "'web'"), conditionVersion="2.0")
    assert codes(abac, identity(), allowed, group()) == []


def test_a_restricted_registry_without_trusted_services_is_found() -> None:
    closed = registry(publicNetworkAccess="Disabled", networkRuleBypassOptions="None")
    assert codes(closed, identity(), assignment(), group()) == ["ACR_TRUSTED_SERVICES_DISABLED"]
    assert codes(registry(publicNetworkAccess="Disabled", networkRuleBypassOptions="AzureServices"), identity(),
                 assignment(), group()) == []


def _network(endpoint_subnet: str) -> tuple[Declared, Declared]:
    vnet = declared("Microsoft.Network/virtualNetworks", "aci-vnet", 30, {"properties": {"subnets": [
        {"name": "aci", "properties": {"delegations": [
            {"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}]}},
        {"name": "endpoints", "properties": {}},
    ]}})
    endpoint = declared("Microsoft.Network/privateEndpoints", "acr-pe", 40, {"properties": {
        "subnet": {"id": f"{vnet.resource_id}/subnets/{endpoint_subnet}"},
        "privateLinkServiceConnections": [{"name": "acr", "properties": {
            "privateLinkServiceId": registry().resource_id, "groupIds": ["registry"]}}],
    }})
    return vnet, endpoint


def test_a_registry_private_endpoint_in_the_aci_delegated_subnet_is_found_at_the_endpoint() -> None:
    vnet, endpoint = _network("aci")
    outcome = check_definitions(Definitions(FILE, "bicep", (registry(), vnet, endpoint)))
    assert [(f.code, f.location.line, f.resource) for f in outcome.findings] == [
        ("ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET", 40, endpoint.key)]
    vnet, endpoint = _network("endpoints")
    assert codes(registry(), vnet, endpoint) == []


# --- the race -----------------------------------------------------------------------------------------------------


def test_a_pull_role_declared_beside_the_group_with_no_ordering_is_the_race() -> None:
    outcome = check_definitions(Definitions(FILE, "bicep", (registry(), identity(), assignment(), group(after=()))))
    [race] = outcome.findings
    assert race.code == "ACR_PULL_PERMISSION_PROPAGATING" and race.location == Location(FILE, 20)
    assert race.evidence["roleAssignments"][0]["resource"] == assignment().key
    assert "no dependsOn" in race.evidence["ordering"] and "dependsOn" in race.fix
    assert race.help_uri.startswith("https://learn.microsoft.com/")


def test_an_ordering_through_another_resource_counts() -> None:
    middle = declared("Microsoft.Resources/deploymentScripts", "wait", 15, depends_on=frozenset({assignment().key}))
    assert codes(registry(), identity(), assignment(), middle, group(after=(middle.key,))) == []


def test_no_race_where_the_grant_is_not_declared_here() -> None:
    # the assignment names another principal: nothing grants the pull, which is the missing cause, not the race
    other = assignment(principal="11111111-2222-3333-4444-555555555555")
    assert codes(registry(), identity(), other, group(after=())) == ["ACR_PULL_PERMISSION_MISSING"]


# --- unresolved values are notes, not findings -----------------------------------------------------------------


def test_an_unresolved_server_is_a_note_not_a_missing_server() -> None:
    unresolved = ("properties.imageRegistryCredentials[0].server: acr.properties.loginServer",)
    quiet = group(credential={"identity": identity().resource_id}, unresolved=unresolved)
    assert codes(registry(), identity(), assignment(), quiet) == []
    [note] = notes(registry(), identity(), assignment(), quiet)
    assert note == ("web: could not decide properties.imageRegistryCredentials[0].server: acr.properties.loginServer"
                    " (ACI_CREDENTIAL_SERVER_MISSING not decided)")


def test_an_unresolved_value_a_check_reads_is_noted_even_where_nothing_fired() -> None:
    quiet = group(api_version="", unresolved=("apiVersion: parameters('aciApiVersion')",))
    assert codes(registry(), identity(), assignment(), quiet) == []
    assert notes(registry(), identity(), assignment(), quiet) == [
        "web: could not decide apiVersion: parameters('aciApiVersion')"]
    closed = Declared(**{**registry().__dict__, "unresolved": ("properties.networkRuleBypassOptions: x",)})
    assert notes(closed, identity(), assignment(), group()) == [
        f"web: could not decide {closed.key}: properties.networkRuleBypassOptions: x"]


def test_an_unresolved_value_of_another_credential_does_not_hide_a_finding() -> None:
    unresolved = ("properties.imageRegistryCredentials[1].server: x",)
    broken = group(credential={"identity": identity().resource_id}, unresolved=unresolved)
    assert codes(registry(), identity(), assignment(), broken) == ["ACI_CREDENTIAL_SERVER_MISSING"]


def test_an_assignment_whose_principal_does_not_resolve_leaves_pull_rights_undecided() -> None:
    vague = assignment(principal="")
    vague = Declared(**{**vague.__dict__, "unresolved": ("properties.principalId: reference(x).principalId",)})
    assert codes(registry(), identity(), vague, group(after=())) == []
    assert any("could not decide the pull rights of pull" in n and "reference(x)" in n
               for n in notes(registry(), identity(), vague, group(after=())))


def test_an_unresolved_image_is_a_note() -> None:
    body = group().body
    body["properties"]["containers"][0]["properties"] = {}
    image_less = Declared(**{**group().__dict__, "body": body,
                             "unresolved": ("properties.containers[0].properties.image: parameters('image')",)})
    assert codes(registry(), identity(), assignment(), image_less) == []
    assert any("parameters('image')" in n for n in notes(registry(), identity(), assignment(), image_less))


# --- the command --------------------------------------------------------------------------------------------------


def test_exit_codes_clean_findings() -> None:
    assert main(["preflight", str(FIXTURES / "server-missing-clean.yaml")]) == 0
    assert main(["preflight", str(FIXTURES / "server-missing-broken.yaml")]) == 1


@pytest.mark.parametrize("content, suffix, words", [
    ("{not json", ".json", "not valid JSON"),
    ("a: [1, 2", ".yaml", "not valid YAML"),
    ('{"properties": {}}', ".json", "not a container group"),
    ('{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"}', ".json",
     "parameters file"),
])
def test_bad_input_is_exit_2_with_one_line_naming_the_file(tmp_path: Path, content: str, suffix: str,
                                                           words: str) -> None:
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(content)
    out = subprocess.run([sys.executable, "-m", "remediation", "preflight", str(bad)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and words in out.stderr and str(bad) in out.stderr and out.stdout == ""


def test_a_missing_path_or_parameters_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", str(tmp_path / "nope.json")]) == 2
    assert main(["preflight", str(FIXTURES / "server-missing-clean.yaml"), "--parameters",
                 str(tmp_path / "nope.parameters.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "nope.json: no such file" in err[0] and "no such parameters file" in err[1]


def test_a_container_group_the_definition_reader_refuses_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "group.json"
    bad.write_text(json.dumps({"properties": {"containers": [{"name": "x", "properties": {"image": "UPPER CASE"}}]}}))
    with pytest.raises(PreflightInputError, match=r"group\.json:1: container group group: .*image"):
        preflight(Request((bad,)))


def test_a_loader_this_installation_lacks_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(inputs.importlib, "import_module", missing)
    template = tmp_path / "main.bicep"
    template.write_text("param x string\n")
    with pytest.raises(PreflightInputError, match=r"main\.bicep: reading Bicep files needs remediation\.preflight"):
        inputs.load_any(template)


def test_a_directory_means_every_supported_file_under_it_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.yaml", "a.json", "b/c.yml"):
        (tmp_path / name).write_text((FIXTURES / "server-missing-clean.json").read_text())
    (tmp_path / "b" / "z.yaml").write_text((FIXTURES / "server-missing-broken.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not read")
    (tmp_path / ".terraform").mkdir()
    (tmp_path / ".terraform" / "state.json").write_text("{not read either")
    (tmp_path / "expected.json").write_text('{"a.json": []}')
    result = preflight(Request((tmp_path,)))
    assert [Path(d.path).relative_to(tmp_path).as_posix() for d in result.files] == ["a.json", "b/c.yml", "b/z.yaml"]
    assert [f.code for f in result.findings] == ["ACI_CREDENTIAL_SERVER_MISSING"]
    # in a directory a JSON file that declares nothing preflight reads is passed over, with a note
    assert [n.message.split(":")[0] for n in result.notes] == ["skipped"]
    with pytest.raises(PreflightInputError):
        preflight(Request((tmp_path / "expected.json",)))


# --- the outputs --------------------------------------------------------------------------------------------------


def _result(*resources: Declared) -> Result:
    definitions = Definitions(FILE, "bicep", resources)
    outcome = check_definitions(definitions)
    return Result((definitions,), outcome.findings, outcome.notes)


def test_text_names_the_place_the_cause_the_evidence_the_fix_and_the_document() -> None:
    out = text(_result(registry(), identity(), group(after=())))
    first = out.splitlines()[0]
    assert first.startswith("main.bicep:20: ACR_PULL_PERMISSION_MISSING ")
    assert "    registryId: " in out and "    fix: declare a role assignment of AcrPull to " in out
    assert "    see: https://learn.microsoft.com/" in out
    assert "assignmentsConsidered" not in out  # too long for a terminal; JSON keeps it
    assert out.rstrip().endswith("1 finding in 1 file")


def test_text_for_a_clean_run_says_so() -> None:
    assert text(_result(registry(), identity(), assignment(), group())).strip() == (
        "0 findings in 1 file: nothing here would fail to pull")


def test_the_json_document_validates_against_its_published_schema(tmp_path: Path) -> None:
    schema = json.loads((ROOT / "schemas" / "preflight.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    unresolved = ("properties.imageRegistryCredentials[0].server: acr.properties.loginServer",)
    doc = document(_result(registry(), identity(), group(after=()),
                           group("quiet", credential={"identity": identity().resource_id}, unresolved=unresolved),
                           group("old", api_version="2019-12-01", credential={"identity": identity().resource_id,
                                                                              "username": "u"})))
    validator.validate(doc)
    assert doc["schemaVersion"] == 1 and {f["code"] for f in doc["findings"]} >= {
        "ACR_PULL_PERMISSION_MISSING", "ACI_API_VERSION_TOO_OLD", "ACI_CREDENTIAL_AMBIGUOUS"}
    assert any(f["proposal"] and f["proposal"]["changes"] for f in doc["findings"])
    assert doc["notes"] and all(n["file"] == FILE for n in doc["notes"])
    broken = dict(doc, findings=[{**doc["findings"][0], "line": 0}])
    assert list(validator.iter_errors(broken))


def test_the_command_writes_json_to_the_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "preflight.json"
    assert main(["preflight", str(FIXTURES), "--format", "json", "--output", str(out)]) == 1
    assert capsys.readouterr().out == ""
    doc = json.loads(out.read_text())
    assert len(doc["files"]) == len(list(FIXTURES.glob("*.yaml")) + list(FIXTURES.glob("*.json"))) - 1


def test_a_delegated_subnet_declared_as_a_child_resource_counts_too() -> None:
    delegation = {"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}
    subnet = declared("Microsoft.Network/virtualNetworks/subnets", "aci-vnet/aci", 31,
                      {"properties": {"delegations": [delegation]}})
    _, endpoint = _network("aci")
    assert codes(registry(), subnet, endpoint) == ["ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET"]
    # a subnet the input does not declare is unknown
    assert codes(registry(), endpoint) == []


def test_the_loaders_notes_are_the_outputs_notes() -> None:
    outcome = check_definitions(Definitions(FILE, "bicep", (group(),), notes=("module ./m.bicep: not read",)))
    assert [(n.message, n.location) for n in outcome.notes] == [("module ./m.bicep: not read", Location(FILE))]


def test_an_identity_that_exists_already_is_known_by_its_declared_principal() -> None:
    existing = declared(IDENTITY, "pull", 8, {"properties": {"principalId": "6c1d2f9e-8a4b-4c7d-b2e1-0f3a9d5c7e21"}})
    grant = assignment(principal="6c1d2f9e-8a4b-4c7d-b2e1-0f3a9d5c7e21")
    assert codes(registry(), existing, grant, group(after=(grant.key,))) == []
    assert codes(registry(), existing, group(after=())) == ["ACR_PULL_PERMISSION_MISSING"]


def test_a_custom_role_the_file_declares_is_read() -> None:
    custom = declared("Microsoft.Authorization/roleDefinitions", "a3f6c0de-0000-4000-8000-00000000c0de", 5,
                      {"properties": {"roleName": "Image puller", "type": "CustomRole", "permissions": [
                          {"actions": ["Microsoft.ContainerRegistry/registries/pull/read"]}]}})
    grant = assignment(role=custom.resource_id or "")
    assert codes(registry(), identity(), custom, grant, group(after=(grant.key,))) == []
    # a custom role's wildcard counts for ACR only in tenants with ARM private link (off by default)
    wildcard = Declared(**{**custom.__dict__, "body": {"properties": {"roleName": "Any", "permissions": [
        {"actions": ["Microsoft.ContainerRegistry/registries/*"]}]}}})
    assert codes(registry(), identity(), wildcard, grant, group(after=(grant.key,))) == ["ACR_PULL_PERMISSION_MISSING"]


def test_the_command_reads_an_arm_template_with_comments(tmp_path: Path) -> None:
    # the CLI deploys ARM's extended JSON, so the command must tell such a file is a template
    template = tmp_path / "commented.json"
    template.write_text(
        '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",\n'
        ' // a comment json.loads refuses\n'
        ' "contentVersion": "1.0.0.0", "resources": [{"type": "Microsoft.ContainerInstance/containerGroups",\n'
        '  "apiVersion": "2019-12-01", "name": "old", "location": "eastus",\n'
        '  "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/s/resourceGroups/g/'
        'providers/Microsoft.ManagedIdentity/userAssignedIdentities/id": {}}},\n'
        '  "properties": {"osType": "Linux", "containers": [{"name": "c",\n'
        '   "properties": {"image": "myacr.azurecr.io/app:v1",\n'
        '   "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}],\n'
        '   "imageRegistryCredentials": [{"server": "myacr.azurecr.io", "identity": "/subscriptions/s/resourceGroups/g/'
        'providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"}]}}]}\n')
    out = tmp_path / "out.json"
    assert main(["preflight", str(template), "--format", "json", "--output", str(out)]) == 1
    assert [f["code"] for f in json.loads(out.read_text())["findings"]] == ["ACI_API_VERSION_TOO_OLD"]


def test_a_note_names_its_file_once(tmp_path: Path) -> None:
    (tmp_path / "main.parameters.json").write_text(
        '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"}')
    (tmp_path / "loop.bicep").write_text(
        "param names array\n"
        "resource ids 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for n in names: {\n"
        "  name: n\n  location: 'eastus'\n}]\n")
    out = tmp_path / "out.json"
    assert main(["preflight", str(tmp_path), "--format", "json", "--output", str(out)]) == 0
    notes = json.loads(out.read_text())["notes"]
    assert {Path(n["file"]).name for n in notes} == {"main.parameters.json", "loop.bicep"}
    assert all(n["file"] not in n["message"] for n in notes), notes


def test_people_read_a_principal_stand_in_as_the_id_azure_gives_on_deployment(tmp_path: Path) -> None:
    path = ROOT / "tests" / "preflight_fixtures" / "bicep" / "acr_pull_missing.bicep"
    out = tmp_path / "out.json"
    assert main(["preflight", str(path), "--format", "json", "--output", str(out)]) == 1
    (finding,) = json.loads(out.read_text())["findings"]
    assert finding["evidence"]["principalId"].startswith("principalId(")  # machines keep the stand-in
    said = subprocess.run([sys.executable, "-m", "remediation", "preflight", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT).stdout
    assert "principalId(" not in said and "<id-aci-pull's id, once deployed>" in said

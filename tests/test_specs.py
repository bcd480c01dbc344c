"""The sandbox pinned to Azure's REST specs (``tests/specs/``, subsets of Azure/azure-rest-api-specs).

1. Every answer the sandbox gives while the bundled scenarios run is validated against its
   operation's response schema (status code → schema, ``$ref``, ``allOf``, ``discriminator``).
2. Each kept operation's x-ms-examples are replayed against a sandbox holding the resources they
   need: the status must be one the example lists, and the body must validate and carry the
   example's property names.
3. The sandbox details that are not schema shapes (api-versions, Activity Log errors, retention and
   ``$filter`` forms, localized texts, echoes, Event Grid topics, an unrestricted app), each against
   what the spec or the doc says.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from jsonschema import Draft4Validator, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

import sandbox
from remediation.azure.clients import AzureClients
from remediation.azure.gather import Gatherer, GatherOptions
from remediation.model import FailureSignal
from remediation.signal import parse_event, signal_for_resource
from sandbox import USER_PRINCIPAL, Sandbox, load_scenario
from sandbox.eventgrid import build_event, dispatcher
from sandbox.server import Request, Response
from sandbox.surfaces.registry_data import UNNAMED_REMEDIATOR
from sandbox.world import ActivityEntry, iso, parse_iso
from tests import sdk
from tests.worlds import (
    GROUP_ID,
    IDENTITY_PRINCIPAL,
    LOGIN_SERVER,
    REGISTRY_ID,
    REMEDIATOR,
    RG,
    RG_ID,
    SUB,
    assignment,
    failed_event,
    group_body,
    identity,
    registry,
    world,
)

SPECS = Path(__file__).parent / "specs"
MANIFEST = json.loads((SPECS / "manifest.json").read_text())
SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.json"))
BASE_URI = "https://github.com/Azure/azure-rest-api-specs/blob/main/"
ACR_PULL_GUID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"


# --- the specs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    """One kept operation of a spec subset."""

    spec: str  # the file's path in the repository
    method: str
    template: str
    api_version: str
    operation_id: str
    regex: re.Pattern[str]
    responses: dict[str, Any]
    examples: dict[str, str]  # example name → the example file's path in the repository


# Path parameters that span segments (``x-ms-skip-url-encoding``), as their descriptions define them.
_SPANNING = {
    "scope": ".+",
    "roleId": r"(?:subscriptions/[^/]+/)?providers/Microsoft\.Authorization/roleDefinitions/[^/]+",
}


def _regex(template: str) -> re.Pattern[str]:
    """A path template (``x-ms-paths`` keys lose their ``?…`` disambiguator) as a regex."""
    out = ""
    for piece in re.split(r"(\{[^}]+\})", template.split("?")[0]):
        if piece.startswith("{"):
            out += f"({_SPANNING.get(piece[1:-1], '[^/]+')})"
        else:
            out += re.escape(piece)
    return re.compile("^" + out + "/?$", re.IGNORECASE)


def _load_specs() -> tuple[Registry[Any], list[Operation]]:
    registry: Registry[Any] = Registry()
    operations: list[Operation] = []
    for entry in MANIFEST["files"]:
        path = entry["path"]
        doc = json.loads((SPECS / path).read_text())
        registry = registry.with_resource(BASE_URI + path, Resource(contents=doc, specification=DRAFT4))
        version = doc.get("info", {}).get("version", "")
        # x-ms-paths first: they exist to tell apart paths that "paths" alone would confuse
        for paths in (doc.get("x-ms-paths") or {}, doc.get("paths") or {}):
            for template, methods in paths.items():
                for method, op in methods.items():
                    if not isinstance(op, dict) or "responses" not in op:
                        continue
                    examples = {name: str(Path(path).parent / ref["$ref"]).replace("\\", "/")
                                for name, ref in (op.get("x-ms-examples") or {}).items()}
                    operations.append(Operation(path, method.upper(), template, version, op["operationId"],
                                                _regex(template), op["responses"], examples))
    return registry, operations


REGISTRY, OPERATIONS = _load_specs()


def _discriminator(validator: Any, property_name: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """Swagger 2.0 ``discriminator``: also validate the instance against the definition that derives
    from this one (``allOf``) and names the instance's value (``x-ms-discriminator-value``, else its
    name); the base's own keywords are checked by the validator already."""
    if not isinstance(instance, dict) or property_name not in instance:
        return
    for name, candidate in validator._resolver.lookup("#/definitions").contents.items():
        if candidate.get("x-ms-discriminator-value", name) != instance[property_name]:
            continue
        parts = candidate.get("allOf", [])
        own = [p for p in parts if not ("$ref" in p and validator._resolver.lookup(p["$ref"]).contents is schema)]
        if len(own) < len(parts):  # it derives from this definition
            yield from validator.descend(instance, {**candidate, "allOf": own} if own else
                                         {k: v for k, v in candidate.items() if k != "allOf"})
            return


SwaggerValidator = validators.extend(Draft4Validator, {"discriminator": _discriminator})


def _without_nulls(value: Any) -> Any:
    """``value`` with null-valued properties left out. Azure's RPs send ``null`` for unset optional
    properties (role assignments' ``condition``, ``createdBy``, ...) and autorest clients read it as
    absent; a null *required* property is then missing, and still fails."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def response_errors(operation: Operation, status: int, body: Any) -> list[str]:
    """Why ``body`` is not what ``operation`` answers with ``status`` (empty: it is)."""
    declared = operation.responses.get(str(status))
    if declared is None:
        if status < 400 or "default" not in operation.responses:
            return [f"{operation.operation_id} does not answer {status}"]
        declared = operation.responses["default"]
    schema = declared.get("schema")
    if schema is None:
        return [] if body in (None, b"", "") else [f"{operation.operation_id} {status} has no body in the spec"]
    root = {"$ref": BASE_URI + operation.spec + "#"}
    validator = SwaggerValidator(root, registry=REGISTRY)
    resolver = validator._resolver.lookup(root["$ref"]).resolver
    bound = SwaggerValidator(schema, registry=REGISTRY, _resolver=resolver)
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in bound.iter_errors(_without_nulls(body))]


def _merged(schema: dict[str, Any], resolver: Any) -> tuple[dict[str, tuple[Any, Any]], Any, bool]:
    """The properties ``schema`` declares (through ``$ref`` and ``allOf``), each with the resolver
    its schema resolves against; its ``additionalProperties``; whether it declares any shape."""
    while "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    props = {k: (v, resolver) for k, v in (schema.get("properties") or {}).items()}
    additional = (schema["additionalProperties"], resolver) if "additionalProperties" in schema else None
    shaped = "properties" in schema or "additionalProperties" in schema
    for part in schema.get("allOf") or []:
        more, extra, part_shaped = _merged(part, resolver)
        props.update(more)
        additional = additional or extra
        shaped = shaped or part_shaped
    return props, additional, shaped


def undeclared(operation: Operation, status: int, body: Any) -> list[str]:
    """The properties of ``body`` that its schema does not declare: ARM returns only what the
    resource type defines, so any other one is the sandbox echoing or inventing."""
    declared = operation.responses.get(str(status)) or operation.responses.get("default") or {}
    if "schema" not in declared:
        return []
    resolver = REGISTRY.resolver(BASE_URI + operation.spec)
    found: list[str] = []

    def walk(value: Any, schema: Any, res: Any, path: str) -> None:
        if not isinstance(schema, dict):
            return
        if isinstance(value, list):
            while "$ref" in schema:
                got = res.lookup(schema["$ref"])
                schema, res = got.contents, got.resolver
            for item in value:
                walk(item, schema.get("items"), res, f"{path}[]")
            return
        if not isinstance(value, dict):
            return
        props, additional, shaped = _merged(schema, res)
        for key, inner in value.items():
            if key in props:
                walk(inner, props[key][0], props[key][1], f"{path}/{key}")
            elif isinstance(additional, tuple) and isinstance(additional[0], dict):
                walk(inner, additional[0], additional[1], f"{path}/{key}")
            elif shaped and additional is None:
                found.append(f"{path}/{key}")

    walk(_without_nulls(body), declared["schema"], resolver, "")
    return found


def operation_for(method: str, path: str, api_version: str) -> Operation | None:
    """The kept operation a request calls (same method, path and api-version), if any."""
    for op in OPERATIONS:
        if op.method == method and op.api_version == api_version and op.regex.match(path):
            return op
    return None


# --- the validator itself ------------------------------------------------------------------------

GROUP_GET = next(op for op in OPERATIONS if op.operation_id == "ContainerGroups_Get")
GROUP_LIST = next(op for op in OPERATIONS if op.operation_id == "ContainerGroups_List")
ACTIVITY_LIST = next(op for op in OPERATIONS if op.operation_id == "ActivityLogs_List")


def _example(op: Operation) -> dict[str, Any]:
    """The operation's (first) stored example; its placeholder subscription ``subid`` (the sandbox
    wants GUIDs) reads as the test world's."""
    text = (SPECS / next(iter(op.examples.values()))).read_text()
    return dict(json.loads(text.replace('"subid"', f'"{SUB}"').replace("/subid/", f"/{SUB}/")))


def _example_group() -> dict[str, Any]:
    """A container group as the spec's list example shows it."""
    return dict(_example(GROUP_LIST)["responses"]["200"]["body"]["value"][0])


def test_every_manifest_file_is_a_swagger_subset_with_its_source():
    for entry in MANIFEST["files"]:
        assert entry["repository"] == "Azure/azure-rest-api-specs" and re.fullmatch(r"[0-9a-f]{40}", entry["commit"])
        doc = json.loads((SPECS / entry["path"]).read_text())
        assert doc["swagger"] == "2.0"
        kept = {op.operation_id for op in OPERATIONS if op.spec == entry["path"]}
        assert kept == set(entry["operations"]), entry["path"]


def test_a_spec_example_validates():
    assert response_errors(GROUP_GET, 200, _example_group()) == []


def test_a_renamed_required_property_fails_validation():
    body = _example_group()
    body["props"] = body.pop("properties")
    assert any("'properties' is a required property" in e for e in response_errors(GROUP_GET, 200, body))
    records = _example(ACTIVITY_LIST)["responses"]["200"]["body"]
    records["values"] = records.pop("value")
    assert response_errors(ACTIVITY_LIST, 200, records)


def test_a_wrong_type_deep_in_a_ref_fails_validation():
    body = _example_group()
    body["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] = "one"
    assert any("'one' is not of type 'number'" in e for e in response_errors(GROUP_GET, 200, body))


def test_an_undeclared_status_fails_validation():
    assert response_errors(GROUP_GET, 202, {}) == ["ContainerGroups_Get does not answer 202"]


def test_discriminator_picks_the_derived_definition():
    doc = {"definitions": {
        "Animal": {"type": "object", "discriminator": "kind", "required": ["kind"],
                   "properties": {"kind": {"type": "string"}}},
        "Cat": {"x-ms-discriminator-value": "cat", "allOf": [{"$ref": "#/definitions/Animal"}],
                "required": ["lives"], "properties": {"lives": {"type": "integer"}}}}}
    validator = SwaggerValidator({"$ref": "#/definitions/Animal", **doc})
    assert not list(validator.iter_errors({"kind": "cat", "lives": 9}))
    assert list(validator.iter_errors({"kind": "cat", "lives": "nine"}))
    assert not list(validator.iter_errors({"kind": "dog"}))  # no derived definition: the base alone


# --- 1. every answer of the bundled scenarios ------------------------------------------------------

# Properties Azure sends that the kept spec does not define: Activity Log records carry ``channels``
# ("Operation" for administrative events; MicrosoftDocs/azure-docs,
# articles/azure-monitor/essentials/activity-log-schema.md, sample events), absent from 2015-04-01's EventData.
AZURE_SENDS_UNDECLARED = {("ActivityLogs_List", "/value[]/channels")}


@dataclass
class Observed:
    checked: list[tuple[str, str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __call__(self, req: Request, resp: Response) -> None:
        op = operation_for(req.method, req.path, req.api_version)
        if op is None:
            return
        body = resp.body if not isinstance(resp.body, (bytes, bytearray)) else json.loads(resp.body or b"null")
        self.checked.append((op.operation_id, req.api_version, resp.status))
        self.errors += [f"{req.method} {req.path} {resp.status}: {e}" for e in response_errors(op, resp.status, body)]
        self.errors += [f"{req.method} {req.path} {resp.status}: {p} is not in the spec"
                        for p in undeclared(op, resp.status, body)
                        if (op.operation_id, p) not in AZURE_SENDS_UNDECLARED]


def test_every_sandbox_answer_in_the_bundled_scenarios_matches_its_spec(monkeypatch):
    from remediation import demo

    observed = Observed()

    class ObservedSandbox(Sandbox):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.world.response_observers.append(observed)

    monkeypatch.setattr(sandbox, "Sandbox", ObservedSandbox)
    for path in SCENARIOS:
        demo.run(path, virtual_clock=True)
    assert observed.errors == []
    seen = {op for op, _, _ in observed.checked}
    # the operations the product relies on were all seen, so the check cannot pass by seeing nothing
    assert {"ContainerGroups_CreateOrUpdate", "ContainerGroups_Get", "ActivityLogs_List",
            "RoleAssignments_ListForScope", "RoleAssignments_Create", "RoleDefinitions_GetById",
            "UserAssignedIdentities_Get", "Registries_List", "Registries_Get",
            "Registries_Update", "Deployments_CreateOrUpdate", "Deployments_ListByResourceGroup",
            "DeploymentOperations_List", "Deployments_ExportTemplate"} <= seen


# --- 2. x-ms-examples replayed ---------------------------------------------------------------------

def _placeholders(example: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in example["parameters"].items() if isinstance(v, (str, int))}


def _names(value: Any, prefix: str = "") -> set[str]:
    """Every property path in a JSON value (array items under ``[]``), for comparing shapes."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            out.add(prefix + key)
            out |= _names(inner, f"{prefix}{key}.")
    elif isinstance(value, list):
        for inner in value:
            out |= _names(inner, f"{prefix}[].")
    return out


def _request(sb: Sandbox, method: str, path: str, query: dict[str, str], body: Any = None,
             principal: str = USER_PRINCIPAL) -> tuple[int, Any]:
    token = sb.credential(principal).get_token("https://management.azure.com/.default").token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{sb.arm_endpoint}{quote(path)}?{urlencode(query)}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=sb.ca_bundle)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # nosec B310 # the local sandbox
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def _group_of(resource_id: str) -> dict[str, Any]:
    rg_id = "/".join(resource_id.split("/")[:5])
    return {"id": rg_id, "name": rg_id.rsplit("/", 1)[-1], "type": "Microsoft.Resources/resourceGroups",
            "location": "eastus", "properties": {"provisioningState": "Succeeded"}}


@dataclass(frozen=True)
class Replay:
    """An x-ms-example sent to a sandbox that holds what it needs."""

    operation_id: str
    method: str
    path: str
    resources: tuple[dict[str, Any], ...] = ()
    body: Any = None
    query: tuple[tuple[str, str], ...] = ()
    ignore: frozenset[str] = frozenset()
    """Example property names the sandbox does not model (each says why where it is given)."""
    subscriptions: tuple[str, ...] = (SUB,)
    clock: str | None = None


def _replays() -> list[Replay]:
    ops = {op.operation_id: op for op in OPERATIONS}
    listed = _example(ops["ContainerGroups_List"])["responses"]["200"]["body"]["value"][0]
    confidential = _example(ops["ContainerGroups_CreateOrUpdate"])["parameters"]
    created = _example(ops["RoleAssignments_Create"])["parameters"]
    scoped = _example(ops["RoleAssignments_ListForScope"])
    identity_body = _example(ops["UserAssignedIdentities_Get"])["responses"]["200"]["body"]
    activity = _example(ops["ActivityLogs_List"])
    acr_pull = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL_GUID}"
    confidential_id = (f"/subscriptions/{confidential['subscriptionId']}/resourceGroups/"
                       f"{confidential['resourceGroupName']}/providers/Microsoft.ContainerInstance/containerGroups/"
                       f"{confidential['containerGroupName']}")
    registry_get = _example(ops["Registries_Get"])["responses"]["200"]["body"]
    abac = _example(ops["Registries_Create"])["parameters"]
    abac_id = (f"/subscriptions/{abac['subscriptionId']}/resourceGroups/{abac['resourceGroupName']}/providers/"
               f"Microsoft.ContainerRegistry/registries/{abac['registryName']}")
    update = _example(ops["Registries_Update"])["parameters"]
    return [
        Replay("Registries_Get", "GET", registry_get["id"], (_group_of(registry_get["id"]), registry_get),
               subscriptions=(registry_get["id"].split("/")[2],)),
        Replay("Registries_Create", "PUT", abac_id, (_group_of(abac_id),), body=abac["registry"],
               subscriptions=(abac["subscriptionId"],)),
        Replay("Registries_Update", "PATCH", abac_id, (_group_of(abac_id), {**registry_get, "id": abac_id}),
               body=update["registryUpdateParameters"], subscriptions=(abac["subscriptionId"],)),
        Replay("ContainerGroups_List", "GET",
               f"/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/containerGroups",
               (_group_of(listed["id"]), listed)),
        Replay("ContainerGroups_CreateOrUpdate", "PUT", confidential_id, (_group_of(confidential_id),),
               body=confidential["containerGroup"],
               # the example's request misspells it "priviliged" (not echoed: the spec has no such
               # property); its response shows the service's default, which the sandbox does not fill
               ignore=frozenset({"properties.containers.[].properties.securityContext.privileged"})),
        Replay("ActivityLogs_List", "GET", f"/subscriptions/{activity['parameters']['subscriptionId']}/providers/"
               "Microsoft.Insights/eventtypes/management/values",
               query=(("$filter", activity["parameters"]["$filter"]),),
               subscriptions=(activity["parameters"]["subscriptionId"],), clock="2015-01-24T00:00:00Z",
               # the example's nextLink is a placeholder; one record fits in the sandbox's first page
               ignore=frozenset({"nextLink"})),
        # the example's role (0b5fe924-…) is not one the sandbox knows: AcrPull stands in (names, not values)
        Replay("RoleAssignments_Create", "PUT", f"/{created['scope']}/providers/Microsoft.Authorization/"
               f"roleAssignments/{created['roleAssignmentName']}",
               (_group_of("/" + created["scope"]), {"id": "/" + created["scope"], "name": "test-db-account",
                                                    "type": "Microsoft.DocumentDb/databaseAccounts",
                                                    "location": "eastus", "properties": {}}),
               body={"properties": {**created["parameters"]["properties"],
                                    "roleDefinitionId": acr_pull.replace(SUB, created["scope"].split("/")[1])}},
               subscriptions=(created["scope"].split("/")[1],)),
        Replay("RoleAssignments_ListForScope", "GET", f"/{scoped['parameters']['scope']}/providers/"
               "Microsoft.Authorization/roleAssignments", tuple(scoped["responses"]["200"]["body"]["value"]),
               subscriptions=(scoped["parameters"]["scope"].split("/")[1],)),
        # the example's roleId is a placeholder ("roleDefinitionId"): a built-in role's id is asked instead
        Replay("RoleDefinitions_GetById", "GET", acr_pull),
        Replay("UserAssignedIdentities_Get", "GET", identity_body["id"],
               (_group_of(identity_body["id"]), identity_body)),
    ]


REPLAYS = _replays()


def test_every_kept_operation_with_an_example_is_replayed():
    with_examples = {op.operation_id for op in OPERATIONS if op.examples}
    assert with_examples == {r.operation_id for r in REPLAYS}


@pytest.mark.parametrize("replay", REPLAYS, ids=[r.operation_id for r in REPLAYS])
def test_x_ms_example_replays(make_sandbox, replay: Replay):
    op = next(o for o in OPERATIONS if o.operation_id == replay.operation_id)
    example = _example(op)
    scenario = world(resources=[], subscriptions=list(replay.subscriptions))
    sb = make_sandbox(scenario)
    if replay.clock:
        sb.world.advance(parse_iso(replay.clock) - sb.world.now())
    with sb.world.lock:
        for resource in replay.resources:
            sb.world.put(json.loads(json.dumps(resource)))
    if replay.operation_id == "ActivityLogs_List":
        record = example["responses"]["200"]["body"]["value"][0]
        sb.world.activity.append(ActivityEntry(float("-inf"), record))
    status, body = _request(sb, replay.method, replay.path, {"api-version": op.api_version, **dict(replay.query)},
                            replay.body)
    assert str(status) in example["responses"], (status, body)
    assert op.regex.match(replay.path)
    assert response_errors(op, status, body) == []
    assert undeclared(op, status, body) == []
    expected = _names(example["responses"][str(status)].get("body"))
    missing = expected - _names(body) - replay.ignore
    assert not missing, f"the sandbox's answer lacks the example's {sorted(missing)}"


def test_the_subsetting_script_keeps_what_the_checked_in_subsets_keep(tmp_path):
    """The refresh script, run on the subsets as if they were the full specs, reproduces them: the
    checked-in files follow its rules (no definition that nothing reaches, no documentation)."""
    spec = importlib.util.spec_from_file_location("subset", SPECS / "subset.py")
    assert spec and spec.loader
    subset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(subset)
    subset.subset_all(SPECS, tmp_path, MANIFEST)
    for entry in MANIFEST["files"]:
        assert json.loads((tmp_path / entry["path"]).read_text()) == json.loads((SPECS / entry["path"]).read_text())
        for example in entry["examples"]:
            folder = Path(entry["path"]).parent
            assert (tmp_path / folder / example).read_bytes() == (SPECS / folder / example).read_bytes()


# --- 3. sandbox details ----------------------------------------------------------------------------

ACTIVITY_PATH = f"/subscriptions/{SUB}/providers/Microsoft.Insights/eventtypes/management/values"


def _pulling_world() -> dict[str, Any]:
    """The test world where the group's identity may pull, so a group PUT succeeds."""
    return world(resources=[registry(), identity(), assignment(REGISTRY_ID, ACR_PULL_GUID)])


def _since(sb: Sandbox, days: float = 1) -> str:
    return f"eventTimestamp ge '{iso(sb.world.now() - days * 86400)}'"


def test_unknown_api_version_answers_no_registered_provider_found(make_sandbox):
    sb = make_sandbox(world())
    client = ContainerInstanceManagementClient(sb.credential(USER_PRINCIPAL), SUB, api_version="2099-01-01",
                                               base_url=sb.arm_endpoint, connection_verify=sb.ca_bundle)
    with pytest.raises(HttpResponseError) as info:
        client.container_groups.get(RG, "acrtestcontainergroup")
    assert info.value.status_code == 400 and info.value.error.code == "NoRegisteredProviderFound"
    message = info.value.error.message
    assert message.startswith("No registered resource provider found for location 'global' and API version "
                              "'2099-01-01' for type 'containerGroups'. The supported api-versions are '")
    assert "2021-03-01" in message and "2023-05-01" in message
    # a registry the world holds names its location; a listed version is served
    status, body = _request(sb, "GET", REGISTRY_ID, {"api-version": "2016-01-01"})
    assert status == 400 and "for location 'eastus'" in body["error"]["message"]
    assert _request(sb, "GET", REGISTRY_ID, {"api-version": "2025-11-01"})[0] == 200


def test_activity_log_errors_are_flat_and_the_sdk_reads_them(make_sandbox):
    sb = make_sandbox(world())
    status, body = _request(sb, "GET", ACTIVITY_PATH, {"api-version": "2015-04-01", "$filter": "status eq 'x'"})
    assert status == 400 and set(body) == {"code", "message"} and body["code"] == "BadRequest"
    assert response_errors(ACTIVITY_LIST, status, body) == []
    with pytest.raises(HttpResponseError) as info:
        list(sdk.monitor(sb).activity_logs.list(filter="status eq 'x'"))
    assert info.value.error.code == "BadRequest" and "$filter" in info.value.error.message


def test_the_product_notes_an_activity_log_refusal_and_goes_on():
    """A replay of a failure older than the Activity Log keeps: the flat 400 becomes a note."""
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        signal = parse_event(failed_event(sb, scenario))
        assert isinstance(signal, FailureSignal)
        old = dataclasses.replace(signal, event_time=iso(sb.world.now() - 120 * 86400))
        clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                               registry_endpoint_template=f"{sb.arm_endpoint}/registries/{{loginServer}}")
        gatherer = Gatherer(clients, GatherOptions(subscriptions=(SUB,), activity_log_wait_seconds=0))
        try:
            ctx = gatherer.gather(old)
        finally:
            gatherer.close()
            clients.close()
    refused = [n for n in ctx.notes if n.startswith("Activity Log could not be read")]
    assert refused and "90 days" in refused[0] and "BadRequest" in refused[0]
    # the gathering went on to choose a definition from what was left
    assert any("no definition of the attempted container group could be recovered" in n for n in ctx.notes)


def test_a_start_time_older_than_the_90_days_kept_is_refused(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.monitor(sb)
    assert list(client.activity_logs.list(filter=_since(sb, 89.9))) is not None
    with pytest.raises(HttpResponseError) as info:
        list(client.activity_logs.list(filter=_since(sb, 90.1)))
    assert info.value.status_code == 400 and "90 days" in info.value.error.message


@pytest.mark.parametrize("clause", ["status eq 'Failed'", "levels eq 'Error'", "resourceId eq '/x'",
                                    "eventChannels eq 'Admin'", "caller eq 'me'",
                                    "resourceGroupName eq 'a' and correlationId eq 'b'",
                                    "eventTimestamp le '2030-01-01T00:00:00Z' and "
                                    "eventTimestamp le '2031-01-01T00:00:00Z'"])
def test_only_the_documented_filter_forms_are_accepted(make_sandbox, clause):
    sb = make_sandbox(world())
    with pytest.raises(HttpResponseError) as info:
        list(sdk.monitor(sb).activity_logs.list(filter=f"{_since(sb)} and {clause}"))
    assert info.value.status_code == 400


@pytest.mark.parametrize("clause", ["", " and eventTimestamp le '2099-01-01T00:00:00Z'",
                                    f" and resourceGroupName eq '{RG}'", f" and resourceUri eq '{GROUP_ID}'",
                                    " and resourceProvider eq 'Microsoft.ContainerInstance'",
                                    " and correlationId eq 'c'"])
def test_each_documented_filter_form_is_accepted(make_sandbox, clause):
    sb = make_sandbox(world())
    assert isinstance(list(sdk.monitor(sb).activity_logs.list(filter=_since(sb) + clause)), list)


def test_localized_values_are_azure_display_texts(make_sandbox):
    sb = make_sandbox(_pulling_world())
    sdk.aci(sb).container_groups.begin_create_or_update(RG, "acrtestcontainergroup", group_body()).result()
    records = list(sdk.monitor(sb).activity_logs.list(filter=f"{_since(sb)} and resourceUri eq '{GROUP_ID}'"))
    end = next(r for r in records if r.event_name.value == "EndRequest")
    assert end.operation_name.value == "Microsoft.ContainerInstance/containerGroups/write"
    assert end.operation_name.localized_value == "Create or Update Container Group"
    assert end.event_name.localized_value == "End request"
    assert end.status.value == end.status.localized_value == "Succeeded"
    start = next(r for r in records if r.event_name.value == "BeginRequest")
    assert start.event_name.localized_value == "Begin request"
    _, body = _request(sb, "GET", ACTIVITY_PATH, {"api-version": "2015-04-01", "$filter": _since(sb)})
    sub_statuses = {r["subStatus"]["value"]: r["subStatus"]["localizedValue"] for r in body["value"]
                    if r["subStatus"]["value"]}
    assert sub_statuses and all(v.endswith(")") and "(HTTP Status Code: " in v for v in sub_statuses.values())


def test_properties_the_spec_does_not_define_are_not_echoed(make_sandbox):
    sb = make_sandbox(_pulling_world())
    body = group_body()
    body["properties"]["madeUp"] = "x"
    body["properties"]["containers"][0]["properties"]["madeUpToo"] = 1
    body["properties"]["containers"][0]["properties"]["securityContext"] = {"priviliged": True, "runAsUser": 1000}
    body["properties"]["imageRegistryCredentials"][0]["madeUpThree"] = True
    path = f"{RG_ID}/providers/Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup"
    put_status, created = _request(sb, "PUT", path, {"api-version": "2023-05-01"}, body)
    _, read = _request(sb, "GET", path, {"api-version": "2023-05-01"})
    for answer in (created, read):
        names = _names(answer)
        assert not {n for n in names if "madeUp" in n or "priviliged" in n}, names
        assert "properties.containers.[].properties.securityContext.runAsUser" in names
        assert undeclared(GROUP_GET, 200, answer) == []
    assert put_status in (200, 201)


def test_registry_writes_keep_only_defined_properties(make_sandbox):
    """Regression guard: the registry surface already stores only the properties it models."""
    sb = make_sandbox(world(resources=[registry(), identity()]))
    status, body = _request(sb, "PATCH", REGISTRY_ID, {"api-version": "2025-11-01"},
                            {"madeUp": 1, "properties": {"madeUpToo": 2, "networkRuleBypassOptions": "None"}})
    assert status in (200, 201) and "madeUp" not in body and "madeUpToo" not in body["properties"]
    assert body["properties"]["networkRuleBypassOptions"] == "None"


def test_the_subscription_system_topic_is_the_subscription(make_sandbox):
    sb = make_sandbox(_pulling_world())
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    cloud: list[dict[str, Any]] = []
    sb.subscribe(cloud.append, schema="CloudEventSchemaV1_0")
    sdk.aci(sb).container_groups.begin_create_or_update(RG, "acrtestcontainergroup", group_body()).result()
    dispatcher(sb.world).wait_idle()
    assert got and {e["topic"] for e in got} == {f"/subscriptions/{SUB}"}
    assert cloud and {e["source"] for e in cloud} == {f"/subscriptions/{SUB}"}
    grouped = build_event(sb.world, event_type="Microsoft.Resources.ResourceWriteSuccess", resource_id=GROUP_ID,
                          operation_name="Microsoft.ContainerInstance/containerGroups/write", status="Succeeded",
                          correlation_id="c", claims={}, topic_scope="resourceGroup")
    assert grouped["topic"] == RG_ID  # a resource group system topic names its group


def test_an_app_without_a_named_remediator_may_read_every_registry(make_sandbox):
    sb = make_sandbox(world())  # no remediator, and no role assignment at all
    app = sdk.registry_data(sb, LOGIN_SERVER, UNNAMED_REMEDIATOR)
    assert app.get_tag_properties("pythonworker", "v1").name == "v1"
    with pytest.raises(HttpResponseError):  # anyone else still needs a role
        sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL).get_tag_properties("pythonworker", "v1")


def test_a_named_remediator_needs_its_roles_on_the_registry(make_sandbox):
    sb = make_sandbox(world(remediator=True))
    with pytest.raises(HttpResponseError):
        sdk.registry_data(sb, LOGIN_SERVER, REMEDIATOR).get_tag_properties("pythonworker", "v1")
    with pytest.raises(HttpResponseError):  # the unnamed app's principal is nobody special then
        sdk.registry_data(sb, LOGIN_SERVER, UNNAMED_REMEDIATOR).get_tag_properties("pythonworker", "v1")


def test_a_sweep_reads_the_activity_log_within_what_it_keeps():
    """A sweep looks back a day short of the 90 days, so the sandbox (like Azure) answers it even when
    its clock runs ahead of the app's."""
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        sb.world.advance(3600)
        clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                               registry_endpoint_template=f"{sb.arm_endpoint}/registries/{{loginServer}}")
        gatherer = Gatherer(clients, GatherOptions(subscriptions=(SUB,), activity_log_wait_seconds=0))
        try:
            ctx = gatherer.gather(signal_for_resource(scenario.failed_write["resourceId"], schema="sweep"))
        finally:
            gatherer.close()
            clients.close()
    assert not [n for n in ctx.notes if "Activity Log could not be read" in n], ctx.notes

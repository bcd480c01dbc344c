"""Property-based tests (hypothesis) of every entry point that reads outside input: the event
parser, ``POST /api/replay``, the definition parser and the scenario loader.

Whatever the input (arbitrary JSON, bytes, and the genuine shapes with fields removed, retyped or
replaced by hostile values), each gives a result or its one-line input error, never another
exception; the replay endpoint answers a report or a one-line 400/413 (never a 500) and never
makes the app write (the sandbox's request log holds no write by the remediator: the world has no
genuine failure, so nothing a caller sends may lead to one).

Examples are derandomized (the ``ci`` profile), so every run, here and in CI, tries the same
1,000 inputs per entry point; ``HYPOTHESIS_PROFILE=explore`` draws new ones.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from remediation.definition import parse_definition, parse_replayed
from remediation.errors import InputError
from remediation.model import FailureSignal, GroupDefinition, Skip
from remediation.redaction import scrub
from remediation.replay_request import MAX_BODY_BYTES, MAX_EVENTS
from remediation.report import find_secrets, validate_report
from remediation.service import Service, set_service
from remediation.signal import MAX_DEPTH, parse_event, parse_events, scrub_event
from sandbox.scenario import Scenario, ScenarioError, bundled_scenarios, parse_scenario
from tests.app import World
from tests.test_signal import as_failure, sample

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("explore", derandomize=False, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
EXAMPLES = settings(max_examples=1000, deadline=None)

ROOT = Path(__file__).resolve().parents[1]
SUB = "00000000-0000-0000-0000-000000000001"
GROUP_ID = (f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.ContainerInstance/"
            "containerGroups/acrtestcontainergroup")
REGISTRY_ID = (f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/"
               "registries/myacr")
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJl"

# --- strategies ---------------------------------------------------------------------------------------

# built at run time, so no webhook-shaped string is tracked (the repository's secret scan would flag it)
SLACK_SHAPED_URL = "https://hooks.slack.com/services/" + "/".join(["T0", "B0", "abcdefgh" + "ijklmnop"])
HOSTILE = st.sampled_from([
    "", " ", "\n", "\r\nERROR forged line", "a\u2028b", "\x00", "\x1b[31m", "ſ", "\u212a", "ｔｒｕｅ", "True ", "on",
    "true", "false", "TRUE", "1", "x" * 300, "$(touch /tmp/pwned)", "`id`", "'; rm -rf ~ #", "../../etc/passwd",
    f"Bearer {JWT}", JWT, SLACK_SHAPED_URL, "not a time",
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.1234567Z", "9999-12-31T23:59:59Z", "1.0", "2", "2023-05-01",
    "Microsoft.Resources.ResourceWriteFailure", "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.ContainerInstance/containerGroups/write", "Microsoft.ContainerInstance/containerGroups/delete",
    GROUP_ID, GROUP_ID.upper(), GROUP_ID + "/", GROUP_ID + "/containers/x", REGISTRY_ID, f"/subscriptions/{SUB}",
    "/subscriptions//resourceGroups/x/providers/Microsoft.ContainerInstance/containerGroups/y",
    f"/subscriptions/{SUB}/resourceGroups/rg;id/providers/Microsoft.ContainerInstance/containerGroups/w$(id)",
    "myacr.azurecr.io/pythonworker:v1", "myacr.azurecr.io/UPPER:tag", "myacr.azurecr.io/x@sha256:abc", ":",
    "InaccessibleImage", "bbbbbbbb-0000-0000-0000-000000000001", "11111111-1111-1111-1111-111111111111",
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20), HOSTILE)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=12)
KEYS = st.one_of(st.sampled_from([
    "id", "eventType", "type", "subject", "eventTime", "time", "data", "dataVersion", "metadataVersion", "topic",
    "specversion", "source", "data_base64", "resourceUri", "operationName", "correlationId", "tenantId", "claims",
    "oid", "tid", "http://schemas.microsoft.com/identity/claims/objectidentifier", "dryRun", "dryrun", "resourceId",
    "definition", "properties", "containers", "image", "imageRegistryCredentials", "identity", "server", "password",
    "userAssignedIdentities", "environmentVariables", "apiVersion", "resources", "subscriptions", "failedWrite",
    "behaviour", "faults", "settings", "expect", "roleDefinitions", "images", "remediator", "name", "deployer",
    "groups",
]), st.text(max_size=6))
VALUES = st.one_of(SCALARS, JSON, st.builds(dict), st.builds(list))  # fresh objects: a later change may fill them


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to four changes anywhere in its tree: a value replaced, a key removed or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        doc = _mutate(draw, doc, 0)
    return doc


def _mutate(draw: st.DrawFn, node: Any, depth: int) -> Any:
    children: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(
        node, list) else []
    if children and depth < 12 and draw(st.integers(min_value=0, max_value=4)) > 0:
        child = draw(st.sampled_from(children))
        change = draw(st.sampled_from(("descend", "descend", "descend", "replace", "delete")))
        if change == "descend":
            node[child] = _mutate(draw, node[child], depth + 1)
        elif change == "replace":
            node[child] = draw(VALUES)
        else:
            del node[child]
        return node
    if isinstance(node, dict) and draw(st.booleans()):
        node[draw(KEYS)] = draw(VALUES)
        return node
    return draw(VALUES)


def eventgrid_event() -> dict[str, Any]:
    return as_failure(sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0],
                      resource_id=GROUP_ID)


def cloud_event() -> dict[str, Any]:
    return as_failure(sample("eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json")[0],
                      resource_id=GROUP_ID)


SCENARIO = json.loads((ROOT / "scenarios" / "missing-acrpull.json").read_text())
DEFINITION = SCENARIO["failedWrite"]["body"]
EVENTS = st.one_of(mutated(eventgrid_event()), mutated(cloud_event()), st.builds(eventgrid_event),
                   st.builds(cloud_event), JSON)


def one_line(message: str) -> bool:
    return bool(message) and message.splitlines() == [message]


# --- the event parser ----------------------------------------------------------------------------------------


@EXAMPLES
@given(EVENTS)
@example({"id": "1", "eventType": "Other", "subject": " ", "eventTime": "2026-01-01T00:00:00Z", "data": {},
          "dataVersion": "1"})  # once a skip without a resource: its report could not be built (a 500)
def test_any_event_parses_to_a_signal_a_skip_or_a_one_line_input_error(payload: Any) -> None:
    try:
        item = parse_event(payload)
    except InputError as exc:
        event("input error")
        assert one_line(str(exc)), str(exc)
        with pytest.raises(InputError):
            parse_events([payload])
        return
    event(type(item).__name__)
    assert isinstance(item, (FailureSignal, Skip))
    assert item.resource_id, "a skipped report needs a resource"
    # the copy a queue keeps holds no token, and reads as the event does where what is read holds none
    kept = scrub_event(payload)
    assert JWT not in json.dumps(kept)
    if scrub(asdict(item)) == asdict(item):
        assert parse_event(kept) == item
    else:
        event("a value read is secret-shaped")
        try:
            parse_event(kept)
        except InputError as exc:
            assert one_line(str(exc)), str(exc)


# --- the definition parser ----------------------------------------------------------------------------------


@EXAMPLES
@given(st.one_of(mutated(DEFINITION), JSON, st.builds(copy.deepcopy, st.just(DEFINITION))))
def test_any_definition_parses_or_is_a_one_line_input_error(body: Any) -> None:
    for parse in (lambda: parse_definition(GROUP_ID, body, None, "activity-log"),
                  lambda: parse_replayed(GROUP_ID, body)):
        try:
            definition = parse()
        except InputError as exc:
            event("input error")
            assert one_line(str(exc)), str(exc)
            continue
        event("definition")
        assert isinstance(definition, GroupDefinition)
        assert all(image.raw for image in definition.images)


# --- the scenario loader -------------------------------------------------------------------------------------


SCENARIOS = [json.loads(path.read_text()) for path in bundled_scenarios()]


@EXAMPLES
@given(st.one_of(st.sampled_from(SCENARIOS).flatmap(mutated), JSON,
                 st.builds(copy.deepcopy, st.sampled_from(SCENARIOS))))
def test_any_scenario_loads_or_is_a_one_line_scenario_error(data: Any) -> None:
    try:
        scenario = parse_scenario(data, "generated.json")
    except ScenarioError as exc:
        event("scenario error")
        assert one_line(str(exc)), str(exc)
        return
    event("scenario")
    assert isinstance(scenario, Scenario)


# --- POST /api/replay ---------------------------------------------------------------------------------------------


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()


VALID_DEFINITION = st.builds(copy.deepcopy, st.just(DEFINITION))
DEFINITIONS = st.one_of(VALID_DEFINITION, mutated(DEFINITION), JSON)
RESOURCE_BODIES = st.fixed_dictionaries(
    {"resourceId": st.one_of(st.just(GROUP_ID), st.just(GROUP_ID), HOSTILE, SCALARS)},
    optional={"dryRun": st.one_of(st.booleans(), HOSTILE, SCALARS), "definition": DEFINITIONS, "force": st.booleans()})
# a readable definition makes the engine diagnose and plan fixes: the gate must still refuse every write
READABLE_RESOURCE_BODIES = st.fixed_dictionaries(
    {"resourceId": st.just(GROUP_ID)},
    optional={"dryRun": st.booleans(),
              "definition": st.one_of(VALID_DEFINITION, VALID_DEFINITION, mutated(DEFINITION))})
GENUINE_EVENTS = st.one_of(st.builds(eventgrid_event), st.builds(cloud_event))
REPLAY_BODIES = st.one_of(
    GENUINE_EVENTS.map(body_of),  # as sent: they reach the engine, and find no failure to remediate
    EVENTS.map(body_of),
    st.lists(EVENTS, min_size=0, max_size=4).map(body_of),
    RESOURCE_BODIES.map(body_of),
    READABLE_RESOURCE_BODIES.map(body_of),
    st.binary(max_size=40),
    st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 3).map(lambda n: b"[" * n + b"]" * n),
    st.just(b"[" * 100_000),
    st.just(b'["' + b"x" * MAX_BODY_BYTES + b'"]'),
    st.just(body_of([{}] * (MAX_EVENTS + 1))),
)
QUERIES = st.dictionaries(st.sampled_from(["dryRun", "dryrun", "DRYRUN", "code", "x"]),
                          st.one_of(st.sampled_from(["true", "false", "TRUE", "False", "on", "1", "", "True "]),
                                    st.text(max_size=5)), max_size=2)


@pytest.fixture
def no_failure(world: World) -> Iterator[World]:
    """The default world with no failed write at all (so no replay may write), and the Activity Log
    not waited for (nothing will appear in it)."""
    old = world.service
    service = Service.assemble(old.settings, old.clients, old.ledger, jobs=old.jobs,
                               gather_options=replace(old.gather_options, activity_log_wait_seconds=0.0),
                               redeploy_options=old.redeploy_options)
    set_service(service)
    world.service = service
    yield world


# one world for all examples, on purpose: what each example leaves in the ledger is part of the next one's input
@settings(EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
@given(body=REPLAY_BODIES, query=QUERIES)
@example(body=b"[" * 100_000, query={})  # once a RecursionError in the JSON decoder (a 500)
@example(body=body_of({"id": "1", "eventType": "Other", "subject": "s", "data": {}}), query={})  # once a 500
@example(body=body_of(eventgrid_event()), query={"dryRun": "on"})  # once ran for real
def test_any_replay_answers_a_report_or_a_one_line_error_and_never_writes(
        no_failure: World, body: bytes, query: dict[str, str]) -> None:
    answer = no_failure.service.replay(body, query=query)
    event(f"HTTP {answer.status}")
    assert answer.status in (200, 202, 400, 413), answer
    if answer.status in (400, 413):
        assert set(answer.body) == {"error"} and one_line(answer.body["error"]), answer.body
    elif answer.status == 202:
        assert answer.body["status"] == f"/api/remediations/{answer.body['id']}"
    else:
        for report in answer.body if isinstance(answer.body, list) else [answer.body]:
            event(f"outcome {report['outcome']}")
            validate_report(report)
            assert find_secrets(report) == []
    assert no_failure.remediator_writes() == []

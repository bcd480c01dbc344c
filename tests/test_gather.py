"""The gatherer against the sandbox: a read that fails becomes a note, in the order of the search,
and the gathering goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from azure.core.exceptions import HttpResponseError

from remediation.azure.clients import AzureClients
from remediation.azure.gather import Gatherer, GatherOptions
from remediation.model import Context, FailureSignal
from remediation.signal import parse_event, signal_for_resource
from sandbox import Sandbox, load_scenario
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
SUB = "00000000-0000-0000-0000-000000000001"
IDENTITY = (f"/subscriptions/{SUB}/resourcegroups/myresourcegroup/providers/microsoft.managedidentity/"
            "userassignedidentities/myacrid")
PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000001"
DEPLOYER = "11111111-1111-1111-1111-111111111111"
GROUP_ID = (f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/Microsoft.ContainerInstance/"
            "containerGroups/acrtestcontainergroup")
FROM_THE_ERROR = ("no definition of the attempted container group could be recovered; diagnosing from the image "
                  "named in the error (myacr.azurecr.io/pythonworker:v1)")


def fault(match: str, status: int = 403, **more: Any) -> dict[str, Any]:
    return {"match": match, "status": status, **more}


def failed(match: str) -> str:
    return f"InjectedFault: Injected fault for '{match}'."


DEPLOYMENTS = "GET */providers/microsoft.resources/deployments"
OPERATIONS = "GET */deployments/*/operations*"
EXPORT = "POST */exporttemplate*"
RESOURCE_GROUP = "GET /subscriptions/*/resourcegroups/myresourcegroup"
GROUP = "GET */microsoft.containerinstance/containergroups/*"
ACTIVITY_LOG = "GET */providers/microsoft.insights/eventtypes/management/values*"
REGISTRIES = "GET */providers/microsoft.containerregistry/registries"
IDENTITIES = "GET */userassignedidentities/*"
ASSIGNMENTS = "GET */roleassignments*"
ROLES = "GET */roledefinitions*"


@pytest.fixture(scope="module")
def failure() -> Iterator[tuple[Sandbox, FailureSignal, AzureClients]]:
    """The failed deployment of definition-from-deployment: its definition is only in the deployment."""
    scenario = load_scenario(ROOT / "scenarios/definition-from-deployment.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        signal = parse_event(event)
        assert isinstance(signal, FailureSignal)
        clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                               registry_endpoint_template=f"{sb.arm_endpoint}/registries/{{loginServer}}")
        try:
            yield sb, signal, clients
        finally:
            clients.close()


def gather(failure: tuple[Sandbox, FailureSignal, AzureClients], *faults: dict[str, Any]) -> tuple[Context, Gatherer]:
    sb, signal, clients = failure
    sb.world.behaviour["faults"] = list(faults)
    sb.world.fault_hits.clear()
    gatherer = Gatherer(clients, GatherOptions(subscriptions=(SUB,), activity_log_wait_seconds=0))
    try:
        return gatherer.gather(signal), gatherer
    finally:
        gatherer.close()
        sb.world.behaviour["faults"] = []


def test_with_every_read_answered_there_is_nothing_to_note(failure: Any) -> None:
    ctx, gatherer = gather(failure)
    assert ctx.notes == () and gatherer.transient_failures == []
    assert ctx.definition is not None and ctx.definition.source == "deployment"
    assert ctx.error is not None and ctx.error.code == "InaccessibleImage"


@pytest.mark.parametrize(("faults", "notes", "source"), [
    ([fault(DEPLOYMENTS), fault(GROUP)],
     (f"deployments could not be listed: {failed(DEPLOYMENTS)}",
      f"the container group could not be read: {failed(GROUP)}", FROM_THE_ERROR), "error-message"),
    ([fault(ACTIVITY_LOG), fault(GROUP)],
     (f"Activity Log could not be read: {failed(ACTIVITY_LOG)}",
      f"the container group could not be read: {failed(GROUP)}"), "deployment"),
    ([fault(OPERATIONS)], (f"deployment operations of acrtestcontainergroup-deploy could not be read: "
                           f"{failed(OPERATIONS)}",), "deployment"),
    ([fault(EXPORT)], (f"template of deployment acrtestcontainergroup-deploy could not be exported: {failed(EXPORT)}",
                       FROM_THE_ERROR), "error-message"),
    ([fault(RESOURCE_GROUP)], (f"resource group myResourceGroup could not be read: {failed(RESOURCE_GROUP)}",),
     "deployment"),
    ([fault(REGISTRIES)], (f"registries in subscription {SUB} could not be listed: {failed(REGISTRIES)}",),
     "deployment"),
    ([fault(IDENTITIES)], (f"identity {IDENTITY} could not be read: {failed(IDENTITIES)}",), "deployment"),
    ([fault(ASSIGNMENTS), fault(ROLES)],
     (f"role assignments of {PRINCIPAL} on myacr.azurecr.io could not be listed: {failed(ASSIGNMENTS)}",
      f"role assignments of {DEPLOYER} on myacr.azurecr.io could not be listed: {failed(ASSIGNMENTS)}"), "deployment"),
], ids=["deployments-and-group", "activity-log-and-group", "operations", "export", "resource-group", "registries",
        "identity", "assignments-and-roles"])
def test_a_read_that_fails_is_a_note(failure: Any, faults: list[dict[str, Any]], notes: tuple[str, ...],
                                     source: str) -> None:
    ctx, gatherer = gather(failure, *faults)
    assert ctx.notes == notes
    assert ctx.definition is not None and ctx.definition.source == source
    assert gatherer.transient_failures == []  # refusals: a retry would not help


def test_what_could_not_be_read_is_left_out_not_guessed(failure: Any) -> None:
    ctx, _ = gather(failure, fault(IDENTITIES), fault(GROUP))
    assert ctx.identities == {} and ctx.existing_group is None
    ctx, _ = gather(failure, fault(ASSIGNMENTS))
    assert ctx.assignments == {}  # not listed: unlike "listed, and none", which is a finding
    ctx, _ = gather(failure)
    assert ctx.assignments.keys() == {PRINCIPAL, DEPLOYER}  # the identity's, and the deployer's (through groups)


def refused(status: int) -> HttpResponseError:
    exc = HttpResponseError(message=f"refused with {status}")
    exc.status_code = status
    return exc


def raises(exc: Exception) -> Any:
    def call(*_args: Any, **_kwargs: Any) -> Any:
        raise exc
    return call


@pytest.mark.parametrize(("status", "transient"), [(429, True), (503, True), (403, False), (400, False)])
def test_a_read_a_retry_may_clear_is_remembered(status: int, transient: bool) -> None:
    # a sweep reads only the live group, the registries and who wrote the group; here the group cannot be read
    clients = SimpleNamespace(
        container_instance=lambda _sub: SimpleNamespace(container_groups=SimpleNamespace(get=raises(refused(status)))),
        container_registry=lambda _sub: SimpleNamespace(registries=SimpleNamespace(list=lambda: [])),
        monitor=lambda _sub: SimpleNamespace(activity_logs=SimpleNamespace(list=lambda **_kw: [])))
    gatherer = Gatherer(cast(AzureClients, clients))
    try:
        ctx = gatherer.gather(signal_for_resource(GROUP_ID, schema="sweep"))
    finally:
        gatherer.close()
    assert ctx.notes == (f"the container group could not be read: HttpResponseError: refused with {status}",)
    assert gatherer.transient_failures == ([f"HttpResponseError: refused with {status}"] if transient else [])


def test_the_deployer_is_the_caller_the_activity_log_recorded_for_the_failed_write(failure: Any) -> None:
    ctx, _ = gather(failure)
    assert ctx.failed_write is not None
    assert (ctx.failed_write.caller, ctx.failed_write.status) == (DEPLOYER, "Failed")
    assert ctx.failed_write.operation == "Microsoft.ContainerInstance/containerGroups/write"
    assert ctx.group_writes == ()  # nothing written since: the failure is still the group's latest intent
    ctx, _ = gather(failure, fault(ACTIVITY_LOG))
    assert ctx.failed_write is None and ctx.group_writes is None  # unknown, never guessed from the event

"""The gatherer's dependency structure, read from the sandbox's request log under a large injected
latency: which reads start before which end, and how many calls a context takes. Nothing here is
timed against a target; only the order of calls is asserted."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, cast

import pytest

from remediation.azure.clients import BUILT_IN_ROLE_SECONDS, AzureClients
from remediation.azure.gather import Gatherer, GatherOptions
from remediation.model import Context, FailureSignal, RoleDefinition
from remediation.signal import parse_event
from sandbox import Sandbox, load_scenario
from sandbox.world import RequestRecord
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.25
"""Seconds each call waits in the sandbox: far above the client's own time between calls, so the
order of starts and ends shows the waves."""
SUB = "00000000-0000-0000-0000-000000000001"
OTHER_SUB = "00000000-0000-0000-0000-000000000002"
IDENTITY_PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000001"
DEPLOYER = "11111111-1111-1111-1111-111111111111"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"

ACTIVITY_LOG = "GET */providers/microsoft.insights/eventtypes/management/values"
IDENTITY = "GET */userassignedidentities/*"
IDENTITY_ASSIGNMENTS = f"GET */roleassignments?*assignedto('{IDENTITY_PRINCIPAL}')*"
DEPLOYER_ASSIGNMENTS = f"GET */roleassignments?*assignedto('{DEPLOYER}')*"
ROLE_BY_ID = "GET */roledefinitions/*"
ROLE_BY_NAME = "GET */roledefinitions?*rolename*"
LOCKS = "GET */providers/microsoft.authorization/locks?*"
DENY = "GET */providers/microsoft.authorization/denyassignments?*"
POLICY = "GET */providers/microsoft.authorization/policyassignments?*"
EXCHANGE = "POST /registries/*/oauth2/exchange*"
TOKEN = "POST /registries/*/oauth2/token*"
TAG = "GET /registries/*/_tags/*"
DEPLOYMENTS = "GET */providers/microsoft.resources/deployments"
OPERATIONS = "GET */deployments/*/operations"
EXPORT = "POST */exporttemplate"
RESOURCE_GROUP = "GET /subscriptions/*/resourcegroups/myresourcegroup"


@pytest.fixture
def failure(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, FailureSignal, AzureClients]]:
    """missing-acrpull's failed write (or the scenario a test names with ``indirect``), then every
    call slowed by :data:`LATENCY`."""
    scenario = load_scenario(ROOT / "scenarios" / f"{getattr(request, 'param', 'missing-acrpull')}.json")
    with Sandbox(scenario) as sb:
        signal = parse_event(failed_event(sb, scenario))
        assert isinstance(signal, FailureSignal)
        sb.world.behaviour["latencySeconds"] = LATENCY
        clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                               registry_endpoint_template=f"{sb.arm_endpoint}/registries/{{loginServer}}")
        try:
            yield sb, signal, clients
        finally:
            clients.close()


def gather(failure: tuple[Sandbox, FailureSignal, AzureClients]) -> tuple[Context, list[RequestRecord]]:
    """One context, and the app's calls it took (the 401 challenges, which carry no caller, too)."""
    sb, signal, clients = failure
    before = len(sb.world.request_log)
    gatherer = Gatherer(clients, GatherOptions(subscriptions=(SUB,), activity_log_wait_seconds=0))
    try:
        ctx = gatherer.gather(signal)
    finally:
        gatherer.close()
    calls = [r for r in sb.world.request_log[before:] if r.caller in (sb.world.remediator, None)]
    return ctx, calls


def matching(calls: list[RequestRecord], pattern: str) -> list[RequestRecord]:
    method, _, path = pattern.partition(" ")
    return [r for r in calls if r.method == method
            and fnmatch(f"{r.path}?{r.query}".lower() if "?" in path else r.path.lower(), path.lower())]


def one(calls: list[RequestRecord], pattern: str) -> RequestRecord:
    found = matching(calls, pattern)
    assert len(found) == 1, (pattern, [(r.method, r.path, r.query) for r in calls])
    return found[0]


def test_what_the_definition_names_is_read_in_one_wave_after_the_activity_log(failure: Any) -> None:
    """The image's registry token, the identity, the deployer's assignments and the blockers need
    only the definition, the registry list and the failed write's caller: they all start before
    any of them ends."""
    _, calls = gather(failure)
    activity = one(calls, ACTIVITY_LOG)
    wave = [one(calls, p) for p in (EXCHANGE, IDENTITY, DEPLOYER_ASSIGNMENTS, LOCKS, DENY)]
    assert min(r.started for r in wave) >= activity.ended
    assert max(r.started for r in wave) < min(r.ended for r in wave)


def test_no_policy_assignments_are_read_for_a_registry_without_a_firewall(failure: Any) -> None:
    """Azure Policy weighs only on the network fix, which a registry open to the internet never gets."""
    ctx, calls = gather(failure)
    assert not matching(calls, POLICY) and ctx.policy_assignments == ()


@pytest.mark.parametrize("failure", ["policy-disables-trusted-services"], indirect=True)
def test_a_network_restricted_registrys_policy_assignments_are_read_with_the_other_blockers(failure: Any) -> None:
    ctx, calls = gather(failure)
    assert ctx.policy_assignments
    wave = [one(calls, p) for p in (IDENTITY, LOCKS, DENY, POLICY)]
    assert max(r.started for r in wave) < min(r.ended for r in wave)


def test_the_roles_a_fix_may_assign_are_not_looked_up_by_name(failure: Any) -> None:
    """AcrPull and Repository Reader are named by their built-in ids; nobody holds them here, so
    neither definition is read, and the only role read is the deployer's (Contributor)."""
    ctx, calls = gather(failure)
    assert not matching(calls, ROLE_BY_NAME)
    assert [r.path.rsplit("/", 1)[-1] for r in matching(calls, ROLE_BY_ID)] == [CONTRIBUTOR]
    assert set(ctx.role_definitions) == {CONTRIBUTOR}


def test_a_built_in_role_read_by_one_run_is_kept_for_the_next(failure: Any) -> None:
    gather(failure)
    ctx, calls = gather(failure)
    assert not matching(calls, ROLE_BY_ID)
    role = ctx.role_definitions[CONTRIBUTOR]
    assert role.role_name == "Contributor" and role.actions == ("*",)
    assert role.id == f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"


@pytest.mark.parametrize("failure", ["custom-role-grants-pull"], indirect=True)
def test_a_custom_role_is_read_again_by_every_run(failure: Any) -> None:
    """A custom role is the tenant's to change at any time: a later run reads it again (the
    deployer's built-in role it does not)."""
    ctx, _ = gather(failure)
    custom = {guid for guid, role in ctx.role_definitions.items() if role.role_type == "CustomRole"}
    assert custom
    _, calls = gather(failure)
    assert {r.path.rsplit("/", 1)[-1].lower() for r in matching(calls, ROLE_BY_ID)} == custom


def test_a_role_definition_is_read_as_soon_as_its_assignment_is_listed(failure: Any) -> None:
    """The deployer's role (Contributor) is read while the identity's assignments are still being
    listed, not after every list has ended."""
    _, calls = gather(failure)
    identity, identity_assignments = one(calls, IDENTITY), one(calls, IDENTITY_ASSIGNMENTS)
    role = one(calls, ROLE_BY_ID)
    assert identity_assignments.started >= identity.ended  # it needs the identity's principal id
    assert one(calls, DEPLOYER_ASSIGNMENTS).ended <= role.started < identity_assignments.ended


def test_the_registry_is_asked_for_its_tokens_before_the_first_read(failure: Any) -> None:
    """No call is sent only to be refused with the 401 challenge: the access token for the
    repository's scope is asked for first, and the tag is read once, with it."""
    ctx, calls = gather(failure)
    assert [s.exists for s in ctx.images] == [True]
    assert [r.status for r in calls if r.path.startswith("/registries/")] == [200, 200, 200]
    exchange, token, tag = one(calls, EXCHANGE), one(calls, TOKEN), one(calls, TAG)
    assert exchange.ended <= token.started and token.ended <= tag.started


def test_registry_tokens_are_kept_across_runs_that_share_the_clients(failure: Any) -> None:
    gather(failure)
    ctx, calls = gather(failure)
    assert [s.exists for s in ctx.images] == [True]
    assert [(r.method, r.status) for r in calls if r.path.startswith("/registries/")] == [("GET", 200)]


def test_a_kept_token_the_registry_no_longer_takes_is_renewed_once(failure: Any) -> None:
    """The registry's clock has passed both tokens' lifetime (the app's has not): the read is
    refused, the refresh token too, and one new exchange brings the read through."""
    sb = failure[0]
    gather(failure)
    sb.world.advance(4 * 3600)
    ctx, calls = gather(failure)
    assert [s.exists for s in ctx.images] == [True]
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in calls if r.path.startswith("/registries/")] == [
        ("GET", "v1", 401), ("POST", "token", 401), ("POST", "exchange", 200), ("POST", "token", 200),
        ("GET", "v1", 200)]


def test_one_activity_log_list_holds_the_failed_write_and_the_writes_after_it(failure: Any) -> None:
    ctx, calls = gather(failure)
    assert len(matching(calls, ACTIVITY_LOG)) == 1
    assert ctx.failed_write is not None and ctx.failed_write.caller == DEPLOYER
    assert ctx.group_writes == ()


def test_a_later_write_of_the_group_is_found_in_the_same_list(failure: Any) -> None:
    """The user fixed the group by hand after the failure: the one list shows that write, so the
    failure is no longer the group's latest intent."""
    sb, signal, _ = failure
    sb.world.behaviour["latencySeconds"] = 0
    sb.world.advance(5)
    container = {"name": "web", "properties": {"image": "mcr.microsoft.com/azuredocs/aci-helloworld",
                                               "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}
    body = {"location": "eastus", "properties": {"osType": "Linux", "containers": [container]}}
    client = AzureClients(sb.deployer_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                          polling_interval=0.05)
    try:
        client.container_instance(SUB).container_groups.begin_create_or_update(
            signal.resource_group, signal.name, body).result()  # type: ignore[arg-type]
    finally:
        client.close()
    ctx, calls = gather(failure)
    assert len(matching(calls, ACTIVITY_LOG)) == 1
    assert ctx.failed_write is not None and ctx.failed_write.status == "Failed"
    assert ctx.group_writes is not None and [(w.status, w.caller) for w in ctx.group_writes] == [
        ("Succeeded", DEPLOYER)]


@pytest.mark.parametrize("failure", ["definition-from-deployment"], indirect=True)
def test_a_deployments_operations_template_and_resource_group_are_read_together(failure: Any) -> None:
    ctx, calls = gather(failure)
    assert ctx.definition is not None and ctx.definition.source == "deployment"
    listed = one(calls, DEPLOYMENTS)
    together = [one(calls, p) for p in (OPERATIONS, EXPORT, RESOURCE_GROUP)]
    assert min(r.started for r in together) >= listed.ended
    assert max(r.started for r in together) < min(r.ended for r in together)


@pytest.mark.parametrize("failure", ["vnet-registry-unreachable"], indirect=True)
def test_a_vnet_injected_groups_network_is_read_with_the_rest(failure: Any) -> None:
    """The virtual network and the private DNS zones need only the definition and the registry:
    they start in the same wave as the identity, and each zone's links as soon as the zones are listed."""
    ctx, calls = gather(failure)
    assert ctx.network is not None and ctx.network.dns_zones
    vnet = one(calls, "GET */virtualnetworks/aci-vnet")
    zones = one(calls, "GET */providers/microsoft.network/privatednszones")
    links = one(calls, "GET */privatednszones/*/virtualnetworklinks")
    wave = (one(calls, IDENTITY), one(calls, DEPLOYER_ASSIGNMENTS))
    assert max(vnet.started, zones.started) < min(r.ended for r in wave)
    assert zones.ended <= links.started < one(calls, IDENTITY_ASSIGNMENTS).ended


@pytest.mark.parametrize("failure", ["inherited-acrpull"], indirect=True)
def test_an_assigned_role_is_read_once_by_its_id(failure: Any) -> None:
    """The identity holds AcrPull (at the resource group): its definition is read once, by id."""
    ctx, calls = gather(failure)
    assert ACR_PULL in ctx.role_definitions
    assert any(a.role_definition_id.lower().endswith(ACR_PULL) for a in ctx.assignments[IDENTITY_PRINCIPAL])
    assert len([r for r in matching(calls, ROLE_BY_ID) if r.path.lower().endswith(ACR_PULL)]) == 1


def test_a_kept_built_in_role_expires() -> None:
    now = [0.0]
    clients = AzureClients(cast(Any, None), clock=lambda: now[0])
    role_id = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"
    clients.keep_role(RoleDefinition(role_id, "Contributor", ("*",)))
    elsewhere = f"/subscriptions/{OTHER_SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"
    kept = clients.kept_role(elsewhere)
    assert kept is not None and kept.id == elsewhere and kept.actions == ("*",)  # the same id in every subscription
    now[0] = BUILT_IN_ROLE_SECONDS - 1
    assert clients.kept_role(role_id) is not None
    now[0] = BUILT_IN_ROLE_SECONDS
    assert clients.kept_role(role_id) is None

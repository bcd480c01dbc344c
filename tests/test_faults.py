"""Faults (issue 9, item 6), each with its expected result asserted: the engine against the sandbox's
fault injection (``behaviour.faults``), set after the user's failing write so that only the app's
own calls meet them. The faults that involve the ledger, the queue and redeliveries are in
``tests/test_faults_service.py``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from remediation.azure.clients import AzureClients
from remediation.demo import demo_settings, engine_for
from remediation.engine import Engine
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.world import RequestRecord
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
MISSING_ACRPULL = "scenarios/missing-acrpull.json"
TWO_CAUSES = "scenarios/two-causes-acrpull-and-network.json"
FROM_DEPLOYMENT = "scenarios/definition-from-deployment.json"
BASELINE = {
    MISSING_ACRPULL: ["PUT roleAssignments", "PUT containerGroups"],
    FROM_DEPLOYMENT: ["PUT roleAssignments", "PUT containerGroups"],
    TWO_CAUSES: ["PUT roleAssignments", "PATCH registries", "PUT containerGroups"],
}


@dataclass
class Failure:
    """A scenario's failed write in a running sandbox, and the engine that remediates it."""

    sb: Sandbox
    scenario: Any
    event: dict[str, Any]
    since: int
    clients: list[AzureClients] = field(default_factory=list)

    def engine(self, *, progress: Callable[[str, float, str], None] | None = None, **client_options: Any) -> Engine:
        """The demo's engine (sandbox clock), with its SDK clients built with ``client_options``
        (``retry_total``, ``read_timeout``)."""
        engine = engine_for(self.sb, self.scenario, demo_settings(self.sb, self.scenario), virtual_clock=True)
        engine.clients.close()
        clients = AzureClients(self.sb.remediator_credential(), arm_endpoint=self.sb.arm_endpoint,
                               verify=self.sb.ca_bundle, polling_interval=0.05,
                               registry_endpoint_template=engine.clients.registry_endpoint_template,
                               **client_options)
        self.clients.append(clients)
        return replace(engine, clients=clients, progress=progress)

    def run(self, *faults: dict[str, Any], **client_options: Any) -> dict[str, Any]:
        self.sb.world.behaviour["faults"] = list(faults)
        return self.engine(**client_options).run(parse_event(self.event), trigger="eventgrid")

    def calls(self) -> list[RequestRecord]:
        """Every call the app made (the remediator's, and the anonymous first tries of the data plane)."""
        return [r for r in self.sb.world.request_log[self.since:]
                if (r.caller or "").lower() in ("", self.sb.world.remediator.lower())]

    def writes(self) -> list[str]:
        """The app's answered writes, as ``METHOD resourceType`` (a dropped connection is no write)."""
        return [f"{r.method} {r.path.rstrip('/').split('/')[-2]}" for r in self.calls()
                if r.method in ("PUT", "PATCH", "DELETE") and 200 <= r.status < 300]


@contextmanager
def failure(path: str = MISSING_ACRPULL, change: Callable[[dict[str, Any]], None] | None = None) -> Iterator[Failure]:
    data = json.loads((ROOT / path).read_text())
    if change:
        change(data)
    scenario = parse_scenario(data, "test")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        found = Failure(sb, scenario, event, len(sb.world.request_log))
        try:
            yield found
            assert sb.errors() == []
        finally:
            for clients in found.clients:
                clients.close()


def grants(f: Failure) -> int:
    """How many role assignments the world holds for the scenario's identity (the one being fixed)."""
    principal = next(r["properties"]["principalId"] for r in f.scenario.resources
                     if r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities")
    return sum(1 for a in f.sb.world.role_assignments() if a["properties"]["principalId"] == principal)


# --- 429 with Retry-After, 500 and 503, on every kind of call the app makes -------------------------

CALLS = {
    "activity-log": (MISSING_ACRPULL, "GET */providers/microsoft.insights/eventtypes/management/values"),
    "registry-list": (MISSING_ACRPULL, "GET */providers/microsoft.containerregistry/registries"),
    "group-read": (MISSING_ACRPULL, "GET */containergroups/*"),
    "deployment-list": (FROM_DEPLOYMENT, "GET */providers/microsoft.resources/deployments"),
    "deployment-operations": (FROM_DEPLOYMENT, "GET */deployments/*/operations"),
    "template-export": (FROM_DEPLOYMENT, "POST */deployments/*/exporttemplate"),
    "resource-group-read": (FROM_DEPLOYMENT, "GET /subscriptions/*/resourcegroups/myresourcegroup"),
    "identity-read": (MISSING_ACRPULL, "GET */userassignedidentities/*"),
    "role-assignment-list": (MISSING_ACRPULL, "GET */providers/microsoft.authorization/roleassignments"),
    "role-definition-read": (MISSING_ACRPULL, "GET */providers/microsoft.authorization/roledefinitions*"),
    "registry-token": (MISSING_ACRPULL, "POST /registries/*/oauth2/token"),
    "registry-tag-read": (MISSING_ACRPULL, "GET /registries/*/_tags/*"),
    "role-assignment-put": (MISSING_ACRPULL, "PUT */roleassignments/*"),
    "registry-patch": (TWO_CAUSES, "PATCH */registries/*"),
    "group-put": (MISSING_ACRPULL, "PUT */containergroups/*"),
    "operation-poll": (MISSING_ACRPULL, "GET */operationstatuses/*"),
}
THROTTLED = {"status": 429, "retryAfter": 1}
STATUSES = {"429-retry-after": THROTTLED, "500": {"status": 500}, "503": {"status": 503}}


@pytest.mark.parametrize("status", STATUSES.values(), ids=STATUSES.keys())
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_throttled_or_failing_call_is_retried_and_the_run_finishes(call: tuple[str, str],
                                                                     status: dict[str, Any]) -> None:
    path, match = call
    with failure(path) as f:
        report = f.run({"match": match, "times": 1, **status})
        assert report["outcome"] == "remediated", report
        assert f.writes() == BASELINE[path]  # the retry wrote nothing twice
        calls = f.calls()
        hit = next(i for i, r in enumerate(calls) if r.fault == match)
        assert calls[hit].status == status["status"]
        same = (calls[hit].method, calls[hit].path, calls[hit].query)
        retry = next(r for r in calls[hit + 1:] if (r.method, r.path, r.query) == same)
        assert retry.status < 500 and retry.status != 429
        if "retryAfter" in status:  # the SDK waited as long as it was told
            assert retry.started - calls[hit].ended >= status["retryAfter"] - 0.05


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_call_that_keeps_failing_leaves_a_retryable_report_and_no_half_write(call: tuple[str, str]) -> None:
    path, match = call
    with failure(path) as f:
        report = f.run({"match": match, "status": 503}, retry_total=1)
        assert report["outcome"] == "failed" and report["retryable"] is True, report
        writes = f.writes()
        if match.startswith("GET") or match.startswith("POST"):
            reads = {"GET */operationstatuses/*": BASELINE[path]}  # the poll comes after the group PUT
            assert writes == reads.get(match, [])
        else:
            assert "PUT containerGroups" not in writes or match == "PUT */containergroups/*"
            failed = next(a for a in report["actions"] if a["status"] == "failed")
            assert "ServiceUnavailable" in failed["detail"]


# --- connection resets and timeouts mid-call --------------------------------------------------------

@pytest.mark.parametrize("match", ["GET */userassignedidentities/*", "POST /registries/*/oauth2/exchange",
                                   "PUT */roleassignments/*", "PUT */containergroups/*"])
def test_a_connection_reset_on_a_call_the_sdk_may_repeat_is_retried(match: str) -> None:
    with failure() as f:
        report = f.run({"match": match, "reset": True, "times": 1})
        assert report["outcome"] == "remediated", report
        assert [r.status for r in f.calls() if r.fault == match] == [0]  # the connection was dropped once
        assert f.writes() == BASELINE[MISSING_ACRPULL]
        assert grants(f) == 1


def test_a_connection_reset_on_a_registry_patch_fails_the_fix_retryably() -> None:
    # the SDK does not repeat a PATCH whose answer was lost: a later run must decide again
    with failure(TWO_CAUSES) as f:
        report = f.run({"match": "PATCH */registries/*", "reset": True, "times": 1})
        assert report["outcome"] == "failed" and report["retryable"] is True
        patch = next(a for a in report["actions"] if a["kind"] == "enable-trusted-services")
        assert patch["status"] == "failed" and "ServiceResponseError" in patch["detail"]
        redeploy = next(a for a in report["actions"] if a["kind"] == "redeploy")
        assert redeploy["status"] == "skipped" and "PUT containerGroups" not in f.writes()


def test_connections_reset_on_every_redeploy_leave_a_retryable_report() -> None:
    with failure() as f:
        report = f.run({"match": "PUT */containergroups/*", "reset": True}, retry_total=1)
        assert report["outcome"] == "failed" and report["retryable"] is True
        assert report["redeploy"]["status"] == "failed" and "could not reach Azure" in report["redeploy"]["detail"]


@pytest.mark.parametrize("match", ["GET */userassignedidentities/*", "POST /registries/*/oauth2/exchange"])
def test_connections_reset_on_every_read_leave_a_retryable_report(match: str) -> None:
    with failure() as f:
        report = f.run({"match": match, "reset": True}, retry_total=1)
        assert report["outcome"] == "failed" and report["retryable"] is True
        assert report["error"].startswith("Azure could not be read: ServiceResponseError")
        assert f.writes() == []


@pytest.mark.parametrize("match", ["GET */userassignedidentities/*", "GET */providers/microsoft.containerregistry/"
                                   "registries", "PUT */roleassignments/*", "PUT */containergroups/*"])
def test_a_call_that_times_out_is_retried_and_a_late_write_changes_nothing(match: str) -> None:
    latency = 1.0
    with failure() as f:
        report = f.run({"match": match, "latency": latency, "times": 1}, read_timeout=0.3)
        time.sleep(latency + 0.3)  # the abandoned call finishes on the server too
        f.sb.world.settle()
        assert report["outcome"] == "remediated", report
        assert grants(f) == 1
        group = f.sb.world.get(f.event["subject"])
        assert group is not None and group["properties"]["provisioningState"] == "Succeeded"


# --- a long-running operation that ends Failed --------------------------------------------------------

def test_a_redeploy_whose_operation_ends_failed_is_reported_failed_with_its_error() -> None:
    def slow(data: dict[str, Any]) -> None:
        data["behaviour"]["provisioningSeconds"] = 3600  # provisioning ends only when the test says so

    with failure(change=slow) as f:
        group_id = f.event["subject"]

        def delete_while_provisioning() -> None:
            # the remediator's PUT was accepted: the group is deleted before its operation completes
            for _ in range(1000):
                if any(r.method == "PUT" and "/containergroups/" in r.path.lower() and r.status == 201
                       for r in f.calls()):
                    f.sb.world.delete(group_id)
                    f.sb.world.advance(3600)
                    return
                time.sleep(0.01)

        deleter = threading.Thread(target=delete_while_provisioning)
        deleter.start()
        report = f.run()
        deleter.join()
        assert report["outcome"] == "failed"
        assert report["redeploy"]["status"] == "failed" and "Canceled" in report["redeploy"]["detail"]
        redeploy = next(a for a in report["actions"] if a["kind"] == "redeploy")
        assert redeploy["status"] == "failed" and "was deleted while it was being created" in redeploy["detail"]
        assert next(a for a in report["actions"] if a["kind"] == "assign-role")["status"] == "applied"
        assert f.sb.world.get(group_id) is None  # nothing brought the deleted group back


# --- role assignments: PrincipalNotFound, RoleAssignmentExists, AuthorizationFailed ----------------

def test_principal_not_found_for_a_brand_new_identity_is_retried_then_succeeds() -> None:
    with failure() as f:
        fault = {"match": "PUT */roleassignments/*", "status": 400, "code": "PrincipalNotFound", "times": 1}
        first = f.run(fault)
        assign = next(a for a in first["actions"] if a["kind"] == "assign-role")
        assert assign["status"] == "failed" and "PrincipalNotFound" in assign["detail"]
        assert first["retryable"] is True and first["redeploy"]["status"] == "skipped"
        again = f.run(fault)  # the redelivery, once the identity has replicated (the fault is used up)
        assert again["outcome"] == "remediated"
        assert f.writes() == BASELINE[MISSING_ACRPULL]
        # the assignment names its principal's type, which is how ARM avoids the lookup that fails
        principal = first["causes"][0]["evidence"]["principalId"]
        [made] = [a for a in f.sb.world.role_assignments() if a["properties"]["principalId"] == principal]
        assert made["properties"]["principalType"] == "ServicePrincipal"


def test_a_role_assignment_made_meanwhile_counts_as_applied() -> None:
    with failure() as f:
        registry = next(r for r in f.scenario.resources if r["type"] == "Microsoft.ContainerRegistry/registries")
        principal = next(r["properties"]["principalId"] for r in f.scenario.resources
                         if r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities")
        name = "0000aaaa-0000-4000-8000-000000000001"

        def someone_assigns_it(stage: str, _took: float, _summary: str) -> None:
            if stage == "plan":  # after the diagnosis, before the fix: the same grant under another name
                acr_pull = (f"/subscriptions/{registry['id'].split('/')[2]}/providers/Microsoft.Authorization/"
                            "roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d")
                f.sb.world.put({"id": f"{registry['id']}/providers/Microsoft.Authorization/roleAssignments/{name}",
                                "name": name, "type": "Microsoft.Authorization/roleAssignments",
                                "properties": {"scope": registry["id"], "roleDefinitionId": acr_pull,
                                               "principalId": principal, "principalType": "ServicePrincipal"}},
                               created=float("-inf"))

        report = f.engine(progress=someone_assigns_it).run(parse_event(f.event), trigger="eventgrid")
        assign = next(a for a in report["actions"] if a["kind"] == "assign-role")
        assert assign["status"] == "applied" and "already assigned" in assign["detail"]
        assert [r.status for r in f.calls() if r.method == "PUT" and "/roleassignments/" in r.path.lower()] == [409]
        assert report["outcome"] == "remediated" and grants(f) == 1


def test_authorization_failed_names_the_missing_permission_and_the_infra_fix() -> None:
    def without_delegation(data: dict[str, Any]) -> None:
        data["resources"] = [r for r in data["resources"] if not (
            r["type"] == "Microsoft.Authorization/roleAssignments"
            and r["properties"]["roleDefinitionId"].endswith("f58310d9-a9f6-439a-9e8d-f62e7b41a168"))]

    with failure(change=without_delegation) as f:
        report = f.run()
        assert report["outcome"] == "failed" and not report.get("retryable")
        assign = next(a for a in report["actions"] if a["kind"] == "assign-role")
        assert assign["status"] == "failed"
        assert ("the app's identity lacks Microsoft.Authorization/roleAssignments/write on "
                f"{assign['target']}/providers/Microsoft.Authorization/roleAssignments/") in assign["detail"]
        assert ("deploy infra/modules/target-subscription.bicep in that subscription, which assigns it Role Based "
                "Access Control Administrator, limited to AcrPull") in assign["detail"]
        assert "infra/modules/target-subscription.bicep" in report["error"]
        assert f.writes() == []


# --- a registry or identity deleted between diagnosis and fix ----------------------------------------

@pytest.mark.parametrize(("deleted", "expected"), [
    ("Microsoft.ContainerRegistry/registries", {"assign-role": ("failed", "ResourceNotFound"),
                                                "redeploy": ("skipped", "a fix failed")}),
    ("Microsoft.ManagedIdentity/userAssignedIdentities", {"assign-role": ("applied", "created"),
                                                          "redeploy": ("failed", "FailedIdentityOperation")}),
], ids=["registry", "identity"])
def test_a_resource_deleted_between_diagnosis_and_fix_fails_the_run_and_says_why(
        deleted: str, expected: dict[str, tuple[str, str]]) -> None:
    with failure() as f:
        def delete_after_the_plan(stage: str, _took: float, _summary: str) -> None:
            if stage == "plan":
                for resource in f.sb.world.of_type(deleted):
                    f.sb.world.delete(resource["id"])

        report = f.engine(progress=delete_after_the_plan).run(parse_event(f.event), trigger="eventgrid")
        assert report["outcome"] == "failed"
        for kind, (status, why) in expected.items():
            action = next(a for a in report["actions"] if a["kind"] == kind)
            assert action["status"] == status and why in action["detail"], action
        assert expected["redeploy"][1] in report["error"] or expected["assign-role"][1] in report["error"]

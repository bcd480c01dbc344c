"""The sandbox's front door: TLS, tokens, api-version, faults, request log, remediator RBAC."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from sandbox.tokens import make_token

from . import sdk
from .worlds import (
    IDENTITY_ID,
    IDENTITY_PRINCIPAL,
    REMEDIATOR,
    RG,
    RG_ID,
    SUB,
    TENANT,
    assignment,
    identity,
    registry,
    world,
)


def _get(sb, path: str, token: str | None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=sb.ca_bundle)
    req = urllib.request.Request(sb.arm_endpoint + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_sdk_reads_identity_over_tls(make_sandbox):
    sb = make_sandbox(world())
    ident = sdk.msi(sb).user_assigned_identities.get(RG, "myACRId")
    assert ident.principal_id == IDENTITY_PRINCIPAL
    assert ident.id == IDENTITY_ID


def test_untrusted_ca_is_refused(make_sandbox):
    sb = make_sandbox(world())
    from azure.mgmt.msi import ManagedServiceIdentityClient

    # retry_total=0: the SDK would otherwise retry the refused handshake with backoff for seconds
    client = ManagedServiceIdentityClient(sb.credential(), SUB, base_url=sb.arm_endpoint, retry_total=0)
    with pytest.raises(ServiceRequestError):
        client.user_assigned_identities.get(RG, "myACRId")


def test_missing_or_bad_token_gets_401(make_sandbox):
    sb = make_sandbox(world())
    status, body = _get(sb, f"{RG_ID}?api-version=2021-04-01", None)
    assert status == 401 and body["error"]["code"] == "AuthenticationFailed"
    status, body = _get(sb, f"{RG_ID}?api-version=2021-04-01", "not-a-jwt")
    assert status == 401 and body["error"]["code"] == "InvalidAuthenticationToken"
    status, _ = _get(sb, f"{RG_ID}?api-version=2021-04-01", make_token("someone", TENANT))
    assert status == 200


def test_missing_api_version(make_sandbox):
    sb = make_sandbox(world())
    status, body = _get(sb, RG_ID, make_token("someone", TENANT))
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"


def test_missing_resource_is_arm_404(make_sandbox):
    sb = make_sandbox(world())
    with pytest.raises(ResourceNotFoundError) as info:
        sdk.msi(sb).user_assigned_identities.get(RG, "nope")
    assert info.value.error.code == "ResourceNotFound"


def test_fault_injection_status_then_recovery(make_sandbox):
    fault = {"match": "GET */userAssignedIdentities/*", "status": 500, "times": 1}
    sb = make_sandbox(world(behaviour={"faults": [fault]}))
    client = sdk.msi(sb)
    # the SDK's retry policy retries the 500 and then succeeds: two calls in the log
    assert client.user_assigned_identities.get(RG, "myACRId").principal_id == IDENTITY_PRINCIPAL
    statuses = [r.status for r in sb.world.request_log if r.path.endswith("/myACRId")]
    assert statuses == [500, 200]


def test_fault_injection_429_retry_after_is_honoured(make_sandbox):
    fault = {"match": "GET */userAssignedIdentities/*", "status": 429, "retryAfter": 1, "times": 1}
    sb = make_sandbox(world(behaviour={"faults": [fault]}))
    sdk.msi(sb).user_assigned_identities.get(RG, "myACRId")
    log = [r for r in sb.world.request_log if r.path.endswith("/myACRId")]
    assert [r.status for r in log] == [429, 200]
    assert log[1].started - log[0].ended >= 0.9


def test_remediator_is_held_to_its_role_assignments(make_sandbox):
    reader = assignment(RG_ID, "acdd72a7-3385-48ef-bd42-f606fba81ae7", principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(), identity(), reader], remediator=True))
    # the remediator may read in the group it has Reader on ...
    assert sdk.msi(sb, REMEDIATOR).user_assigned_identities.get(RG, "myACRId").name == "myACRId"
    # ... but not in a group it has nothing on
    with pytest.raises(HttpResponseError) as info:
        sdk.resources(sb, REMEDIATOR).resource_groups.create_or_update("other-rg", {"location": "eastus"})
    assert info.value.status_code == 403 and info.value.error.code == "AuthorizationFailed"
    assert REMEDIATOR in info.value.error.message


def test_without_remediator_anyone_may_do_anything(make_sandbox):
    sb = make_sandbox(world())
    group = sdk.resources(sb, REMEDIATOR).resource_groups.create_or_update("other-rg", {"location": "eastus"})
    assert group.name == "other-rg"


def test_serve_command_prints_endpoint_and_serves(tmp_path):
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(world()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--scenario", str(scenario)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = json.loads(proc.stdout.readline())
        assert set(line) == {"armEndpoint", "caBundle"}
        assert line["armEndpoint"].startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=line["caBundle"])
        req = urllib.request.Request(
            f"{line['armEndpoint']}{RG_ID}?api-version=2021-04-01",
            headers={"Authorization": f"Bearer {make_token('x', TENANT)}"},
        )
        with urllib.request.urlopen(req, context=ctx) as resp:
            assert json.loads(resp.read())["name"] == RG
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_rejects_bad_scenario_in_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "subscriptions": []}')
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--scenario", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "subscriptions" in out.stderr

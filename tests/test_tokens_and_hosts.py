"""Tokens and hosts (issue 9, item 4): the registry data plane gets an ACR-audience token, never the
ARM one; ARM_ENDPOINT and ACR_ENDPOINT_TEMPLATE name a known cloud (loopback only with a CA bundle);
resource ids with a non-ASCII character are refused where they enter."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from azure.core import AzureClouds
from azure.core.credentials import AccessToken
from azure.mgmt.core.tools import get_arm_endpoints

from remediation.azure.clients import ACR_AUDIENCE, AzureClients
from remediation.azure.inventory import groups_pulling_with_identity
from remediation.demo import demo_settings, engine_for
from remediation.errors import InputError
from remediation.model import FailureSignal
from remediation.policy import early_refusal
from remediation.resource_ids import ascii_only
from remediation.settings import ACR_LOGIN_SERVER_SUFFIXES, ARM_ENDPOINTS, Settings, SettingsError
from remediation.signal import parse_event, signal_for_resource
from sandbox import Sandbox, parse_scenario
from sandbox.tokens import SandboxCredential, make_token, parse_token

from .test_signal import eventgrid_failure
from .worlds import (
    IDENTITY_PRINCIPAL,
    LOGIN_SERVER,
    REGISTRY_ID,
    SUB,
    TENANT,
    assignment,
    failed_event,
    identity,
    registry,
    world,
)

ROOT = Path(__file__).resolve().parents[1]
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
USER = "11111111-1111-1111-1111-111111111111"
ARM_POLICY_OFF = {"azureADAuthenticationAsArmPolicy": {"status": "disabled"}}


# --- tokens: the sandbox tells the audiences apart ----------------------------------------------

def test_sandbox_tokens_carry_the_audience_they_were_requested_for() -> None:
    credential = SandboxCredential(IDENTITY_PRINCIPAL, TENANT)
    acr = parse_token(credential.get_token(f"{ACR_AUDIENCE}/.default").token)
    arm = parse_token(credential.get_token("https://management.usgovcloudapi.net/.default").token)
    assert acr is not None and acr["aud"] == ACR_AUDIENCE
    assert arm is not None and arm["aud"] == "https://management.usgovcloudapi.net"


def _exchange(sb: Sandbox, audience: str) -> int:
    """The status of the registry's ``/oauth2/exchange`` for an Entra token with ``audience``."""
    form = urlencode({"grant_type": "access_token", "service": LOGIN_SERVER,
                      "access_token": make_token(IDENTITY_PRINCIPAL, TENANT, audience=audience)}).encode()
    request = urllib.request.Request(f"{sb.registry_endpoint(LOGIN_SERVER)}/oauth2/exchange", data=form,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=sb.ca_bundle)) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize(("policy", "audience", "status"), [
    ("enabled", ACR_AUDIENCE, 200),
    ("enabled", "https://management.azure.com/", 200),
    ("enabled", "https://storage.azure.com", 401),
    ("disabled", ACR_AUDIENCE, 200),
    ("disabled", f"{ACR_AUDIENCE}/", 200),
    ("disabled", "https://management.azure.com/", 401),
    ("disabled", "https://management.core.windows.net/", 401),
    ("disabled", "https://management.usgovcloudapi.net", 401),
    ("disabled", "sandbox-arm", 401),
])
def test_a_registry_that_disables_authentication_as_arm_refuses_arm_tokens(
        make_sandbox: Any, policy: str, audience: str, status: int) -> None:
    sb = make_sandbox(world(resources=[registry(policies={"azureADAuthenticationAsArmPolicy": {"status": policy}})]))
    assert _exchange(sb, sb.arm_endpoint if audience == "sandbox-arm" else audience) == status


class Recorder:
    """A credential that remembers the scopes it was asked for."""

    def __init__(self, inner: SandboxCredential) -> None:
        self.inner = inner
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return self.inner.get_token(*scopes, **kwargs)


def test_the_registry_data_plane_is_asked_with_the_acr_audience_only(make_sandbox: Any) -> None:
    sb = make_sandbox(world(resources=[registry(), identity(), assignment(REGISTRY_ID, ACR_PULL, principal=USER)]))
    recorder = Recorder(sb.credential(USER))
    clients = AzureClients(recorder, arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,  # type: ignore[arg-type]
                           registry_endpoint_template=f"{sb.arm_endpoint}/registries/{{loginServer}}")
    try:
        assert clients.registry_data(LOGIN_SERVER).get_tag_properties("pythonworker", "v1").name == "v1"
        assert set(recorder.scopes) == {f"{ACR_AUDIENCE}/.default"}
        clients.identities(SUB).user_assigned_identities.list_by_subscription().next()
        assert set(recorder.scopes) == {f"{ACR_AUDIENCE}/.default", f"{sb.arm_endpoint}/.default"}
    finally:
        clients.close()


def _run(path: str, **registry_props: Any) -> dict[str, Any]:
    """Run the bundled scenario ``path`` with its registry's properties updated by ``registry_props``."""
    data = json.loads((ROOT / path).read_text())
    for resource in data["resources"]:
        if resource["type"] == "Microsoft.ContainerRegistry/registries":
            resource["properties"].update(registry_props)
    scenario = parse_scenario(data, "test")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
        try:
            return engine.run(parse_event(event), trigger="eventgrid")
        finally:
            engine.clients.close()


def test_image_existence_is_decided_on_a_registry_that_refuses_arm_tokens() -> None:
    missing = _run("scenarios/image-not-found.json", policies=ARM_POLICY_OFF)
    assert [c["code"] for c in missing["causes"]] == ["ACR_IMAGE_NOT_FOUND"]
    present = _run("scenarios/missing-acrpull.json", policies=ARM_POLICY_OFF)
    assert present["outcome"] == "remediated"
    for report in (missing, present):
        assert not [n for n in report.get("notes", []) if "is unknown" in n], report["notes"]


# --- hosts: known clouds only, loopback only with a CA bundle ------------------------------------

def test_the_known_clouds_are_those_of_azure_core() -> None:
    assert sorted(ARM_ENDPOINTS) == sorted(get_arm_endpoints(c)["resource_manager"].rstrip("/") for c in AzureClouds)
    for endpoint in ARM_ENDPOINTS:
        for written in (endpoint, f"{endpoint}/", endpoint.upper()):
            assert Settings.from_env({"ARM_ENDPOINT": written}).arm_endpoint == endpoint
    assert ACR_LOGIN_SERVER_SUFFIXES == (".azurecr.io", ".azurecr.us", ".azurecr.cn")


@pytest.fixture
def ca_bundle(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


@pytest.mark.parametrize("value", [
    "https://management.azure.com.evil.example",
    "https://evil.example",
    "https://management.azure.com:8443",
    "https://management.azure.com/subscriptions",
    "https://user@management.azure.com",
    "https://management.azure.com?x=1",
    "http://management.azure.com",
    "https://management.microsoftazure.de",  # Azure Germany, closed in 2021
    "http://127.0.0.1:8443",
    "https://[::1",
])
def test_any_other_arm_endpoint_is_one_line_naming_the_setting(value: str, ca_bundle: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ARM_ENDPOINT": value, "ARM_CA_BUNDLE": ca_bundle})
    assert str(caught.value).startswith("ARM_ENDPOINT must be an https:// URL of a known cloud's Resource Manager")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [
    "https://{loginServer}/",
    "https://{loginServer}.azurecr.io",
    "https://mirror.azurecr.us/{loginServer}",
])
def test_acr_endpoint_template_of_a_known_cloud_is_accepted(value: str) -> None:
    assert Settings.from_env({"ACR_ENDPOINT_TEMPLATE": value}).acr_endpoint_template == value


@pytest.mark.parametrize("value", [
    "https://evil.example/{loginServer}",
    "https://{loginServer}.evil.example",
    "https://{loginServer}/v2",
    "https://{loginServer}:8443",
    "https://myacr.azurecr.io.evil.example/{loginServer}",
    "https://myacr.azurecr.io",
    "http://{loginServer}",
    "https://{loginServer}?x=1",
])
def test_any_other_acr_endpoint_template_is_one_line_naming_the_setting(value: str, ca_bundle: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ACR_ENDPOINT_TEMPLATE": value, "ARM_CA_BUNDLE": ca_bundle})
    assert str(caught.value).startswith("ACR_ENDPOINT_TEMPLATE must be an https:// URL containing {loginServer}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "value"), [
    ("ARM_ENDPOINT", "https://127.0.0.1:8443"),
    ("ARM_ENDPOINT", "https://localhost:8443/"),
    ("ACR_ENDPOINT_TEMPLATE", "https://127.0.0.1:8443/registries/{loginServer}"),
])
def test_a_loopback_host_needs_the_ca_bundle(name: str, value: str, ca_bundle: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name} names a loopback host, allowed only with ARM_CA_BUNDLE set")
    assert "\n" not in str(caught.value)
    assert Settings.from_env({name: value, "ARM_CA_BUNDLE": ca_bundle}).arm_ca_bundle == ca_bundle
    # dropping the bundle later (a scenario's settings) is caught too
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value, "ARM_CA_BUNDLE": ca_bundle}).with_overrides({"ARM_CA_BUNDLE": ""})


def test_the_sandbox_settings_of_the_demo_are_accepted(make_sandbox: Any) -> None:
    sb = make_sandbox(world())
    settings = demo_settings(sb, parse_scenario(world(), "test"))
    assert settings.arm_endpoint == sb.arm_endpoint and settings.arm_ca_bundle == sb.ca_bundle
    assert settings.acr_endpoint(LOGIN_SERVER) == sb.registry_endpoint(LOGIN_SERVER)


# --- resource ids: ASCII only -------------------------------------------------------------------

KELVIN = "\u212a"  # KELVIN SIGN: lower-cases to "k", so "rg-\u212aelvin".lower() == "rg-kelvin"
ALLOWED = f"/subscriptions/{SUB}/resourceGroups/rg-kelvin"
LOOKALIKE = (f"/subscriptions/{SUB}/resourceGroups/rg-{KELVIN}elvin/providers/Microsoft.ContainerInstance/"
             "containerGroups/web")


def test_the_kelvin_sign_folds_into_the_allowed_scope_without_the_rule() -> None:
    assert LOOKALIKE.lower().startswith(ALLOWED.lower())  # what fooled the scope check


def test_an_event_for_a_kelvin_sign_resource_id_is_refused_in_one_line() -> None:
    event = eventgrid_failure()
    event["subject"] = event["data"]["resourceUri"] = LOOKALIKE
    with pytest.raises(InputError) as caught:
        parse_event(event)
    assert str(caught.value) == ("event.data.resourceUri: resource id contains the non-ASCII character U+212A; "
                                 "only ASCII resource ids are accepted")
    with pytest.raises(InputError, match=r"^resourceId: resource id contains the non-ASCII character U\+212A"):
        signal_for_resource(LOOKALIKE)
    assert ascii_only(ALLOWED) == ALLOWED


def test_the_scope_check_refuses_a_kelvin_sign_resource_id() -> None:
    settings = Settings.from_env({"REMEDIATION_ALLOWED_SCOPES": ALLOWED})
    assert not settings.allows_scope(LOOKALIKE)
    assert settings.allows_scope(LOOKALIKE.replace(KELVIN, "k"))
    signal = FailureSignal(resource_id=LOOKALIKE, subscription_id=SUB, resource_group=f"rg-{KELVIN}elvin", name="web")
    refusal = early_refusal(signal, settings, trigger="eventgrid")
    assert refusal == "the container group is outside REMEDIATION_ALLOWED_SCOPES"


def test_allowed_scopes_must_be_ascii() -> None:
    with pytest.raises(SettingsError, match=r"^REMEDIATION_ALLOWED_SCOPES must list ASCII resource ids"):
        Settings.from_env({"REMEDIATION_ALLOWED_SCOPES": f"/subscriptions/{SUB}/resourceGroups/rg-{KELVIN}elvin"})


def test_the_sweep_leaves_out_groups_whose_id_is_not_ascii() -> None:
    def group(name: str) -> SimpleNamespace:
        gid = f"/subscriptions/{SUB}/resourceGroups/{name}/providers/Microsoft.ContainerInstance/containerGroups/web"
        return SimpleNamespace(id=gid, image_registry_credentials=[SimpleNamespace(identity="x")])

    listed = [group("rg-kelvin"), group(f"rg-{KELVIN}elvin")]
    clients = SimpleNamespace(container_instance=lambda _sub: SimpleNamespace(
        container_groups=SimpleNamespace(list=lambda: listed)))
    assert groups_pulling_with_identity(cast(AzureClients, clients), [f"/subscriptions/{SUB}"]) == [listed[0].id]

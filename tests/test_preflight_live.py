"""``preflight --live`` against the sandbox: the real gatherer reads the world around a declared group
(registries, RBAC, images), read-only, and finds what offline cannot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.identity
import pytest
import yaml

from remediation.__main__ import main
from sandbox import Sandbox, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
GROUP = "Microsoft.ContainerInstance/containerGroups"


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_sandbox: Callable[[Any], Sandbox]) -> Any:
    """The default scenario's world (its identity has no pull role) and a YAML of its container group,
    with a second container whose tag the registry does not hold."""
    scenario = load_scenario(ROOT / "scenarios" / "missing-acrpull.json")
    body = json.loads(json.dumps(scenario.failed_write["body"]))
    extra = json.loads(json.dumps(body["properties"]["containers"][0]))
    extra["name"] = "worker"
    extra["properties"]["image"] = "myacr.azurecr.io/pythonworker:v9"
    extra["properties"].pop("ports", None)
    body["properties"]["containers"].append(extra)
    definition = {"apiVersion": "2023-05-01", "name": "acrtestcontainergroup", "type": GROUP, **body}
    path = tmp_path / "group.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    sb = make_sandbox(scenario)  # stopped, and checked for internal errors, after the test
    monkeypatch.setenv("ARM_ENDPOINT", sb.arm_endpoint)
    monkeypatch.setenv("ARM_CA_BUNDLE", sb.ca_bundle)
    monkeypatch.setenv("ACR_ENDPOINT_TEMPLATE", f"{sb.arm_endpoint}/registries/{{loginServer}}")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    # DefaultAzureCredential is the one thing a machine without Azure cannot have: stand in the remediator's
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: sb.remediator_credential())
    return sb, path


def _codes(out: Path) -> list[str]:
    return sorted(f["code"] for f in json.loads(out.read_text())["findings"])


def test_live_finds_what_offline_cannot_and_only_reads(live: Any, tmp_path: Path) -> None:
    sb, path = live
    offline, online = tmp_path / "offline.json", tmp_path / "live.json"
    assert main(["preflight", str(path), "--format", "json", "--output", str(offline)]) == 0
    assert _codes(offline) == []  # the registry and the identity are not declared in the file: unknown offline
    before = len(sb.world.request_log)
    assert main(["preflight", str(path), "--live", "--resource-group", "myResourceGroup", "--format", "json",
                 "--output", str(online)]) == 1
    assert _codes(online) == ["ACR_IMAGE_NOT_FOUND", "ACR_PULL_PERMISSION_MISSING"]
    calls = sb.world.request_log[before:]
    assert calls
    writes = [(c.method, c.path) for c in calls if c.method != "GET" and "/oauth2/" not in c.path]
    assert writes == [], writes  # GETs and lists only, and the registry's token exchange
    # nothing was written yet, so neither the Activity Log nor the deployments are read
    assert not [c.path for c in calls if "microsoft.insights" in c.path.lower() or "/deployments" in c.path.lower()]
    assert sb.world.writes(sb.world.remediator) == []


def test_a_registry_neither_declared_nor_in_azure_is_not_found_live(live: Any, tmp_path: Path) -> None:
    _, path = live
    definition = yaml.safe_load(path.read_text())
    for container in definition["properties"]["containers"]:
        container["properties"]["image"] = "newacr.azurecr.io/pythonworker:v1"
    definition["properties"]["imageRegistryCredentials"][0]["server"] = "newacr.azurecr.io"
    template = tmp_path / "group.json"
    template.write_text(json.dumps(definition))
    out = tmp_path / "live.json"
    # a container group file declares no registry: live, the missing one is reported
    assert main(["preflight", str(template), "--live", "--resource-group", "myResourceGroup", "--format", "json",
                 "--output", str(out)]) == 1
    assert _codes(out) == ["ACR_NOT_FOUND"]


def test_live_needs_a_subscription_and_a_resource_group(live: Any, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, path = live
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    assert main(["preflight", str(path), "--live", "--resource-group", "myResourceGroup"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--subscription" in err


def test_a_registry_declared_beside_the_group_is_being_created_not_missing(live: Any) -> None:
    import os

    from remediation.azure.clients import AzureClients
    from remediation.preflight.context import default_id
    from remediation.preflight.live import live_file
    from remediation.preflight.model import Declared, Definitions, Location, key_of
    from remediation.settings import Settings

    sb, path = live
    definition = yaml.safe_load(path.read_text())
    body = {k: definition[k] for k in ("location", "identity", "properties")}
    for container in body["properties"]["containers"]:
        container["properties"]["image"] = "newacr.azurecr.io/pythonworker:v1"
    body["properties"]["imageRegistryCredentials"][0]["server"] = "newacr.azurecr.io"
    registry_type = "Microsoft.ContainerRegistry/registries"
    declared = (
        Declared(key_of(registry_type, "newacr"), registry_type, "newacr", Location("main.bicep", 1),
                 default_id(registry_type, "newacr"), body={"sku": {"name": "Basic"}, "properties": {}}),
        Declared(key_of(GROUP, "acrtestcontainergroup"), GROUP, "acrtestcontainergroup", Location("main.bicep", 9),
                 default_id(GROUP, "acrtestcontainergroup"), api_version="2023-05-01", body=body),
    )
    settings = Settings.from_env(os.environ)
    clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                           registry_endpoint_template=settings.acr_endpoint_template)
    try:
        findings, notes = live_file(Definitions("main.bicep", "bicep", declared), clients=clients, settings=settings,
                                    subscription=SUBSCRIPTION, resource_group="myResourceGroup")
    finally:
        clients.close()
    assert [f.code for f in findings] == []
    assert all(n.message for n in notes)

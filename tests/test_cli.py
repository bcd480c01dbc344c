"""``python -m remediation …``: exit codes, one-line errors, and the real-Azure commands run
against the sandbox (only the endpoint, the CA bundle and the credential differ)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import azure.identity
import pytest

from remediation.__main__ import main
from remediation.demo import user_write
from sandbox import Sandbox, load_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_demo_json_prints_only_the_report_and_exits_0() -> None:
    out = subprocess.run([sys.executable, "-m", "remediation", "demo", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["outcome"] == "remediated" and report["schemaVersion"] == 1
    assert {n["channel"]: n["status"] for n in report["notifications"]} == {
        "teams": "sent", "slack": "sent", "webhook": "sent", "eventgrid": "sent"}


def test_demo_exits_1_when_expect_does_not_match(tmp_path: Path) -> None:
    data = json.loads((ROOT / "scenarios" / "missing-acrpull.json").read_text())
    data["expect"]["outcome"] = "diagnosed"
    scenario = tmp_path / "wrong.json"
    scenario.write_text(json.dumps(data))
    dump = tmp_path / "state.json"
    assert main(["demo", "--scenario", str(scenario), "--json", "--dump-state", str(dump)]) == 1
    resources = json.loads(dump.read_text())["resources"]
    assert any(r["type"] == "Microsoft.ContainerInstance/containerGroups" for r in resources)


@pytest.mark.parametrize("args, words", [
    (["demo", "--scenario", "no/such/file.json"], "no such scenario file"),
    (["demo", "--scenario", "README.md"], "not valid JSON"),
])
def test_demo_bad_input_exits_2_with_one_line(args: list[str], words: str) -> None:
    out = subprocess.run([sys.executable, "-m", "remediation", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and words in out.stderr


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The failed default scenario in a sandbox, with the CLI's Azure settings pointing at it."""
    scenario = load_scenario(ROOT / "scenarios" / "missing-acrpull.json")
    with Sandbox(scenario) as sb:
        assert user_write(sb, scenario) is not None
        # whole seconds, as ARM sends: the CLI's clients keep the SDK's own polling interval
        sb.world.behaviour["pollRetryAfterSeconds"] = 1
        monkeypatch.setenv("ARM_ENDPOINT", sb.arm_endpoint)
        monkeypatch.setenv("ARM_CA_BUNDLE", sb.ca_bundle)
        monkeypatch.setenv("ACR_ENDPOINT_TEMPLATE", f"{sb.arm_endpoint}/registries/{{loginServer}}")
        monkeypatch.setenv("REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS", "5")
        monkeypatch.setenv("REMEDIATION_REDEPLOY_BUDGET_SECONDS", "30")
        # DefaultAzureCredential is the one thing a machine without Azure cannot have: stand in the remediator's.
        monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: sb.remediator_credential())
        yield sb, scenario.failed_write["resourceId"]


def test_diagnose_reads_and_never_writes(azure_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sb, resource_id = azure_env
    assert main(["diagnose", resource_id, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trigger"] == "cli" and report["outcome"] == "dry-run"
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert sb.world.writes(sb.world.remediator) == []


def test_remediate_fixes_and_redeploys(azure_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sb, resource_id = azure_env
    assert main(["remediate", resource_id]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcome"] == "remediated"
    assert sb.world.get(resource_id)["properties"]["provisioningState"] == "Succeeded"


def test_remediate_rejects_a_resource_that_is_not_a_container_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remediate", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1

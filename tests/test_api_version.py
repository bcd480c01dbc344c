"""The ACI api-version the app deploys with is one constant, ``model.CURRENT_ACI_API_VERSION``: the
redeploy sends it, and the report's commands name it when an action carries none."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest

from remediation import model
from remediation.azure import redeploy
from remediation.demo import demo_settings, engine_for
from remediation.model import Action
from remediation.report import commands_for
from remediation.signal import parse_event
from sandbox import Sandbox, load_scenario
from tests.worlds import GROUP_ID, failed_event

ROOT = Path(__file__).resolve().parents[1]
OTHER = "2022-09-01"
"""An api-version the sandbox accepts for identity credentials, other than the current one."""


@pytest.mark.parametrize("version", [model.CURRENT_ACI_API_VERSION, OTHER])
def test_the_redeploy_puts_with_the_constant(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redeploy, "CURRENT_ACI_API_VERSION", version)
    scenario = load_scenario(ROOT / "scenarios" / "missing-acrpull.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = engine_for(sb, scenario, demo_settings(sb, scenario)).run(parse_event(event), trigger="eventgrid")
        remediator = sb.world.remediator.lower()
        puts = [r for r in sb.world.request_log if r.method == "PUT" and "/containergroups/" in r.path.lower()
                and (r.caller or "").lower() == remediator]
    assert report["outcome"] == "remediated"
    assert report["redeploy"]["detail"] == f"running (api-version {version})"
    assert puts, "the remediator redeployed"
    assert {parse_qs(r.query)["api-version"][0] for r in puts} == {version}


def test_a_proposed_definition_without_an_api_version_is_put_with_the_constant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proposal = Action(kind="propose-definition", target=GROUP_ID, detail="", params={"definition": {}})
    (command,) = commands_for([proposal])
    assert f"api-version={model.CURRENT_ACI_API_VERSION}" in command
    monkeypatch.setattr("remediation.actions.propose_definition.CURRENT_ACI_API_VERSION", OTHER)
    (command,) = commands_for([proposal])
    assert f"api-version={OTHER}" in command

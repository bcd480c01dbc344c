"""The engine end to end in the sandbox: every bundled scenario, through the real SDK clients."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from remediation import engine as engine_module
from remediation.demo import demo_settings, engine_for, later_writes, run, user_write
from remediation.plan import plan as real_plan
from remediation.plan import redeploy_action
from remediation.policy import SWEEP_NOTE
from remediation.report import find_secrets, validate_report
from remediation.signal import parse_event, signal_for_resource
from sandbox import USER_PRINCIPAL, Sandbox, load_scenario
from sandbox.scenario import bundled_scenarios
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = bundled_scenarios()


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_matches_expect(path: Path) -> None:
    result = run(path, virtual_clock=True)
    assert result.matched, result.mismatches
    for report in result.reports:
        validate_report(report)
        assert find_secrets(report) == []
    # the secure value a scenario sets never reaches a report
    assert "s3cr3t" not in json.dumps(result.reports)


def test_abac_fix_is_a_repository_reader_conditioned_to_the_pulled_repository() -> None:
    result = run(ROOT / "scenarios/abac-repository-permissions.json", virtual_clock=True)
    assert result.matched, result.mismatches
    identity = "aaaaaaaa-0000-0000-0000-000000000001"
    readers = [r["properties"] for r in result.world
               if r["type"] == "Microsoft.Authorization/roleAssignments"
               and r["properties"]["principalId"] == identity
               and r["properties"]["roleDefinitionId"].endswith("/b93aa761-3e63-49ed-ac28-beffa264f7ac")]
    (reader,) = readers
    assert reader["scope"].endswith("/registries/myacr")
    assert reader["conditionVersion"] == "2.0"
    assert reader["condition"] == (
        "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND "
        "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR "
        "(@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'pythonworker'))")


def _engine(sb: Sandbox, scenario, settings=None):
    """The scenario's engine, waiting on the sandbox clock (propagation and log lag pass at once)."""
    return engine_for(sb, scenario, settings or demo_settings(sb, scenario), virtual_clock=True)




def _remediator_calls(sb: Sandbox) -> list:
    return [r for r in sb.world.request_log if (r.caller or "").lower() == sb.world.remediator.lower()]


def test_second_run_on_the_same_failure_writes_nothing() -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = _engine(sb, scenario)
        first = engine.run(parse_event(event), trigger="eventgrid")
        assert first["outcome"] == "remediated"
        writes_after_first = len(sb.world.writes(sb.world.remediator))
        assert writes_after_first == 2  # the role assignment and the redeploy
        second = engine.run(parse_event(event), trigger="replay")
        assert second["outcome"] == "skipped"
        assert len(sb.world.writes(sb.world.remediator)) == writes_after_first


def test_out_of_scope_makes_no_call_at_all() -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        settings = demo_settings(sb, scenario).with_overrides(
            {"REMEDIATION_ALLOWED_SCOPES": "/subscriptions/00000000-0000-0000-0000-000000000002"})
        report = _engine(sb, scenario, settings).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "skipped"
        assert "REMEDIATION_ALLOWED_SCOPES" in report["skipReason"]
        assert _remediator_calls(sb) == []


def test_dry_run_reads_but_never_writes() -> None:
    scenario = load_scenario(ROOT / "scenarios/two-causes-acrpull-and-network.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        settings = demo_settings(sb, scenario).with_overrides({"REMEDIATION_DRY_RUN": "true"})
        report = _engine(sb, scenario, settings).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "dry-run"
        assert {a["kind"] for a in report["actions"] if a["status"] == "planned"} >= {
            "assign-role", "enable-trusted-services"}
        calls = _remediator_calls(sb)
        assert calls, "a dry run still diagnoses"
        assert all(r.method == "GET" or r.path.lower().endswith(("/oauth2/exchange", "/oauth2/token",
                                                                  "/exporttemplate")) for r in calls)


def test_loop_guard_skips_the_remediators_own_failure() -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        claims = event["data"]["claims"]
        claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] = sb.world.remediator
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "skipped" and "loop guard" in report["skipReason"]
        assert _remediator_calls(sb) == []


def test_throttled_role_assignment_write_is_retried_by_the_sdk() -> None:
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    data["behaviour"]["faults"] = [{"match": "PUT */roleAssignments/*", "status": 429, "retryAfter": 1, "times": 1}]
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated"
        statuses = [r.status for r in _remediator_calls(sb) if "/roleassignments/" in r.path.lower()
                    and r.method == "PUT"]
        assert statuses == [429, 201]


def test_remediator_without_the_delegation_role_fails_cleanly() -> None:
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    data["resources"] = [r for r in data["resources"] if not (
        r["type"] == "Microsoft.Authorization/roleAssignments"
        and r["properties"]["roleDefinitionId"].endswith("f58310d9-a9f6-439a-9e8d-f62e7b41a168"))]
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "failed"
        assign = next(a for a in report["actions"] if a["kind"] == "assign-role")
        assert assign["status"] == "failed" and "AuthorizationFailed" in assign["detail"]
        redeploy = next(a for a in report["actions"] if a["kind"] == "redeploy")
        assert redeploy["status"] == "skipped"


def load_scenario_from(data: dict):
    from sandbox import parse_scenario

    return parse_scenario(data, "test")


def test_one_structured_log_record_per_stage_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    scenario = load_scenario(ROOT / "scenarios/definition-secrets-not-logged.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = _engine(sb, scenario)
        with caplog.at_level("INFO", logger="remediation"):
            engine.run(parse_event(event), trigger="eventgrid")
    stages = [r for r in caplog.records if getattr(r, "stage", None)]
    assert [r.stage for r in stages] == ["context", "findings", "plan", "apply", "redeploy"]
    for record in stages:
        assert record.resourceId == event["subject"]
        assert record.correlationId == event["data"]["correlationId"]
        assert record.eventId == event["id"]
    assert "s3cr3t" not in "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)


def test_an_identity_the_group_does_not_have_is_never_granted_pull() -> None:
    data = json.loads((ROOT / "scenarios/identity-not-attached.json").read_text())
    other = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/" \
            "Microsoft.ManagedIdentity/userAssignedIdentities/myACRIdt"
    data["resources"].append({
        "id": other, "name": "myACRIdt", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": "eastus", "properties": {"principalId": "aaaaaaaa-0000-0000-0000-00000000000f",
                                             "clientId": "aaaaaaaa-0000-0000-0000-0000000000cf",
                                             "tenantId": data["tenantId"]}})
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert "ACI_IDENTITY_NOT_ATTACHED" in [c["code"] for c in report["causes"]]
        assert sb.world.writes(sb.world.remediator) == []
        assert report["outcome"] == "diagnosed"


def test_the_redeploy_puts_the_recorded_json_not_what_the_sdk_model_knows() -> None:
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    props = data["failedWrite"]["body"]["properties"]
    props["containers"][0]["properties"]["configMap"] = {"keyValuePairs": {"mode": "blue"}}
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated"
        put = [r for r in sb.world.writes(sb.world.remediator) if "/containergroups/" in r.path.lower()]
        assert len(put) == 1
        # what the redeploy sent, as the Activity Log recorded its request (the stored group keeps only
        # what api-version 2023-05-01 defines, as ACI does; configMap is a later version's)
        sent = [json.loads(e.record["properties"]["requestbody"]) for e in sb.world.activity
                if e.record["caller"] == sb.world.remediator and e.record["status"]["value"] == "Started"
                and "/containergroups/" in e.record["resourceId"].lower()]
        assert [b["properties"]["containers"][0]["properties"].get("configMap") for b in sent] == [
            {"keyValuePairs": {"mode": "blue"}}]


def test_redeploy_needs_the_right_to_assign_the_identity() -> None:
    data = json.loads((ROOT / "scenarios" / "missing-acrpull.json").read_text())
    for role in data["roleDefinitions"]:
        for perm in role["properties"]["permissions"]:
            perm["actions"] = [a for a in perm["actions"] if not a.endswith("userAssignedIdentities/assign/action")]
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "failed"
        assert "LinkedAuthorizationFailed" in report["error"]


# --- the gate decides every write: plans the engine once filtered itself reach the gate and are refused ---


def _grant_at_the_resource_group(actions: list, ctx) -> list:
    grant = next(a for a in actions if a.kind == "assign-role")
    group_scope = grant.target.split("/providers/")[0]
    return [replace(grant, target=group_scope, params={**grant.params, "scope": group_scope}), *actions[1:]]


@pytest.mark.parametrize("tamper, replayed, refusal", [
    (lambda actions, ctx: actions, True, "REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS"),
    (_grant_at_the_resource_group, False, "refused: role assignments are made only on a registry"),
], ids=["replayed-definition", "grant-at-resource-group"])
def test_the_gate_refuses_a_plan_the_engine_once_filtered(
    monkeypatch: pytest.MonkeyPatch, tamper, replayed: bool, refusal: str
) -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    monkeypatch.setattr(engine_module, "plan", lambda findings, ctx: tamper(real_plan(findings, ctx), ctx))
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        definition = json.loads(json.dumps(scenario.failed_write["body"])) if replayed else None
        signal = signal_for_resource(event["subject"], definition=definition) if replayed else parse_event(event)
        report = engine_for(sb, scenario, demo_settings(sb, scenario)).run(signal, trigger="replay")
        assert [a["kind"] for a in report["actions"]] == ["assign-role", "redeploy"]
        assert all(a["status"] == "skipped" for a in report["actions"])
        assert refusal in report["actions"][0]["detail"]
        assert sb.world.writes(sb.world.remediator) == []
        assert report["outcome"] == "diagnosed"


def test_the_gate_leaves_a_sweeps_redeploy_out(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario(ROOT / "scenarios/healthy.json")
    # a redeploy that is a fix of its own (as for an old api-version), which the gate would otherwise allow
    monkeypatch.setattr(engine_module, "plan",
                        lambda findings, ctx: [redeploy_action(ctx, cause="ACI_API_VERSION_TOO_OLD")])
    with Sandbox(scenario) as sb:
        assert user_write(sb, scenario) is None  # the group deploys and runs
        sb.world.settle()
        signal = signal_for_resource(scenario.failed_write["resourceId"], schema="sweep")
        report = engine_for(sb, scenario, demo_settings(sb, scenario)).run(signal, trigger="sweep")
        assert report["actions"] == [] and SWEEP_NOTE in report["notes"]
        assert sb.world.writes(sb.world.remediator) == []


# --- the trust rules (CONTRACT.md §1, "Who may be given a fix") end to end ---------------------------------


def test_a_confused_deputy_gets_no_grant_no_bypass_and_the_report_says_what_it_lacks() -> None:
    scenario = load_scenario(ROOT / "scenarios/confused-deputy.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")
        assert sb.world.writes(sb.world.remediator) == []
        registry = sb.world.registry_by_login_server("lockedacr.azurecr.io")
        assert registry["properties"]["networkRuleBypassOptions"] == "None"
    assert report["outcome"] == "diagnosed"
    lacks = {c["code"]: c["evidence"]["deployer"]["lacks"] for c in report["causes"]}
    assert lacks == {"ACR_PULL_PERMISSION_MISSING": "Microsoft.ContainerRegistry/registries/pull/read",
                     "ACR_TRUSTED_SERVICES_DISABLED": "Microsoft.ContainerRegistry/registries/write"}
    assert all(c["evidence"]["deployer"]["principalId"] == USER_PRINCIPAL for c in report["causes"])
    commands = " ".join(report["commands"])
    assert "az role assignment create" in commands and "--allow-trusted-services true" in commands


def _with_later_writes(later: list[dict]):
    """The default scenario, with what its owner does after the failure."""
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    data["laterWrites"] = later
    return load_scenario_from(data)


def _newer_version(scenario) -> dict:
    body = json.loads(json.dumps(scenario.failed_write["body"]))
    body["properties"]["containers"][0]["properties"]["image"] = "mcr.microsoft.com/azuredocs/aci-helloworld:latest"
    body["properties"]["imageRegistryCredentials"] = []
    return {"method": "PUT", "apiVersion": "2023-05-01", "body": body}


@pytest.mark.parametrize("then", ["newer-version", "deleted"])
def test_replaying_a_remediated_event_after_the_owner_moved_on_changes_nothing(then: str) -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    later = [_newer_version(scenario)] + ([{"method": "DELETE"}] if then == "deleted" else [])
    scenario = _with_later_writes(later)
    group = scenario.failed_write["resourceId"]
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        assert _engine(sb, scenario).run(parse_event(event), trigger="eventgrid")["outcome"] == "remediated"
        written = len(sb.world.writes(sb.world.remediator))
        later_writes(sb, scenario)  # the owner deploys a newer version (and deletes the group)
        replays = [_engine(sb, scenario).run(parse_event(event), trigger="replay"),
                   _engine(sb, scenario).run(signal_for_resource(group), trigger="replay")]
        assert len(sb.world.writes(sb.world.remediator)) == written  # no rollback, no resurrection
        now = sb.world.get(group)
        if then == "deleted":
            assert now is None
        else:
            assert now["properties"]["containers"][0]["properties"]["image"].startswith("mcr.microsoft.com/")
    for report in replays:
        assert report["outcome"] == "diagnosed", report
        assert all(a["status"] == "skipped" and "no longer the group's latest intent" in a["detail"]
                   for a in report["actions"])


def test_a_forged_replay_naming_the_remediator_cannot_silence_a_genuine_failure() -> None:
    scenario = load_scenario(ROOT / "scenarios/missing-acrpull.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        event["data"]["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] = sb.world.remediator
        report = _engine(sb, scenario).run(parse_event(event), trigger="replay")
    assert report["outcome"] == "remediated"  # the Activity Log's caller is the user, whatever the body claims


def test_the_loop_guard_reads_the_activity_log_even_when_the_claims_name_someone_else() -> None:
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    data["deployer"] = data["remediator"]  # the app's own write failed (a redeploy of its own)
    scenario = load_scenario_from(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        event["data"]["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] = USER_PRINCIPAL
        writes = len(sb.world.writes(sb.world.remediator))
        reports = [_engine(sb, scenario).run(parse_event(event), trigger="eventgrid"),
                   _engine(sb, scenario).run(signal_for_resource(event["subject"]), trigger="replay")]
        assert len(sb.world.writes(sb.world.remediator)) == writes
    for report in reports:
        assert report["outcome"] == "skipped" and "loop guard" in report["skipReason"]


def test_an_identity_the_deployer_never_attached_is_not_attached_even_when_fixes_may_be_applied() -> None:
    scenario = load_scenario(ROOT / "scenarios/identity-attach-refused.json")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        settings = demo_settings(sb, scenario)
        assert settings.apply_definition_fixes
        report = _engine(sb, scenario, settings).run(parse_event(event), trigger="eventgrid")
        assert sb.world.writes(sb.world.remediator) == []
        assert sb.world.get(scenario.failed_write["resourceId"]) is None
    assert report["outcome"] == "diagnosed"
    proposal = next(a for a in report["actions"] if a["kind"] == "propose-definition")
    assert "never attaches an identity" in proposal["detail"]
    assert "platform-admin" in json.dumps(report["proposedDefinition"]["identity"])  # proposed, for a person

"""The report: contract keys, every outcome, secret scrubbing, validation."""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediation.model import Action, ErrorInfo, RedeployResult
from remediation.plan import plan
from remediation.report import (
    REQUIRED_KEYS,
    ReportError,
    build_report,
    commands_for,
    find_secrets,
    outcome_for,
    scrub,
    validate_report,
)
from tests.test_plan import finding, make_ctx, make_registry, pull_finding
from tests.worlds import GROUP_ID, IDENTITY_PRINCIPAL, REGISTRY_ID, SUB, group_body

OWNER = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
SUCCEEDED = RedeployResult("succeeded", attempts=2)


def planned() -> list[Action]:
    return plan([pull_finding()], make_ctx())


def with_status(actions: list[Action], status: str, kinds: tuple[str, ...] = ("assign-role",)) -> list[Action]:
    return [replace(a, status=status) if a.kind in kinds else a for a in actions]  # type: ignore[arg-type]


# --- outcomes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"actions": planned(), "redeploy": None, "error": "ARM unreachable"}, "failed"),
        ({"actions": with_status(planned(), "failed"), "redeploy": None}, "failed"),
        ({"actions": with_status(planned(), "applied"), "redeploy": RedeployResult("failed", 3)}, "failed"),
        ({"actions": planned(), "redeploy": None, "skip_reason": "opted out"}, "skipped"),
        ({"actions": planned(), "redeploy": None, "dry_run": True}, "dry-run"),
        (
            {"actions": with_status(planned(), "applied", ("assign-role", "redeploy")), "redeploy": SUCCEEDED},
            "remediated",
        ),
        ({"actions": [replace(planned()[-1], status="applied")], "redeploy": SUCCEEDED}, "remediated"),
        ({"actions": with_status(planned()[:1], "applied"), "redeploy": None}, "fixed-awaiting-redeploy"),
        (
            {"actions": with_status(planned(), "applied"), "redeploy": RedeployResult("skipped")},
            "fixed-awaiting-redeploy",
        ),
        ({"actions": with_status(planned(), "skipped", ("assign-role", "redeploy")), "redeploy": None}, "diagnosed"),
        ({"actions": [], "redeploy": None}, "diagnosed"),
    ],
)
def test_outcome_for_every_outcome(kwargs: dict[str, Any], expected: str) -> None:
    assert outcome_for(**kwargs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error": "ARM unreachable"},
        {"skip_reason": "not an image-pull failure", "findings": []},
        {"dry_run": True},
        {"actions": with_status(planned(), "applied", ("assign-role", "redeploy")), "redeploy": SUCCEEDED},
        {"actions": with_status(planned()[:1], "applied")},
        {"actions": with_status(planned(), "skipped", ("assign-role", "redeploy"))},
        {"actions": with_status(planned(), "failed")},
    ],
)
def test_built_reports_validate_for_every_outcome(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"findings": [pull_finding()], "actions": planned()}
    report = build_report(resource_id=GROUP_ID, trigger="eventgrid", **{**base, **kwargs})
    validate_report(report)
    assert report["outcome"] == outcome_for(
        actions=kwargs.get("actions", base["actions"]),
        redeploy=kwargs.get("redeploy"),
        dry_run=kwargs.get("dry_run", False),
        skip_reason=kwargs.get("skip_reason"),
        error=kwargs.get("error"),
    )
    if report["outcome"] == "failed":
        assert report["error"]


def test_report_has_the_contract_shape_and_useful_extras() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    actions = with_status(planned(), "applied", ("assign-role", "redeploy"))
    report = build_report(
        resource_id=GROUP_ID,
        trigger="replay",
        correlation_id="corr-1",
        error_code="InaccessibleImage",
        error_message="The image 'myacr.azurecr.io/pythonworker:v1' ... is not accessible.",
        findings=[pull_finding()],
        actions=actions,
        redeploy=SUCCEEDED,
        notifications=[{"channel": "teams", "status": "sent"}, {"channel": "slack", "status": "disabled"}],
        event_id="evt-1",
        started_at=start,
        finished_at=start + timedelta(seconds=42.5),
        timings={"gather": 1.23456, "redeploy": 40.0},
    )
    validate_report(report)
    assert [k for k in REQUIRED_KEYS if k not in report] == []
    assert report["schemaVersion"] == 1 and report["outcome"] == "remediated"
    assert report["causes"][0]["code"] == "ACR_PULL_PERMISSION_MISSING" and report["causes"][0]["fixable"] is True
    assert report["causes"][0]["evidence"]["registryId"] == REGISTRY_ID
    assert [(a["kind"], a["status"]) for a in report["actions"]] == [
        ("assign-role", "applied"),
        ("redeploy", "applied"),
    ]
    assert report["actions"][0]["params"]["principalId"] == IDENTITY_PRINCIPAL
    assert report["redeploy"] == {"status": "succeeded", "attempts": 2}
    assert report["notifications"][1] == {"channel": "slack", "status": "disabled"}
    assert (report["eventId"], report["durationSeconds"]) == ("evt-1", 42.5)
    assert report["timings"] == {"gather": 1.235, "redeploy": 40.0}
    assert "commands" not in report  # everything was applied
    json.dumps(report)


def test_commands_are_offered_only_for_safe_actions_left_to_a_person() -> None:
    ctx = make_ctx(body=_ambiguous_body())
    actions = plan([pull_finding(), finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)], ctx)
    commands = commands_for(with_status(actions, "skipped"))
    assert any(c.startswith("az role assignment create") and f"--scope {REGISTRY_ID}" in c for c in commands)
    assert any(c.startswith("az rest --method put") and GROUP_ID in c for c in commands)

    grant = actions[0]
    owner = replace(grant, status="skipped", params={**grant.params, "roleDefinitionId": OWNER})
    wide = replace(grant, status="skipped", params={**grant.params, "scope": f"/subscriptions/{SUB}"})
    assert commands_for([owner, wide]) == []
    assert commands_for(with_status(actions[:1], "applied")) == []


def test_a_conditioned_repository_reader_command_carries_its_condition_shell_quoted() -> None:
    ctx = make_ctx(registries=[make_registry(abac=True)])
    (grant,) = [a for a in plan([pull_finding(code="ACR_ABAC_REPOSITORY_PERMISSIONS")], ctx) if a.kind == "assign-role"]
    (command,) = commands_for(with_status([grant], "skipped"))
    words = shlex.split(command)
    assert words[words.index("--condition") + 1] == grant.params["condition"]
    assert words[words.index("--condition-version") + 1] == "2.0"
    assert words[words.index("--scope") + 1] == REGISTRY_ID


def test_proposed_definition_is_reported_separately() -> None:
    actions = plan([finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)], make_ctx(body=_ambiguous_body()))
    report = build_report(resource_id=GROUP_ID, trigger="cli", actions=actions)
    validate_report(report)
    cred = report["proposedDefinition"]["properties"]["imageRegistryCredentials"][0]
    assert "username" not in cred and "password" not in cred
    assert "definition" not in report["actions"][0]["params"]


def _ambiguous_body() -> dict[str, Any]:
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0].update(username="admin", password="p@ss-in-body")
    return body


# --- secrets ----------------------------------------------------------------------------------------

JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."
    "eyJvaWQiOiJhYWFhIiwidGlkIjoiYmJiYiIsImF1ZCI6Imh0dHBzOi8vbWFuYWdlbWVudC5henVyZS5jb20ifQ."
    "c2lnbmF0dXJlLXBhcnQ"
)
PLANTED = {
    "password": "hunter2-registry-password",
    "secure": "secure-env-value-123",
    "envpw": "plain-env-password-456",
    # assembled at run time so the repository never holds a string shaped like a real webhook
    "slack": "https://hooks.slack.com/services/" + "T0001/B0001/" + "slackSecretXYZ",
    "teams": "https://contoso.webhook.office.com/webhookb2/aaaa@bbbb/IncomingWebhook/teamsSecret/cccc",
    "workflow": "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=wfSig",
    "sas": "sv=2022-11-02&sig=sasSignatureValue%3D",
    "accountkey": "c3RvcmFnZS1hY2NvdW50LWtleQ==",
    "generic": "https://alerts.example.org/hooks/generic-known-secret",
    "basic": "https://deploy:basicAuthPassword@git.example.com/repo.git",
    "bearer": "Bearer opaque.access.token-value",
    "signing": "webhook-signing-secret-789",
    "topic": "eventgrid-topic-key-000",
}


def planted_report() -> dict[str, Any]:
    """A report with secrets planted in every free-form place a run could put them."""
    body = group_body()
    props = body["properties"]
    props["imageRegistryCredentials"][0].update(username="admin", password=PLANTED["password"])
    props["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "API_SECRET_VALUE", "secureValue": PLANTED["secure"]},
        {"name": "DB_PASSWORD", "value": PLANTED["envpw"]},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]
    proposal = Action(
        kind="propose-definition",
        target=GROUP_ID,
        detail=f"see {PLANTED['workflow']}",
        params={"definition": body, "apiVersion": "2023-05-01"},
    )
    grant = replace(planned()[0], detail=f"token {JWT}", status="failed")
    return build_report(
        resource_id=GROUP_ID,
        trigger="eventgrid",
        correlation_id="corr-2",
        error_code="InaccessibleImage",
        error_message=json.dumps({"requestbody": json.dumps({"password": PLANTED["password"]})}),
        findings=[
            replace(
                pull_finding(),
                summary=f"blob {PLANTED['sas']} with {PLANTED['bearer']}",
                evidence={
                    "connection": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={PLANTED['accountkey']}",
                    "clientSecret": "client-secret-inline",
                    "nested": [{"webhookUrl": PLANTED["generic"]}, {"repo": PLANTED["basic"]}],
                    "accessToken": JWT,
                },
            )
        ],
        actions=[grant, proposal],
        redeploy=RedeployResult("failed", 1, detail=f"posted to {PLANTED['slack']}", error=ErrorInfo("X", JWT)),
        notifications=[
            {"channel": "teams", "status": "failed", "detail": f"POST {PLANTED['teams']} answered 400"},
            {"channel": "webhook", "status": "sent", "detail": f"signed with {PLANTED['signing']}"},
            {"channel": "eventgrid", "status": "sent", "detail": f"key {PLANTED['topic']}"},
        ],
        error=f"gave up; last answer from {PLANTED['generic']}",
        notes=[f"token={PLANTED['topic']}", f"Authorization: {PLANTED['bearer']}"],
        secrets=[PLANTED["generic"], PLANTED["signing"], PLANTED["topic"]],
    )


def test_no_planted_secret_survives_anywhere_in_the_report() -> None:
    report = planted_report()
    text = json.dumps(report)
    survivors = [name for name, value in PLANTED.items() if value in text]
    assert survivors == []
    for fragment in (
        "slackSecretXYZ",
        "teamsSecret",
        "wfSig",
        "sasSignatureValue",
        "basicAuthPassword",
        "signature-part",
    ):
        assert fragment not in text
    assert "client-secret-inline" not in text and "c2lnbmF0dXJlLXBhcnQ" not in text
    validate_report(report)
    # What is not secret is kept.
    assert REGISTRY_ID in text and "LOG_LEVEL" in text and '"debug"' in text and "git.example.com" in text


def test_scrub_is_idempotent_and_find_secrets_sees_what_it_removes() -> None:
    raw = {"a": [{"password": "x1x1x1"}, f"Bearer {JWT}", PLANTED["slack"]], "ok": "myacr.azurecr.io"}
    assert sorted(find_secrets(raw)) == ["$.a[0].password", "$.a[1]", "$.a[2]"]
    once = scrub(raw)
    assert scrub(once) == once
    assert find_secrets(once) == []
    assert once["ok"] == "myacr.azurecr.io"
    assert raw["a"][0]["password"] == "x1x1x1"  # the input is not modified


def test_scrub_removes_known_secret_values_anywhere() -> None:
    assert scrub({"x": ["prefix-abcdef-suffix"]}, secrets=["abcdef"]) == {"x": ["prefix-[redacted]-suffix"]}


# --- validation -------------------------------------------------------------------------------------


def valid_report() -> dict[str, Any]:
    report = build_report(resource_id=GROUP_ID, trigger="sweep", findings=[pull_finding()], actions=planned())
    validate_report(report)
    return report


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_validate_rejects_a_missing_required_key(key: str) -> None:
    report = valid_report()
    del report[key]
    with pytest.raises(ReportError, match=f"missing key {key}"):
        validate_report(report)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.update(schemaVersion=2), "schemaVersion"),
        (lambda r: r.update(trigger="timer"), "trigger must be one of"),
        (lambda r: r.update(outcome="fixed"), "outcome must be one of"),
        (lambda r: r.update(resourceId=""), "resourceId"),
        (lambda r: r.update(correlationId=7), "correlationId"),
        (lambda r: r["actions"][0].update(status="done"), r"actions\[0\].status"),
        (lambda r: r["actions"][0].pop("target"), r"actions\[0\].target"),
        (lambda r: r["causes"][0].update(fixable="yes"), r"causes\[0\].fixable"),
        (lambda r: r.update(redeploy={"status": "ok", "attempts": 1}), "redeploy.status"),
        (lambda r: r.update(redeploy={"status": "skipped", "attempts": -1}), "redeploy.attempts"),
        (lambda r: r.update(notifications=[{"channel": "email", "status": "sent"}]), "channel"),
        (lambda r: r.update(notifications=[{"channel": "slack", "status": "ok"}]), r"notifications\[0\].status"),
        (lambda r: r.update(outcome="remediated"), "succeeded redeploy"),
        (lambda r: r.update(outcome="failed"), "say why in error"),
        (lambda r: r.update(outcome="skipped"), "skipReason"),
        (lambda r: (r.update(outcome="dry-run"), r["actions"][0].update(status="applied")), "dry-run"),
        (lambda r: r["causes"][0]["evidence"].update(token=JWT), "secret-looking value"),
        (lambda r: r.update(timings={"x": object()}), "JSON"),
    ],
)
def test_validate_rejects_bad_values(mutate: Any, message: str) -> None:
    report = copy.deepcopy(valid_report())
    mutate(report)
    with pytest.raises(ReportError, match=message):
        validate_report(report)


def test_validate_rejects_a_non_object() -> None:
    with pytest.raises(ReportError, match="JSON object"):
        validate_report([valid_report()])

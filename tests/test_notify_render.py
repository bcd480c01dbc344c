"""Teams cards and Slack messages rendered from real reports: content, limits, escaping.

Teams cards are checked with Microsoft's ``adaptivecards`` library (tests/js/validate_card.js), which
also renders their markdown with markdown-it to see which links and emphasis a reader would get.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediation import demo
from remediation.model import Action, ErrorInfo, Finding, RedeployResult
from remediation.notify import slack, teams
from remediation.notify.summary import encode_json, portal_url
from remediation.report import build_report

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT / "tests" / "js" / "validate_card.js"
NODE = shutil.which("node")
HAVE_NODE_TOOLS = bool(NODE) and (ROOT / "node_modules" / "adaptivecards").is_dir()
SCENARIOS = ["identity-not-attached", "dry-run", "opted-out", "no-recoverable-definition",
             "policy-disables-trusted-services"]
HOSTILE = (
    "<!channel> please [link](http://evil.example/x) *bold* _it_ ~gone~ `code` <http://evil.example|ok> "
    "{{DATE(2017-02-14T06:08:39Z, SHORT)}} a & b\n- list item\n1. numbered"
)


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Reports of real demo runs (outcomes remediated, diagnosed, dry-run, skipped) plus a failed one."""
    out = {"remediated": demo.run(None).reports[-1]}
    for name in SCENARIOS:
        out[name] = demo.run(ROOT / "scenarios" / f"{name}.json").reports[-1]
    out["failed"] = failed_report()
    return out


def failed_report() -> dict[str, Any]:
    rg = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers"
    group = f"{rg}/Microsoft.ContainerInstance/containerGroups/web"
    registry = f"{rg}/Microsoft.ContainerRegistry/registries/acr1"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return build_report(
        resource_id=group,
        trigger="replay",
        correlation_id="c0ffee00-0000-0000-0000-000000000001",
        error_code="InaccessibleImage",
        error_message="The image 'acr1.azurecr.io/web:v1' is not accessible.",
        findings=[Finding("ACR_PULL_PERMISSION_MISSING", "no AcrPull", {"registryId": registry}, True)],
        actions=[
            Action("assign-role", registry, "assign AcrPull: 403 AuthorizationFailed", status="failed"),
            Action("redeploy", group, "redeploy: not attempted", status="skipped"),
        ],
        redeploy=RedeployResult("failed", 3, "still failing", ErrorInfo("InaccessibleImage", "not accessible")),
        started_at=start,
        finished_at=start + timedelta(seconds=125),
    )


def texts(obj: Any) -> str:
    """Every string in a payload, joined: what a reader could see."""
    if isinstance(obj, dict):
        return "\n".join(texts(v) for v in obj.values())
    if isinstance(obj, list):
        return "\n".join(texts(v) for v in obj)
    return obj if isinstance(obj, str) else ""


def walk(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk(v)


def validate(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not HAVE_NODE_TOOLS:
        pytest.skip("node and node_modules/adaptivecards are needed (make test installs them)")
    done = subprocess.run(
        [str(NODE), str(VALIDATOR)], input=json.dumps(messages), capture_output=True, text=True, timeout=60, check=True
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(results) == len(messages)
    return results


def oversized(base: dict[str, Any]) -> dict[str, Any]:
    """A report far past every limit: 300 causes with long evidence, 120 actions, a ~300 KB definition."""
    report = copy.deepcopy(base)
    cause = report["causes"][0]
    report["causes"] = [
        {**cause, "code": f"CAUSE_{i}", "summary": f"cause {i}: " + "x" * 2500,
         "evidence": {**cause["evidence"], **{f"k{j}": "v" * 900 for j in range(20)}}}
        for i in range(300)
    ]
    action = report["actions"][0]
    report["actions"] = [{**action, "detail": f"change {i} " + "d" * 3000} for i in range(120)]
    report["errorMessage"] = "m" * 50_000
    report["notes"] = ["n" * 5000] * 20
    report["warnings"] = ["w" * 5000] * 20
    env = [{"name": f"VAR_{i}", "value": "y" * 1000} for i in range(300)]
    report["proposedDefinition"] = {"location": "eastus", "properties": {"containers": [
        {"name": "c", "properties": {"image": "a.azurecr.io/b:c", "environmentVariables": env}}]}}
    report["commands"] = [f"az thing {i} " + "z" * 4000 for i in range(30)]
    return report


# --- Teams ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["remediated", *SCENARIOS, "failed"])
def test_teams_card_is_a_workflows_envelope_of_a_1_4_card(reports: dict[str, dict[str, Any]], name: str) -> None:
    message = teams.card(reports[name])
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    content = attachment["content"]
    assert content["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    types = {node.get("type") for node in walk(content)}
    assert "Action.Submit" not in types and "Action.Execute" not in types
    assert len(encode_json(message)) <= teams.MAX_BYTES


def test_teams_card_says_what_a_person_needs(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["remediated"]
    content = teams.card(report)["attachments"][0]["content"]
    shown = texts(content)
    assert "✅ Remediated: acrtestcontainergroup" in shown
    assert content["body"][0]["style"] == "good"
    assert "InaccessibleImage" in shown
    assert teams.escape_markdown("ACR_PULL_PERMISSION_MISSING") in shown
    assert teams.escape_markdown(report["causes"][0]["evidence"]["principalId"]) in shown
    assert "**assign\\-role**" not in shown and "**assign-role** on registry myacr: applied" in shown
    assert "succeeded after 1 attempt" in shown
    assert report["correlationId"] in shown
    assert f"{report['durationSeconds']:.1f} s".replace(".", ".") in shown
    portal = [a for a in content["actions"] if a["title"] == "Open in Azure portal"]
    assert portal and portal[0]["url"] == "https://portal.azure.com/#resource" + report["resourceId"]


def test_teams_card_of_a_diagnosis_carries_the_fix(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["identity-not-attached"]
    content = teams.card(report)["attachments"][0]["content"]
    assert content["body"][0]["style"] == "warning"
    runs = [i["text"] for n in walk(content) if n.get("type") == "RichTextBlock" for i in n["inlines"]]
    assert report["commands"][0] in runs  # verbatim, copyable
    (show,) = [a for a in content["actions"] if a["type"] == "Action.ShowCard"]
    (run,) = [i for n in walk(show["card"]) if n.get("type") == "RichTextBlock" for i in n["inlines"]]
    assert json.loads(run["text"]) == report["proposedDefinition"]
    assert "What you need to do" in texts(content)


def test_teams_outcomes_have_distinct_looks(reports: dict[str, dict[str, Any]]) -> None:
    looks = {name: teams.card(r)["attachments"][0]["content"]["body"][0] for name, r in reports.items()}
    assert looks["failed"]["style"] == "attention"
    assert looks["dry-run"]["style"] == "accent"
    assert looks["opted-out"]["items"][0]["text"].startswith("⏭️ Skipped")
    assert "Why it failed" in texts(teams.card(reports["failed"]))
    assert "2 min 5 s" in texts(teams.card(reports["failed"]))


def test_a_policy_warning_reaches_the_teams_card_and_the_slack_message(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["policy-disables-trusted-services"]
    assert report["warnings"], "the scenario's report must carry a policy warning"
    policy = "Deny trusted-services bypass on registries"
    assert policy in report["warnings"][0]
    card_texts = texts(teams.card(report))
    assert "**Warnings:**" in card_texts and policy in card_texts
    slack_text = json.dumps(slack.message(report), ensure_ascii=False)
    assert "*Warnings:*" in slack_text and policy in slack_text


def test_teams_cards_pass_the_adaptivecards_library(reports: dict[str, dict[str, Any]]) -> None:
    names = list(reports)
    results = validate([teams.card(reports[n]) for n in names])
    for name, result in zip(names, results, strict=True):
        assert result["errors"] == [], name
        assert result["warnings"] == [], name
        allowed = ("https://learn.microsoft.com/", "https://portal.azure.com/")
        assert all(link.startswith(allowed) for link in result["links"]), (name, result["links"])


def test_the_validator_catches_what_teams_would_reject() -> None:
    bad_card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "Table", "columns": []}, {"type": "TextBlock", "text": "[x](http://evil.example)"}],
        "actions": [{"type": "Action.Submit", "title": "go"}],
    }
    envelope = {"type": "message", "attachments": [{"contentType": "text/plain", "content": bad_card}]}
    long_text = {"type": "TextBlock", "text": "x" * 30000}
    big = teams.envelope({"type": "AdaptiveCard", "version": "1.4", "body": [long_text]})
    result, too_big = validate([envelope, big])
    errors = "\n".join(result["errors"])
    assert "contentType" in errors and "contentUrl" in errors
    assert "1.5 > 1.4" in errors
    assert "Action.Submit is not supported" in errors
    assert "UnknownActionType" in errors  # from the library, with Action.Submit unregistered
    assert "UnknownElementType" in errors  # Table is a 1.5 element
    assert result["links"] == ["http://evil.example"]
    assert any("over Teams' 28000" in e for e in too_big["errors"])


def test_teams_oversized_report_is_trimmed_and_still_valid(reports: dict[str, dict[str, Any]]) -> None:
    big = oversized(reports["identity-not-attached"])
    assert len(json.dumps(big)) > 1_000_000
    message = teams.card(big)
    assert len(encode_json(message)) <= teams.MAX_BYTES
    shown = texts(message)
    assert "more causes (see the full report)" in shown
    assert "more changes" in shown
    assert "CAUSE\\_0" in shown
    (result,) = validate([message])
    assert result["errors"] == []


def test_teams_trims_to_any_byte_budget(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["identity-not-attached"]
    full = len(encode_json(teams.card(report)))
    for budget in (full - 1, 6000, 4000):
        assert len(encode_json(teams.card(report, max_bytes=budget))) <= budget


# --- Slack ---------------------------------------------------------------------------------------------


def assert_slack_limits(message: dict[str, Any]) -> None:
    assert 0 < len(message["text"]) <= slack.MAX_TEXT
    assert len(message["blocks"]) <= slack.MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= slack.MAX_HEADER
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= slack.MAX_SECTION
            assert len(block.get("fields", [])) <= slack.MAX_FIELDS
            assert all(len(f["text"]) <= slack.MAX_FIELD for f in block.get("fields", []))
        if block["type"] == "context":
            assert all(len(e["text"]) <= slack.MAX_SECTION for e in block["elements"])
        if block["type"] == "actions":
            assert all(len(e["text"]["text"]) <= slack.MAX_BUTTON for e in block["elements"])


@pytest.mark.parametrize("name", ["remediated", *SCENARIOS, "failed"])
def test_slack_message_stays_within_limits(reports: dict[str, dict[str, Any]], name: str) -> None:
    message = slack.message(reports[name])
    assert_slack_limits(message)
    assert message["blocks"][0]["type"] == "header"
    assert message["unfurl_links"] is False


def test_slack_message_says_what_a_person_needs(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["remediated"]
    message = slack.message(report)
    shown = texts(message)
    assert message["text"].startswith("✅ Remediated: acrtestcontainergroup (InaccessibleImage)")
    assert message["blocks"][0]["text"]["text"] == "✅ Remediated: acrtestcontainergroup"
    portal = portal_url(report["resourceId"])
    assert f"<{portal}|acrtestcontainergroup>" in shown
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in message["blocks"][1]["fields"]}
    assert fields["*Error code*"] == "InaccessibleImage"
    assert fields["*Redeploy*"].startswith("✅ succeeded after 1 attempt")
    assert fields["*Correlation id*"] == report["correlationId"]
    assert "*ACR_PULL_PERMISSION_MISSING* (fixable)" in shown
    assert f"• principalId: {report['causes'][0]['evidence']['principalId']}" in shown
    assert "✅ *assign-role* on registry myacr: applied" in shown
    buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert buttons[0]["url"] == portal


def test_slack_message_of_a_diagnosis_carries_the_fix(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["identity-not-attached"]
    shown = texts(slack.message(report))
    assert "*What you need to do*" in shown
    (block,) = [t for t in shown.split("\n*") if t.startswith("What you need to do*")]
    assert "```" in block
    for command in report["commands"]:
        assert slack.escape_code(command) in block
    assert '"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/' in shown
    assert "*Corrected definition*" in shown


def test_slack_oversized_report_is_trimmed(reports: dict[str, dict[str, Any]]) -> None:
    message = slack.message(oversized(reports["identity-not-attached"]))
    assert_slack_limits(message)
    shown = texts(message)
    assert "more causes (see the full report)" in shown
    assert "more evidence items" in shown
    assert "more changes" in shown
    assert "the full definition is in the report" in shown
    assert "more commands" in shown


# --- escaping ------------------------------------------------------------------------------------------


def hostile(report: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(report)
    bad["causes"][0]["summary"] = HOSTILE
    bad["causes"][0]["evidence"]["note *x*"] = HOSTILE
    bad["errorMessage"] = HOSTILE
    bad["actions"][0]["detail"] = HOSTILE
    bad["notes"] = [HOSTILE]
    bad["warnings"] = [HOSTILE]
    return bad


def test_slack_escapes_hostile_text(reports: dict[str, dict[str, Any]]) -> None:
    message = slack.message(hostile(reports["remediated"]))
    raw = json.dumps(message, ensure_ascii=False)
    assert "<!channel>" not in raw and "<http://evil" not in raw
    assert "&lt;!channel&gt; please" in raw
    for marker in ("*bold*", "_it_", "~gone~", "`code`"):
        assert marker not in raw, marker
    assert "＊bold*" in raw  # shown, but cannot open bold
    assert "a &amp; b" in raw
    assert "ACR_PULL_PERMISSION_MISSING" in raw  # underscores inside words are left alone
    assert_slack_limits(message)


def test_teams_escapes_hostile_text(reports: dict[str, dict[str, Any]]) -> None:
    message = teams.card(hostile(reports["remediated"]))
    raw = json.dumps(message, ensure_ascii=False)
    assert "[link](http" not in raw and "{{DATE(" not in raw and "<!channel>" not in raw
    (result,) = validate([message])
    assert result["errors"] == []
    assert not any("evil" in link for link in result["links"]), result["links"]
    assert result["textFunctions"] == 0
    for word in ("bold", "it", "gone", "code", "list item", "numbered"):
        assert not any(word in e for e in result["emphasis"]), (word, result["emphasis"])
    # The escaped text still reads as the original.
    assert teams.escape_markdown(HOSTILE) in raw.replace("\\\\", "\\")


def test_escape_functions() -> None:
    assert slack.escape("<!here> a&b > c") == "&lt;!here&gt; a&amp;b &gt; c"
    assert slack.escape("my_resource_group *x* _y_") == "my_resource_group ＊x* ＿y_"
    assert teams.escape_markdown("[a](http://b) *c*") == "\\[a\\](http\\://b) \\*c\\*"
    assert teams.escape_markdown("- item") == "\\- item"
    assert teams.escape_markdown("12. item") == "12\\. item"
    assert teams.escape_markdown("0.5 s") == "0.5 s"

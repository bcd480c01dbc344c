"""What the app puts out cannot be turned against the reader: suggested commands are quoted and
only for ids that follow ARM's naming rules, log records are one line, secret-named values are
masked in any of their common spellings, queued jobs keep no token, and notifications share one
wall-clock deadline and go out only once the report is stored."""

from __future__ import annotations

import io
import json
import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from remediation import logs
from remediation.actions.assign_role import ACR_PULL_ROLE_GUID, assign_role
from remediation.actions.enable_trusted_services import TRUSTED_SERVICES_PATCH
from remediation.model import CURRENT_ACI_API_VERSION, Action
from remediation.naming import CONTAINER_GROUP_TYPE, REGISTRY_TYPE, follows_naming_rules
from remediation.notify import Notifier, RetryPolicy
from remediation.redaction import REDACTED, find_secrets, is_secret_key, scrub
from remediation.report import build_report, commands_for
from remediation.settings import Settings
from remediation.signal import parse_event, scrub_event
from tests.app import World
from tests.http_receiver import Receiver, Reply
from tests.worlds import IDENTITY_PRINCIPAL, SUB

# --- commands: ARM's naming rules, and shell quoting ---------------------------------------------------


def registry_id(group: str = "acr-rg", name: str = "myacr", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}"


def group_id(name: str = "web", group: str = "rg-apps", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerInstance/containerGroups/{name}"


def every_command(registry: str, group: str, principal: str = IDENTITY_PRINCIPAL,
                  api_version: str = CURRENT_ACI_API_VERSION) -> list[str]:
    """The command of each kind for actions on these ids, left to a person."""
    actions = [
        replace(assign_role(registry, principal, ACR_PULL_ROLE_GUID, "AcrPull", "ACR_PULL_PERMISSION_MISSING"),
                status="skipped"),
        Action(kind="enable-trusted-services", target=registry, detail="", params=dict(TRUSTED_SERVICES_PATCH),
               status="skipped"),
        Action(kind="propose-definition", target=group, detail="", params={"definition": {}, "apiVersion": api_version},
               status="skipped"),
        Action(kind="redeploy", target=group, detail="", params={}, status="skipped"),
    ]
    return commands_for(actions)


@pytest.mark.parametrize("name, kind, valid", [
    ("myacr", REGISTRY_TYPE, True), ("a" * 5, REGISTRY_TYPE, True), ("A1" * 25, REGISTRY_TYPE, True),
    ("abcd", REGISTRY_TYPE, False), ("a" * 51, REGISTRY_TYPE, False), ("my-acr", REGISTRY_TYPE, False),
    ("my_acr", REGISTRY_TYPE, False), ("myacr;id", REGISTRY_TYPE, False), ("myacr$(id)", REGISTRY_TYPE, False),
    ("web", CONTAINER_GROUP_TYPE, True), ("a", CONTAINER_GROUP_TYPE, True), ("a" * 63, CONTAINER_GROUP_TYPE, True),
    ("web-1", CONTAINER_GROUP_TYPE, True), ("WEB", CONTAINER_GROUP_TYPE, True),  # ARM may return another casing
    ("a" * 64, CONTAINER_GROUP_TYPE, False), ("-web", CONTAINER_GROUP_TYPE, False),
    ("web-", CONTAINER_GROUP_TYPE, False), ("we--b", CONTAINER_GROUP_TYPE, False),
    ("web.1", CONTAINER_GROUP_TYPE, False), ("web`id`", CONTAINER_GROUP_TYPE, False),
    ("wéb", CONTAINER_GROUP_TYPE, False),
])
def test_resource_names_follow_arms_rules(name: str, kind: str, valid: bool) -> None:
    rid = registry_id(name=name) if kind == REGISTRY_TYPE else group_id(name=name)
    assert follows_naming_rules(rid, kind) is valid


@pytest.mark.parametrize("group, valid", [
    ("rg", True), ("a" * 90, True), ("rg_(prod).v2-x", True), ("a" * 91, False), ("rg.", False),
    ("rg;id", False), ("rg id", False), ("rg$HOME", False), ("rg'x", False), ("ŕg", False), ("rg\nx", False),
])
def test_resource_group_names_follow_arms_rules(group: str, valid: bool) -> None:
    assert follows_naming_rules(registry_id(group=group), REGISTRY_TYPE) is valid
    assert follows_naming_rules(group_id(group=group), CONTAINER_GROUP_TYPE) is valid


def test_subscriptions_are_guids_and_an_id_is_exactly_one_resource_of_its_type() -> None:
    assert not follows_naming_rules(registry_id(sub="my-sub"), REGISTRY_TYPE)
    assert not follows_naming_rules(registry_id() + "/replications/x", REGISTRY_TYPE)
    assert not follows_naming_rules(registry_id(), CONTAINER_GROUP_TYPE)
    assert not follows_naming_rules(" " + registry_id(), REGISTRY_TYPE)
    assert not follows_naming_rules(registry_id() + "\n", REGISTRY_TYPE)


@pytest.mark.parametrize("registry, group", [
    (registry_id(group="rg;touch pwned"), group_id(group="rg;touch pwned")),
    (registry_id(name="acr$(touch pwned)"), group_id(name="web$(id)")),
    (registry_id(sub="`touch pwned`"), group_id(sub="`touch pwned`")),
    (registry_id(group="rg\ntouch pwned"), group_id(group="rg\ntouch pwned")),
])
def test_no_command_is_offered_for_ids_that_break_the_naming_rules(registry: str, group: str) -> None:
    assert every_command(registry, group) == []


def test_no_command_for_a_principal_or_api_version_that_is_not_what_it_says() -> None:
    assert not [c for c in every_command(registry_id(), group_id(), principal="x; touch pwned")
                if c.startswith("az role")]
    assert not [c for c in every_command(registry_id(), group_id(), api_version="2023-05-01&x=$(id)")
                if c.startswith("az rest")]


def words_bash_reads(command: str) -> list[str]:
    """The words bash itself parses out of ``command`` (its comment dropped, as bash drops it)."""
    out = subprocess.run(["bash", "-c", "printf '%s\\0' " + command], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_every_value_in_a_command_is_shell_quoted() -> None:
    # parentheses are allowed in resource group names, and are shell syntax
    registry, group = registry_id(group="rg(prod)"), group_id(group="rg(prod)")
    role, acr, rest, deploy = every_command(registry, group)
    assert words_bash_reads(role)[-2:] == ["--scope", registry]
    assert words_bash_reads(role) == shlex.split(role)
    assert words_bash_reads(acr)[words_bash_reads(acr).index("--resource-group") + 1] == "rg(prod)"
    assert f"https://management.azure.com{group}?api-version={CURRENT_ACI_API_VERSION}" in words_bash_reads(rest)
    assert words_bash_reads(deploy)[words_bash_reads(deploy).index("--resource-group") + 1] == "rg(prod)"


# --- log records are one line -----------------------------------------------------------------------------


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the root logger's handler (the Functions host's, in Azure) writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s correlationId=%(correlationId)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("remediation").level
    logging.getLogger("remediation").setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    logging.getLogger("remediation").setLevel(level)


FORGED = "ok\nERROR remediation.service forged line\r\u2028\u2029\x85\x1b[31m"


@pytest.mark.parametrize("logger", ["remediation", "remediation.service", "remediation.notify.delivery"])
def test_a_record_of_any_app_logger_is_one_line_whatever_its_fields_hold(
        log_text: io.StringIO, logger: str) -> None:
    logging.getLogger(logger).info("run %s for %r", FORGED, {"id": FORGED}, extra={"correlationId": FORGED})
    text = log_text.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert text.splitlines() == [text[:-1]]
    assert "\\nERROR remediation.service forged line\\r\\u2028\\u2029\\x85\\x1b[31m" in text


def test_a_traceback_is_still_logged(log_text: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("remediation.service").exception("broke off %s", "x\ny", extra={"correlationId": "c"})
    first, *trace = log_text.getvalue().splitlines()
    assert first == "ERROR remediation.service broke off x\\ny correlationId=c"
    assert trace[-1] == "RuntimeError: boom"


def test_warnings_still_print_when_no_handler_is_configured(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    logging.getLogger("remediation.service").warning("nothing configured %s", "x\ny")
    logging.getLogger("remediation.service").info("not a warning")
    assert capsys.readouterr().err == "nothing configured x\\ny\n"


def test_the_filter_is_installed_once_for_the_app_loggers() -> None:
    logs.install()
    logs.install()
    handlers = [h for h in logging.getLogger("remediation").handlers if h.filters]
    assert len(handlers) == 1 and isinstance(handlers[0].filters[0], logs.OneLineFilter)


def test_a_correlation_id_with_a_line_break_forges_no_log_line(world: World, caplog: pytest.LogCaptureFixture) -> None:
    event = world.fail()
    forged = json.loads(json.dumps(event))
    forged["data"]["correlationId"] = "c0ffee\nERROR remediation.service remediation finished outcome=remediated"
    world.service.gather_options.activity_log_wait_seconds = 0  # no record has that id: do not wait for one
    with caplog.at_level(logging.INFO, logger="remediation"):
        status, report = world.http("replay", "POST", "replay", body=forged, query={"dryRun": "true"})
    assert status == 200, report
    app_records = [r for r in caplog.records if r.name.startswith("remediation")]
    assert any(getattr(r, "correlationId", None) for r in app_records)
    for record in app_records:
        assert "\n" not in record.getMessage()
        assert all("\n" not in str(value) for value in vars(record).values() if value is not record.exc_text)


# --- secret names -------------------------------------------------------------------------------------------


SECRET_NAMES = ["APIKEY", "ApiKey", "api-key", "x-api-key", "DB_PASS", "db.pass", "GITHUB_PAT", "PRIVATE_KEY_PEM",
                "connectionString", "STORAGE_CONNECTION_STRING", "conn_str", "sasToken", "SAS", "blobSas",
                "AZURE_CREDENTIALS", "credential", "password", "DB_PASSWORD", "DBPASSWORD", "secret", "CLIENT_SECRET",
                "token", "GITHUB_TOKEN", "accessToken", "key1", "ACCOUNT_KEY2", "signingKey", "passphrase", "pwd",
                "Authorization"]
PLAIN_NAMES = ["passport", "PASSPORT_NUMBER", "keyboard", "KEYBOARD_LAYOUT", "bypass", "compass", "monkey", "PATH",
               "pattern", "tokenizer", "secretary", "KEY_VAULT_NAME", "SECRET_NAME", "TOKEN_URL", "PASSWORD_FILE",
               "credentialIndex", "networkRuleBypassOptions", "keyId", "principalId", "LOG_LEVEL"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_named_environment_values_are_masked(name: str) -> None:
    env = [{"name": name, "value": "plain-value-0123456789"}]
    assert is_secret_key(name)
    assert scrub(env) == [{"name": name, "value": REDACTED}]
    assert find_secrets(env) == ["$[0].value"]
    assert scrub({name: "plain-value-0123456789"}) == {name: REDACTED}


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_ordinary_names_that_contain_a_secret_word_are_kept(name: str) -> None:
    env = [{"name": name, "value": "plain-value"}]
    assert not is_secret_key(name)
    assert scrub(env) == env and find_secrets(env) == []


def test_a_list_named_for_credentials_is_judged_by_its_own_keys() -> None:
    body = {"imageRegistryCredentials": [{"server": "myacr.azurecr.io", "username": "u", "password": "p4ssw0rd!"}],
            "authorization": {"action": "Microsoft.ContainerInstance/containerGroups/write", "scope": "/s"},
            "headers": {"Authorization": "Basic dXNlcjpwYXNz"}}
    assert scrub(body) == {
        "imageRegistryCredentials": [{"server": "myacr.azurecr.io", "username": "u", "password": REDACTED}],
        "authorization": body["authorization"], "headers": {"Authorization": REDACTED}}


def test_secret_named_plain_environment_values_never_reach_a_report() -> None:
    env = [{"name": n, "value": f"plain-{i}-value"} for i, n in enumerate(["APIKEY", "DB_PASS", "GITHUB_PAT",
                                                                            "PRIVATE_KEY_PEM", "LOG_LEVEL"])]
    definition = {"properties": {"containers": [{"name": "web", "properties": {
        "image": "myacr.azurecr.io/web:v1", "environmentVariables": env}}]}}
    action = Action(kind="propose-definition", target=group_id(), detail="", params={"definition": definition})
    report = build_report(resource_id=group_id(), trigger="cli", actions=[action])
    text = json.dumps(report)
    assert [f"plain-{i}-value" in text for i in range(5)] == [False, False, False, False, True]
    assert find_secrets(report) == []


# --- queued jobs keep no token --------------------------------------------------------------------------------


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"


def with_tokens(event: dict[str, Any]) -> dict[str, Any]:
    forged = json.loads(json.dumps(event))
    forged["data"]["claims"]["access_token"] = JWT
    forged["data"]["claims"]["xms_raw"] = f"Bearer {JWT}"
    forged["data"]["httpRequest"] = {"headers": {"Authorization": f"Bearer {JWT}", "x-api-key": "k-0123456789"},
                                     "url": "https://example.com/x?sig=0123456789abcdef"}
    return forged


def test_a_scrubbed_event_reads_as_the_event() -> None:
    event = {"id": "e1", "eventType": "Microsoft.Resources.ResourceWriteFailure", "subject": group_id(),
             "eventTime": "2026-01-01T00:00:00.1234567Z", "dataVersion": "2", "metadataVersion": "1",
             "data": {"resourceUri": group_id(), "correlationId": "c1", "tenantId": "t1", "status": "Failed",
                      "operationName": "Microsoft.ContainerInstance/containerGroups/write",
                      "claims": {"oid": IDENTITY_PRINCIPAL, "tid": "t1", "token": JWT}}}
    scrubbed = scrub_event(event)
    assert JWT not in json.dumps(scrubbed)
    assert parse_event(scrubbed) == parse_event(event)


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"})
def test_queued_replay_jobs_keep_no_token_and_still_remediate(world: World) -> None:
    event = world.fail()
    status, body = world.http("replay", "POST", "replay", body=[with_tokens(event)])
    assert status == 202, body
    [message] = world.queue.peek_messages(max_messages=32)
    from tests.host import queue_delivery  # the message as the queue holds it
    queue_delivery(message.content)
    assert JWT not in message.content and "k-0123456789" not in message.content
    assert "0123456789abcdef" not in message.content
    job = json.loads(message.content)
    assert job["event"]["data"]["claims"]["access_token"] == REDACTED
    assert job["event"]["data"]["correlationId"] == event["data"]["correlationId"]
    [result] = world.drain()
    assert result.ok, result.error
    [report] = world.service.ledger.reports_for(event["subject"])
    assert report["outcome"] == "remediated"


def test_event_grid_jobs_keep_no_token(world: World) -> None:
    event = world.fail()
    message = world.deliver(with_tokens(event)).output("jobs")
    assert message is not None and JWT not in message and "k-0123456789" not in message


# --- notifications: one wall-clock deadline, after the report is stored ---------------------------------------


class StuckSession(requests.Session):
    """A webhook that does not answer until the test lets it go (far past any timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.release.wait(30)
        raise requests.ConnectionError("no answer")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def test_all_channels_together_finish_within_the_deadline() -> None:
    settings = Settings().with_overrides({"TEAMS_WEBHOOK_URL": "https://example.invalid/teams",
                                          "SLACK_WEBHOOK_URL": "https://example.invalid/slack",
                                          "WEBHOOK_URL": "https://example.invalid/hook"})
    stuck = StuckSession()
    notifier = Notifier(settings, session=stuck, policy=RetryPolicy(max_attempts=1), deadline=1.0)
    started = time.monotonic()
    try:
        entries = notifier.send({"resourceId": group_id(), "outcome": "diagnosed"})
        took = time.monotonic() - started
    finally:
        stuck.release.set()
    assert took < 2.5, took  # three stuck channels, one after another, would take 90 s
    assert [(e["channel"], e["status"]) for e in entries] == [
        ("teams", "failed"), ("slack", "failed"), ("webhook", "failed"), ("eventgrid", "disabled")]
    assert all("deadline of 1 s" in e["detail"] for e in entries[:3])


def test_a_slow_channel_does_not_hold_up_the_others(receiver: Receiver) -> None:
    slow = Receiver(default=Reply(delay=3))
    try:
        settings = Settings().with_overrides({"TEAMS_WEBHOOK_URL": slow.url("teams"),
                                              "SLACK_WEBHOOK_URL": receiver.url("slack")})
        policy = RetryPolicy(connect_timeout=1, read_timeout=10, max_attempts=1)
        started = time.monotonic()
        entries = Notifier(settings, policy=policy, deadline=1.0).send({"resourceId": group_id(),
                                                                        "outcome": "diagnosed"})
        assert time.monotonic() - started < 2.5
        assert {e["channel"]: e["status"] for e in entries} == {
            "teams": "failed", "slack": "sent", "webhook": "disabled", "eventgrid": "disabled"}
    finally:
        slow.stop()


def test_notifications_go_out_only_once_the_report_is_stored(world: World) -> None:
    event = world.fail()
    stored_when_sent: list[list[str]] = []

    def send(report: dict[str, Any]) -> list[dict[str, str]]:
        stored_when_sent.append([r["outcome"] for r in world.service.ledger.reports_for(event["subject"])])
        return [{"channel": c, "status": "disabled", "detail": "checked"}
                for c in ("teams", "slack", "webhook", "eventgrid")]

    world.service.notifier.send = send  # type: ignore[method-assign]
    world.deliver(event)
    [result] = world.drain()
    assert result.ok, result.error
    assert stored_when_sent == [["remediated"]]
    [report] = world.service.ledger.reports_for(event["subject"])
    assert [n["detail"] for n in report["notifications"]] == ["checked"] * 4  # stored again, with what was sent

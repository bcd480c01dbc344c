"""One module decides what a secret is (remediation.redaction): the definition's redaction, the
report's scrub and the webhook delivery's hiding of its URL all go through it."""

from __future__ import annotations

import json

from remediation import definition, redaction, report
from remediation.notify import delivery
from tests.http_receiver import Receiver, Reply
from tests.test_notify_delivery import FAST, Sleeps
from tests.worlds import group_body


def test_the_definition_and_the_report_use_the_one_module() -> None:
    assert report.scrub is redaction.scrub and report.find_secrets is redaction.find_secrets
    assert definition.REDACTED == redaction.REDACTED == "[redacted]"
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0]["password"] = "hunter2-registry-password"
    assert definition.redact(body) == redaction.redact_definition(body)
    assert "hunter2" not in json.dumps(definition.redact(body))


def test_a_definition_keeps_what_it_is_redeployed_with_a_report_hides_more() -> None:
    # A plain environment value is part of what the group runs, so the definition keeps it; a
    # report, only read, hides it because its name looks secret.
    body = group_body()
    env = [{"name": "DB_PASSWORD", "value": "plain-but-named-secret"}]
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = env
    kept = definition.redact(body)["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert kept == env
    assert "plain-but-named-secret" not in json.dumps(redaction.scrub(body))
    assert redaction.find_secrets(body) and not redaction.find_secrets(redaction.scrub(body))


def test_url_secrets_names_every_piece_of_a_webhook_url() -> None:
    url = "https://prod-01.westus.logic.azure.com:443/workflows/0123abcd/triggers/manual/paths/invoke?sig=s3cr3t-SIG"
    pieces = redaction.url_secrets(url)
    assert url in pieces and "sig=s3cr3t-SIG" in pieces and "s3cr3t-SIG" in pieces and "0123abcd" in pieces
    text = f"posted to {url}; the signature s3cr3t-SIG was refused for workflow 0123abcd"
    scrubbed = redaction.scrub(text, secrets=pieces)
    assert "s3cr3t" not in scrubbed and "0123abcd" not in scrubbed and "logic.azure.com" not in scrubbed


def test_a_delivery_detail_is_scrubbed_by_the_one_module() -> None:
    receiver = Receiver(default=Reply(400, "Bearer abcdefghijklmnop rejected; key topsecret-key"))
    try:
        entry = delivery.post("webhook", receiver.url(), b"{}", policy=FAST, sleep=Sleeps(), secrets=["topsecret-key"])
    finally:
        receiver.stop()
    assert entry["detail"] == (
        f"HTTP 400: {redaction.scrub('Bearer abcdefghijklmnop rejected; key topsecret-key', secrets=['topsecret-key'])}"
        " (gave up after 1 attempt)"
    )
    assert "abcdefghijklmnop" not in entry["detail"] and "topsecret-key" not in entry["detail"]

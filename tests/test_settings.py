"""Settings: contract names and defaults, one-line errors, scopes, overrides, secrets kept out of sight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.settings import SETTING_NAMES, Settings, SettingsError
from tests.worlds import GROUP_ID, REGISTRY_ID, RG, SUB, SUB2

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAMES = ("TEAMS_WEBHOOK_URL", "SLACK_WEBHOOK_URL", "WEBHOOK_URL", "WEBHOOK_SECRET", "EVENTGRID_TOPIC_KEY")


def test_defaults_are_those_of_the_contract() -> None:
    s = Settings.from_env({})
    assert s.dry_run is False
    assert s.allowed_scopes == ()
    assert s.fix_trusted_services is True
    assert s.opt_out_tag == "aci-remediation"
    assert s.arm_endpoint == "https://management.azure.com"
    assert (s.max_attempts, s.attempt_window_minutes) == (3, 60)
    assert (s.redeploy_budget_seconds, s.activity_log_wait_seconds) == (600, 120)
    assert s.apply_definition_fixes is False
    assert s.remediator_principal_id is None and s.arm_ca_bundle is None
    assert s.acr_endpoint("myacr.azurecr.io") == "https://myacr.azurecr.io"
    assert s == Settings()


def test_every_setting_is_read_from_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "REMEDIATION_DRY_RUN": "TRUE",
        "REMEDIATION_ALLOWED_SCOPES": f" /subscriptions/{SUB}/resourceGroups/{RG} , {SUB2} ",
        "REMEDIATION_FIX_TRUSTED_SERVICES": "False",
        "REMEDIATION_OPT_OUT_TAG": "no-heal",
        "ARM_ENDPOINT": "https://127.0.0.1:8443/",
        "REMEDIATOR_PRINCIPAL_ID": "BBBBBBBB-0000-0000-0000-000000000001",
        "REMEDIATION_MAX_ATTEMPTS": "5",
        "REMEDIATION_ATTEMPT_WINDOW_MINUTES": "30",
        "REMEDIATION_REDEPLOY_BUDGET_SECONDS": "0",
        "REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS": "15",
        "REMEDIATION_APPLY_DEFINITION_FIXES": "true",
        "ARM_CA_BUNDLE": str(ca),
        "ACR_ENDPOINT_TEMPLATE": "https://127.0.0.1:8443/acr/{loginServer}",
        "TEAMS_WEBHOOK_URL": "https://contoso.webhook.office.com/webhookb2/abc",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XYZ",
        "WEBHOOK_URL": "http://localhost:9000/hook",
        "WEBHOOK_SECRET": "shh-signing-secret",
        "EVENTGRID_TOPIC_ENDPOINT": "https://topic.eastus-1.eventgrid.azure.net/api/events",
        "EVENTGRID_TOPIC_KEY": "topic-key-value",
        "UNRELATED": "ignored",
    }
    s = Settings.from_env(env)
    assert s.dry_run and not s.fix_trusted_services and s.apply_definition_fixes
    assert s.allowed_scopes == (f"/subscriptions/{SUB}/resourceGroups/{RG}", f"/subscriptions/{SUB2}")
    assert s.opt_out_tag == "no-heal"
    assert s.arm_endpoint == "https://127.0.0.1:8443"
    assert s.remediator_principal_id == "bbbbbbbb-0000-0000-0000-000000000001"
    assert (s.max_attempts, s.attempt_window_minutes, s.redeploy_budget_seconds) == (5, 30, 0)
    assert s.activity_log_wait_seconds == 15
    assert s.arm_ca_bundle == str(ca)
    assert s.acr_endpoint("myacr.azurecr.io") == "https://127.0.0.1:8443/acr/myacr.azurecr.io"
    assert s.webhook_secret == "shh-signing-secret" and s.eventgrid_topic_key == "topic-key-value"
    assert set(s.secret_values()) == {env[name] for name in SECRET_NAMES}


def test_blank_values_keep_the_defaults() -> None:
    assert Settings.from_env({name: "  " for name in SETTING_NAMES}) == Settings()


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("REMEDIATION_DRY_RUN", "maybe", "REMEDIATION_DRY_RUN must be true or false, got 'maybe'"),
        ("REMEDIATION_FIX_TRUSTED_SERVICES", "1", "REMEDIATION_FIX_TRUSTED_SERVICES must be true or false"),
        ("REMEDIATION_APPLY_DEFINITION_FIXES", "yes", "REMEDIATION_APPLY_DEFINITION_FIXES must be true or false"),
        ("REMEDIATION_MAX_ATTEMPTS", "0", "REMEDIATION_MAX_ATTEMPTS must be a whole number of at least 1, got '0'"),
        ("REMEDIATION_ATTEMPT_WINDOW_MINUTES", "1.5", "REMEDIATION_ATTEMPT_WINDOW_MINUTES must be a whole number"),
        ("REMEDIATION_REDEPLOY_BUDGET_SECONDS", "-1", "REMEDIATION_REDEPLOY_BUDGET_SECONDS must be a whole number"),
        ("REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS", "soon", "REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS must be a whole"),
        ("REMEDIATION_ALLOWED_SCOPES", "/subscriptions/not-a-guid", "REMEDIATION_ALLOWED_SCOPES must list"),
        ("REMEDIATION_ALLOWED_SCOPES", REGISTRY_ID, "REMEDIATION_ALLOWED_SCOPES must list"),
        ("REMEDIATION_ALLOWED_SCOPES", f"subscriptions/{SUB}", "REMEDIATION_ALLOWED_SCOPES must list"),
        ("REMEDIATION_OPT_OUT_TAG", "a/b", "REMEDIATION_OPT_OUT_TAG must be a tag name"),
        ("ARM_ENDPOINT", "management.azure.com", "ARM_ENDPOINT must be an https:// URL"),
        ("ARM_ENDPOINT", "http://management.azure.com", "ARM_ENDPOINT must be an https:// URL"),
        ("REMEDIATOR_PRINCIPAL_ID", "me", "REMEDIATOR_PRINCIPAL_ID must be a GUID"),
        ("ARM_CA_BUNDLE", "/nonexistent/ca.pem", "ARM_CA_BUNDLE must name an existing CA bundle file"),
        (
            "ACR_ENDPOINT_TEMPLATE",
            "https://myacr.azurecr.io",
            "ACR_ENDPOINT_TEMPLATE must be an https:// URL containing",
        ),
        ("EVENTGRID_TOPIC_ENDPOINT", "ftp://x", "EVENTGRID_TOPIC_ENDPOINT must be an https:// URL"),
    ],
)
def test_bad_values_raise_one_line_naming_the_setting(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["TEAMS_WEBHOOK_URL", "SLACK_WEBHOOK_URL", "WEBHOOK_URL"])
def test_a_bad_secret_url_is_not_echoed_in_the_error(name: str) -> None:
    secret = "http://evil.example/T0/B0/very-secret-token"
    with pytest.raises(SettingsError, match=name) as caught:
        Settings.from_env({name: secret})
    assert "very-secret-token" not in str(caught.value)


def test_secrets_never_appear_in_repr_or_describe() -> None:
    env = {
        "TEAMS_WEBHOOK_URL": "https://contoso.webhook.office.com/webhookb2/teams-secret",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/slack-secret",
        "WEBHOOK_URL": "https://hooks.example.com/generic-secret",
        "WEBHOOK_SECRET": "signing-secret",
        "EVENTGRID_TOPIC_KEY": "topic-key-secret",
    }
    s = Settings.from_env(env)
    for text in (repr(s), str(s), json.dumps(s.describe())):
        for value in env.values():
            assert value not in text
    assert s.describe()["WEBHOOK_SECRET"] == "configured"
    assert Settings().describe()["WEBHOOK_SECRET"] == "not configured"
    assert set(s.describe()) == set(SETTING_NAMES)


@pytest.mark.parametrize(
    "scopes, resource, allowed",
    [
        ((), GROUP_ID, True),
        ((f"/subscriptions/{SUB}",), GROUP_ID, True),
        ((f"/subscriptions/{SUB}",), f"/subscriptions/{SUB}", True),
        ((f"/subscriptions/{SUB2}",), GROUP_ID, False),
        (
            (f"/subscriptions/{SUB}/resourceGroups/{RG.upper()}",),
            GROUP_ID.replace("resourceGroups", "resourcegroups"),
            True,
        ),
        ((f"/subscriptions/{SUB}/resourceGroups/{RG}",), f"/subscriptions/{SUB}/resourceGroups/{RG}-other/x", False),
        ((f"/subscriptions/{SUB2}", f"/subscriptions/{SUB}/resourceGroups/{RG}"), REGISTRY_ID, True),
    ],
)
def test_allows_scope_compares_path_segments_case_insensitively(
    scopes: tuple[str, ...], resource: str, allowed: bool
) -> None:
    assert Settings(allowed_scopes=scopes).allows_scope(resource) is allowed


def test_with_overrides_takes_json_scalars_and_leaves_the_original_alone() -> None:
    base = Settings.from_env({"REMEDIATION_MAX_ATTEMPTS": "5"})
    changed = base.with_overrides(
        {"REMEDIATION_DRY_RUN": True, "REMEDIATION_MAX_ATTEMPTS": 2, "REMEDIATION_ALLOWED_SCOPES": [SUB]}
    )
    assert changed.dry_run and changed.max_attempts == 2
    assert changed.allowed_scopes == (f"/subscriptions/{SUB}",)
    assert base.max_attempts == 5 and not base.dry_run
    assert base.with_overrides({"REMEDIATION_MAX_ATTEMPTS": ""}).max_attempts == 3


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"REMEDIATION_DRYRUN": "true"}, "unknown setting 'REMEDIATION_DRYRUN'"),
        ({"REMEDIATION_DRY_RUN": "sure"}, "REMEDIATION_DRY_RUN must be true or false"),
        ({"REMEDIATION_MAX_ATTEMPTS": {"n": 1}}, "REMEDIATION_MAX_ATTEMPTS must be a string"),
    ],
)
def test_with_overrides_rejects_unknown_names_and_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings().with_overrides(overrides)


def test_local_settings_sample_has_the_functions_shape_and_every_setting() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    assert sample["IsEncrypted"] is False
    values = sample["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert set(SETTING_NAMES) <= set(values)
    assert all(values[name] == "" for name in SECRET_NAMES)
    parsed = Settings.from_env(values)
    assert parsed.secret_values() == ()
    assert parsed.dry_run is True  # a fresh local setup changes nothing until someone says so


def test_the_pull_permission_settings_and_their_defaults() -> None:
    assert (Settings().rbac_propagation_minutes, Settings().tenant_has_arm_private_link) == (10, False)
    s = Settings.from_env({"REMEDIATION_RBAC_PROPAGATION_MINUTES": "0",
                           "REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK": "TRUE"})
    assert (s.rbac_propagation_minutes, s.tenant_has_arm_private_link) == (0, True)
    with pytest.raises(SettingsError, match="REMEDIATION_RBAC_PROPAGATION_MINUTES"):
        Settings.from_env({"REMEDIATION_RBAC_PROPAGATION_MINUTES": "-1"})
    with pytest.raises(SettingsError, match="REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK"):
        Settings.from_env({"REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK": "yes"})

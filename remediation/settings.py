"""The app's settings, read once from app settings / environment variables.

``Settings.from_env(os.environ)`` parses and validates every setting; a bad value raises
:class:`SettingsError` with one line naming the setting and what it accepts. A scenario file's
``"settings"`` block is applied with :meth:`Settings.with_overrides`. Names and defaults of the
public settings are those of CONTRACT.md §6.

Secrets (webhook URLs, the webhook signing secret, the Event Grid topic key) never appear in
``repr()`` and are never echoed in an error message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import SplitResult, urlsplit


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    dry_run: bool = False
    allowed_scopes: tuple[str, ...] = ()
    """Subscription or resource-group ids; empty means every scope the identity can see."""
    fix_trusted_services: bool = True
    opt_out_tag: str = "aci-remediation"
    arm_endpoint: str = "https://management.azure.com"
    remediator_principal_id: str | None = None
    """The app's own object id: failures of writes it made itself are never remediated (loop guard)."""
    max_attempts: int = 3
    attempt_window_minutes: int = 60
    redeploy_budget_seconds: int = 600
    """How long a redeploy may keep retrying while new role assignments propagate (up to 10 min)."""
    activity_log_wait_seconds: int = 120
    apply_definition_fixes: bool = False
    """``false``: corrected definitions are only proposed, never deployed."""
    arm_ca_bundle: str | None = None
    acr_endpoint_template: str = "https://{loginServer}"
    teams_webhook_url: str = field(default="", repr=False)
    slack_webhook_url: str = field(default="", repr=False)
    webhook_url: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    eventgrid_topic_endpoint: str = ""
    eventgrid_topic_key: str = field(default="", repr=False)
    notify_cooldown_minutes: int = 30
    """One message per container group per cool-down, however many failures arrive."""
    storm_threshold: int = 10
    """Past this many messages in the cool-down window, send one grouped summary instead."""
    sweep_enabled: bool = False
    """The timer-triggered sweep (schedule: REMEDIATION_SWEEP_SCHEDULE, read by the host)."""
    claim_ttl_seconds: int = 180
    """A claim left by a crashed run may be taken over after this long (a live run renews it)."""
    retention_days: int = 30
    ledger_table: str = "RemediationLedger"
    jobs_queue: str = "remediation-jobs"
    redeploy_replayed_definitions: bool = False
    """``false``: a definition sent with a replay is used to diagnose, never deployed, so a function
    key cannot make the app deploy arbitrary containers with the app's rights."""
    inline_budget_seconds: int = 200
    """A replay runs inside the HTTP request only when its worst case fits (HTTP answers within 230 s)."""
    rbac_propagation_minutes: int = 10
    """A pull role assignment younger than this is waited for (redeploy with retries), never duplicated:
    Azure documents up to 10 minutes for an assignment to take effect."""
    tenant_has_arm_private_link: bool = False
    """``true``: wildcard actions in custom roles count as pull; ACR honours them only in tenants with
    Azure Resource Manager private link."""
    retry_unexplained: bool = True
    """``true``: an image-pull failure that every check could decide and none explains (``UNKNOWN``)
    is redeployed once, unchanged: Azure reports transient ``InaccessibleImage`` failures that clear."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (``os.environ`` when omitted); unset or blank names keep their default."""
        source = os.environ if env is None else env
        return cls().with_overrides({name: source[name] for name in SETTING_NAMES if name in source})

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with the named settings replaced, e.g. a scenario's ``"settings"`` block.

        Values may be strings or JSON scalars (``true``, ``3``); an unknown name is an error,
        because a misspelt safety setting must not be silently ignored.
        """
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            spec = _SPECS.get(name)
            if spec is None:
                raise SettingsError(f"unknown setting {name!r}; known settings: {', '.join(SETTING_NAMES)}")
            text = _as_text(name, raw)
            if text.strip() == "":
                changes[spec.field] = _DEFAULTS[spec.field]
            else:
                changes[spec.field] = spec.parse(name, text.strip())
        result = replace(self, **changes)
        result._check_loopback_hosts()
        return result

    def _check_loopback_hosts(self) -> None:
        """A loopback Resource Manager or registry endpoint is the local sandbox, whose certificate
        only an explicit CA bundle makes trusted; without one it is a misconfiguration."""
        if self.arm_ca_bundle:
            return
        for name, url in (("ARM_ENDPOINT", self.arm_endpoint), ("ACR_ENDPOINT_TEMPLATE", self.acr_endpoint_template)):
            if _https_loopback(url):
                raise SettingsError(f"{name} names a loopback host, allowed only with ARM_CA_BUNDLE set to the "
                                    f"sandbox's CA bundle, got {url!r}")

    def allows_scope(self, resource_id: str) -> bool:
        """Whether ``resource_id`` lies in one of the allowed scopes (path segments, case-insensitive)."""
        if not self.allowed_scopes:
            return True
        if not resource_id.isascii():
            return False  # a look-alike (U+212A KELVIN SIGN) would fold into an allowed scope
        segments = _segments(resource_id)
        return any(segments[: len(scope)] == scope for scope in map(_segments, self.allowed_scopes))

    def acr_endpoint(self, login_server: str) -> str:
        """The registry's data-plane endpoint (the sandbox substitutes its own template)."""
        return self.acr_endpoint_template.replace("{loginServer}", login_server)

    def secret_values(self) -> tuple[str, ...]:
        """The configured secret values, so a report can be scrubbed of them wherever they appear."""
        return tuple(v for v in (getattr(self, f.name) for f in fields(self) if not f.repr) if v)

    def describe(self) -> dict[str, Any]:
        """Every setting by its app-setting name, secrets shown only as configured or not (for health/logs)."""
        out: dict[str, Any] = {}
        for name, spec in _SPECS.items():
            value = getattr(self, spec.field)
            if spec.secret:
                out[name] = "configured" if value else "not configured"
            else:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


# --- parsers: each takes (setting name, stripped text) and returns the value or raises --------------


def _as_text(name: str, raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (str, int)):
        return str(raw)
    if raw is None:
        return ""
    if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        return ",".join(raw)
    raise SettingsError(f"{name} must be a string, got {type(raw).__name__}")


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise SettingsError(f"{name} must be true or false, got {text!r}")


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, text: str) -> int:
        if re.fullmatch(r"\d+", text) and int(text) >= minimum:
            return int(text)
        raise SettingsError(f"{name} must be a whole number of at least {minimum}, got {text!r}")

    return parse


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _parse_scopes(name: str, text: str) -> tuple[str, ...]:
    scopes: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isascii():
            raise SettingsError(f"{name} must list ASCII resource ids; {item!r} holds another character")
        if _GUID.fullmatch(item):
            item = f"/subscriptions/{item}"
        seg = _segments(item)
        well_formed = (
            item.startswith("/")
            and len(seg) in (2, 4)
            and seg[0] == "subscriptions"
            and _GUID.fullmatch(seg[1]) is not None
            and (len(seg) == 2 or seg[2] == "resourcegroups")
        )
        if not well_formed:
            raise SettingsError(
                f"{name} must list /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<name> ids, "
                f"separated by commas, got {item!r}"
            )
        scopes.append(item.rstrip("/"))
    return tuple(scopes)


def _parse_principal(name: str, text: str) -> str:
    if _GUID.fullmatch(text):
        return text.lower()
    raise SettingsError(f"{name} must be a GUID (the object id of the app's identity), got {text!r}")


_TAG_FORBIDDEN = set("<>%&\\?/")


def _parse_tag(name: str, text: str) -> str:
    if len(text) > 512 or _TAG_FORBIDDEN & set(text):
        raise SettingsError(f"{name} must be a tag name of at most 512 characters without <>%&\\?/, got {text!r}")
    return text


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(*, secret: bool = False) -> Callable[[str, str], str]:
    """An https URL (http only for a loopback host: local receivers and the sandbox)."""

    def parse(name: str, text: str) -> str:
        parts = urlsplit(text)
        host = parts.hostname or ""
        ok = bool(host) and (parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)))
        if not ok:
            shown = "" if secret else f", got {text!r}"
            raise SettingsError(f"{name} must be an https:// URL (http:// only for localhost){shown}")
        return text.rstrip("/")

    return parse


ARM_ENDPOINTS: tuple[str, ...] = (
    "https://management.azure.com",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
)
"""Resource Manager of each Azure cloud: public, US Government, China (azure-core's ``AzureClouds``,
endpoints as ``azure.mgmt.core.tools.get_arm_endpoints`` gives them)."""

ACR_LOGIN_SERVER_SUFFIXES: tuple[str, ...] = (".azurecr.io", ".azurecr.us", ".azurecr.cn")
"""Registry login-server suffixes of the same clouds (Azure CLI's ``acr_login_server_endpoint``)."""

LOGIN_SERVER_PLACEHOLDER = "{loginServer}"


def _split(text: str) -> SplitResult | None:
    """``text`` split as a URL with ``{loginServer}`` standing for a host name; None when it is not
    one (a bad port, an unclosed IPv6 bracket) or has parts an endpoint never has."""
    try:
        parts = urlsplit(text.replace(LOGIN_SERVER_PLACEHOLDER, "placeholder.invalid"))
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or parts.username:
        return None
    return parts


def _https_loopback(text: str) -> bool:
    """An https URL of a loopback host (the sandbox); whether a CA bundle is set is checked after
    every setting is read (``Settings._check_loopback_hosts``)."""
    parts = _split(text)
    return parts is not None and _loopback(parts.hostname or "")


def _parse_arm_endpoint(name: str, text: str) -> str:
    """A known cloud's Resource Manager endpoint, or the sandbox's: the app sends its token there."""
    url = text.rstrip("/")
    if url.lower() in ARM_ENDPOINTS:
        return url.lower()
    if LOGIN_SERVER_PLACEHOLDER not in url and _https_loopback(url):
        return url
    raise SettingsError(f"{name} must be an https:// URL of a known cloud's Resource Manager "
                        f"({', '.join(ARM_ENDPOINTS)}), or of a loopback host with ARM_CA_BUNDLE set (the "
                        f"sandbox), got {text!r}")


def _parse_acr_template(name: str, text: str) -> str:
    """``https://{loginServer}`` (Azure's), a host under a known cloud's registry suffix, or the sandbox's."""
    parts = _split(text)
    own_host = text.rstrip("/") == f"https://{LOGIN_SERVER_PLACEHOLDER}"
    known = parts is not None and parts.port is None and (parts.hostname or "").endswith(ACR_LOGIN_SERVER_SUFFIXES)
    if LOGIN_SERVER_PLACEHOLDER not in text or not (own_host or known or _https_loopback(text)):
        raise SettingsError(f"{name} must be an https:// URL containing {LOGIN_SERVER_PLACEHOLDER}: "
                            f"https://{LOGIN_SERVER_PLACEHOLDER}, a host ending in "
                            f"{', '.join(ACR_LOGIN_SERVER_SUFFIXES)}, or a loopback host with ARM_CA_BUNDLE set "
                            f"(the sandbox), got {text!r}")
    return text


def _parse_path(name: str, text: str) -> str:
    if not os.path.isfile(text):
        raise SettingsError(f"{name} must name an existing CA bundle file, got {text!r}")
    return text


def _parse_text(name: str, text: str) -> str:
    return text


_QUEUE_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,54}[a-z0-9]")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


def _parse_queue_name(name: str, text: str) -> str:
    """Azure Queue Storage's naming rules, 7 characters short so ``<name>-poison`` is valid too."""
    if not _QUEUE_NAME.fullmatch(text):
        raise SettingsError(f"{name} must be 3 to 56 lower-case letters, digits and single hyphens, starting and "
                            f"ending with a letter or digit (the host adds -poison), got {text!r}")
    return text


def _parse_table_name(name: str, text: str) -> str:
    if not _TABLE_NAME.fullmatch(text) or text.lower() == "tables":
        raise SettingsError(f"{name} must be 3 to 63 letters and digits starting with a letter, got {text!r}")
    return text


@dataclass(frozen=True)
class _Spec:
    field: str
    parse: Callable[[str, str], Any]
    secret: bool = False


_SPECS: dict[str, _Spec] = {
    "REMEDIATION_DRY_RUN": _Spec("dry_run", _parse_bool),
    "REMEDIATION_ALLOWED_SCOPES": _Spec("allowed_scopes", _parse_scopes),
    "REMEDIATION_FIX_TRUSTED_SERVICES": _Spec("fix_trusted_services", _parse_bool),
    "REMEDIATION_OPT_OUT_TAG": _Spec("opt_out_tag", _parse_tag),
    "ARM_ENDPOINT": _Spec("arm_endpoint", _parse_arm_endpoint),
    "REMEDIATOR_PRINCIPAL_ID": _Spec("remediator_principal_id", _parse_principal),
    "REMEDIATION_MAX_ATTEMPTS": _Spec("max_attempts", _int_at_least(1)),
    "REMEDIATION_ATTEMPT_WINDOW_MINUTES": _Spec("attempt_window_minutes", _int_at_least(1)),
    "REMEDIATION_REDEPLOY_BUDGET_SECONDS": _Spec("redeploy_budget_seconds", _int_at_least(0)),
    "REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS": _Spec("activity_log_wait_seconds", _int_at_least(0)),
    "REMEDIATION_APPLY_DEFINITION_FIXES": _Spec("apply_definition_fixes", _parse_bool),
    "ARM_CA_BUNDLE": _Spec("arm_ca_bundle", _parse_path),
    "ACR_ENDPOINT_TEMPLATE": _Spec("acr_endpoint_template", _parse_acr_template),
    "TEAMS_WEBHOOK_URL": _Spec("teams_webhook_url", _url(secret=True), secret=True),
    "SLACK_WEBHOOK_URL": _Spec("slack_webhook_url", _url(secret=True), secret=True),
    "WEBHOOK_URL": _Spec("webhook_url", _url(secret=True), secret=True),
    "WEBHOOK_SECRET": _Spec("webhook_secret", _parse_text, secret=True),
    "EVENTGRID_TOPIC_ENDPOINT": _Spec("eventgrid_topic_endpoint", _url()),
    "EVENTGRID_TOPIC_KEY": _Spec("eventgrid_topic_key", _parse_text, secret=True),
    "REMEDIATION_NOTIFY_COOLDOWN_MINUTES": _Spec("notify_cooldown_minutes", _int_at_least(0)),
    "REMEDIATION_STORM_THRESHOLD": _Spec("storm_threshold", _int_at_least(1)),
    "REMEDIATION_SWEEP_ENABLED": _Spec("sweep_enabled", _parse_bool),
    "REMEDIATION_CLAIM_TTL_SECONDS": _Spec("claim_ttl_seconds", _int_at_least(1)),
    "REMEDIATION_RETENTION_DAYS": _Spec("retention_days", _int_at_least(1)),
    "REMEDIATION_LEDGER_TABLE": _Spec("ledger_table", _parse_table_name),
    "REMEDIATION_JOBS_QUEUE": _Spec("jobs_queue", _parse_queue_name),
    "REMEDIATION_INLINE_BUDGET_SECONDS": _Spec("inline_budget_seconds", _int_at_least(0)),
    "REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS": _Spec("redeploy_replayed_definitions", _parse_bool),
    "REMEDIATION_RBAC_PROPAGATION_MINUTES": _Spec("rbac_propagation_minutes", _int_at_least(0)),
    "REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK": _Spec("tenant_has_arm_private_link", _parse_bool),
    "REMEDIATION_RETRY_UNEXPLAINED": _Spec("retry_unexplained", _parse_bool),
}

SETTING_NAMES: tuple[str, ...] = tuple(_SPECS)
"""Every app-setting name the app reads, in documentation order."""

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def _segments(resource_id: str) -> list[str]:
    return [part for part in resource_id.lower().split("/") if part]

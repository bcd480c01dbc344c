"""What counts as a secret, and how it is masked: the one place that decides.

Two rules, for two kinds of data:

- :func:`redact_definition`, for a container-group definition. The app shows it in reports and
  redeploys it, so it masks exactly what Azure itself treats as secret (registry passwords, secure
  environment values, storage and Log Analytics keys, extension protected settings, the files of
  a ``secret`` volume, a token in a ``gitRepo`` URL) and keeps every other field as it was.
- :func:`scrub`, for anything that is only read: reports, notification details, log lines. It is
  wider: every key whose name looks secret, an environment variable whose *name* looks secret, and
  strings shaped like credentials (JWTs, bearer tokens, webhook URLs, signed query values,
  connection-string keys, URL passwords). :func:`find_secrets` says where any of that remains.

Both replace what they hide by :data:`REDACTED`. Known secret values (the app's configured
secrets, the pieces of a webhook URL from :func:`url_secrets`) are removed wherever they appear.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from remediation.errors import InputError

REDACTED = "[redacted]"

# --- container-group definitions ------------------------------------------------------------------

# Keys whose values are secrets wherever they appear in a definition, compared case-insensitively:
# registry passwords, secure environment values, storage keys, Log Analytics keys. Both the wire
# names and the SDK's snake_case names, so an ``as_dict()`` body is covered too.
_DEFINITION_SECRET_KEYS = frozenset(
    key.lower()
    for key in (
        "password",
        "secureValue",
        "secure_value",
        "storageAccountKey",
        "storage_account_key",
        "workspaceKey",
        "workspace_key",
        "protectedSettings",
        "protected_settings",
    )
)
_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def redact_definition(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a container-group ``body`` without secrets; everything else is kept as it was.

    Replaced by ``"[redacted]"``: every ``password``, ``secureValue``, ``storageAccountKey`` and
    ``workspaceKey`` value (any depth), every file of a ``secret`` volume (names are kept), and
    the user-info part of a ``gitRepo`` repository URL (``https://user:token@host/...``).
    """
    if not isinstance(body, Mapping):
        raise InputError("definition is not a JSON object")
    result: dict[str, Any] = _redact_tree(copy.deepcopy(dict(body)))  # a dict in, a dict out
    return result


def _redact_tree(node: Any) -> Any:
    if isinstance(node, list):
        return [_redact_tree(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        lowered = str(key).lower()
        if lowered in _DEFINITION_SECRET_KEYS and value is not None:
            out[key] = REDACTED
        elif lowered == "secret" and isinstance(value, dict):
            # A secret volume: file name → base64 content. The names say what is mounted.
            out[key] = {name: REDACTED for name in value}
        elif lowered in ("gitrepo", "git_repo") and isinstance(value, dict):
            out[key] = {k: _redact_git_field(str(k), v) for k, v in value.items()}
        else:
            out[key] = _redact_tree(value)
    return out


def _redact_git_field(key: str, value: Any) -> Any:
    # A repository URL may carry a token as user-info; the rest of gitRepo is not secret.
    if key.lower() == "repository" and isinstance(value, str):
        return _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
    return _redact_tree(value)


# --- anything that is only read -------------------------------------------------------------------

# A key or an environment variable names a secret when its last word is one of these, in any case
# and with any separator: ``DB_PASS``, ``GITHUB_PAT``, ``PRIVATE_KEY_PEM``, ``sasToken``, ``x-api-key``.
# Each word is whole, so ``passport``, ``keyboard``, ``bypass`` and ``monkey`` are not secrets.
_SECRET_LAST_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "key", "pat",
                                "pem", "sas", "sig", "signature"})
# A last word run together from several (``APIKEY``, ``DBPASSWORD``, ``GITHUBTOKEN``) names a secret
# when it ends with one of these, each too long to end an ordinary word by chance.
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
                   "secretkey", "accountkey", "sharedkey", "masterkey", "signingkey", "connectionstring", "connstr")
_SECRET_LAST_PAIRS = frozenset({("connection", "string"), ("conn", "string"), ("conn", "str")})
# These name a secret when they hold a value (``AZURE_CREDENTIALS``, ``"credential": "…"``, an HTTP
# ``Authorization`` header); a list or an object of that name (a definition's
# ``imageRegistryCredentials``, an ARM event's ``authorization`` decision) is judged by its own keys.
_SECRET_WHEN_A_VALUE = frozenset({"credential", "credentials", "cred", "creds", "authorization"})
_SECRET_KEYS = frozenset({"securevalue", "connectionstring", "cookie", "setcookie", "protectedsettings"})
_URL_TAIL = r"[^\s\"'<>]*"
_STRING_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), f"Bearer {REDACTED}"),
    (re.compile(r"(?i)https://hooks\.slack\.com/" + _URL_TAIL), "[redacted-webhook-url]"),
    (re.compile(r"(?i)https://[a-z0-9.-]*webhook\.office\.com/" + _URL_TAIL), "[redacted-webhook-url]"),
    (re.compile(r"(?i)https://outlook\.office(?:365)?\.com/webhook" + _URL_TAIL), "[redacted-webhook-url]"),
    (
        re.compile(r"(?i)https://[a-z0-9.-]+\.logic\.azure\.com(?::\d+)?/workflows/" + _URL_TAIL),
        "[redacted-webhook-url]",
    ),
    (re.compile(r"(?i)https://[a-z0-9.-]+\.api\.powerplatform\.com" + _URL_TAIL), "[redacted-webhook-url]"),
    (
        re.compile(r"(?i)([?&](?:sig|code|key|token|access_token|api[-_]?key|secret|password|pwd)=)[^&\s\"'<>#]+"),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|ClientSecret)=[^;\s\"']+"),
        rf"\1={REDACTED}",
    ),
    (re.compile(r"(?i)(https?://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{REDACTED}@"),
    (
        re.compile(r'(?i)(\\?"(?:password|securevalue|secret|token|accesstoken|key)\\?"\s*:\s*\\?")[^"\\]*(\\?")'),
        rf"\1{REDACTED}\2",
    ),
)


def is_secret_key(key: str) -> bool:
    """Whether a JSON key or an environment variable's name names a secret: ``password``,
    ``secureValue``, ``APIKEY``, ``DB_PASS``, ``GITHUB_PAT``, ``PRIVATE_KEY_PEM``, ``connectionString``,
    ``sasToken``, ``AZURE_CREDENTIALS``, ``webhook*``, ... (see :data:`_SECRET_LAST_WORDS`)."""
    return _secret_kind(key) is not None


def _secret_kind(key: str) -> str | None:
    """``"any"`` when a key hides whatever it holds, ``"value"`` when it hides only a value (not a
    list or an object), None when it names no secret."""
    # "KEY1" and "key2" (a storage account's key names) end with the word "key"
    words = [w.lower().rstrip("0123456789") for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", key)]
    words = [w for w in words if w]
    if not words:
        return None
    last = words[-1]
    if (
        last in _SECRET_LAST_WORDS
        or last.endswith(_SECRET_ENDINGS)
        or tuple(words[-2:]) in _SECRET_LAST_PAIRS
        or "".join(words) in _SECRET_KEYS
        or any(w.startswith("webhook") for w in words)
    ):
        return "any"
    return "value" if last in _SECRET_WHEN_A_VALUE else None


def _hidden(key: Any, value: Any, secret_named: bool) -> bool:
    """Whether ``value``, held under ``key`` in an object whose ``name`` looks secret or not, is hidden."""
    if value is None or value == "":
        return False
    if secret_named and key == "value":
        return True
    kind = _secret_kind(str(key))
    return kind == "any" or (kind == "value" and not isinstance(value, (Mapping, list, tuple)))


def scrub(obj: Any, *, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``obj`` with everything secret-looking replaced by ``[redacted]``.

    Secret keys lose their value; strings lose JWTs, bearer tokens, Slack/Teams/Power Automate
    webhook URLs, ``sig=``/``code=``/``key=`` query values, ``AccountKey=``-style pairs, URL
    passwords and embedded JSON secrets; ``secrets`` (known values) are removed anywhere. An
    environment variable whose *name* looks secret loses its ``value``.
    """
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    return _scrub(obj, known)


def _scrub(obj: Any, known: list[str]) -> Any:
    if isinstance(obj, Mapping):
        secret_named = isinstance(obj.get("name"), str) and is_secret_key(obj["name"])
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out[key] = REDACTED if _hidden(key, value, secret_named) else _scrub(value, known)
        return out
    if isinstance(obj, (list, tuple)):
        return [_scrub(item, known) for item in obj]
    if isinstance(obj, str):
        return _scrub_text(obj, known)
    return obj


def _scrub_text(text: str, known: list[str]) -> str:
    # Longest first, so a secret that contains another is removed whole.
    for value in known:
        text = text.replace(value, REDACTED)
    for pattern, replacement in _STRING_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def find_secrets(obj: Any, path: str = "$") -> list[str]:
    """JSON paths in ``obj`` where something secret-looking remains (empty for a scrubbed report)."""
    found: list[str] = []
    if isinstance(obj, Mapping):
        secret_named = isinstance(obj.get("name"), str) and is_secret_key(obj["name"])
        for key, value in obj.items():
            if value != REDACTED and _hidden(key, value, secret_named):
                found.append(f"{path}.{key}")
            else:
                found.extend(find_secrets(value, f"{path}.{key}"))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found.extend(find_secrets(item, f"{path}[{i}]"))
    elif isinstance(obj, str) and _scrub_text(obj, []) != obj:
        found.append(path)
    return found


def url_secrets(url: str) -> list[str]:
    """The pieces of a webhook URL that must never be shown: the URL, its path and query, and each
    id-like path segment and query value (in case an answer echoes just a piece)."""
    parts = urlsplit(url)
    # Webhook URLs carry their credential in an id-like path segment (Slack) or a query value
    # (Workflows' sig=).
    ids = [seg for seg in parts.path.split("/") if len(seg) >= 16 or (len(seg) >= 6 and any(c.isdigit() for c in seg))]
    values = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    return [url, url.rstrip("/"), parts.path, parts.query, *ids, *values]

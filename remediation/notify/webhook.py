"""The generic webhook: the report itself, as JSON, signed when a secret is set.

Request: ``POST WEBHOOK_URL`` with ``Content-Type: application/json; charset=utf-8``, the body the
report (CONTRACT.md §2, ``notifications`` as known before sending) in compact UTF-8 JSON, and headers

- ``X-Remediation-Timestamp``: when it was sent, Unix seconds (UTC).
- ``X-Remediation-Signature: sha256=<hex>``, only when ``WEBHOOK_SECRET`` is set: the lower-case hex
  HMAC-SHA256 of the exact body bytes, keyed with the secret (UTF-8). The same scheme as GitHub's
  ``X-Hub-Signature-256``.

A receiver checks it like :func:`verify` does: compute the HMAC over the raw body as received, before
parsing it, and compare in constant time. The timestamp is not signed; to refuse replays, check the
report's signed ``finishedAt`` (and remember ``correlationId`` / ``eventId`` pairs already seen).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from remediation.notify.summary import encode_json

SIGNATURE_HEADER = "X-Remediation-Signature"
TIMESTAMP_HEADER = "X-Remediation-Timestamp"


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed with secret>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` (the header's value) is the body's signature under ``secret``."""
    return bool(signature) and hmac.compare_digest(sign(body, secret), str(signature))


def request(
    report: Mapping[str, Any], *, secret: str = "", clock: Callable[[], float] = time.time
) -> tuple[bytes, dict[str, str]]:
    """The body and headers to post for ``report``."""
    body = encode_json(report)
    headers = {TIMESTAMP_HEADER: str(int(clock()))}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return body, headers

"""Bearer tokens for the sandbox: unsigned JWTs that name the caller.

ARM validates a signed token; the sandbox only reads the payload's ``oid`` (the caller's
object id) and ``tid`` (tenant), which is all it needs to decide who is calling, and ``aud``,
the audience the token was requested for: a registry whose authentication-as-ARM policy is
disabled refuses ARM-audience tokens (``surfaces/registry_data.py``).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from azure.core.credentials import AccessToken


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


ARM_AUDIENCE = "https://management.azure.com/"


def make_token(oid: str, tid: str, *, ttl: int = 3600, extra: dict[str, Any] | None = None,
               audience: str = ARM_AUDIENCE) -> str:
    """An unsigned JWT (``alg: none``) carrying the claims ARM would put in Event Grid ``claims``."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tid}/",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "oid": oid,
        "tid": tid,
        "sub": oid,
        "appid": oid,
        "idtyp": "app",
    }
    payload.update(extra or {})
    header = {"alg": "none", "typ": "JWT"}
    return ".".join(
        [_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()), ""]
    )


def parse_token(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, or None when it is not a JWT with ``oid`` and ``tid``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or not payload.get("oid") or not payload.get("tid"):
        return None
    return payload


class SandboxCredential:
    """A ``TokenCredential`` whose tokens say "this call is made by principal ``oid``"."""

    def __init__(self, oid: str, tid: str, **claims: Any) -> None:
        self.oid = oid
        self.tid = tid
        self._claims = claims

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token for the first of ``scopes``: its ``aud`` is that scope's resource, as Entra's is
        (``https://containerregistry.azure.net/.default`` gives ``https://containerregistry.azure.net``)."""
        audience = scopes[0].removesuffix("/.default") if scopes else ARM_AUDIENCE
        token = make_token(self.oid, self.tid, extra=self._claims, audience=audience)
        return AccessToken(token, int(time.time()) + 3600)

    def close(self) -> None:
        """Nothing to release; present because SDK clients call it on exit."""

    def __enter__(self) -> SandboxCredential:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

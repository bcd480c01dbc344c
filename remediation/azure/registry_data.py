"""A registry's data plane, read with ACR's token protocol and its tokens kept for their lifetime.

``azure-containerregistry`` sends every call without a token first, answers the ``401`` challenge
with a fresh refresh token (its cache check is inverted, so it exchanges every time) and a fresh
access token: four sequential calls for one tag. This client asks for the access token of the scope
it knows it needs before the first call, and keeps refresh and access tokens until five minutes
before their ``exp``, so a warm client reads a tag in one call (the protocol: the ACR repository's
``docs/AAD-OAuth.md``, Azure/acr on GitHub: ``POST /oauth2/exchange`` with ``grant_type=access_token``,
then ``POST /oauth2/token`` with ``grant_type=refresh_token`` and the scope).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy, UserAgentPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse

from ..telemetry import ArmCallCounter

TOKEN_MARGIN_SECONDS = 300.0
"""A registry token is renewed this long before its ``exp``, as the SDK means to."""
_REPEATABLE = frozenset({"GET", "POST"})


@dataclass(frozen=True)
class ArtifactProperties:
    """What the registry says about a tag or manifest that exists."""

    name: str | None
    digest: str | None


def token_expiry(token: str) -> float:
    """The ``exp`` claim of a registry token (a JWT), or 0 where it has none: such a token is used once."""
    parts = token.split(".")
    if len(parts) < 2:
        return 0.0
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return 0.0
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else 0.0


class RegistryDataClient:
    """Reads tags and manifests of one registry (``endpoint`` is ``https://<login server>`` in Azure).

    Thread-safe: concurrent reads share one token exchange. Errors are azure-core's, as the SDK's
    are: :class:`ResourceNotFoundError` for a missing repository, tag or manifest,
    :class:`ClientAuthenticationError` where the caller may not read it, :class:`HttpResponseError` else.
    """

    def __init__(self, endpoint: str, login_server: str, credential: TokenCredential, *, audience: str,
                 verify: str | bool = True, retry_total: int | None = None, read_timeout: float | None = None,
                 clock: Any = time.time) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.login_server = login_server.lower()
        self._credential = credential
        self._scope = f"{audience.rstrip('/')}/.default"
        self._clock = clock
        transport_options: dict[str, Any] = {"connection_verify": verify}
        if read_timeout is not None:
            transport_options["read_timeout"] = read_timeout
        retry = RetryPolicy(retry_total=retry_total) if retry_total is not None else RetryPolicy()
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            self.endpoint, policies=[HeadersPolicy(), UserAgentPolicy(), retry, ArmCallCounter()],
            transport=RequestsTransport(**transport_options))
        self._lock = threading.Lock()
        self._refresh: tuple[str, float] | None = None
        self._access: dict[str, tuple[str, float]] = {}

    def get_tag_properties(self, repository: str, tag: str) -> ArtifactProperties:
        body = self._read(f"/acr/v1/{quote(repository)}/_tags/{quote(tag)}", repository)
        found = body.get("tag")
        return ArtifactProperties(found.get("name"), found.get("digest")) if isinstance(found, dict) else \
            ArtifactProperties(tag, None)

    def get_manifest_properties(self, repository: str, digest: str) -> ArtifactProperties:
        body = self._read(f"/acr/v1/{quote(repository)}/_manifests/{quote(digest)}", repository)
        found = body.get("manifest")
        return ArtifactProperties(None, (found.get("digest") if isinstance(found, dict) else None) or digest)

    def close(self) -> None:
        self._client.close()

    # -- reading with a token -------------------------------------------------------------------

    def _read(self, path: str, repository: str) -> dict[str, Any]:
        """GET ``path`` with an access token for the repository's metadata. A kept token the registry
        refuses (expired early, rights changed since it was issued) is dropped and the read made
        once more with new tokens; a token just issued is not retried."""
        scope = f"repository:{repository}:metadata_read"
        token, kept = self._access_token(scope)
        response = self._send(HttpRequest("GET", self.endpoint + path, headers={"Authorization": f"Bearer {token}"}))
        if response.status_code == 401 and kept:
            self._forget(scope)
            token, _ = self._access_token(scope)
            response = self._send(HttpRequest("GET", self.endpoint + path,
                                              headers={"Authorization": f"Bearer {token}"}))
        body = _raise_for(response)
        return body if isinstance(body, dict) else {}

    def _access_token(self, scope: str) -> tuple[str, bool]:
        """An access token for ``scope``, and whether it was kept from before (not just issued)."""
        with self._lock:
            now = self._clock()
            kept = self._access.get(scope)
            if kept is not None and kept[1] - TOKEN_MARGIN_SECONDS > now:
                return kept[0], True
            refresh_kept = self._refresh is not None and self._refresh[1] - TOKEN_MARGIN_SECONDS > now
            try:
                token = self._token_for(scope, self._refresh_token(now))
            except ClientAuthenticationError:
                if not refresh_kept:
                    raise
                self._refresh = None  # revoked before its time: exchange once more
                token = self._token_for(scope, self._refresh_token(now))
            self._access[scope] = (token, token_expiry(token))
            return token, False

    def _refresh_token(self, now: float) -> str:
        """A registry refresh token for the caller's Entra token (ACR's own audience); the lock is held."""
        if self._refresh is not None and self._refresh[1] - TOKEN_MARGIN_SECONDS > now:
            return self._refresh[0]
        entra = self._credential.get_token(self._scope).token
        body = _raise_for(self._send(HttpRequest("POST", f"{self.endpoint}/oauth2/exchange", data={
            "grant_type": "access_token", "service": self.login_server, "access_token": entra})))
        token = str(body.get("refresh_token") or "") if isinstance(body, dict) else ""
        self._refresh = (token, token_expiry(token))
        return token

    def _token_for(self, scope: str, refresh: str) -> str:
        body = _raise_for(self._send(HttpRequest("POST", f"{self.endpoint}/oauth2/token", data={
            "grant_type": "refresh_token", "service": self.login_server, "scope": scope, "refresh_token": refresh})))
        return str(body.get("access_token") or "") if isinstance(body, dict) else ""

    def _forget(self, scope: str) -> None:
        with self._lock:
            self._access.pop(scope, None)

    def _send(self, request: HttpRequest) -> HttpResponse:
        # the token POSTs only issue tokens, so one whose answer was lost is repeated like a GET
        # (azure-core repeats no POST after a dropped connection by default)
        return self._client.send_request(request, retry_on_methods=_REPEATABLE)


def _raise_for(response: HttpResponse) -> Any:
    """The response's JSON, or the azure-core error its status stands for."""
    if response.status_code == 404:
        raise ResourceNotFoundError(response=response)
    if response.status_code == 401:
        raise ClientAuthenticationError(response=response)
    if response.status_code >= 400:
        raise HttpResponseError(response=response)
    try:
        return response.json()
    except ValueError:
        return {}

"""The function's storage account as the Functions host sees it, and the jobs queue on it.

The ledger and the jobs queue live in the account of the ``AzureWebJobsStorage`` connection, and
are reached exactly as the host reaches it (Azure Functions docs, "Connecting to host storage
with an identity" and "Common properties for identity-based connections"):

- ``AzureWebJobsStorage``: a connection string (Azurite's ``UseDevelopmentStorage=true`` too);
- else ``AzureWebJobsStorage__accountName`` (public-cloud endpoints), or the explicit
  ``AzureWebJobsStorage__blobServiceUri``, ``__queueServiceUri`` and ``__tableServiceUri``
  (sovereign clouds, custom domains), with ``__credential`` = ``managedidentity`` and
  ``__clientId`` for a user-assigned identity.

Queue messages are base64 text, the queues extension's default ``messageEncoding``, so that the
queue trigger reads what this module sends; a message is at most 64 KiB once encoded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential

from .errors import InputError

PREFIX = "AzureWebJobsStorage"
MAX_MESSAGE_BYTES = 64 * 1024
"""Azure Queue Storage's limit for one message, counted after the base64 encoding."""
MAX_VISIBILITY_TIMEOUT = 7 * 24 * 3600
"""Azure Queue Storage's limit for a message's visibility timeout (Put Message ``visibilitytimeout``)."""
DEFAULT_MAX_DEQUEUE_COUNT = 5
"""The queues extension's default ``maxDequeueCount`` when host.json does not set one."""
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"
_AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
            "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
            "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;")


@dataclass(frozen=True)
class HostStorage:
    """How to reach the host's storage account: a connection string, or endpoints and an identity."""

    connection_string: str = ""
    blob_endpoint: str = ""
    queue_endpoint: str = ""
    table_endpoint: str = ""
    client_id: str = ""
    """The user-assigned identity of ``__clientId``; empty: the app's own credential."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HostStorage:
        conn = env.get(PREFIX, "").strip()
        if conn == "UseDevelopmentStorage=true":
            conn = _AZURITE
        if conn:
            return cls(connection_string=conn)
        account = env.get(f"{PREFIX}__accountName", "").strip()
        endpoints = {service: env.get(f"{PREFIX}__{service}ServiceUri", "").strip().rstrip("/")
                     for service in ("blob", "queue", "table")}
        for service, uri in endpoints.items():
            if not uri and account:
                endpoints[service] = f"https://{account}.{service}.core.windows.net"
            if not endpoints[service]:
                raise InputError(f"set {PREFIX}, {PREFIX}__accountName or {PREFIX}__{service}ServiceUri "
                                 "for the ledger and the jobs queue")
            if not endpoints[service].startswith("https://"):
                raise InputError(f"{PREFIX}__{service}ServiceUri must be an https:// URL")
        credential_kind = env.get(f"{PREFIX}__credential", "").strip().lower()
        if credential_kind not in ("", "managedidentity"):
            raise InputError(f"{PREFIX}__credential accepts only managedidentity")
        return cls(blob_endpoint=endpoints["blob"], queue_endpoint=endpoints["queue"],
                   table_endpoint=endpoints["table"], client_id=env.get(f"{PREFIX}__clientId", "").strip())

    def credential(self, app_credential: TokenCredential) -> TokenCredential:
        if not self.client_id:
            return app_credential
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=self.client_id)

    def queue_client(self, queue_name: str, app_credential: TokenCredential) -> Any:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
        if self.connection_string:
            return QueueClient.from_connection_string(self.connection_string, queue_name,
                                                      message_encode_policy=encode, message_decode_policy=decode)
        return QueueClient(self.queue_endpoint, queue_name, credential=self.credential(app_credential),
                           message_encode_policy=encode, message_decode_policy=decode)


def encoded_size(text: str) -> int:
    """The size of ``text`` on the queue: base64 of its UTF-8 bytes."""
    return len(base64.b64encode(text.encode("utf-8")))


class JobQueue:
    """The jobs queue, for the app's own sends (a replay queues one message per event)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._ready = False

    def send(self, text: str, *, visibility_timeout: int = 0) -> None:
        """Queue ``text``; with ``visibility_timeout`` (seconds, at most 7 days) the message stays
        invisible that long, so a job that must wait (a group another run holds) comes back later."""
        if not 0 <= visibility_timeout <= MAX_VISIBILITY_TIMEOUT:
            raise ValueError("a queue message's visibility timeout is 0 to 7 days")
        if encoded_size(text) > MAX_MESSAGE_BYTES:
            raise ValueError("a queue message is at most 64 KiB once base64-encoded")
        from azure.core.exceptions import ResourceExistsError

        if not self._ready:
            with contextlib.suppress(ResourceExistsError):  # the host or another instance made it
                self._client.create_queue()
            self._ready = True
        self._client.send_message(text, visibility_timeout=visibility_timeout or None)

    def close(self) -> None:
        self._client.close()


def max_dequeue_count(env: Mapping[str, str] | None = None, host_json: Path = HOST_JSON) -> int:
    """``extensions.queues.maxDequeueCount`` as the host reads it: an app setting
    ``AzureFunctionsJobHost__extensions__queues__maxDequeueCount`` overrides host.json."""
    source = os.environ if env is None else env
    override = source.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount", "").strip()
    if override:
        return int(override)
    try:
        config = json.loads(host_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_MAX_DEQUEUE_COUNT
    value = config.get("extensions", {}).get("queues", {}).get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT)
    return int(value)

"""Dead letters: events the app gave up on, kept as blobs the way Event Grid dead-letters them.

Each blob holds a JSON array of events, every one carrying Event Grid's dead-letter fields
(``deadLetterReason``, ``deliveryAttempts``, ``lastDeliveryOutcome``, ``publishTime``,
``lastDeliveryAttemptTime``), so Event Grid's own dead letters and the app's read the same, and
a blob's content can be posted to ``POST /api/replay`` as is. Names follow Event Grid's layout,
``<source>/<year>/<month>/<day>/<hour>/<guid>.json``, so they list oldest first.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

DEFAULT_CONTAINER = "remediation-deadletters"


class DeadLetterError(ValueError):
    """A dead-letter blob whose content is not a JSON event or array of events."""


class DeadLetters:
    """Put, list, read and delete dead-lettered events in one blob container (created on first use)."""

    def __init__(self, blob_service_client: BlobServiceClient, container: str = DEFAULT_CONTAINER) -> None:
        self._container = blob_service_client.get_container_client(container)
        self._ready = False
        self._lock = threading.Lock()

    def put(
        self,
        events: Sequence[Mapping[str, Any]],
        reason: str,
        *,
        delivery_attempts: int = 1,
        last_outcome: str | None = None,
        source: str = "remediation",
        now: datetime | None = None,
    ) -> str:
        """Dead-letter ``events`` for ``reason``; returns the blob name.

        Fields an event already has from an earlier dead-lettering (``deliveryAttempts``,
        ``publishTime``) are kept; the reason and last attempt time are this one's.
        """
        if not events:
            raise ValueError("nothing to dead-letter: no events")
        at = (now or datetime.now(UTC)).astimezone(UTC)
        stamp = at.isoformat().replace("+00:00", "Z")
        records = []
        for event in events:
            record = dict(event)
            record["deadLetterReason"] = reason
            record.setdefault("deliveryAttempts", delivery_attempts)
            record["lastDeliveryOutcome"] = last_outcome or reason
            record.setdefault("publishTime", event.get("eventTime") or event.get("time") or stamp)
            record["lastDeliveryAttemptTime"] = stamp
            records.append(record)
        name = f"{source}/{at:%Y/%m/%d/%H}/{uuid.uuid4()}.json"
        self._client().upload_blob(
            name, json.dumps(records).encode(), overwrite=False, metadata={"reason": _header_safe(reason)}
        )
        return name

    def list(self, prefix: str | None = None) -> builtins.list[str]:
        """Blob names of the dead letters (optionally under ``prefix``), oldest first."""
        return sorted(blob.name for blob in self._client().list_blobs(name_starts_with=prefix))

    def get(self, name: str) -> builtins.list[dict[str, Any]]:
        """The events of one dead letter; raises ``ResourceNotFoundError`` when there is no such blob."""
        data = self._client().download_blob(name).readall()
        try:
            content = json.loads(data or b"null")
        except ValueError as exc:
            raise DeadLetterError(f"dead letter {name} is not JSON: {exc}") from exc
        if isinstance(content, dict):
            content = [content]
        if not isinstance(content, builtins.list) or not all(isinstance(e, dict) for e in content):
            raise DeadLetterError(f"dead letter {name} is not a JSON array of events")
        return content

    def delete(self, name: str) -> bool:
        """Delete one dead letter (after it was replayed); False when it was not there."""
        try:
            self._client().delete_blob(name)
        except ResourceNotFoundError:
            return False
        return True

    def _client(self) -> ContainerClient:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    with contextlib.suppress(ResourceExistsError):  # another instance created it first
                        self._container.create_container()
                    self._ready = True
        return self._container


def _header_safe(text: str) -> str:
    """Blob metadata travels in HTTP headers: ASCII only, one line, bounded."""
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")[:256]

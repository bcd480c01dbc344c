"""What every part of the ledger shares: the table and container, keys, times, and the one
conditional write that decides who wins (:func:`insert_or_take_over`)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient

log = logging.getLogger("remediation.ledger")

DEFAULT_TABLE = "RemediationLedger"
DEFAULT_REPORTS_CONTAINER = "remediation-reports"
DEFAULT_CLAIM_TTL = timedelta(minutes=15)
DEFAULT_RETENTION_DAYS = 30
INLINE_LIMIT = 30_000
"""Longer texts go to a blob. A string property holds 64 KiB (32 Ki UTF-16 units); JSON is written
ASCII-only, so its length in characters is its length in UTF-16 units."""

SAFE_KEY = re.compile(r"[A-Za-z0-9._:@=+-]{1,200}")
_MAX_MICROS = 10**16 - 1  # inverted timestamps stay 16 digits until the year 2286
_TAKE_OVER_ROUNDS = 3
"""An insert is retried only when the row it collided with is gone by the time it is read (purged,
or a lease given up meanwhile); a few rounds are enough for that race."""


class LedgerError(RuntimeError):
    """The ledger cannot do what was asked (e.g. a large report without blob storage, a lost blob)."""


def resource_hash(resource_id: str) -> str:
    """The 32-hex-digit key of a resource id (case-insensitive, as ARM ids are)."""
    return hashlib.sha256(resource_id.strip().lower().encode()).hexdigest()[:32]


def key(value: str) -> str:
    """A RowKey for an id: itself (lower-cased) when safe, else a hash (keys forbid / \\ # ? and controls)."""
    lowered = value.strip().lower()
    if SAFE_KEY.fullmatch(lowered):
        return lowered
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def unique(at: datetime) -> str:
    """A sortable, key-safe, unique RowKey for a time: ``20250101T120000.123456Z-<random>``."""
    return f"{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:12]}"


def inverted(at: datetime) -> str:
    """A 16-digit key that sorts later times first."""
    return f"{_MAX_MICROS - int(at.timestamp() * 1_000_000):016d}"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value:
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def etag_of(entity: TableEntity | Mapping[str, Any]) -> str:
    metadata = getattr(entity, "metadata", None) or {}
    etag = metadata.get("etag") or (entity.get("etag") if isinstance(entity, Mapping) else None)
    if not etag:
        raise LedgerError("the table service returned no ETag")
    return str(etag)


@dataclass(frozen=True)
class Written:
    """A row :func:`insert_or_take_over` wrote: its new ETag, and the row it replaced (None: inserted)."""

    etag: str
    replaced: TableEntity | None


def insert_or_take_over(
    table: TableClient, row: Mapping[str, Any], take_over: Callable[[TableEntity], Mapping[str, Any] | None],
    *, existing: TableEntity | None = None,
) -> Written | None:
    """Insert ``row``; where a row with its keys exists, replace that row with ``take_over(existing)``,
    conditioned on the ETag that was read. None when ``take_over`` answers None (the existing row
    stands) or another writer changed the row first: among concurrent callers at most one wins.
    ``existing``: the row as the caller just read it, so the first round replaces it without trying
    the insert (its ETag still decides).
    """
    for _ in range(_TAKE_OVER_ROUNDS):
        if existing is None:
            try:
                return Written(etag_of(table.create_entity(row)), None)
            except ResourceExistsError:
                pass
            try:
                existing = table.get_entity(row["PartitionKey"], row["RowKey"])
            except ResourceNotFoundError:
                continue  # gone between the insert and the read: insert again
        replacement = take_over(existing)
        if replacement is None:
            return None
        try:
            updated = table.update_entity(replacement, mode=UpdateMode.REPLACE, etag=etag_of(existing),
                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None  # another writer's change came first, so it won
        return Written(etag_of(updated), existing)
    return None


class Store:
    """The ledger's table and blob container, created on first use, and the texts kept in them."""

    def __init__(
        self,
        tables: TableServiceClient | TableClient,
        blobs: BlobServiceClient | None = None,
        *,
        table_name: str = DEFAULT_TABLE,
        reports_container: str = DEFAULT_REPORTS_CONTAINER,
        claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        self._table = tables.get_table_client(table_name) if isinstance(tables, TableServiceClient) else tables
        self._container: ContainerClient | None = (
            blobs.get_container_client(reports_container) if blobs is not None else None
        )
        self.claim_ttl = claim_ttl
        self.retention_days = retention_days
        self.inline_limit = inline_limit
        self._lock = threading.Lock()
        self._table_ready = False
        self._container_ready = False

    def close(self) -> None:
        self._table.close()
        if self._container is not None:
            self._container.close()

    def _put_text(self, row: dict[str, Any], text: str, blob_name: str, at: datetime) -> None:
        if len(text) <= self.inline_limit:
            row["Body"] = text
            return
        if self._container is None:
            raise LedgerError(f"{len(text)} characters do not fit a table row; the ledger needs blob storage for them")
        self._containers().upload_blob(blob_name, text.encode(), overwrite=True, metadata={"at": at.isoformat()})
        row["Blob"] = blob_name

    def _get_text(self, row: TableEntity) -> str:
        blob = row.get("Blob")
        if not blob:
            return str(row.get("Body") or "null")
        if self._container is None:
            raise LedgerError(f"row {row['PartitionKey']}/{row['RowKey']} points to blob {blob}; no blob storage given")
        try:
            data: bytes = self._containers().download_blob(str(blob)).readall()
        except ResourceNotFoundError as exc:
            raise LedgerError(f"blob {blob} of row {row['PartitionKey']}/{row['RowKey']} is missing") from exc
        return data.decode()

    def _delete_blob(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # already gone: another instance purged it
            self._containers().delete_blob(name)

    def _tables(self) -> TableClient:
        if not self._table_ready:
            with self._lock:
                if not self._table_ready:
                    _create(self._table.create_table, f"table {self._table.table_name}")
                    self._table_ready = True
        return self._table

    def _containers(self) -> ContainerClient:
        if self._container is None:
            raise LedgerError("no blob storage was given to the ledger")
        if not self._container_ready:
            with self._lock:
                if not self._container_ready:
                    _create(self._container.create_container, f"container {self._container.container_name}")
                    self._container_ready = True
        return self._container


def _create(create: Callable[[], Any], what: str) -> None:
    """Create a table or container; one that exists already (another instance won the race) is fine."""
    try:
        create()
    except ResourceExistsError:
        pass
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise
        # An identity without the right to create may still use one that infrastructure created.
        log.warning("may not create %s (%s); assuming it exists", what, exc.reason)

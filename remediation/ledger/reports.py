"""What the app keeps: every run's report (the audit trail) and each group's last known-good definition."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from .store import LedgerError, Store, inverted, parse_time, resource_hash, utc

_REPORT_ID = re.compile(r"([0-9a-f]{32})-([0-9]{16}-[0-9a-f]{12})")


class Reports(Store):
    """Reports, newest first per group, and snapshots; texts too large for a row go to a blob."""

    # --- reports ---------------------------------------------------------------------------------

    def save_report(self, report: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """Store a report; returns its id, the same for the same resource, correlation id and start time.

        Reports longer than ``inline_limit`` characters of JSON go to a blob, the row keeps a pointer.
        """
        resource_id = str(report.get("resourceId") or "")
        if not resource_id:
            raise ValueError("a report needs a resourceId")
        started = parse_time(report.get("startedAt")) or utc(now)
        ident = str(report.get("correlationId") or report.get("eventId") or "")
        digest = hashlib.sha256(f"{resource_id.lower()}|{ident.lower()}|{started.isoformat()}".encode()).hexdigest()
        rh, rk = resource_hash(resource_id), f"{inverted(started)}-{digest[:12]}"
        report_id = f"{rh}-{rk}"
        row: dict[str, Any] = {
            "PartitionKey": "report-" + rh, "RowKey": rk, "Kind": "report", "ResourceId": resource_id,
            "CorrelationId": str(report.get("correlationId") or ""), "Outcome": str(report.get("outcome") or ""),
            "Trigger": str(report.get("trigger") or ""), "At": started, "SavedAt": utc(now),
        }
        self._put_text(row, json.dumps(report, separators=(",", ":")), f"reports/{report_id}.json", started)
        self._tables().upsert_entity(row, mode=UpdateMode.REPLACE)
        return report_id

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        """The stored report with this id, or None (also for an id that is not one of ours)."""
        match = _REPORT_ID.fullmatch(report_id or "")
        if not match:
            return None
        try:
            row = self._tables().get_entity("report-" + match.group(1), match.group(2))
        except ResourceNotFoundError:
            return None
        return self._report_of(row)

    def reports_for(self, resource_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The reports of one container group, newest first (by their ``startedAt``)."""
        rows = self._tables().query_entities(
            "PartitionKey eq @pk", parameters={"pk": "report-" + resource_hash(resource_id)}
        )
        reports: list[dict[str, Any]] = []
        for row in sorted(rows, key=lambda r: str(r["RowKey"])):  # inverted time: ascending is newest first
            reports.append(self._report_of(row))
            if limit is not None and len(reports) >= limit:
                break
        return reports

    def _report_of(self, row: TableEntity) -> dict[str, Any]:
        report = json.loads(self._get_text(row))
        if not isinstance(report, dict):
            raise LedgerError(f"report row {row['PartitionKey']}/{row['RowKey']} does not hold a JSON object")
        report["id"] = f"{str(row['PartitionKey']).removeprefix('report-')}-{row['RowKey']}"
        return report

    # --- last known good -------------------------------------------------------------------------

    def save_snapshot(self, resource_id: str, definition: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Keep ``definition`` (already redacted) as the group's last known-good one, replacing the previous."""
        at = utc(now)
        rh = resource_hash(resource_id)
        row: dict[str, Any] = {"PartitionKey": "snapshot-" + rh, "RowKey": "latest", "Kind": "snapshot",
                               "ResourceId": resource_id, "At": at}
        self._put_text(row, json.dumps(definition, separators=(",", ":")), f"snapshots/{rh}.json", at)
        self._tables().upsert_entity(row, mode=UpdateMode.REPLACE)

    def snapshot_saved_at(self, resource_id: str) -> datetime | None:
        """When the group's last known-good definition was kept (its last successful redeploy), or None."""
        try:
            row = self._tables().get_entity("snapshot-" + resource_hash(resource_id), "latest", select=["At"])
        except ResourceNotFoundError:
            return None
        return parse_time(row.get("At"))

    def last_snapshot(self, resource_id: str) -> dict[str, Any] | None:
        """The last known-good definition (``GatherOptions.snapshot``), or None when none was kept."""
        try:
            row = self._tables().get_entity("snapshot-" + resource_hash(resource_id), "latest")
        except ResourceNotFoundError:
            return None
        definition = json.loads(self._get_text(row))
        return definition if isinstance(definition, dict) else None

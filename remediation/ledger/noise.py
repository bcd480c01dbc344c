"""Noise control: fix attempts per group (the policy's attempt limit), one message per group and
outcome per cool-down, and the storm count of all notifications asked for."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableEntity

from .store import Store, insert_or_take_over, key, parse_time, resource_hash, unique, utc


def _bucket(at: datetime) -> str:
    return "notice-" + at.strftime("%Y%m%d%H%M")


class NoiseControl(Store):
    """Attempts, cool-downs and storms."""

    def record_attempt(self, resource_id: str, now: datetime | None = None) -> None:
        """Record one fix attempt on a container group (read back by :meth:`attempts_in_window`)."""
        at = utc(now)
        self._tables().create_entity({
            "PartitionKey": "attempt-" + resource_hash(resource_id), "RowKey": unique(at),
            "Kind": "attempt", "ResourceId": resource_id, "At": at,
        })

    def attempts_in_window(self, resource_id: str, minutes: int, now: datetime | None = None) -> int:
        """How many attempts on ``resource_id`` were recorded in the ``minutes`` before ``now``."""
        at = utc(now)
        rows = self._tables().query_entities(
            "PartitionKey eq @pk and At gt @since and At le @now",
            parameters={"pk": "attempt-" + resource_hash(resource_id), "since": at - timedelta(minutes=minutes),
                        "now": at},
            select=["RowKey"],
        )
        return sum(1 for _ in rows)

    def notify_allowed(self, resource_id: str, cooldown_minutes: int, now: datetime | None = None, *,
                       outcome: str) -> bool:
        """Whether this caller may notify about ``resource_id`` now; True for one caller per cool-down.

        The cool-down is kept per outcome (the report's ``outcome``), so one outcome never
        suppresses another: a ``diagnosed`` report that needs a person goes out even if a
        ``remediated`` or ``dry-run`` message about the group went out within the cool-down.
        A True answer records the notification (conditional insert or ETag-conditioned update), so
        concurrent instances cannot both get True. Every call, allowed or suppressed, is counted
        for :meth:`storm_count`.
        """
        at = utc(now)
        cooldown = timedelta(minutes=cooldown_minutes)
        row = {"PartitionKey": "cooldown-" + resource_hash(resource_id), "RowKey": key(outcome),
               "Kind": "cooldown", "ResourceId": resource_id, "Outcome": outcome, "At": at}

        def take_over(existing: TableEntity) -> dict[str, Any] | None:
            last = parse_time(existing.get("At"))
            return None if last is not None and last > at - cooldown else row

        allowed = insert_or_take_over(self._tables(), row, take_over) is not None
        self._tables().create_entity({
            "PartitionKey": _bucket(at), "RowKey": unique(at), "Kind": "notice", "ResourceId": resource_id,
            "At": at, "Sent": allowed,
        })
        return allowed

    def storm_count(self, window_minutes: int, now: datetime | None = None) -> int:
        """How many notifications (sent or suppressed, all resources) were asked for in the window."""
        at = utc(now)
        since = at - timedelta(minutes=window_minutes)
        rows = self._tables().query_entities(
            "PartitionKey ge @first and PartitionKey le @last and At gt @since and At le @now",
            parameters={"first": _bucket(since), "last": _bucket(at), "since": since, "now": at},
            select=["RowKey"],
        )
        return sum(1 for _ in rows)

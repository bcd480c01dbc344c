"""Publishing a "remediation finished" CloudEvent to an Event Grid custom topic.

One event per report: ``source`` ``/aci-acr-remediation``, ``type``
``Contoso.AciAcrRemediation.<Outcome>`` (``Remediated``, ``FixedAwaitingRedeploy``, ``Diagnosed``,
``DryRun``, ``Skipped``, ``Failed``), ``subject`` the container group's resource id, ``data`` the
compact summary of :func:`remediation.notify.summary.compact` (codes, actions, redeploy, ids; the
full report stays in the ledger). Subscribers filter on ``type`` to react to, say, failures only.

The topic must accept the CloudEvents 1.0 input schema. Authentication: ``EVENTGRID_TOPIC_KEY``
(``aeg-sas-key``) when set, else the app's token credential, which needs the "EventGrid Data
Sender" role on the topic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient

from remediation.notify.delivery import DEFAULT_POLICY, RetryPolicy
from remediation.notify.summary import compact

log = logging.getLogger(__name__)


class _IgnoredOptionFilter(logging.Filter):
    """Drops the SDK's "<option> is not a known attribute of class ..." warnings for our call options.

    The legacy publisher also hands per-call options to its event model, which warns that it ignores
    them; they are meant for the pipeline, which does use them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "%s is not a known attribute of class %s and will be ignored"
            and bool(record.args)
            and isinstance(record.args, tuple)
            and record.args[0] in _CALL_OPTIONS
        )


_CALL_OPTIONS = frozenset(
    {"connection_timeout", "read_timeout", "retry_total", "retry_backoff_max", "connection_verify"}
)
logging.getLogger("azure.eventgrid._legacy._generated._serialization").addFilter(_IgnoredOptionFilter())

SOURCE = "/aci-acr-remediation"
TYPE_PREFIX = "Contoso.AciAcrRemediation."


def event_type(outcome: Any) -> str:
    """``Contoso.AciAcrRemediation.FixedAwaitingRedeploy`` for ``fixed-awaiting-redeploy``."""
    words = [w for w in str(outcome or "unknown").replace("_", "-").split("-") if w]
    return TYPE_PREFIX + "".join(w[:1].upper() + w[1:] for w in words)


def cloud_event(report: Mapping[str, Any]) -> CloudEvent[dict[str, Any]]:
    """The CloudEvent announcing ``report``."""
    return CloudEvent(
        source=SOURCE,
        type=event_type(report.get("outcome")),
        subject=str(report.get("resourceId") or ""),
        data=compact(report),
        datacontenttype="application/json",
    )


def publish(
    report: Mapping[str, Any],
    *,
    endpoint: str,
    key: str = "",
    credential: TokenCredential | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    connection_verify: bool | str = True,
) -> dict[str, str]:
    """Send the report's CloudEvent; the ``eventgrid`` notification entry. Never raises.

    ``connection_verify``: ``True``, ``False`` or a CA bundle path (a local test receiver's CA).
    """
    auth: AzureKeyCredential | TokenCredential | None = AzureKeyCredential(key) if key else credential
    if auth is None:
        return _entry("failed", "EVENTGRID_TOPIC_KEY is not set and no credential was given")
    options: dict[str, Any] = {
        "connection_timeout": policy.connect_timeout,
        "read_timeout": policy.read_timeout,
        "retry_total": max(policy.max_attempts - 1, 0),
        "retry_backoff_max": policy.max_delay,
        "connection_verify": connection_verify,
    }
    try:
        event = cloud_event(report)
        # azure-eventgrid 4.22's EventGridPublisherClient drops constructor options (timeouts, retry,
        # connection_verify) for Basic topics, so they go with the call, where azure-core reads them.
        with EventGridPublisherClient(endpoint, auth) as client:
            client.send([event], **options)
    except HttpResponseError as exc:
        code = getattr(getattr(exc, "error", None), "code", None)
        return _entry("failed", f"HTTP {exc.status_code}" + (f" {exc.reason}" if exc.reason else "")
                      + (f": {code}" if code else ""))
    except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
        return _entry("failed", f"timed out ({type(exc).__name__})")
    except (ServiceRequestError, ServiceResponseError) as exc:
        return _entry("failed", f"connection failed ({type(exc).__name__})")
    except (AzureError, ValueError, TypeError) as exc:
        return _entry("failed", f"could not publish ({type(exc).__name__})")
    return _entry("sent", f"CloudEvent {event.type} id {event.id}")


def _entry(status: str, detail: str) -> dict[str, str]:
    (log.info if status == "sent" else log.warning)("notification eventgrid %s: %s", status, detail)
    return {"channel": "eventgrid", "status": status, "detail": detail}

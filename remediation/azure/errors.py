"""How the Azure layer reads SDK errors: one line for reports, and whether a retry may help."""

from __future__ import annotations

import re

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

CONNECTION_ERRORS = (ServiceRequestError, ServiceResponseError)
"""A call that got no answer: not sent (``ServiceRequestError``), or sent and its answer lost to a
reset or a read timeout (``ServiceResponseError``, which the SDK does not retry for POST and PATCH)."""


def is_transient(exc: Exception) -> bool:
    """Throttling, server errors and lost connections: a later attempt may succeed."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    return isinstance(exc, HttpResponseError) and (exc.status_code == 429 or (exc.status_code or 0) >= 500)


def describe(exc: Exception, *, limit: int = 300) -> str:
    """``Code: first line of the message`` for ARM errors, ``Type: message`` otherwise. A refusal of
    the app's own rights (``AuthorizationFailed``) also says which permission is missing and which
    part of ``infra/`` grants it (see :func:`authorization_fix`)."""
    if isinstance(exc, HttpResponseError) and exc.error is not None:
        message = str(exc.error.message)
        line = f"{exc.error.code}: {message.splitlines()[0][:limit]}"
        fix = authorization_fix(str(exc.error.code), message)
        return f"{line} ({fix})" if fix else line
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit] if text else ''}"


# ARM's wording: "... to perform action '<action>' over scope '<scope>' ...", and for a linked check
# "... to perform action(s) '<action>' on the linked scope(s) '<scope>' ..."
_REFUSED = re.compile(r"perform action(?:\(s\))? '([^']+)' (?:over|on the linked) scope(?:\(s\))? '([^']+)'")
_DELEGATION = "Role Based Access Control Administrator, limited to AcrPull and Container Registry Repository Reader"
_REMEDIATOR_ROLE = "ACI Image Pull Remediator (infra/modules/remediator-role.bicep)"
_GRANTED_BY = {
    "microsoft.authorization/roleassignments/write": _DELEGATION,
    "microsoft.authorization/roleassignments/delete": _DELEGATION,
    "microsoft.containerinstance/containergroups/write": _REMEDIATOR_ROLE,
    "microsoft.containerregistry/registries/write": _REMEDIATOR_ROLE,
    "microsoft.managedidentity/userassignedidentities/assign/action": _REMEDIATOR_ROLE,
    "microsoft.resources/deployments/exporttemplate/action": _REMEDIATOR_ROLE,
}
"""Each write the app makes → the role ``infra/modules/target-subscription.bicep`` gives it for that
write; every read comes with Reader."""


def authorization_fix(code: str, message: str) -> str | None:
    """For ARM's ``AuthorizationFailed`` or ``LinkedAuthorizationFailed`` answer to the app: the
    permission its identity lacks, the scope, and the infra deployment that grants it; else None."""
    if code not in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
        return None
    found = _REFUSED.search(message)
    if found is None:
        return "the app's identity lacks a permission: deploy infra/modules/target-subscription.bicep there"
    action, scope = found.groups()
    role = _GRANTED_BY.get(action.lower(), "Reader")
    return (f"the app's identity lacks {action} on {scope}: deploy infra/modules/target-subscription.bicep in that "
            f"subscription, which assigns it {role}")

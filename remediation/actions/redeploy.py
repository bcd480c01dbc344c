"""``redeploy``: PUT the failed group's own definition again, the last step of a remediation.

``params`` hold at most ``apiVersion`` (never older than identity credentials need). The body is
the definition the gate chose (``remediation.policy.Gate.redeploy_definition``, else the recorded
one); the redeploy stage, not the apply stage, performs it (``remediation.azure.redeploy``).
"""

from __future__ import annotations

from remediation.actions import FixKind, declare
from remediation.errors import InputError
from remediation.model import MIN_IDENTITY_API_VERSION, Action, Context
from remediation.resource_ids import parse_resource_id


def _invariant(action: Action, ctx: Context) -> str | None:
    if action.target.lower() != ctx.signal.resource_id.lower():
        return f"a redeploy may only target the failed group {ctx.signal.resource_id}"
    if not set(action.params) <= {"apiVersion"}:
        return f"redeploy params may only hold apiVersion, got {sorted(action.params)}"
    version = action.params.get("apiVersion")
    if version is not None and (not isinstance(version, str) or version[:10] < MIN_IDENTITY_API_VERSION):
        return f"redeploy api-version {version!r} is older than {MIN_IDENTITY_API_VERSION}"
    return None


def _command(action: Action) -> str | None:
    if action.status != "skipped":
        return None
    try:
        group = parse_resource_id(action.target)
    except InputError:
        return None
    if group.provider_type.lower() != "microsoft.containerinstance/containergroups":
        return None
    return (
        f"az deployment group create --subscription {group.subscription} --resource-group {group.resource_group} "
        f"--template-file <the template that deploys {group.name}>  # redeploy now that the fix is in place"
    )


REDEPLOY = declare(FixKind(
    name="redeploy",
    order=40,
    target="container-group",
    writes=True,
    needs_redeploy=False,
    waits_for_propagation=False,
    invariant=_invariant,
    command=_command,
))

"""ARM resource ids: the one parser the app reads them with.

``/subscriptions/{sub}/resourceGroups/{group}/providers/{Namespace}/{type}/{name}[/{child type}/{child name}…]``,
and the subscription and resource-group ids above it. Segment names compare case-insensitively,
as ARM's do.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from remediation.errors import InputError

# ARM names: a segment without "/" and not empty; subscription ids are GUIDs in Azure but the
# docs' samples use placeholders such as "{subscription-id}", so any segment is accepted.
_SEGMENT = r"[^/]+"
_RESOURCE_ID = re.compile(
    rf"^/subscriptions/(?P<sub>{_SEGMENT})"
    rf"(?:/resourcegroups/(?P<rg>{_SEGMENT}))?"
    rf"(?:/providers/(?P<ns>{_SEGMENT})(?P<rest>(?:/{_SEGMENT}/{_SEGMENT})+))?/?$",
    re.IGNORECASE,
)


class ResourceId(NamedTuple):
    """The parts of an ARM resource id, as :func:`parse_resource_id` reads them."""

    subscription: str
    resource_group: str
    """Empty for an id that lies in no resource group (a subscription, a subscription-level resource)."""
    provider_type: str
    """ARM's full type: ``Microsoft.ContainerInstance/containerGroups``; a child gives
    ``Namespace/parent/child``."""
    name: str


def ascii_only(resource_id: str) -> str:
    """``resource_id`` itself, or :class:`InputError` when it holds a character outside ASCII.

    Ids are checked with this where they enter the app (events, replays, the command line). A
    look-alike such as U+212A KELVIN SIGN lower-cases to ``k``, so an id outside
    REMEDIATION_ALLOWED_SCOPES would compare equal to one inside it, while ARM treats the two as
    different resources. ARM resource ids are ASCII except for resource-group names, which may hold
    Unicode letters; a container group in such a resource group is refused rather than risk that.
    The message names the code point, not the id, so the character itself goes nowhere.
    """
    for char in resource_id:
        if not char.isascii():
            raise InputError(f"resource id contains the non-ASCII character U+{ord(char):04X}; "
                             "only ASCII resource ids are accepted")
    return resource_id


def parse_resource_id(resource_id: str) -> ResourceId:
    """Split an ARM resource id into its subscription, resource group, type and name.

    Resource-group and subscription ids parse too, as ``Microsoft.Resources/resourceGroups`` and
    ``Microsoft.Resources/subscriptions`` (with an empty resource group). Raises
    :class:`InputError` for anything else, ids above a subscription included (a tenant-level role
    definition, a management group).
    """
    if not isinstance(resource_id, str) or not resource_id.strip():
        raise InputError("resource id is empty")
    match = _RESOURCE_ID.match(resource_id.strip())
    if match is None:
        raise InputError(f"resource id {resource_id!r} is not an ARM resource id")
    subscription, group, namespace, rest = match.group("sub", "rg", "ns", "rest")
    if namespace is None:
        if group is None:
            return ResourceId(subscription, "", "Microsoft.Resources/subscriptions", subscription)
        return ResourceId(subscription, group, "Microsoft.Resources/resourceGroups", group)
    parts = rest.strip("/").split("/")
    types, names = parts[0::2], parts[1::2]
    return ResourceId(subscription, group or "", "/".join([namespace, *types]), names[-1])

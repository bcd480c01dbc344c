"""What the sweep looks at: the container groups in the allowed scopes that pull with an identity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..resource_ids import parse_resource_id

if TYPE_CHECKING:
    from .clients import AzureClients


def groups_pulling_with_identity(clients: AzureClients, scopes: Iterable[str]) -> list[str]:
    """The ids, sorted, of the container groups in ``scopes`` (subscription or resource-group ids)
    with a registry credential that names a managed identity. Ids with a non-ASCII character (a
    resource group named with Unicode letters) are left out: the app refuses them wherever ids
    enter (``resource_ids.ascii_only``)."""
    found: set[str] = set()
    for scope in scopes:
        where = parse_resource_id(scope)
        groups = clients.container_instance(where.subscription).container_groups
        listed = groups.list_by_resource_group(where.resource_group) if where.resource_group else groups.list()
        for group in listed:
            if group.id and group.id.isascii() and any(c.identity for c in group.image_registry_credentials or []):
                found.add(group.id)
    return sorted(found)

"""ARM's naming rules for the ids the app writes into suggested commands.

A report offers Azure CLI commands for a person to run. The ids in them come from events and ARM
answers, so a report only offers a command when each id follows the naming rules of its resource
type, and every value is shell-quoted besides (:func:`shell`). The rules are those of "Naming
rules and restrictions for Azure resources"
(https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules):

- ``Microsoft.Resources/resourcegroups``: 1-90 characters, alphanumerics, underscores,
  parentheses, hyphens and periods; not ending with a period. (ARM also accepts Unicode letters;
  a command holds ASCII only.)
- ``Microsoft.ContainerRegistry/registries``: 5-50 alphanumerics.
- ``Microsoft.ContainerInstance/containerGroups``: 1-63 lowercase letters, numbers and hyphens,
  not starting or ending with a hyphen, no consecutive hyphens. Names compare case-insensitively
  and ARM may return another casing than the one created, so the rule is checked in lower case.
- Subscriptions, principals and role definitions are named by GUIDs.
"""

from __future__ import annotations

import re
import shlex

from remediation.errors import InputError
from remediation.resource_ids import parse_resource_id

REGISTRY_TYPE = "microsoft.containerregistry/registries"
CONTAINER_GROUP_TYPE = "microsoft.containerinstance/containergroups"

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RESOURCE_GROUP = re.compile(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]")
_NAMES = {
    REGISTRY_TYPE: re.compile(r"[A-Za-z0-9]{5,50}"),
    CONTAINER_GROUP_TYPE: re.compile(r"(?!.*--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"),
}
_API_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?")


def is_guid(value: object) -> bool:
    """Whether ``value`` is a GUID in its usual 8-4-4-4-12 hex form."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def is_api_version(value: object) -> bool:
    """Whether ``value`` is an ARM api-version (``2023-05-01``, ``2024-11-01-preview``)."""
    return isinstance(value, str) and _API_VERSION.fullmatch(value) is not None


def follows_naming_rules(resource_id: str, resource_type: str) -> bool:
    """Whether ``resource_id`` is exactly one resource of ``resource_type`` (a registry or a
    container group) whose subscription, resource group and name follow ARM's rules."""
    rule = _NAMES.get(resource_type.lower())
    if rule is None or not isinstance(resource_id, str) or resource_id != resource_id.strip():
        return False
    try:
        parsed = parse_resource_id(resource_id)
    except InputError:
        return False
    return (
        parsed.provider_type.lower() == resource_type.lower()
        and is_guid(parsed.subscription)
        and _RESOURCE_GROUP.fullmatch(parsed.resource_group) is not None
        and rule.fullmatch(parsed.name.lower()) is not None
    )


def shell(*words: str) -> str:
    """The words as one POSIX shell command line, each quoted where it needs to be."""
    return " ".join(shlex.quote(word) for word in words)

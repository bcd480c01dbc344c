"""What a definition file declares, as plain data every input format is read into.

Each loader (ARM JSON, Bicep, container YAML or JSON, Terraform plan) turns a file into a
:class:`Definitions`: the resources it declares in ARM's REST shape, as far as they resolve
offline. The preflight checks then read only this model, never a file format.

Conventions every loader keeps, so resources from one input can refer to each other:

- :attr:`Declared.key` is ``"<type>/<name>"`` in lower case, with ARM's resource type
  (``microsoft.containerinstance/containergroups/mygroup``; a child's name is its full name,
  ``microsoft.network/virtualnetworks/subnets/vnet/aci``). Terraform's address and Bicep's
  symbolic name go in :attr:`Declared.symbol`.
- :attr:`Declared.resource_id` is the ARM id where it resolves, with :data:`SUBSCRIPTION` and
  :data:`RESOURCE_GROUP` standing in for a deployment scope the file does not fix.
- A value that is another declared resource's property only known after deployment (an
  identity's ``principalId``) is :func:`principal_of` that resource's key; a reference to a
  declared resource's ``id`` is its :attr:`Declared.resource_id`.
- A value no loader can resolve offline is left out of ``body`` and named in
  :attr:`Declared.unresolved` (``"properties.imageRegistryCredentials[0].server: <expression>"``):
  a check whose input is unresolved does not decide, and the output says so.
- :attr:`Declared.depends_on` holds the keys this resource is deployed after: explicit
  ``dependsOn``/``depends_on`` and the implicit ordering of the format (a Bicep or Terraform
  reference, an ARM ``reference()``), transitively closed by :func:`ordered_after`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SUBSCRIPTION = "00000000-0000-0000-0000-00000000aaaa"
"""The subscription id standing in for a deployment scope the file leaves to the deployer."""
RESOURCE_GROUP = "preflight-rg"
"""The resource group name standing in for a deployment scope the file leaves to the deployer."""
LOCATION = "preflight-location"
"""The region standing in for ``resourceGroup().location`` and the like, which the deployer's scope decides."""

InputKind = Literal["arm", "bicep", "container-group", "terraform-plan"]


@dataclass(frozen=True)
class Location:
    """Where a declaration is: the file, and the line where the parser gives one (1-based)."""

    file: str
    line: int | None = None


@dataclass(frozen=True)
class Declared:
    """One resource a definition declares."""

    key: str
    """``"<type>/<name>"`` in lower case (see the module docstring)."""
    type: str
    """ARM's resource type, e.g. ``Microsoft.ContainerInstance/containerGroups``."""
    name: str
    """The resource's name (a child's full name, ``vnet/subnet``)."""
    location: Location
    resource_id: str | None = None
    api_version: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    """ARM's REST body as far as it resolves: ``location``, ``identity``, ``properties``, ``sku``, ``tags``."""
    scope: str | None = None
    """For an extension resource (a role assignment, a lock): the key of the declared resource it
    applies to, or the ARM id it names when that is not declared here."""
    depends_on: frozenset[str] = frozenset()
    """Keys of the declarations this one is deployed after (direct; see :func:`ordered_after`)."""
    unresolved: tuple[str, ...] = ()
    """``"<path in body>: <expression>"`` for each value that could not be resolved offline."""
    symbol: str | None = None
    """The format's own name for it: a Bicep symbolic name, a Terraform address."""


@dataclass(frozen=True)
class Definitions:
    """Everything one input file declares."""

    path: str
    kind: InputKind
    resources: tuple[Declared, ...]
    notes: tuple[str, ...] = ()
    """What the loader could not read in the file as a whole (a module, a loop it does not expand)."""


def key_of(resource_type: str, name: str) -> str:
    """The :attr:`Declared.key` of a resource of ``resource_type`` named ``name``."""
    return f"{resource_type}/{name}".lower()


def principal_of(key: str) -> str:
    """The stand-in for the ``principalId`` of the declared identity (or system identity) ``key``."""
    return f"principalId({key.lower()})"


def ordered_after(resources: Iterable[Declared]) -> dict[str, frozenset[str]]:
    """For each declaration's key, every key it is deployed after, directly or through others."""
    direct: Mapping[str, frozenset[str]] = {r.key: r.depends_on for r in resources}
    closed: dict[str, frozenset[str]] = {}

    def walk(key: str, seen: frozenset[str]) -> frozenset[str]:
        if key in closed:
            return closed[key]
        after: set[str] = set()
        for dep in direct.get(key, frozenset()):
            if dep in seen:
                continue  # a cycle is the format's error to report, not ours to loop on
            after.add(dep)
            after |= walk(dep, seen | {dep})
        closed[key] = frozenset(after)
        return closed[key]

    for key in direct:
        walk(key, frozenset({key}))
    return closed

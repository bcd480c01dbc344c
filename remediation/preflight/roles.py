"""The built-in roles a declared role assignment may name, as Azure defines them.

A definition file names a role by id (ARM, Bicep: any form ending in the role's GUID) or, in
Terraform, by name (``role_definition_name = "AcrPull"``); offline, nothing can list the tenant's
roles, so the checks read these. Sources:

- AcrPull, AcrPush, AcrDelete, Reader, Contributor, Owner: MicrosoftDocs/azure-docs
  ``articles/role-based-access-control/built-in-roles/containers.md`` (commit c0b7e64c, ms.date
  2024-05-07) and ``built-in-roles/general.md``; ids and actions as in ``reference/AZURE_FACTS.md`` §4.
- The ACR repository roles (ids, data actions, no actions): the same ``containers.md``, ms.date
  2025-06-30, commit 0088bfa77543e07f8a41771de8db977ddfc62e1d.

Only what decides a pull is kept: ``actions``, ``notActions`` and ``dataActions`` that match
:data:`~remediation.permissions.PULL_ACTION` or the repository data actions (Contributor's
``notActions`` remove nothing from the pull, so none are listed).
"""

from __future__ import annotations

from remediation.model import RoleDefinition
from remediation.permissions import PULL_ACTION, REPOSITORY_CONTENT_READ

_METADATA_READ = "Microsoft.ContainerRegistry/registries/repositories/metadata/read"
_ROLE_ID = "/providers/Microsoft.Authorization/roleDefinitions/{}"


def _role(guid: str, name: str, *, actions: tuple[str, ...] = (), data_actions: tuple[str, ...] = ()) -> RoleDefinition:
    return RoleDefinition(id=_ROLE_ID.format(guid), role_name=name, actions=actions, data_actions=data_actions)


BUILT_IN_ROLES: tuple[RoleDefinition, ...] = (
    _role("7f951dda-4ed3-4680-a7ca-43fe172d538d", "AcrPull", actions=(PULL_ACTION,)),
    _role("8311e382-0749-4cb8-b61a-304f252e45ec", "AcrPush",
          actions=(PULL_ACTION, "Microsoft.ContainerRegistry/registries/push/write")),
    _role("c2f4ef07-c644-48eb-af81-4b1b4947fb11", "AcrDelete",
          actions=("Microsoft.ContainerRegistry/registries/artifacts/delete",)),
    _role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", actions=("*/read",)),
    _role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", actions=("*",)),
    _role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", actions=("*",)),
    _role("b93aa761-3e63-49ed-ac28-beffa264f7ac", "Container Registry Repository Reader",
          data_actions=(_METADATA_READ, REPOSITORY_CONTENT_READ)),
    _role("2a1e307c-b015-4ebd-883e-5b7698a07328", "Container Registry Repository Writer",
          data_actions=(_METADATA_READ, REPOSITORY_CONTENT_READ,
                        "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
                        "Microsoft.ContainerRegistry/registries/repositories/content/write")),
    _role("2efddaa5-3f1f-4df3-97df-af3f13818f4c", "Container Registry Repository Contributor",
          data_actions=(_METADATA_READ, REPOSITORY_CONTENT_READ,
                        "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
                        "Microsoft.ContainerRegistry/registries/repositories/content/write",
                        "Microsoft.ContainerRegistry/registries/repositories/metadata/delete",
                        "Microsoft.ContainerRegistry/registries/repositories/content/delete")),
    _role("bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7", "Container Registry Repository Catalog Lister",
          data_actions=("Microsoft.ContainerRegistry/registries/catalog/read",)),
)
"""The built-in roles, by the ids Azure gives them."""

BY_GUID: dict[str, RoleDefinition] = {role.guid: role for role in BUILT_IN_ROLES}
"""Role GUID (lower) → definition, the shape of :attr:`remediation.model.Context.role_definitions`."""


def role_by_name(name: str) -> RoleDefinition | None:
    """The built-in role called ``name`` (any case), or None for a name not in the table."""
    return next((role for role in BUILT_IN_ROLES if role.role_name.lower() == name.strip().lower()), None)

"""The one ARM resource-id parser."""

from __future__ import annotations

import pytest

from remediation.errors import InputError
from remediation.resource_ids import ResourceId, parse_resource_id

SUB = "00000000-0000-0000-0000-000000000001"
GROUP_ID = f"/subscriptions/{SUB}/resourcegroups/rg-apps/providers/Microsoft.ContainerInstance/containerGroups/web"


@pytest.mark.parametrize(("resource_id", "expected"), [
    (GROUP_ID, (SUB, "rg-apps", "Microsoft.ContainerInstance/containerGroups", "web")),
    (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr/replications/w",
     (SUB, "rg", "Microsoft.ContainerRegistry/registries/replications", "w")),
    (f"/subscriptions/{SUB}/resourceGroups/rg", (SUB, "rg", "Microsoft.Resources/resourceGroups", "rg")),
    (f"/subscriptions/{SUB}", (SUB, "", "Microsoft.Resources/subscriptions", SUB)),
    (f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/a1",
     (SUB, "", "Microsoft.Authorization/roleAssignments", "a1")),
    (f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg/PROVIDERS/Microsoft.ManagedIdentity/userAssignedIdentities/id/",
     (SUB, "rg", "Microsoft.ManagedIdentity/userAssignedIdentities", "id")),
])
def test_parse_resource_id(resource_id: str, expected: tuple[str, str, str, str]) -> None:
    assert parse_resource_id(resource_id) == expected


@pytest.mark.parametrize("resource_id", [
    "/subscriptions",
    "/subscriptions/x/resourceGroups",
    "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups",
    "/providers/Microsoft.Management/managementGroups/mg",
    "/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "subscriptions/x/resourceGroups/rg",
    "",
])
def test_parse_resource_id_rejects(resource_id: str) -> None:
    with pytest.raises(InputError):
        parse_resource_id(resource_id)


def test_the_parts_have_names() -> None:
    parsed = parse_resource_id(GROUP_ID)
    assert parsed == ResourceId(subscription=SUB, resource_group="rg-apps",
                                provider_type="Microsoft.ContainerInstance/containerGroups", name="web")
    assert (parsed.subscription, parsed.resource_group, parsed.name) == (SUB, "rg-apps", "web")

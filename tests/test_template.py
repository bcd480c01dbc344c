"""The template evaluator the gatherer recovers a deployment's container group with."""

from __future__ import annotations

from typing import Any

import pytest

from remediation.template import UnsupportedExpression, find_container_group

GROUP_ID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerInstance/containerGroups/web"


def template(location: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"parameters": parameters, "resources": [{
        "type": "Microsoft.ContainerInstance/containerGroups", "apiVersion": "2023-05-01", "name": "web",
        "location": location, "properties": {"osType": "Linux"}}]}


@pytest.mark.parametrize("location", ["[parameters('location')]", "[concat(parameters('location'), '')]",
                                      "[toLower(parameters('location'))]"])
def test_a_parameter_whose_default_is_an_expression_is_read_inside_another(location: str) -> None:
    # the quickstart templates default location to [resourceGroup().location]
    found = find_container_group(template(location, {"location": {"type": "string",
                                                                  "defaultValue": "[resourceGroup().location]"}}),
                                 {}, resource_id=GROUP_ID, location="eastus")
    assert found is not None and found[0]["location"] == "eastus"


def test_a_variable_holding_an_expression_is_read_inside_another() -> None:
    t = template("[concat(variables('where'), '')]", {})
    t["variables"] = {"where": "[resourceGroup().location]"}
    found = find_container_group(t, {}, resource_id=GROUP_ID, location="westeurope")
    assert found is not None and found[0]["location"] == "westeurope"


def test_what_it_cannot_read_is_still_refused() -> None:
    with pytest.raises(UnsupportedExpression):
        find_container_group(template("[padLeft(parameters('location'), 9)]", {"location": {"defaultValue": "x"}}), {},
                             resource_id=GROUP_ID)

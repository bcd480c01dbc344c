"""The template language (``sandbox.templates``): expressions, functions, variables and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.templates import TemplateContext, TemplateError, evaluate

from .worlds import REGISTRY_ID, RG, RG_ID, SUB, TENANT


def _ctx(**params: Any) -> TemplateContext:
    ctx = TemplateContext(SUB, TENANT, {"name": RG, "location": "westeurope"})
    ctx.parameters = {k.lower(): v for k, v in params.items()}
    ctx.variables = {"prefix": "[toLower(parameters('Name'))]", "full": "[concat(variables('prefix'), '-x')]"}
    return ctx


@pytest.mark.parametrize(("expression", "expected"), [
    ("[parameters('name')]", "MyApp"),
    ("[variables('full')]", "myapp-x"),
    ("[resourceGroup().location]", "westeurope"),
    ("[resourceGroup().id]", RG_ID),
    ("[subscription().subscriptionId]", SUB),
    ("[resourceId('Microsoft.ContainerRegistry/registries', 'myacr')]", REGISTRY_ID),
    ("[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities/', parameters('name'))]",
     f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/MyApp"),
    ("[resourceId('other-rg', 'Microsoft.Web/sites', 'app')]",
     f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Web/sites/app"),
    ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]",
     f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"),
    ("[concat('a', 'b', parameters('name'))]", "abMyApp"),
    ("[format('{0}.azurecr.io/{1}:{{v}}', 'acr', toLower(parameters('name')))]", "acr.azurecr.io/myapp:{v}"),
    ("[toLower(concat(resourceGroup().name, '''s'))]", "acr-rg's"),
    ("[[not an expression]", "[not an expression]"),
    ("plain text", "plain text"),
    ("[parameters('list')[1]]", "b"),
    ("[concat(parameters('list'), createArray)]", None),
])
def test_expressions(expression, expected):
    ctx = _ctx(Name="MyApp", list=["a", "b"])
    if expected is None:
        with pytest.raises(TemplateError):
            evaluate(expression, ctx)
    else:
        assert evaluate(expression, ctx) == expected


def test_keys_and_nested_structures_are_evaluated():
    ctx = _ctx(Name="MyApp")
    value = {"[concat('k-', parameters('name'))]": [{"v": "[variables('prefix')]"}, 3, True]}
    assert evaluate(value, ctx) == {"k-MyApp": [{"v": "myapp"}, 3, True]}


@pytest.mark.parametrize("expression", [
    "[uniqueString(resourceGroup().id)]",
    "[reference('x').outputs]",
    "[parameters('missing')]",
    "[variables('missing')]",
    "[resourceId('Microsoft.Web/sites')]",
    "[concat('a', ]",
    "[format('{0:N2}', 1)]",
    "[resourceGroup().nope]",
])
def test_unsupported_or_broken_expressions_raise_template_error(expression):
    with pytest.raises(TemplateError) as info:
        evaluate(expression, _ctx(Name="MyApp"))
    assert str(info.value)

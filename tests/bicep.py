"""What infra/ grants the remediator, read from the Bicep with ``pycep-parser`` (no compiler here).

``remediator_rbac(principal_id)`` follows main.bicep's RBAC block the way ARM would evaluate it:
the custom roles of ``modules/remediator-role.bicep`` (their actions), and for each kind of scope
(an allowed subscription or resource group, a registries' resource group or registry) the module
that main.bicep deploys there, with the role assignments and policy assignments that module
creates once its parameters are bound (conditions such as ``if (!empty(delegationCondition))``
evaluated, the delegation condition with the principal id substituted). A test turns that into
a sandbox world (tests/test_least_privilege.py), so what the sandbox enforces is what the Bicep
says, not a copy of it.

pycep returns parameter and variable references as bare strings, like string literals; a bare
string is a reference when the file declares that name, which is how Bicep resolves it too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parent.parent / "infra"
MAIN = INFRA / "main.bicep"
ROLES = INFRA / "modules" / "remediator-role.bicep"

SEGMENTS = {3: "subscription", 5: "resourceGroup", 9: "registry"}
"""Scope kinds by the number of ``/``-separated segments of their id, as main.bicep splits them."""


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """pycep's tree of one .bicep file (parameters, variables, resources, modules, outputs)."""
    tree: dict[str, Any] = BicepParser().parse(text=path.read_text(encoding="utf-8"))
    return tree


@dataclass(frozen=True)
class CustomRole:
    symbol: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    data_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]


@dataclass(frozen=True)
class RoleRef:
    """A role definition GUID that a module receives from remediator-role.bicep's outputs."""

    symbol: str


@dataclass(frozen=True)
class Grant:
    """One role assignment a module creates: ``role`` is a built-in GUID or a custom role's symbol."""

    symbol: str
    role: str
    at: str  # "scope": the scope the module is deployed to; "registry": the registry it names
    principal_id: str
    principal_type: str
    condition: str | None
    condition_version: str | None


@dataclass(frozen=True)
class PolicyGrant:
    """One policy assignment a module creates."""

    symbol: str
    name: str
    definition_guid: str
    parameters: dict[str, Any]
    at: str


@dataclass(frozen=True)
class ScopeRbac:
    """What main.bicep deploys at each scope of one kind."""

    module: str
    grants: tuple[Grant, ...]
    policies: tuple[PolicyGrant, ...]


@dataclass(frozen=True)
class RemediatorRbac:
    roles: dict[str, CustomRole]
    allowed: dict[str, ScopeRbac]
    """Scope kind ("subscription", "resourceGroup") -> what an allowed scope of that kind gets;
    "subscriptionOfResourceGroup": what the subscription of an allowed resource group gets."""
    registries: dict[str, ScopeRbac]
    """Scope kind ("resourceGroup", "registry") -> what a registries' scope of that kind gets."""


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _dotted(expr: Any) -> str | None:
    """``a.b.c`` of a chain of property accessors, else None."""
    if isinstance(expr, str):
        return expr
    op = expr.get("operator") if isinstance(expr, dict) else None
    if not op or op.get("type") != "property_accessor":
        return None
    left, right = _dotted(op["operands"]["operand_1"]), _dotted(op["operands"]["operand_2"])
    return f"{left}.{right}" if left and right else None


def _value(expr: Any, env: dict[str, Any]) -> Any:
    """Evaluate the few expression forms the RBAC modules use; anything else raises."""
    if isinstance(expr, (bool, int, list)) or expr is None:
        return expr
    if isinstance(expr, str):
        if expr in env:
            return env[expr]
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(env[m.group(1).strip()]), _unescape(expr))
    dotted = _dotted(expr)
    if dotted is not None and dotted in env:
        return env[dotted]
    if "operator" in expr and expr["operator"]["type"] == "not":
        return not _value(expr["operator"]["operands"]["bool_value"], env)
    function = expr.get("function") or {}
    if function.get("type") == "empty":
        return not _value(function["parameters"]["item_to_test"], env)
    if function.get("type") in ("subscription_resource_id", "tenant_resource_id"):
        return _value(function["parameters"]["resource_name_1"], env)
    raise ValueError(f"tests/bicep.py cannot evaluate {expr!r}")


def custom_roles() -> dict[str, CustomRole]:
    """The role definitions of remediator-role.bicep by symbol (one permissions entry each)."""
    out = {}
    for symbol, res in parse(ROLES)["resources"].items():
        if res["type"] != "Microsoft.Authorization/roleDefinitions":
            continue
        config = res["config"].get("config", res["config"])  # a conditional resource nests its body
        (perm,) = config["properties"]["permissions"]
        out[symbol] = CustomRole(symbol, tuple(perm["actions"]), tuple(perm["notActions"]),
                                 tuple(perm["dataActions"]), tuple(perm["notDataActions"]))
    return out


def _env(path: Path, bound: dict[str, Any]) -> dict[str, Any]:
    """Parameters (defaults, then what the caller bound) and variables of one file."""
    tree = parse(path)
    env: dict[str, Any] = {}
    for name, param in (tree.get("parameters") or {}).items():
        env[name] = param.get("default")
    env.update(bound)
    for name, var in (tree.get("variables") or {}).items():
        value = var["value"]
        if isinstance(value, str):
            env[name] = _value(value, env)
    return env


def _module_rbac(path: Path, bound: dict[str, Any]) -> ScopeRbac:
    env = _env(path, bound)
    grants, policies = [], []
    for symbol, res in parse(path)["resources"].items():
        if res.get("existing"):
            continue
        config = res["config"]
        if "condition" in config and "config" in config:
            if not _value(config["condition"], env):
                continue
            config = config["config"]
        at = "registry" if config.get("scope") == "registry" else "scope"
        props = config["properties"]
        if res["type"] == "Microsoft.Authorization/roleAssignments":
            role = _value(props["roleDefinitionId"], env)
            condition = _value(props["condition"], env) if "condition" in props else None
            grants.append(Grant(
                symbol, role.symbol if isinstance(role, RoleRef) else str(role).lower(), at,
                str(_value(props["principalId"], env)), str(_value(props["principalType"], env)),
                condition or None, _value(props["conditionVersion"], env) if condition else None))
        elif res["type"] == "Microsoft.Authorization/policyAssignments":
            policies.append(PolicyGrant(
                symbol, str(_value(config["name"], env)), str(_value(props["policyDefinitionId"], env)).lower(),
                {k: {"value": _value(v["value"], env)} for k, v in (props.get("parameters") or {}).items()}, at))
    return ScopeRbac(path.name, tuple(grants), tuple(policies))


_OWNERS = {"remediatorAllowedScopes": "allowed", "registryScopes": "registries"}
"""main.bicep's lists of scopes the remediator gets rights at, by whose scopes they are."""


def _segments_of(condition: Any, item: str) -> int:
    """N of ``length(split(item, '/')) == N``, the test main.bicep keeps one kind of scope with."""
    op = condition["operator"]
    assert op["type"] == "equals", condition
    length = op["operands"]["operand_1"]["function"]
    assert length["type"] == "length", condition
    split = length["parameters"]["arg_1"]["function"]
    assert split["type"] == "split" and split["parameters"] == {"input_string": item, "delimiter": "/"}, condition
    return int(op["operands"]["operand_2"])


def _subscriptions_of(main: dict[str, Any], var: Any) -> tuple[str, int] | None:
    """(source list, segment count kept) of ``union(flatten(lists), [])`` where ``lists`` is
    ``[for s in source: (length(split(s, '/')) == N) ? [join(take(split(s, '/'), 3), '/')] : []]``:
    the subscriptions of the scopes of one kind, each once."""
    function = var.get("function") if isinstance(var, dict) else None
    if not function or function["type"] != "union":
        return None
    assert function["parameters"]["arg_2"] == [], var
    flattened = function["parameters"]["arg_1"]["function"]
    assert flattened["type"] == "flatten", var
    lists = main["variables"][flattened["parameters"]["array_to_flattern"]]["value"]  # sic, pycep's key
    loop = lists["loop_type"]["detail"]
    assert lists["condition"] is None, lists
    chosen = lists["config"]["operator"]
    assert chosen["type"] == "conditional" and chosen["operands"]["false_value"] == [], lists
    (kept,) = chosen["operands"]["true_value"]
    join = kept["function"]
    assert join["type"] == "join" and join["parameters"]["delimiter"] == "/", kept
    take = join["parameters"]["input_array"]["function"]
    assert take["type"] == "take" and int(take["parameters"]["number_to_take"]) == 3, kept
    split = take["parameters"]["original_value"]["function"]
    assert split["type"] == "split" and split["parameters"] == {"input_string": loop["item_name"], "delimiter": "/"}
    return loop["array_name"], _segments_of(chosen["operands"]["condition"], loop["item_name"])


def _scope_kind(main: dict[str, Any], config: dict[str, Any]) -> tuple[str, str] | None:
    """("allowed" | "registries", scope kind) of a module loop in main.bicep, from the list it
    loops over and its ``if``; None for a loop over something else (the target subscriptions)."""
    loop = config["loop_type"]["detail"]
    owner = _OWNERS.get(loop["array_name"])
    if owner is not None:
        # Looping over every scope of a list without keeping one kind would deploy a module
        # written for one kind of scope at all of them.
        assert config.get("condition") is not None, f"a loop over {loop['array_name']} needs its if"
        return owner, SEGMENTS[_segments_of(config["condition"], loop["item_name"])]
    var = main["variables"].get(loop["array_name"])
    subscriptions = _subscriptions_of(main, var["value"]) if var is not None else None
    if subscriptions is None:
        return None
    assert config.get("condition") is None, loop
    source, segments = subscriptions
    kind = SEGMENTS[segments]
    return _OWNERS[source], f"subscriptionOf{kind[0].upper()}{kind[1:]}"


def remediator_rbac(principal_id: str) -> RemediatorRbac:
    """Everything main.bicep grants the remediator whose object id is ``principal_id``."""
    main = parse(MAIN)
    roles = custom_roles()
    role_outputs = {name: _dotted(out["value"]) for name, out in parse(ROLES)["outputs"].items()}
    outputs: dict[str, Any] = {"app.outputs.remediatorPrincipalId": principal_id}
    for name, value in role_outputs.items():
        outputs[f"remediatorRole.outputs.{name}"] = RoleRef((value or "").split(".")[0])
    env = _env(MAIN, outputs)
    allowed: dict[str, ScopeRbac] = {}
    registries: dict[str, ScopeRbac] = {}
    for module in main["modules"].values():
        if not module["config"].get("loop_type"):
            continue
        kind = _scope_kind(main, module["config"])
        if kind is None:
            continue
        target = allowed if kind[0] == "allowed" else registries
        assert kind[1] not in target, f"two modules for the {kind[0]} scopes of kind {kind[1]}"
        body = module["config"]["config"]
        bound = {}
        for name, expr in body["params"].items():
            try:
                bound[name] = _value(expr, env)
            except ValueError:
                continue  # a value of the loop's own item (e.g. the registry's name), bound per scope
        target[kind[1]] = _module_rbac(MAIN.parent / module["detail"]["path"], bound)
    return RemediatorRbac(roles, allowed, registries)

"""Bicep files read into the declared-resource model, with pycep-parser (there is no Bicep compiler offline).

:func:`load` evaluates what a Bicep file declares as far as it resolves from the file alone (its
parameters' defaults, a ``.bicepparam`` or ARM parameters file, its variables, the resources and
local modules it declares) and names every value it cannot resolve in :attr:`Declared.unresolved`
instead of guessing it. What it resolves:

- parameters, variables, string interpolation, object and array literals, ``for`` loops over a
  literal array, ``range(...)`` or ``items(...)`` (expanded, one declaration per item) and
  ``if (...)`` conditions that come out true or false;
- ``resourceGroup()``, ``subscription()`` (the deployment scope: :data:`~remediation.preflight.model.
  RESOURCE_GROUP`, :data:`~remediation.preflight.model.SUBSCRIPTION`, :data:`LOCATION`),
  ``resourceId``, ``subscriptionResourceId``, ``tenantResourceId``, ``extensionResourceId``,
  ``guid`` and ``uniqueString`` (deterministic stand-ins: ARM's own hashes of a scope the file
  does not fix cannot be known offline), ``environment()`` (global Azure's registry suffix),
  ``concat``, ``format``, ``toLower``, ``toUpper``, ``string``, ``json``, ``empty``, ``length``,
  ``replace``, ``take``, ``skip``, ``substring``, ``first``, ``last``, ``split``, ``join``, ``trim``;
- a declared resource's ``id``, ``name``, ``type``, ``properties.principalId`` (an identity:
  :func:`~remediation.preflight.model.principal_of`), ``identity.principalId`` (its system
  identity: ``principal_of`` of that resource), ``properties.loginServer`` (a registry:
  ``<name>.azurecr.io``) and properties it declares itself; a local module's ``outputs``.

Dependencies: ``dependsOn``, and the implicit one Bicep adds for every reference to another
resource's symbolic name and for a nested or ``parent:`` child (MicrosoftDocs/azure-docs
``articles/azure-resource-manager/bicep/resource-dependencies.md``, ms.date 02/03/2022, commit
25b0e4ccbd3a5c661e02b55badf175b187fd7a61: "An implicit dependency is created when one resource
declaration references another resource in the same deployment"; "A nested resource also has an
implicit dependency on its containing resource"). A reference to a module depends on every
resource of the module. An ``existing`` resource is not deployed (``articles/azure-resource-manager/
bicep/existing-resource.md``, commit 85ef2e11e7f469b915affa11c757c074cd86c773), so it orders
nothing; it is declared with ``body["existing"] = True`` so that checks treat what it holds as
unknown.

What pycep-parser 0.7.1 itself cannot tell, the loader does not decide either: it keeps no
operator precedence (``a == b ? x : y`` reads as ``a == (b ? x : y)``), so an operator whose
operand is another operator is unresolved; a loop's condition must be written ``if(`` without a
space to parse; of several resources nested in one parent it keeps only the last; it does not
extract a resource nested in a conditional or looped parent (a note says so); it does not tell a
``'''multi-line'''`` string from a quoted one, so a ``${`` in one is read as interpolation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    Declared,
    Definitions,
    Location,
    key_of,
    principal_of,
)

REGISTRY_SUFFIX = ".azurecr.io"
"""A registry's login server is its name in lower case with this suffix in Azure's public cloud (the
ACR quickstart's create output: name ``myContainerRegistry007``, loginServer
``mycontainerregistry007.azurecr.io``; MicrosoftDocs/azure-docs
``articles/container-registry/container-registry-get-started-azure-cli.md``, commit
02fe4e40bca518762166fd35d489670254abe91d)."""

ENVIRONMENT = {"name": "AzureCloud", "suffixes": {"acrLoginServer": REGISTRY_SUFFIX}}
"""What ``environment()`` resolves to: global Azure's name and registry suffix only, the same cloud the
login servers are read for (``environment()`` in global Azure returns name ``AzureCloud`` and
``suffixes.acrLoginServer`` ``.azurecr.io``; sovereign clouds differ: MicrosoftDocs/azure-docs
``articles/azure-resource-manager/bicep/bicep-functions-deployment.md``, commit
012c7002132ac38d57bd429b86a773e5ff81972b). Any other member does not resolve."""

_GUID_NAMESPACE = uuid.UUID("5e1a6b0c-1c2f-5d55-9d4e-2f7f3c1b9a01")
"""Namespace of the ``guid()`` stand-in (uuid5 of its arguments): stable across runs, never ARM's value."""

_IDENTITY_TYPE = "microsoft.managedidentity/userassignedidentities"
_REGISTRY_TYPE = "microsoft.containerregistry/registries"
_NOT_BODY = frozenset({"name", "parent", "scope", "dependsOn", "depends_on", "__child_resource__"})
"""Bicep's own keys of a declaration, not part of the REST body (``depends_on`` is pycep's nesting link)."""
_BINARY = {"equals": "==", "not_equals": "!=", "and": "&&", "or": "||", "add": "+", "substract": "-",
           "multiply": "*", "divide": "/", "modulo": "%", "greater_than": ">", "greater_than_or_equals": ">=",
           "less_than": "<", "less_than_or_equals": "<=", "equals_case_insens": "=~",
           "not_equals_case_insens": "!~", "coalesce": "??"}
_ACCESSORS = frozenset({"property_accessor", "index_accessor", "nested_resource_accessor"})
_MAX_MODULE_DEPTH = 8
_MODULE_SCHEMES = {"bicep_registry": "br:", "bicep_registry_alias": "br/", "template_spec": "ts:",
                   "template_spec_alias": "ts/"}
"""pycep's kinds of module source, back to the prefix the file writes (it keeps the rest as ``full``)."""


class _Unresolved(Exception):
    """An expression the loader cannot resolve offline (the leaf's own text is what the output names)."""


@dataclass(frozen=True)
class _Scope:
    """A deployment scope: a resource group or a subscription."""

    id: str
    name: str
    subscription_id: str
    is_resource_group: bool

    def attribute(self, name: str) -> Any:
        if name == "id":
            return self.id
        if name == "name" and self.is_resource_group:
            return self.name
        if name == "location" and self.is_resource_group:
            return LOCATION
        if name == "subscriptionId":
            return self.subscription_id
        raise _Unresolved(name)


def _resource_group(name: str = RESOURCE_GROUP, subscription: str = SUBSCRIPTION) -> _Scope:
    return _Scope(f"/subscriptions/{subscription}/resourceGroups/{name}", name, subscription, True)


def _subscription(subscription: str = SUBSCRIPTION) -> _Scope:
    return _Scope(f"/subscriptions/{subscription}", subscription, subscription, False)


@dataclass
class _Env:
    """What one expression is evaluated with: loop variables, and the resources it refers to (collected)."""

    items: Mapping[str, Any]
    deps: set[_Res] = field(default_factory=set)


def load(path: Path, parameters: Path | None = None) -> Definitions:
    """The resources ``path`` (a .bicep file) declares, with ``parameters`` (a .bicepparam or ARM
    parameters JSON file) over the parameters' defaults; raises :class:`PreflightInputError` for a
    file pycep-parser cannot read or a parameters file that is not one."""
    from pycep import BicepParser  # here, not at the top: the function app never loads the parser

    loader = _Loader(BicepParser(add_line_numbers=True))
    values = loader.parameter_values(parameters) if parameters is not None else {}
    root = loader.file(path, {name: (value, frozenset()) for name, value in values.items()},
                       _resource_group(), "", 0)
    root.declare()
    return Definitions(str(path), "bicep", tuple(loader.declared), tuple(loader.notes))


class _Loader:
    """One load: the parser, the files read (the input and its modules), and what they declare."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.declared: list[Declared] = []
        self.notes: list[str] = []
        self._snippets: dict[str, Any] = {}

    def parse(self, path: Path, text: str | None = None) -> dict[str, Any]:
        try:
            source = path.read_text(encoding="utf-8") if text is None else text
        except (OSError, UnicodeDecodeError) as error:
            raise PreflightInputError(f"{path}: cannot read the file: {error}") from error
        try:
            tree: dict[str, Any] = self.parser.parse(text=source)
        except Exception as error:  # pycep raises lark's parse errors (lark is pycep's, not ours to import)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise PreflightInputError(f"{path}: pycep-parser cannot parse it: {reason}") from error
        self._lost_nested(path, source, tree)
        return tree

    def _lost_nested(self, path: Path, source: str, tree: dict[str, Any]) -> None:
        """Note the nested resources pycep drops: all but the last of a parent's, and any of a
        conditional or looped parent (it extracts only the last child of a plain declaration)."""
        written = re.findall(r"^[ \t]+resource\s+(\w+)\s+'", source, re.MULTILINE)
        kept = {symbol.rsplit("__", 1)[-1] for symbol in (tree.get("resources") or {}) if "__" in symbol}
        lost = [symbol for symbol in written if symbol not in kept]
        if lost:
            self.notes.append(f"{path}: nested resource(s) {', '.join(lost)} not read (pycep-parser keeps one "
                              "nested resource per parent, none in a conditional or looped one): declare them "
                              "with parent: instead")

    def expression(self, text: str) -> Any:
        """The pycep tree of one expression (the inside of a ``${...}``)."""
        if text not in self._snippets:
            try:
                tree = self.parser.parse(text=f"var x = {text}\n")
                self._snippets[text] = tree["variables"]["x"]["value"]
            except Exception as error:  # lark's error, as in parse(): the expression stays unresolved
                raise _Unresolved(text) from error
        return self._snippets[text]

    def file(self, path: Path, bound: Mapping[str, tuple[Any, frozenset[_Res]]], scope: _Scope, prefix: str,
             depth: int) -> _File:
        return _File(self, path, self.parse(path), bound, scope, prefix, depth)

    def parameter_values(self, path: Path) -> dict[str, Any]:
        """Parameter name -> value from a .bicepparam file (``param x = ...``) or an ARM parameters
        JSON file (``{"parameters": {"x": {"value": ...}}}``); a Key Vault reference stays unset."""
        if path.suffix == ".bicepparam":
            return self._bicepparam(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise PreflightInputError(f"{path}: not a parameters file: {error}") from error
        params = document.get("parameters") if isinstance(document, dict) else None
        if not isinstance(params, dict):
            raise PreflightInputError(f"{path}: not a parameters file: no \"parameters\" object")
        return {name: entry["value"] for name, entry in params.items()
                if isinstance(entry, dict) and "value" in entry}

    def _bicepparam(self, path: Path) -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PreflightInputError(f"{path}: cannot read the file: {error}") from error
        # pycep reads no .bicepparam: its `param x = v` lines read as variables once `using` is gone
        names = re.findall(r"^\s*param\s+(\w+)\s*=", text, re.MULTILINE)
        text = re.sub(r"^\s*using\s.*$", "", text, flags=re.MULTILINE)
        text = re.sub(r"^(\s*)param(\s+\w+\s*=)", r"\1var\2", text, flags=re.MULTILINE)
        params_file = _File(self, path, self.parse(path, text), {}, _resource_group(), "", 0)
        values = {}
        for name in names:
            try:
                values[name] = params_file.variable(name, _Env({}))
            except _Unresolved:
                self.notes.append(f"{path}: parameter {name} does not resolve offline; its default is used")
        return values


class _File:
    """One Bicep file being evaluated: the input, or a module with the parameters bound to it."""

    def __init__(self, loader: _Loader, path: Path, tree: dict[str, Any],
                 bound: Mapping[str, tuple[Any, frozenset[_Res]]], scope: _Scope, prefix: str, depth: int) -> None:
        self.loader = loader
        self.path = path
        self.scope = scope
        self.prefix = prefix
        self.depth = depth
        self.params: dict[str, Any] = tree.get("parameters") or {}
        self.vars: dict[str, Any] = tree.get("variables") or {}
        self.outputs: dict[str, Any] = tree.get("outputs") or {}
        self.target_scope = str(((tree.get("globals") or {}).get("scope") or {}).get("value") or "")
        if self.target_scope == "subscription" and scope.is_resource_group:
            self.scope = _subscription(scope.subscription_id)
        elif self.target_scope not in ("", "resourceGroup", "subscription"):
            self.note(f"targetScope {self.target_scope!r}: its resources are read as if deployed to a resource group")
        self._bound = bound
        self._memo: dict[str, tuple[Any, frozenset[_Res]] | _Unresolved] = {}
        self._busy: set[str] = set()
        self._raw: dict[str, tuple[type[_Res] | type[_Module], dict[str, Any]]] = {
            **{symbol: (_Module, raw) for symbol, raw in (tree.get("modules") or {}).items()},
            **{symbol: (_Res, raw) for symbol, raw in (tree.get("resources") or {}).items()},
        }
        self.looped = {symbol for symbol, (_, raw) in self._raw.items() if "loop_type" in (raw.get("config") or {})}
        self._expanded: dict[str, list[Any]] = {}
        self._expanding: set[str] = set()

    def instances(self, symbol: str) -> list[Any]:
        """The declarations of one symbol: its loop expanded, those whose condition is false left out
        (expanded on first use, since a loop or condition may refer to a later declaration)."""
        if symbol not in self._expanded:
            if symbol in self._expanding:
                raise _Unresolved(symbol)
            self._expanding.add(symbol)
            try:
                kind, raw = self._raw[symbol]
                self._expanded[symbol] = self._instances(symbol, raw, kind)
            finally:
                self._expanding.discard(symbol)
        return self._expanded[symbol]

    def resources(self) -> list[_Res]:
        return [r for symbol, (kind, _) in self._raw.items() if kind is _Res for r in self.instances(symbol)]

    def modules(self) -> list[_Module]:
        return [m for symbol, (kind, _) in self._raw.items() if kind is _Module for m in self.instances(symbol)]

    def where(self, line: int | None) -> Location:
        return Location(str(self.path), line)

    def note(self, text: str) -> None:
        self.loader.notes.append(f"{self.path}: {text}")

    # --- declarations: loops and conditions -------------------------------------------------------

    def _instances(self, symbol: str, raw: dict[str, Any], make: type[_Res] | type[_Module]) -> list[Any]:
        config: dict[str, Any] = raw.get("config") or {}
        line = raw.get("__start_line__")
        shown = self.prefix + symbol.replace("__", "::")
        if "loop_type" in config:
            self.looped.add(symbol)
            loop = config["loop_type"]
            try:
                bindings = self._loop_bindings(loop, _Env({}))
            except _Unresolved:
                self.note(f"the loop of {shown} is not expanded: {_text(_loop_source(loop))} does not resolve "
                          "offline; one declaration stands for all its items")
                one = make(self, f"{shown}[?]", raw, config.get("config") or {}, {}, line)
                one.undecided.append(f"for: {_text(_loop_source(loop))}")
                return [one]
            made = []
            for index, items in enumerate(bindings):
                instance = make(self, f"{shown}[{index}]", raw, config.get("config") or {}, items, line)
                if self._keep(instance, config.get("condition"), items, shown):
                    made.append(instance)
            return made
        if "condition" in config and isinstance(config.get("config"), dict):
            instance = make(self, shown, raw, config["config"], {}, line)
            return [instance] if self._keep(instance, config["condition"], {}, shown) else []
        return [make(self, shown, raw, config, {}, line)]

    def _keep(self, instance: Any, condition: Any, items: Mapping[str, Any], shown: str) -> bool:
        if condition is None:
            return True
        env = _Env(items)
        try:
            decided = self.value(condition, env)
        except _Unresolved:
            decided = None
        if isinstance(decided, bool):
            instance.deps |= env.deps
            return decided
        self.note(f"the condition of {shown} does not resolve offline: {_text(condition)}; read as deployed")
        instance.undecided.append(f"condition: {_text(condition)}")
        return True

    def _loop_bindings(self, loop: dict[str, Any], env: _Env) -> list[dict[str, Any]]:
        detail = loop["detail"]
        source = self.value(_loop_source(loop), env)
        if loop["type"] == "object":
            if not isinstance(source, dict):
                raise _Unresolved(detail["object_name"])
            source = [{"key": k, "value": v} for k, v in source.items()]
        if not isinstance(source, list):
            raise _Unresolved(_text(_loop_source(loop)))
        bindings = []
        for index, item in enumerate(source):
            items = {detail["item_name"]: item}
            if loop["type"] == "array_index":
                items[detail["index_name"]] = index
            bindings.append(items)
        return bindings

    def loop_items(self, expr: dict[str, Any], env: _Env) -> list[dict[str, Any]]:
        """The loop variables of each item a ``for`` expression keeps (its ``if`` decided per item)."""
        kept = []
        for items in self._loop_bindings(expr["loop_type"], env):
            if expr.get("condition") is not None:
                keep = self.value(expr["condition"], _Env({**env.items, **items}, env.deps))
                if not isinstance(keep, bool):
                    raise _Unresolved(_text(expr["condition"]))
                if not keep:
                    continue
            kept.append(items)
        return kept

    def declare(self) -> None:
        """Append every resource of this file (and of its modules) to the load's declarations."""
        for resource in self.resources():
            self.loader.declared.append(resource.declared())
        for module in self.modules():
            module.declare()

    # --- names --------------------------------------------------------------------------------------

    def variable(self, name: str, env: _Env) -> Any:
        """The value of parameter or variable ``name`` (memoized with the resources it refers to)."""
        if name not in self._memo:
            if name in self._busy:
                raise _Unresolved(name)
            self._busy.add(name)
            inner = _Env({})
            try:
                if name in self._bound:
                    value, deps = self._bound[name]
                    if isinstance(value, _Unresolved):
                        raise value
                    inner.deps |= deps
                elif name in self.params:
                    default = self.params[name].get("default")
                    if default is None:
                        raise _Unresolved(name)  # no default and no value given: the deployer's to choose
                    value = self.value(default, inner)
                else:
                    value = self.value(self.vars[name]["value"], inner)
                self._memo[name] = (value, frozenset(inner.deps))
            except _Unresolved as error:
                self._memo[name] = error
            finally:
                self._busy.discard(name)
        memo = self._memo[name]
        if isinstance(memo, _Unresolved):
            raise memo
        env.deps |= memo[1]
        return memo[0]

    def name(self, name: str, env: _Env) -> Any:
        if name in env.items:
            return env.items[name]
        if name in self._bound or name in self.params or name in self.vars:
            return self.variable(name, env)
        if name in self._raw:
            instances = self.instances(name)
            if name in self.looped or not instances:
                return list(instances)  # a declaration whose condition is false: nothing to depend on or read
            return instances[0]
        raise _Unresolved(name)

    # --- expressions --------------------------------------------------------------------------------

    def value(self, expr: Any, env: _Env) -> Any:
        """The value of one pycep expression; raises :class:`_Unresolved` when it does not resolve offline."""
        from pycep.models import BicepElement  # a bare name in pycep's tree; a quoted string is a plain str

        if expr is None or isinstance(expr, (bool, int, float)):
            return expr
        if isinstance(expr, BicepElement):
            return self.name(str(expr), env)
        if isinstance(expr, str):
            return self.interpolate(expr, env)
        if isinstance(expr, list):
            return [self.value(item, env) for item in expr]
        if not isinstance(expr, dict):
            raise _Unresolved(_text(expr))
        if "loop_type" in expr:
            return [self.value(expr["config"], _Env({**env.items, **items}, env.deps))
                    for items in self.loop_items(expr, env)]
        if "function" in expr and len(expr) == 1:
            return self.function(expr["function"], env)
        if "operator" in expr and len(expr) == 1:
            return self.operator(expr["operator"], env)
        if expr.get("type") == "lambda_expression":
            raise _Unresolved(_text(expr))
        return {self.key(k, env): self.value(v, env) for k, v in expr.items()}

    def key(self, key: str, env: _Env) -> str:
        if len(key) >= 2 and key[0] == key[-1] == "'":
            return str(self.interpolate(key[1:-1], env))
        return key

    def interpolate(self, text: str, env: _Env) -> Any:
        """A quoted string's value: escapes undone, each ``${...}`` evaluated."""
        parts = _split_interpolation(text)
        if len(parts) == 1 and isinstance(parts[0], str):
            return parts[0]
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.value(self.loader.expression(part[0]), env)
            if isinstance(value, bool):
                out.append("true" if value else "false")
            elif isinstance(value, (str, int)):
                out.append(str(value))
            else:
                raise _Unresolved(part[0])
        return "".join(out)

    def operator(self, op: dict[str, Any], env: _Env) -> Any:
        kind = op["type"]
        operands = op["operands"]
        if kind in _ACCESSORS:
            return self.access(op, env)
        if any(_is_operation(o) for o in operands.values()):
            raise _Unresolved("operator precedence")  # pycep-parser keeps none: the tree may not be Bicep's
        if kind == "conditional":
            condition = self.value(operands["condition"], env)
            if not isinstance(condition, bool):
                raise _Unresolved("condition")
            return self.value(operands["true_value" if condition else "false_value"], env)
        if kind == "not":
            value = self.value(operands["bool_value"], env)
            if not isinstance(value, bool):
                raise _Unresolved("not")
            return not value
        if kind in ("equals", "not_equals", "and", "or"):
            left, right = self.value(operands["operand_1"], env), self.value(operands["operand_2"], env)
            if kind == "equals":
                return bool(left == right)
            if kind == "not_equals":
                return bool(left != right)
            if not (isinstance(left, bool) and isinstance(right, bool)):
                raise _Unresolved(kind)
            return (left and right) if kind == "and" else (left or right)
        raise _Unresolved(kind)

    def access(self, op: dict[str, Any], env: _Env) -> Any:
        """``a.b``, ``a[i]``, ``a::b``: pycep nests these to the right; they are read left to right here."""
        base, steps = _chain({"operator": op})
        value = self.value(base, env)
        symbol = str(base)
        rest = list(steps)
        while rest:
            kind, step = rest.pop(0)
            if kind == "nested":
                symbol = f"{symbol}__{step}"
                value = self.name(symbol, env)
                continue
            if kind == "index":
                key = self.value(step, env)
                step = key
            if isinstance(value, (_Res, _Module)):
                consumed, value = value.attribute(step, rest, env)
                del rest[:consumed]
            elif isinstance(value, _Scope):
                value = value.attribute(str(step))
            elif isinstance(value, dict) and isinstance(step, str) and step in value:
                value = value[step]
            elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
                value = value[step]  # a branch of its own: mypy narrows the index type per branch
            else:
                raise _Unresolved(str(step))
        return value

    def function(self, fn: dict[str, Any], env: _Env) -> Any:
        kind = fn["type"]
        params: dict[str, Any] = fn.get("parameters") or {}
        if kind == "resource_group":
            name = self.value(params.get("resource_group_name"), env)
            sub = self.value(params.get("subscription_id"), env)
            if name is None and not self.scope.is_resource_group:
                raise _Unresolved("resourceGroup()")
            return _resource_group(str(name or self.scope.name), str(sub or self.scope.subscription_id))
        if kind == "subscription":
            return _subscription(str(self.value(params.get("subscription_id"), env) or self.scope.subscription_id))
        if kind in ("resource_id", "subscription_resource_id", "tenant_resource_id", "extension_resource_id"):
            return self.resource_id(kind, fn, env)
        if kind == "environment":
            return json.loads(json.dumps(ENVIRONMENT))  # a copy: a body may hold what it returns
        args = [self.value(v, env) for v in params.values() if v is not None]
        if kind == "guid":
            return str(uuid.uuid5(_GUID_NAMESPACE, "|".join(_strings(args, "guid"))))
        if kind == "unique_string":
            return hashlib.sha256("|".join(_strings(args, "uniqueString")).encode()).hexdigest()[:13]
        if kind == "concat":
            if all(isinstance(a, list) for a in args):
                return [x for a in args for x in a]
            return "".join(_strings(args, "concat"))
        if kind == "format":
            template, *rest = _strings(args, "format")
            return re.sub(r"\{(\d+)(?::[^}]*)?\}", lambda m: rest[int(m.group(1))], template)
        if kind in ("to_lower", "to_upper", "string"):
            (arg,) = args
            text = arg if isinstance(arg, str) else json.dumps(arg)
            return text.lower() if kind == "to_lower" else text.upper() if kind == "to_upper" else text
        if kind == "json":
            try:
                return json.loads(_strings(args, "json")[0])
            except ValueError as error:
                raise _Unresolved("json") from error
        if kind == "empty":
            return not args[0]
        if kind == "length":
            if isinstance(args[0], (str, list, dict)):
                return len(args[0])
            raise _Unresolved("length")
        if kind == "replace":
            text, old, new = _strings(args, "replace")
            return text.replace(old, new)
        if kind in ("take", "skip") and isinstance(args[0], (str, list)) and isinstance(args[1], int):
            count = max(args[1], 0)
            return args[0][:count] if kind == "take" else args[0][count:]
        if kind == "substring" and isinstance(args[0], str) and all(isinstance(a, int) for a in args[1:]):
            start = args[1] if len(args) > 1 else 0
            return args[0][start:start + args[2]] if len(args) > 2 else args[0][start:]
        if kind in ("first", "last") and isinstance(args[0], (str, list)) and args[0]:
            return args[0][0] if kind == "first" else args[0][-1]
        if kind == "split" and isinstance(args[0], str):
            delimiters = args[1] if isinstance(args[1], list) else [args[1]]
            return re.split("|".join(re.escape(d) for d in _strings(delimiters, "split")), args[0])
        if kind == "join" and isinstance(args[0], list):
            return str(args[1]).join(_strings(args[0], "join"))
        if kind == "trim" and isinstance(args[0], str):
            return args[0].strip()
        if kind == "range":
            start, count = args
            return list(range(int(start), int(start) + int(count)))
        if kind == "items" and args and isinstance(args[0], dict):
            return [{"key": k, "value": v} for k, v in args[0].items()]
        raise _Unresolved(kind)

    def resource_id(self, kind: str, fn: dict[str, Any], env: _Env) -> str:
        params = fn["parameters"]
        # back to the call's own argument order (pycep moves the scope arguments after the names)
        order = [params.get("subscription_id"), params.get("resource_group_name"), params.get("resource_id"),
                 params.get("resource_type"), *(v for k, v in params.items() if k.startswith("resource_name_"))]
        args = _strings([self.value(v, env) for v in order if v is not None], "resourceId")
        at = next((i for i, a in enumerate(args) if re.fullmatch(r"[\w.-]+\.[\w-]+/[\w/.-]+", a)), None)
        if at is None:
            raise _Unresolved("resource type")
        scope, rtype, names = args[:at], args[at], args[at + 1:]
        if kind == "extension_resource_id":
            base = scope[0] if scope else self.scope.id
        elif kind == "tenant_resource_id":
            base = ""
        elif kind == "subscription_resource_id":
            base = f"/subscriptions/{scope[0] if scope else self.scope.subscription_id}"
        else:
            sub = scope[0] if len(scope) == 2 else self.scope.subscription_id
            group = scope[-1] if scope else self.scope.name
            base = f"/subscriptions/{sub}/resourceGroups/{group}"
        return _arm_id(base, rtype, "/".join(names))


def _is_operation(expr: Any) -> bool:
    """A binary, unary or conditional operator (whose precedence pycep-parser does not keep)."""
    return (isinstance(expr, dict) and "operator" in expr and len(expr) == 1
            and expr["operator"]["type"] not in _ACCESSORS)


def _loop_source(loop: dict[str, Any]) -> Any:
    detail = loop["detail"]
    return detail.get("array_name", detail.get("object_name"))


def _strings(args: Iterable[Any], function: str) -> list[str]:
    out = []
    for arg in args:
        if isinstance(arg, bool):
            out.append("true" if arg else "false")
        elif isinstance(arg, (str, int)):
            out.append(str(arg))
        else:
            raise _Unresolved(function)
    return out


def _arm_id(base: str, resource_type: str, name: str) -> str:
    """``base/providers/NS/t1/n1/t2/n2`` for type ``NS/t1/t2`` and name ``n1/n2`` (a resource group's
    own id has no provider segment: ``/subscriptions/<id>/resourceGroups/<name>``)."""
    if resource_type.lower() == "microsoft.resources/resourcegroups":
        return f"{base}/resourceGroups/{name}"
    namespace, *types = resource_type.split("/")
    segments = [namespace]
    for index, part in enumerate(types):
        segments.append(part)
        names = name.split("/")
        if index < len(names):
            segments.append(names[index])
    return f"{base}/providers/{'/'.join(segments)}"


def _chain(expr: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """The base of an accessor chain and its steps (``("name", x)``, ``("index", expr)``, ``("nested", x)``)."""
    if not (isinstance(expr, dict) and "operator" in expr and expr["operator"]["type"] in _ACCESSORS):
        return expr, []
    op = expr["operator"]
    left, right = op["operands"]["operand_1"], op["operands"]["operand_2"]
    base, steps = _chain(left)
    if op["type"] == "index_accessor":
        return base, [*steps, ("index", right)]
    right_base, right_steps = _chain(right)
    if not isinstance(right_base, str):
        raise _Unresolved(_text(right))
    kind = "nested" if op["type"] == "nested_resource_accessor" else "name"
    return base, [*steps, (kind, str(right_base)), *right_steps]


def _split_interpolation(text: str) -> list[str | tuple[str]]:
    """A quoted string's literal parts (escapes undone) and ``(expression,)`` for each ``${...}``."""
    escapes = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            literal.append(escapes.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if text.startswith("${", i):
            depth, j, quoted = 1, i + 2, False
            while j < len(text) and depth:
                if text[j] == "'" and text[j - 1] != "\\":
                    quoted = not quoted
                elif not quoted:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            parts.extend(["".join(literal)] if literal else [])
            literal = []
            parts.append((text[i + 2:j - 1].strip(),))
            i = j
            continue
        literal.append(char)
        i += 1
    if literal or not parts:
        parts.append("".join(literal))
    return parts


def _camel(kind: str) -> str:
    head, *rest = kind.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _text(expr: Any) -> str:
    """A pycep expression written back as Bicep, for the output to name what did not resolve."""
    from pycep.models import BicepElement

    if isinstance(expr, bool):
        return "true" if expr else "false"
    if expr is None:
        return "null"
    if isinstance(expr, (BicepElement, int, float)):
        return str(expr)
    if isinstance(expr, str):
        return f"'{expr}'"
    if isinstance(expr, list):
        return "[" + ", ".join(_text(item) for item in expr) + "]"
    if not isinstance(expr, dict):
        return str(expr)
    if "loop_type" in expr:
        loop = expr["loop_type"]
        return f"[for {loop['detail'].get('item_name')} in {_text(_loop_source(loop))}: {_text(expr['config'])}]"
    if "function" in expr and len(expr) == 1:
        fn = expr["function"]
        args = ", ".join(_text(v) for v in (fn.get("parameters") or {}).values() if v is not None)
        return f"{_camel(fn['type'])}({args})"
    if "operator" in expr and len(expr) == 1:
        op = expr["operator"]
        o = op["operands"]
        kind = op["type"]
        if kind == "property_accessor":
            return f"{_text(o['operand_1'])}.{_bare(o['operand_2'])}"
        if kind == "index_accessor":
            return f"{_text(o['operand_1'])}[{_text(o['operand_2'])}]"
        if kind == "nested_resource_accessor":
            return f"{_text(o['operand_1'])}::{_bare(o['operand_2'])}"
        if kind == "conditional":
            return f"{_text(o['condition'])} ? {_text(o['true_value'])} : {_text(o['false_value'])}"
        if kind == "not":
            return f"!{_text(o['bool_value'])}"
        if kind in _BINARY:
            return f" {_BINARY[kind]} ".join(_text(v) for v in o.values())
        return f"{kind}({', '.join(_text(v) for v in o.values())})"
    if expr.get("type") == "lambda_expression":
        return "(lambda)"
    return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in expr.items()) + "}"


def _bare(expr: Any) -> str:
    """The right side of an accessor: a member name, written without quotes."""
    return str(expr) if isinstance(expr, str) else _text(expr)


class _Res:
    """One resource declaration (one item of a loop), read lazily: its name when another refers to it,
    its body when it is declared."""

    def __init__(self, file: _File, symbol: str, raw: dict[str, Any], config: dict[str, Any],
                 items: Mapping[str, Any], line: int | None) -> None:
        self.file = file
        self.symbol = symbol
        self.type: str = raw["type"]
        self.api_version: str | None = raw.get("api_version") or None
        self.existing = bool(raw.get("existing"))
        self.config = config
        self.items = items
        self.line = line
        self.deps: set[_Res] = set()
        """References met while deciding its condition (they order it too)."""
        self.undecided: list[str] = []
        """Unresolved entries of the declaration itself (its loop or condition)."""
        self._name: str | _Unresolved | None = None
        self._resolving = False
        self._body: tuple[dict[str, Any], list[str], set[_Res]] | None = None

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def parent(self, env: _Env) -> _Res | None:
        if "parent" in self.config:
            parent = self.file.value(self.config["parent"], env)
            if not isinstance(parent, _Res):
                raise _Unresolved(_text(self.config["parent"]))
            return parent
        nesting = self.config.get("depends_on") or []
        if nesting:
            parent = self.file.name(str(nesting[-1]), env)
            return parent if isinstance(parent, _Res) else None
        return None

    def name(self) -> str:
        if self._name is None:
            if self._resolving:
                raise _Unresolved(self.symbol)
            self._resolving = True
            try:
                env = _Env(self.items)
                own = self.file.value(self.config.get("name"), env)
                if not isinstance(own, str):
                    raise _Unresolved(_text(self.config.get("name")))
                parent = self.parent(env)
                self._name = f"{parent.name()}/{own}" if parent is not None else own
            except _Unresolved as error:
                self._name = error
            finally:
                self._resolving = False
        if isinstance(self._name, _Unresolved):
            raise self._name
        return self._name

    def _name_text(self) -> str:
        """The name as written, a child's with its parent's (``vnet.name/'aci'``)."""
        own = _text(self.config.get("name"))
        parent = self.config.get("parent") or (self.config.get("depends_on") or [None])[-1]
        return f"{_text(parent).replace('__', '::')}.name/{own}" if parent is not None else own

    def key(self) -> str:
        try:
            return key_of(self.type, self.name())
        except _Unresolved:
            return key_of(self.type, f"{{{self.symbol}}}")

    def scope(self, env: _Env) -> Any:
        """The declared resource or deployment scope named by ``scope:``, else None."""
        if "scope" not in self.config:
            return None
        value = self.file.value(self.config["scope"], env)
        if isinstance(value, (_Res, _Scope, str)):
            return value
        raise _Unresolved(_text(self.config["scope"]))

    def resource_id(self) -> str:
        env = _Env(self.items)
        scope = self.scope(env)
        parent = self.parent(env)
        if isinstance(scope, _Res):
            base = scope.resource_id()
        elif isinstance(scope, _Scope):
            base = scope.id
        elif isinstance(scope, str):
            base = scope
        elif parent is not None:
            # a child lives where its parent does: its id is the parent's, one type and name longer
            return f"{parent.resource_id()}/{self.type.rsplit('/', 1)[-1]}/{self.name().rsplit('/', 1)[-1]}"
        else:
            base = self.file.scope.id
        return _arm_id(base, self.type, self.name())

    def attribute(self, step: Any, rest: list[tuple[str, Any]], env: _Env) -> tuple[int, Any]:
        """(steps of ``rest`` consumed, value) of ``<this resource>.<step>...``."""
        env.deps.add(self)
        following = rest[0][1] if rest else None
        lowered = self.type.lower()
        if step == "id":
            return 0, self.resource_id()
        if step == "name":
            return 0, self.name()
        if step == "type":
            return 0, self.type
        if step == "apiVersion" and self.api_version:
            return 0, self.api_version
        if step == "identity" and following == "principalId":
            return 1, principal_of(self.key())
        if step == "properties" and following == "principalId" and lowered == _IDENTITY_TYPE:
            return 1, principal_of(self.key())
        if step == "properties" and following == "loginServer" and lowered == _REGISTRY_TYPE:
            return 1, self.name().lower() + REGISTRY_SUFFIX
        if self.existing:
            raise _Unresolved(str(step))  # an existing resource's properties are Azure's, not the file's
        body, _, _ = self.body()
        if step in body:
            return 0, body[step]
        raise _Unresolved(str(step))

    def body(self) -> tuple[dict[str, Any], list[str], set[_Res]]:
        """The REST body as far as it resolves, its unresolved entries, and the resources it refers to."""
        if self._body is None:
            self._body = ({}, [f"{self.symbol}: refers to itself"], set())  # a cycle reads as unresolved
            body: dict[str, Any] = {}
            unresolved: list[str] = []
            env = _Env(self.items)
            for key, expr in self.config.items():
                if key in _NOT_BODY:
                    continue
                value = _resolve_tree(self.file, expr, key, env, unresolved)
                if value is not _MISSING:
                    body[key] = value
            self._body = (body, unresolved, env.deps)
        return self._body

    def declared(self) -> Declared:
        body, unresolved, refs = self.body()
        body = copy.deepcopy(body)  # its own: another declaration's body may hold values read from this one
        unresolved = [*self.undecided, *unresolved]
        env = _Env(self.items, set(refs) | self.deps)
        try:
            name: str | None = self.name()
        except _Unresolved:
            name = None
            unresolved.insert(0, f"name: {self._name_text()}")
        resource_id = None
        scope_key: str | None = None
        try:
            scope = self.scope(env)
            parent = self.parent(env)
            if parent is not None:
                env.deps.add(parent)
            if isinstance(scope, _Res):
                env.deps.add(scope)
                scope_key = scope.key()
            elif isinstance(scope, _Scope):
                scope_key = scope.id
            elif isinstance(scope, str):
                scope_key = scope
            elif _is_extension(self.type):
                scope_key = self.file.scope.id
        except _Unresolved:
            unresolved.append(f"scope: {_text(self.config.get('scope', self.config.get('parent')))}")
        if name is not None:
            try:
                resource_id = self.resource_id()
            except _Unresolved:
                resource_id = None  # its scope or parent is already named unresolved
        for item in self.config.get("dependsOn") or []:
            try:
                target = self.file.value(item, env)
            except _Unresolved:
                unresolved.append(f"dependsOn: {_text(item)}")
                continue
            env.deps.update(_resources_of(target))
        if self.existing:
            body["existing"] = True
        # an existing resource is not deployed: it orders nothing, and nothing waits for it
        depends_on = frozenset() if self.existing else frozenset(
            r.key() for r in env.deps if r is not self and not r.existing)
        return Declared(
            key=self.key(),
            type=self.type,
            name=name if name is not None else f"{{{self.symbol}}}",
            location=self.file.where(self.line),
            resource_id=resource_id,
            api_version=self.api_version,
            body=body,
            scope=scope_key,
            depends_on=depends_on,
            unresolved=tuple(unresolved),
            symbol=self.symbol,
        )


def _is_extension(resource_type: str) -> bool:
    """A resource type that applies to another resource (declared with ``scope:``)."""
    return resource_type.lower().split("/")[0] == "microsoft.authorization"


def _resources_of(target: Any) -> list[_Res]:
    """The resources a ``dependsOn`` entry names: a resource, a loop of them, a module's."""
    if isinstance(target, _Res):
        return [target]
    if isinstance(target, _Module):
        return target.resources()
    if isinstance(target, list):
        return [r for t in target for r in _resources_of(t)]
    return []


class _Missing:
    """A body value that did not resolve: left out, and named in ``unresolved``."""


_MISSING = _Missing()


def _resolve_tree(file: _File, expr: Any, path: str, env: _Env, unresolved: list[str]) -> Any:
    """The value of a body's subtree, leaving out (and naming) each leaf that does not resolve."""
    if isinstance(expr, dict) and not ({"function", "operator", "loop_type"} & expr.keys()) \
            and expr.get("type") != "lambda_expression":
        out: dict[str, Any] = {}
        for key, value in expr.items():
            try:
                name = file.key(key, env)
            except _Unresolved:
                unresolved.append(f"{path}.{key}: {key}")
                continue
            resolved = _resolve_tree(file, value, f"{path}.{name}", env, unresolved)
            if resolved is not _MISSING:
                out[name] = resolved
        return out
    if isinstance(expr, list):
        items = [_resolve_tree(file, item, f"{path}[{index}]", env, unresolved) for index, item in enumerate(expr)]
        return [item for item in items if item is not _MISSING]
    if isinstance(expr, dict) and "loop_type" in expr:
        # a `for` in the body: each item read on its own, so one unresolved field does not lose the list
        try:
            bindings = file.loop_items(expr, env)
        except _Unresolved:
            unresolved.append(f"{path}: {_text(expr)}")
            return _MISSING
        items = [_resolve_tree(file, expr["config"], f"{path}[{index}]", _Env({**env.items, **bound}, env.deps),
                               unresolved) for index, bound in enumerate(bindings)]
        return [item for item in items if item is not _MISSING]
    try:
        value = file.value(expr, env)
    except _Unresolved:
        unresolved.append(f"{path}: {_text(expr)}")
        return _MISSING
    if not _plain(value):
        unresolved.append(f"{path}: {_text(expr)}")
        return _MISSING
    return value


def _plain(value: Any) -> bool:
    """JSON data (not a resource, module or scope object)."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


class _Module:
    """One module declaration (one item of a loop): the local file it deploys, read with its params."""

    def __init__(self, file: _File, symbol: str, raw: dict[str, Any], config: dict[str, Any],
                 items: Mapping[str, Any], line: int | None) -> None:
        self.file = file
        self.symbol = symbol
        self.raw = raw
        self.config = config
        self.items = items
        self.line = line
        self.deps: set[_Res] = set()
        self.undecided: list[str] = []
        self._inner: _File | bool | None = False

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def inner(self) -> _File | None:
        """The module's file with its parameters bound, or None (a note says why)."""
        if self._inner is not False:
            return self._inner if isinstance(self._inner, _File) else None
        self._inner = None
        detail = self.raw.get("detail") or {}
        if self.raw.get("type") != "local":
            source = _MODULE_SCHEMES.get(str(self.raw.get("type")), "") + str(detail.get("full") or "")
            self.file.note(f"module {self.symbol} ({source}) is not read: only local module files are")
            return None
        target = Path(os.path.normpath(self.file.path.parent / str(detail.get("path"))))
        if not target.is_file():
            self.file.note(f"module {self.symbol}: {detail.get('path')} is not a file here; its resources "
                           "are not read")
            return None
        if self.file.depth >= _MAX_MODULE_DEPTH:
            self.file.note(f"module {self.symbol}: modules nest deeper than {_MAX_MODULE_DEPTH}; not read")
            return None
        env = _Env(self.items)
        bound: dict[str, tuple[Any, frozenset[_Res]]] = {}
        for name, expr in (self.config.get("params") or {}).items():
            one = _Env(self.items)
            try:
                bound[name] = (self.file.value(expr, one), frozenset(one.deps))
            except _Unresolved:
                bound[name] = (_Unresolved(_text(expr)), frozenset())
            env.deps |= one.deps
        scope = self.file.scope
        if "scope" in self.config:
            try:
                value = self.file.value(self.config["scope"], env)
                if isinstance(value, _Res) and value.type.lower() == "microsoft.resources/resourcegroups":
                    # a resource group the same (subscription-scoped) file declares
                    env.deps.add(value)
                    value = _resource_group(value.name(), self.file.scope.subscription_id)
            except _Unresolved:
                value = None
            if isinstance(value, _Scope):
                scope = value
            else:
                self.file.note(f"module {self.symbol}: scope {_text(self.config['scope'])} does not resolve; "
                               "its resources are read at the deployment's own scope")
        for item in self.config.get("dependsOn") or []:
            try:
                env.deps.update(_resources_of(self.file.value(item, env)))
            except _Unresolved:
                self.file.note(f"module {self.symbol}: dependsOn {_text(item)} does not resolve")
        inner = self.file.loader.file(target, bound, scope, f"{self.file.prefix}{self.symbol}.", self.file.depth + 1)
        for resource in inner.resources():
            resource.deps |= env.deps | self.deps
            resource.undecided[:0] = self.undecided
        self._inner = inner
        return inner

    def resources(self) -> list[_Res]:
        inner = self.inner()
        if inner is None:
            return []
        return inner.resources() + [r for module in inner.modules() for r in module.resources()]

    def attribute(self, step: Any, rest: list[tuple[str, Any]], env: _Env) -> tuple[int, Any]:
        env.deps.update(self.resources())
        inner = self.inner()
        if step == "outputs" and rest and inner is not None and rest[0][1] in inner.outputs:
            output = inner.outputs[rest[0][1]]
            return 1, inner.value(output["value"], env)
        if step == "name":
            name = self.file.value(self.config.get("name"), _Env(self.items))
            if isinstance(name, str):
                return 0, name
        raise _Unresolved(str(step))

    def declare(self) -> None:
        inner = self.inner()
        if inner is not None:
            inner.declare()

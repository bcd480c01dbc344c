"""The ARM template language, as far as the sandbox evaluates it (languageVersion 1.0 templates).

What a caller can rely on:

- :func:`evaluate_template` turns a template, the deployment's ``parameters`` and the target
  resource group into what ARM would deploy: the resources in deployment order (template order,
  except that a resource follows everything in its ``dependsOn``), the parameter values and the
  outputs. Anything the sandbox cannot evaluate raises :class:`TemplateError`, whose message is
  ARM's ``InvalidTemplate`` text.
- Expressions support the ARM functions in :data:`FUNCTIONS`, ``.property`` and ``[index]``;
  ``"[[..."`` escapes a literal string starting with ``[``.
- Nothing here touches the world or HTTP: the deployments surface
  (:mod:`sandbox.surfaces.deployments`) decides what evaluation means for a request.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Template keys that steer ARM and are not part of the body the resource provider receives.
_TEMPLATE_ONLY_KEYS = {"type", "apiversion", "name", "dependson", "condition", "comments", "metadata"}
_UNSUPPORTED_RESOURCE_KEYS = {"copy": "copy loops", "resources": "nested child resources",
                              "scope": "extension resources with 'scope'"}


# ============================================================================================
# Template language: the subset of ARM expressions the sandbox evaluates
# ============================================================================================

class TemplateError(Exception):
    """A template the sandbox cannot evaluate; the message is ARM's ``InvalidTemplate`` text."""


@dataclass
class TemplateContext:
    """What ARM functions may see: the deployment's scope, its parameters and variables."""

    subscription_id: str
    tenant_id: str
    resource_group: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)  # lower-cased name → value
    variables: dict[str, Any] = field(default_factory=dict)  # lower-cased name → raw (unevaluated) value
    _resolved: dict[str, Any] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group['name']}"

    def variable(self, name: str) -> Any:
        key = name.lower()
        if key in self._resolved:
            return self._resolved[key]
        if key not in self.variables:
            raise TemplateError(f"The template variable '{name}' is not found. "
                                "Please see https://aka.ms/arm-syntax-variables for usage details.")
        if key in self._resolving:
            raise TemplateError(f"The template variable '{name}' refers to itself.")
        self._resolving.add(key)
        try:
            value = evaluate(self.variables[key], self)
        finally:
            self._resolving.discard(key)
        self._resolved[key] = value
        return value


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[(),.\[\]]))")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TemplateError(f"The language expression '[{text}]' is not valid: unexpected '{text[pos:].strip()}'.")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


@dataclass
class _Parser:
    """Recursive descent over ``name(args)``, ``'string'``, numbers, ``.property`` and ``[index]``."""

    source: str
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, sym: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (sym is not None and tok != ("sym", sym)):
            want = f"'{sym}'" if sym else "more"
            raise TemplateError(f"The language expression '[{self.source}]' is not valid: expected {want}.")
        self.pos += 1
        return tok

    def expression(self) -> Any:
        kind, text = self.take()
        node: Any
        if kind == "str":
            node = ("lit", text[1:-1].replace("''", "'"))
        elif kind == "num":
            node = ("lit", int(text))
        elif kind == "id":
            self.take("(")
            args: list[Any] = []
            if self.peek() != ("sym", ")"):
                args.append(self.expression())
                while self.peek() == ("sym", ","):
                    self.take(",")
                    args.append(self.expression())
            self.take(")")
            node = ("call", text, args)
        else:
            raise TemplateError(f"The language expression '[{self.source}]' is not valid: unexpected '{text}'.")
        while self.peek() in (("sym", "."), ("sym", "[")):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "id":
                    raise TemplateError(f"The language expression '[{self.source}]' is not valid: "
                                        f"expected a property name after '.'.")
                node = ("prop", node, ("lit", name))
            else:
                index = self.expression()
                self.take("]")
                node = ("prop", node, index)
        return node


def parse_expression(text: str) -> Any:
    """The syntax tree of the text between a template string's outer brackets."""
    parser = _Parser(text, _tokenize(text))
    node = parser.expression()
    if parser.peek() is not None:
        raise TemplateError(f"The language expression '[{text}]' is not valid: "
                            f"unexpected '{parser.peek()[1]}' after the expression.")  # type: ignore[index]
    return node


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _fn_resource_id(ctx: TemplateContext, args: list[Any]) -> str:
    """``resourceId([subscriptionId,] [resourceGroupName,] type, name1 [, name2 ...])``."""
    strings = [_to_string(a) for a in args]
    type_at = next((i for i, a in enumerate(strings) if "/" in a), None)
    if type_at is None or type_at > 2:
        raise TemplateError("The template function 'resourceId' expects a resource type like 'Microsoft.X/y' "
                            "followed by the resource name(s).")
    prefix, rtype = strings[:type_at], strings[type_at].strip("/")
    names = [part for name in strings[type_at + 1:] for part in name.strip("/").split("/")]
    segments = rtype.split("/")
    if len(segments) < 2 or len(names) != len(segments) - 1:
        raise TemplateError(f"Unable to evaluate template language function 'resourceId': the type '{rtype}' "
                            f"requires {max(len(segments) - 1, 1)} resource name argument(s), got {len(names)}. "
                            "Please see https://aka.ms/arm-resourceid for usage details.")
    sub = prefix[0] if len(prefix) == 2 else ctx.subscription_id
    rg = prefix[-1] if prefix else ctx.resource_group["name"]
    path = segments[0] + "".join(f"/{t}/{n}" for t, n in zip(segments[1:], names, strict=True))
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{path}"


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def _fn_format(ctx: TemplateContext, args: list[Any]) -> str:
    if not args:
        raise TemplateError("The template function 'format' expects a format string.")
    fmt, values = _to_string(args[0]), args[1:]

    def item(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        if m.group(1) is None:
            raise TemplateError(f"The format string '{fmt}' of template function 'format' is not valid; the sandbox "
                                "supports '{0}'-style items without alignment or format specifiers.")
        index = int(m.group(1))
        if index >= len(values):
            raise TemplateError(f"The format string '{fmt}' refers to argument {index}, but only "
                                f"{len(values)} were given.")
        return _to_string(values[index])

    return _FORMAT_ITEM.sub(item, fmt)


def _fn_concat(ctx: TemplateContext, args: list[Any]) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    if any(isinstance(a, (list, dict)) for a in args):
        raise TemplateError("The template function 'concat' expects either all strings or all arrays.")
    return "".join(_to_string(a) for a in args)


def _fn_parameters(ctx: TemplateContext, args: list[Any]) -> Any:
    name = _to_string(args[0]) if args else ""
    if name.lower() not in ctx.parameters:
        raise TemplateError(f"The template parameter '{name}' is not found. "
                            "Please see https://aka.ms/arm-syntax-parameters for usage details.")
    return copy.deepcopy(ctx.parameters[name.lower()])


def _fn_resource_group(ctx: TemplateContext, args: list[Any]) -> dict[str, Any]:
    rg = ctx.resource_group
    return {"id": ctx.resource_group_id, "name": rg["name"], "type": "Microsoft.Resources/resourceGroups",
            "location": rg.get("location", ""), "tags": copy.deepcopy(rg.get("tags") or {}),
            "properties": {"provisioningState": "Succeeded"}}


def _fn_subscription(ctx: TemplateContext, args: list[Any]) -> dict[str, Any]:
    return {"id": f"/subscriptions/{ctx.subscription_id}", "subscriptionId": ctx.subscription_id,
            "tenantId": ctx.tenant_id, "displayName": f"sandbox-{ctx.subscription_id[:8]}"}


def _one(fn: Callable[[Any], Any]) -> Callable[[TemplateContext, list[Any]], Any]:
    def call(ctx: TemplateContext, args: list[Any]) -> Any:
        if len(args) != 1:
            raise TemplateError("This template function expects exactly one argument.")
        return fn(args[0])
    return call


def _fn_if(ctx: TemplateContext, args: list[Any]) -> Any:
    if len(args) != 3:
        raise TemplateError("The template function 'if' expects three arguments.")
    return args[1] if args[0] else args[2]


FUNCTIONS: dict[str, Callable[[TemplateContext, list[Any]], Any]] = {
    "parameters": _fn_parameters,
    "variables": lambda ctx, args: ctx.variable(_to_string(args[0]) if args else ""),
    "resourcegroup": _fn_resource_group,
    "subscription": _fn_subscription,
    "resourceid": _fn_resource_id,
    "concat": _fn_concat,
    "format": _fn_format,
    "tolower": _one(lambda v: _to_string(v).lower()),
    "toupper": _one(lambda v: _to_string(v).upper()),
    "string": _one(_to_string),
    "equals": lambda ctx, args: len(args) == 2 and args[0] == args[1],
    "not": _one(lambda v: not v),
    "if": _fn_if,
    "true": lambda ctx, args: True,
    "false": lambda ctx, args: False,
}
"""Supported template functions by lower-cased name (ARM function names ignore case)."""


def _run(node: Any, ctx: TemplateContext) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "prop":
        target, key = _run(node[1], ctx), _run(node[2], ctx)
        if isinstance(target, dict):
            found = next((v for k, v in target.items() if k.lower() == _to_string(key).lower()), _MISSING)
            if found is _MISSING:
                raise TemplateError(f"The language expression property '{key}' doesn't exist, available properties "
                                    f"are '{', '.join(target)}'.")
            return found
        if isinstance(target, list) and isinstance(key, int) and 0 <= key < len(target):
            return target[key]
        raise TemplateError(f"The language expression property '{key}' cannot be read from a {type(target).__name__}.")
    name, arg_nodes = node[1], node[2]
    fn = FUNCTIONS.get(name.lower())
    if fn is None:
        raise TemplateError(f"The template function '{name}' is not known to the sandbox, which evaluates only "
                            f"{', '.join(sorted(FUNCTIONS))}. Please see https://aka.ms/arm-functions for usage "
                            "details.")
    return fn(ctx, [_run(a, ctx) for a in arg_nodes])


_MISSING = object()


def evaluate(value: Any, ctx: TemplateContext) -> Any:
    """``value`` with every template expression (``"[...]"``, keys included) replaced by its result.

    ``"[[..."`` is the escape for a literal string starting with ``[``.
    """
    if isinstance(value, dict):
        return {_to_string(evaluate(k, ctx)): evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        if value.startswith("[["):
            return value[1:]
        return _run(parse_expression(value[1:-1]), ctx)
    return value


# ============================================================================================
# Templates: parameters, resources
# ============================================================================================

_TYPE_NAMES = {"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
               "object": "Object", "secureobject": "SecureObject", "array": "Array"}


@dataclass
class PlannedResource:
    """One template resource after evaluation: what ARM will PUT, and where."""

    id: str
    type: str
    name: str
    api_version: str
    body: dict[str, Any]
    depends_on: list[str]


def resolve_parameters(template: dict[str, Any], supplied: dict[str, Any], ctx: TemplateContext) -> dict[str, Any]:
    """Declared parameters → values (supplied ``{"value": ...}`` or the evaluated ``defaultValue``)."""
    declared = template.get("parameters") or {}
    if not isinstance(declared, dict) or not isinstance(supplied, dict):
        raise TemplateError("The template 'parameters' and the deployment's 'parameters' must be objects.")
    declared_lower = {k.lower(): k for k in declared}
    extra = [k for k in supplied if k.lower() not in declared_lower]
    if extra:
        raise TemplateError(f"The template parameters '{', '.join(extra)}' in the parameters file are not valid; "
                            "they are not present in the original template and can therefore not be provided at "
                            "deployment time. The only supported parameters for this template are "
                            f"'{', '.join(declared)}'. Please see https://aka.ms/arm-pass-parameter-values for "
                            "usage details.")
    supplied_lower = {k.lower(): v for k, v in supplied.items()}
    for key, name in declared_lower.items():
        spec = declared[name] if isinstance(declared[name], dict) else {}
        if key in supplied_lower:
            given = supplied_lower[key]
            if not isinstance(given, dict) or "value" not in given:
                raise TemplateError(f"The value of deployment parameter '{name}' must be given as "
                                    "{\"value\": ...}; Key Vault references are not supported by the sandbox.")
            value = given["value"]
        elif "defaultValue" in spec:
            value = evaluate(spec["defaultValue"], ctx)
        else:
            raise TemplateError(f"Deployment template validation failed: 'The value for the template parameter "
                                f"'{name}' is not provided. Please see https://aka.ms/arm-create-parameter-file "
                                "for usage details.'")
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and value not in allowed:
            raise TemplateError(f"Deployment template validation failed: 'The provided value '{value}' for the "
                                f"template parameter '{name}' is not valid. The parameter value is not part of the "
                                "allowed value(s).'")
        ctx.parameters[key] = value
    return {name: ctx.parameters[key] for key, name in declared_lower.items()}


def resource_id_for(ctx: TemplateContext, rtype: str, name: str) -> str:
    """The id ARM gives a resource of ``rtype`` named ``name`` (``a/b`` for child types) in the group."""
    segments, names = rtype.strip("/").split("/"), name.strip("/").split("/")
    if len(segments) < 2 or len(names) != len(segments) - 1:
        raise TemplateError(f"The template resource '{name}' for type '{rtype}' has incorrect segment lengths. "
                            "A nested resource type must have identical number of segments as its resource name.")
    path = segments[0] + "".join(f"/{t}/{n}" for t, n in zip(segments[1:], names, strict=True))
    return f"{ctx.resource_group_id}/providers/{path}"


def plan_resources(template: dict[str, Any], ctx: TemplateContext) -> list[PlannedResource]:
    """Evaluate the template's ``resources`` array (languageVersion 1.0) in order."""
    resources = template.get("resources", [])
    if not isinstance(resources, list):
        raise TemplateError("The template 'resources' must be an array; symbolic-name templates "
                            "(languageVersion 2.0) are not supported by the sandbox.")
    planned: list[PlannedResource] = []
    for index, raw in enumerate(resources):
        if not isinstance(raw, dict):
            raise TemplateError(f"The template resource at index {index} must be an object.")
        label = str(raw.get("name", index))
        for key, what in _UNSUPPORTED_RESOURCE_KEYS.items():
            if key in raw:
                raise TemplateError(f"The template resource '{label}' uses {what}, which the sandbox does not "
                                    "support.")
        try:
            if "condition" in raw and not evaluate(raw["condition"], ctx):
                continue
            rtype, name = _to_string(evaluate(raw.get("type", ""), ctx)), _to_string(evaluate(raw.get("name", ""), ctx))
            api_version = _to_string(evaluate(raw.get("apiVersion", ""), ctx))
            if not rtype or not name or not api_version:
                raise TemplateError("'type', 'name' and 'apiVersion' are required.")
            body = {k: evaluate(v, ctx) for k, v in raw.items() if k.lower() not in _TEMPLATE_ONLY_KEYS}
            depends_on = [_to_string(d) for d in evaluate(raw.get("dependsOn") or [], ctx)]
            planned.append(PlannedResource(resource_id_for(ctx, rtype, name), rtype, name, api_version, body,
                                           depends_on))
        except TemplateError as exc:
            raise TemplateError(f"Deployment template validation failed: 'The template resource '{label}' at index "
                                f"'{index}' is not valid: {exc}'") from None
    return in_dependency_order(planned)


def refers_to(reference: str, resource_id: str) -> bool:
    """Whether a ``dependsOn`` entry names ``resource_id``: its id, ``type/name``, or bare name."""
    ref, rid = reference.lower().rstrip("/"), resource_id.lower()
    return bool(ref) and (ref == rid or rid.endswith("/" + ref))


def in_dependency_order(planned: list[PlannedResource]) -> list[PlannedResource]:
    """Template order, except that a resource comes after everything in its ``dependsOn``."""
    for res in planned:
        for ref in res.depends_on:
            if not any(refers_to(ref, other.id) for other in planned if other is not res):
                raise TemplateError(f"Deployment template validation failed: 'The resource '{ref}' is not defined "
                                    "in the template. Please see https://aka.ms/arm-syntax for usage details.'")
    ordered: list[PlannedResource] = []
    visiting: set[int] = set()

    def visit(res: PlannedResource) -> None:
        if any(res is done for done in ordered):
            return
        if id(res) in visiting:
            raise TemplateError("Deployment template validation failed: 'Circular dependency detected on resource: "
                                f"'{res.id}'. Please see https://aka.ms/arm-syntax-resources for usage details.'")
        visiting.add(id(res))
        for other in planned:
            if other is not res and any(refers_to(ref, other.id) for ref in res.depends_on):
                visit(other)
        visiting.discard(id(res))
        ordered.append(res)

    for res in planned:
        visit(res)
    return ordered


def evaluate_outputs(template: dict[str, Any], ctx: TemplateContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in (template.get("outputs") or {}).items():
        try:
            value = evaluate(spec.get("value"), ctx)
        except TemplateError as exc:
            raise TemplateError(f"Deployment template validation failed: 'The template output '{name}' is not "
                                f"valid: {exc}'") from None
        out[name] = {"type": _TYPE_NAMES.get(str(spec.get("type", "")).lower(), spec.get("type")), "value": value}
    return out


# ============================================================================================
# The entry point
# ============================================================================================

@dataclass(frozen=True)
class Scope:
    """Where a template is deployed: what ``subscription()`` and ``resourceGroup()`` return."""

    subscription_id: str
    tenant_id: str
    resource_group: dict[str, Any]  # the group as the world stores it, with at least "name"


@dataclass(frozen=True)
class EvaluatedTemplate:
    """A template after evaluation, before anything is deployed."""

    parameters: dict[str, Any]  # declared name → value (supplied or default)
    resources: list[PlannedResource]  # in deployment order
    outputs: dict[str, Any]  # name → {"type": ..., "value": ...}, as ARM shows them on the deployment


def evaluate_template(template: dict[str, Any], parameters: dict[str, Any], scope: Scope) -> EvaluatedTemplate:
    """Evaluate ``template`` with the deployment's ``parameters`` (``{name: {"value": ...}}``) in ``scope``.

    Raises :class:`TemplateError` for anything ARM would refuse as ``InvalidTemplate`` or the sandbox cannot evaluate.
    """
    ctx = TemplateContext(scope.subscription_id, scope.tenant_id, scope.resource_group)
    ctx.variables = {k.lower(): v for k, v in (template.get("variables") or {}).items()}
    values = resolve_parameters(template, parameters, ctx)
    resources = plan_resources(template, ctx)
    outputs = evaluate_outputs(template, ctx)
    return EvaluatedTemplate(values, resources, outputs)


def parameter_type(template: dict[str, Any], name: str) -> str:
    """ARM's display name (``String``, ``SecureString``, ...) for the declared type of parameter ``name``."""
    declared = template.get("parameters") or {}
    return _TYPE_NAMES.get(str((declared.get(name) or {}).get("type", "")).lower(), "String")

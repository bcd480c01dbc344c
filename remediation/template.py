"""Recover a container group's definition from an ARM template deployment.

Only the simple, common expressions are resolved (parameters, variables, resourceGroup(),
subscription(), resourceId, concat, format, toLower/toUpper, string literals). Anything else
raises :class:`UnsupportedExpression`, and the caller gives up on this source cleanly rather
than redeploying something it guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .resource_ids import parse_resource_id


class UnsupportedExpression(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<punct>[(),.\[\]]))")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if not m or not m.lastgroup:
            raise UnsupportedExpression(f"cannot read expression at {text[pos:pos + 20]!r}")
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return tokens


class _Resolver:
    def __init__(self, parameters: Mapping[str, Any], variables: Mapping[str, Any],
                 scope: Mapping[str, str], template_params: Mapping[str, Any]) -> None:
        self.parameters = {k.lower(): v for k, v in parameters.items()}
        self.variables = {k.lower(): v for k, v in variables.items()}
        self.scope = scope
        self.template_params = {k.lower(): v for k, v in template_params.items()}
        self.depth = 0
        self.pos = 0
        self.tokens: list[tuple[str, str]] = []

    def value(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, dict):
            return {str(self.string(k)): self.value(v) for k, v in node.items()}
        return node

    def string(self, text: str) -> Any:
        if text.startswith("[["):
            return text[1:]
        if not (text.startswith("[") and text.endswith("]")):
            return text
        # a parameter's default or a variable may itself be an expression, read in the middle of
        # another one: read it without losing the outer one's place
        saved = (self.pos, self.tokens)
        try:
            self.pos, self.tokens = 0, _tokenize(text[1:-1])
            result = self.expr()
            if self.pos != len(self.tokens):
                raise UnsupportedExpression(f"cannot read expression {text!r}")
            return result
        finally:
            self.pos, self.tokens = saved

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise UnsupportedExpression("unexpected end of expression")
        tok = self.tokens[self.pos]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise UnsupportedExpression(f"unexpected {tok[1]!r} in expression")
        self.pos += 1
        return tok

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def expr(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            result: Any = text[1:-1].replace("''", "'")
        elif kind == "num":
            result = int(text)
        elif kind == "name":
            result = self.function(text.lower())
        else:
            raise UnsupportedExpression(f"unexpected {text!r} in expression")
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                prop = self.take("name")[1]
                result = self.member(result, prop)
            else:
                key = self.expr()
                self.take("punct", "]")
                result = self.member(result, key)
        return result

    def function(self, name: str) -> Any:
        """Read a call's arguments (the tokens after its name) and return its value."""
        self.take("punct", "(")
        args: list[Any] = []
        while self.peek() != ")":
            args.append(self.expr())
            if self.peek() == ",":
                self.take("punct", ",")
        self.take("punct", ")")
        return self.call(name, args)

    def member(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if str(k).lower() == str(key).lower():
                    return v
        if isinstance(obj, list) and isinstance(key, int) and 0 <= key < len(obj):
            return obj[key]
        raise UnsupportedExpression(f"cannot read member {key!r}")

    def call(self, name: str, args: list[Any]) -> Any:
        if name == "parameters":
            key = str(args[0]).lower()
            if key in self.parameters:
                return self.value(self.parameters[key])
            default = self.template_params.get(key, {}).get("defaultValue")
            if default is None:
                raise UnsupportedExpression(f"parameter {args[0]!r} has no value")
            return self.value(default)
        if name == "variables":
            key = str(args[0]).lower()
            if key not in self.variables:
                raise UnsupportedExpression(f"variable {args[0]!r} is not defined")
            self.depth += 1
            if self.depth > 20:
                raise UnsupportedExpression("variables nest too deeply")
            try:
                return self.value(self.variables[key])
            finally:
                self.depth -= 1
        if name == "resourcegroup":
            return {"id": self.scope["resourceGroupId"], "name": self.scope["resourceGroup"],
                    "location": self.scope.get("location", "")}
        if name == "subscription":
            return {"id": f"/subscriptions/{self.scope['subscriptionId']}",
                    "subscriptionId": self.scope["subscriptionId"], "tenantId": self.scope.get("tenantId", "")}
        if name == "resourceid":
            return self.resource_id(args)
        if name == "concat":
            if all(isinstance(a, list) for a in args):
                return [x for a in args for x in a]
            return "".join(str(a) for a in args)
        if name == "format":
            fmt = str(args[0])
            return re.sub(r"\{(\d+)(?::[^}]*)?\}", lambda m: str(args[int(m.group(1)) + 1]), fmt)
        if name == "tolower":
            return str(args[0]).lower()
        if name == "toupper":
            return str(args[0]).upper()
        if name == "string":
            return str(args[0])
        raise UnsupportedExpression(f"function {name}() is not supported")

    def resource_id(self, args: list[Any]) -> str:
        parts = [str(a) for a in args]
        sub = self.scope["subscriptionId"]
        rg = self.scope["resourceGroup"]
        if parts and "/" not in parts[0] and len(parts) >= 3 and "/" in parts[1]:
            rg, parts = parts[0], parts[1:]
        if parts and re.fullmatch(r"[0-9a-fA-F-]{36}", parts[0]) and len(parts) >= 4:
            sub, rg, parts = parts[0], parts[1], parts[2:]
        rtype, names = parts[0], parts[1:]
        segments = rtype.split("/")
        path = segments[0]
        for seg, name in zip(segments[1:], names, strict=False):
            path += f"/{seg}/{name}"
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{path}"


def find_container_group(template: Mapping[str, Any], parameters: Mapping[str, Any], *, resource_id: str,
                         location: str = "", tenant_id: str = "") -> tuple[dict[str, Any], str] | None:
    """The container group named by ``resource_id`` in ``template`` as (body, apiVersion), resolved.

    ``parameters`` are a deployment's parameters in either form (``{"x": {"value": 1}}`` or
    ``{"x": 1}``). Returns None when the template has no such group; raises UnsupportedExpression
    when it has one that cannot be resolved safely.
    """
    group = parse_resource_id(resource_id)
    scope = {"subscriptionId": group.subscription, "resourceGroup": group.resource_group,
             "resourceGroupId": f"/subscriptions/{group.subscription}/resourceGroups/{group.resource_group}",
             "location": location, "tenantId": tenant_id}
    values = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in parameters.items()}
    resolver = _Resolver(values, template.get("variables") or {}, scope, template.get("parameters") or {})
    resources = template.get("resources") or []
    if isinstance(resources, dict):  # languageVersion 2.0 symbolic names
        resources = list(resources.values())
    wanted = group.name.lower()
    for res in resources:
        if str(res.get("type", "")).lower() != "microsoft.containerinstance/containergroups":
            continue
        name = resolver.value(res.get("name", ""))
        if str(name).lower() != wanted:
            continue
        body = {k: resolver.value(v) for k, v in res.items()
                if k not in ("type", "apiVersion", "name", "dependsOn", "condition", "copy", "comments")}
        return body, str(res.get("apiVersion", ""))
    return None

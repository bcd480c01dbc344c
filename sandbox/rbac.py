"""Azure RBAC as the sandbox evaluates it: built-in roles, scopes, wildcards, conditions.

Independent of the product's own permission code on purpose: the sandbox plays Azure, so the
product's evaluation is tested against a second implementation, not against itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
ACR_DELETE = "c2f4ef07-c644-48eb-af81-4b1b4947fb11"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
# The ACR repository roles as Azure's built-in role list defines them: ids, data actions, no
# actions (MicrosoftDocs azure-docs articles/role-based-access-control/built-in-roles/containers.md,
# ms.date 2025-06-30, commit 0088bfa77543e07f8a41771de8db977ddfc62e1d).
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
REPOSITORY_WRITER = "2a1e307c-b015-4ebd-883e-5b7698a07328"
REPOSITORY_CONTRIBUTOR = "2efddaa5-3f1f-4df3-97df-af3f13818f4c"
REPOSITORY_CATALOG_LISTER = "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7"

PULL_ACTION = "Microsoft.ContainerRegistry/registries/pull/read"
REPO_CONTENT_READ = "Microsoft.ContainerRegistry/registries/repositories/content/read"
REPO_METADATA_READ = "Microsoft.ContainerRegistry/registries/repositories/metadata/read"
REPO_METADATA_WRITE = "Microsoft.ContainerRegistry/registries/repositories/metadata/write"
REPO_CONTENT_WRITE = "Microsoft.ContainerRegistry/registries/repositories/content/write"
REPO_METADATA_DELETE = "Microsoft.ContainerRegistry/registries/repositories/metadata/delete"
REPO_CONTENT_DELETE = "Microsoft.ContainerRegistry/registries/repositories/content/delete"
CATALOG_READ = "Microsoft.ContainerRegistry/registries/catalog/read"
REPOSITORY_NAME_ATTRIBUTE = "Microsoft.ContainerRegistry/registries/repositories:name"

ACR_DATA_PLANE_OPERATIONS = frozenset(op.lower() for op in (
    PULL_ACTION, "Microsoft.ContainerRegistry/registries/push/write", REPO_CONTENT_READ, REPO_METADATA_READ,
    REPO_METADATA_WRITE, REPO_CONTENT_WRITE, REPO_METADATA_DELETE, REPO_CONTENT_DELETE, CATALOG_READ,
))
"""What ACR itself authorizes (pulls, pushes, repository data actions). ACR honours a custom role's
wildcard action for them only in tenants with Azure Resource Manager private link ("In a tenant
without an ARM private link, don't use wildcards", MicrosoftDocs azure-management-docs
articles/container-registry/container-registry-rbac-custom-roles.md, ms.date 2025-04-24, commit
064a6550eb2d8f5a38ef9944e872f38ed7fed334); ARM's own checks honour wildcards everywhere."""

_CONTRIBUTOR_NOT_ACTIONS = [
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
]

_BUILTINS: list[tuple[str, str, str, list[str], list[str], list[str]]] = [
    # (guid, roleName, description, actions, notActions, dataActions)
    (ACR_PULL, "AcrPull", "acr pull", [PULL_ACTION], [], []),
    (ACR_PUSH, "AcrPush", "acr push", [PULL_ACTION, "Microsoft.ContainerRegistry/registries/push/write"], [], []),
    (ACR_DELETE, "AcrDelete", "acr delete", ["Microsoft.ContainerRegistry/registries/artifacts/delete"], [], []),
    (READER, "Reader", "View all resources, but does not allow you to make any changes.", ["*/read"], [], []),
    (CONTRIBUTOR, "Contributor", "Grants full access to manage all resources, but does not allow you to "
     "assign roles in Azure RBAC.", ["*"], _CONTRIBUTOR_NOT_ACTIONS, []),
    (OWNER, "Owner", "Grants full access to manage all resources, including the ability to assign roles "
     "in Azure RBAC.", ["*"], [], []),
    (USER_ACCESS_ADMINISTRATOR, "User Access Administrator", "Lets you manage user access to Azure resources.",
     ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"], [], []),
    (RBAC_ADMINISTRATOR, "Role Based Access Control Administrator",
     "Manage access to Azure resources by assigning roles using Azure RBAC.",
     ["Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete",
      "*/read", "Microsoft.Support/*"], [], []),
    (REPOSITORY_READER, "Container Registry Repository Reader",
     "Allows for read access to Azure Container Registry repositories, but excluding catalog listing. This role is "
     "in preview and subject to change.",
     [], [], [REPO_METADATA_READ, REPO_CONTENT_READ]),
    (REPOSITORY_WRITER, "Container Registry Repository Writer",
     "Allows for read and write access to Azure Container Registry repositories, but excluding catalog listing. "
     "This role is in preview and subject to change.",
     [], [], [REPO_METADATA_READ, REPO_CONTENT_READ, REPO_METADATA_WRITE, REPO_CONTENT_WRITE]),
    (REPOSITORY_CONTRIBUTOR, "Container Registry Repository Contributor",
     "Allows for read, write, and delete access to Azure Container Registry repositories, but excluding catalog "
     "listing. This role is in preview and subject to change.",
     [], [], [REPO_METADATA_READ, REPO_CONTENT_READ, REPO_METADATA_WRITE, REPO_CONTENT_WRITE, REPO_METADATA_DELETE,
              REPO_CONTENT_DELETE]),
    (REPOSITORY_CATALOG_LISTER, "Container Registry Repository Catalog Lister",
     "Allows for listing all repositories in an Azure Container Registry. This role is in preview and subject to "
     "change.",
     [], [], [CATALOG_READ]),
]


_BUILTIN_GUIDS = frozenset(guid for guid, *_ in _BUILTINS)


def builtin_role_definitions() -> list[dict[str, Any]]:
    """The built-in roles in ARM's shape (tenant-level ids, as ARM lists them)."""
    out = []
    for guid, name, description, actions, not_actions, data_actions in _BUILTINS:
        out.append({
            "id": f"/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            "name": guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": name,
                "type": "BuiltInRole",
                "description": description,
                "assignableScopes": ["/"],
                "permissions": [{"actions": list(actions), "notActions": list(not_actions),
                                 "dataActions": list(data_actions), "notDataActions": []}],
                "createdOn": "2018-01-01T00:00:00.0000000Z",
                "updatedOn": "2024-05-07T00:00:00.0000000Z",
                "createdBy": None,
                "updatedBy": None,
            },
        })
    return out


def guid_of(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id, lower-cased."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def pattern_matches(pattern: str, operation: str) -> bool:
    """RBAC wildcard matching: ``*`` stands for any run of characters, case-insensitive."""
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, operation, re.IGNORECASE) is not None


def scope_contains(scope: str, target: str) -> bool:
    """Whether an assignment at ``scope`` applies to ``target`` (same or a child, by path segment)."""
    s = scope.rstrip("/").lower()
    t = target.rstrip("/").lower()
    if s in ("", "/"):
        return True
    return t == s or t.startswith(s + "/")


def permission_grants(permission: Mapping[str, Any], operation: str, *, data: bool, wildcards: bool = True) -> bool:
    """Whether one ``permissions`` entry grants ``operation``; ``wildcards=False`` ignores ``*`` patterns
    that would allow it (never those that take it away)."""
    allow_key, deny_key = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    allowed = any(pattern_matches(p, operation) for p in permission.get(allow_key) or [] if wildcards or "*" not in p)
    denied = any(pattern_matches(p, operation) for p in permission.get(deny_key) or [])
    return allowed and not denied


def is_custom(role_definition: Mapping[str, Any]) -> bool:
    """A role the tenant defined (any role that is not one of the built-ins)."""
    return guid_of(str(role_definition.get("id", ""))) not in _BUILTIN_GUIDS


def role_grants(role_definition: Mapping[str, Any], operation: str, *, data: bool,
                custom_wildcards: bool = True) -> bool:
    """Whether the role grants ``operation``; ``custom_wildcards=False``: a custom role's ``*`` does not count."""
    perms = role_definition.get("properties", {}).get("permissions") or []
    wildcards = custom_wildcards or not is_custom(role_definition)
    return any(permission_grants(p, operation, data=data, wildcards=wildcards) for p in perms)


# ---------------------------------------------------------------------------------------------
# Conditions (conditionVersion 2.0), the forms used for delegating role assignments and for
# ABAC repository permissions.


@dataclass(frozen=True)
class ConditionInput:
    action: str
    request: Mapping[str, Any]
    resource: Mapping[str, Any]


class ConditionSyntaxError(ValueError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<not>!)|(?P<and>\bAND\b|&&)|(?P<or>\bOR\b|\|\|)"
    r"|(?P<am>(?:Sub)?ActionMatches)\s*\{\s*'(?P<amv>[^']*)'\s*\}"
    r"|(?P<attr>@(?P<src>Request|Resource|Principal|Environment)\[(?P<key>[^\]]+)\])"
    r"|(?P<op>(?:ForAnyOfAnyValues:|ForAllOfAnyValues:|ForAnyOfAllValues:|ForAllOfAllValues:)?"
    r"(?:Guid|String|Numeric|Bool)[A-Za-z]*)"
    r"|(?P<set>\{[^}]*\})|(?P<str>'[^']*')|(?P<bare>[0-9A-Fa-f-]{36}|true|false|\d+))",
    re.IGNORECASE,
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionSyntaxError(f"cannot read condition at: {text[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if m.group("am"):
            out.append(("am", m.group("amv")))
        elif m.group("attr"):
            out.append(("attr", (m.group("src").lower(), m.group("key"))))
        elif kind in ("lp", "rp", "not", "and", "or"):
            out.append((kind, None))
        elif m.group("op"):
            out.append(("op", m.group("op")))
        elif m.group("set"):
            inner = m.group("set")[1:-1]
            values = [v.strip().strip("'") for v in inner.split(",") if v.strip()]
            out.append(("val", values))
        elif m.group("str"):
            out.append(("val", [m.group("str")[1:-1]]))
        elif m.group("bare"):
            out.append(("val", [m.group("bare")]))
        # trailing whitespace only
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _compare(op: str, actual: list[str], expected: list[str]) -> bool:
    """Apply ``[quantifier:]Operator`` to an attribute's values and the expected set.

    A negated operator (``GuidNotEquals``, ``StringNotLike``...) is negated per pair, before the
    quantifier, as Azure defines cross-product operators: ``ForAnyOfAllValues:GuidNotEquals {a, b}``
    holds when some value differs from both ``a`` and ``b``, i.e. is not in the set.
    """
    quant, _, base = op.rpartition(":")
    base_l = base.lower()
    negate = base_l.startswith(("stringnot", "guidnot", "numericnot"))
    core = base_l.replace("not", "", 1) if negate else base_l

    def positive(a: str, e: str) -> bool:
        a_l, e_l = a.lower(), e.lower()
        if core == "guidequals":
            return guid_of(a_l) == guid_of(e_l)
        if core == "stringequals":
            return a == e
        if core == "stringequalsignorecase":
            return a_l == e_l
        if core == "stringstartswith":
            return a.startswith(e)
        if core == "stringstartswithignorecase":
            return a_l.startswith(e_l)
        if core in ("stringlike", "stringlikeignorecase"):
            return pattern_matches(e, a) if core.endswith("case") else re.match(
                "^" + ".*".join(re.escape(x) for x in e.split("*")) + "$", a) is not None
        raise ConditionSyntaxError(f"unsupported condition operator {op!r}")

    def one(a: str, e: str) -> bool:
        return not positive(a, e) if negate else positive(a, e)

    if not actual:
        return negate  # a missing attribute satisfies only negative comparisons
    q = quant.lower()
    if q in ("", "foranyofanyvalues"):
        return any(one(a, e) for a in actual for e in expected)
    if q == "forallofanyvalues":
        return all(any(one(a, e) for e in expected) for a in actual)
    if q == "foranyofallvalues":
        return any(all(one(a, e) for e in expected) for a in actual)
    if q == "forallofallvalues":
        return all(one(a, e) for a in actual for e in expected)
    raise ConditionSyntaxError(f"unsupported quantifier {quant!r}")


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], data: ConditionInput) -> None:
        self.t = tokens
        self.i = 0
        self.data = data

    def peek(self) -> str | None:
        return self.t[self.i][0] if self.i < len(self.t) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            raise ConditionSyntaxError(f"expected {kind} in condition")
        value = self.t[self.i][1]
        self.i += 1
        return value

    def expr(self) -> bool:
        value = self.term()
        while self.peek() == "or":
            self.take("or")
            rhs = self.term()
            value = value or rhs
        return value

    def term(self) -> bool:
        value = self.factor()
        while self.peek() == "and":
            self.take("and")
            rhs = self.factor()
            value = value and rhs
        return value

    def factor(self) -> bool:
        kind = self.peek()
        if kind == "not":
            self.take("not")
            return not self.factor()
        if kind == "lp":
            self.take("lp")
            value = self.expr()
            self.take("rp")
            return value
        if kind == "am":
            pattern = self.take("am")
            return pattern_matches(pattern, self.data.action)
        if kind == "attr":
            source, key = self.take("attr")
            op = self.take("op")
            expected = self.take("val")
            attrs = self.data.request if source == "request" else self.data.resource
            raw = _lookup(attrs, key)
            actual = raw if isinstance(raw, list) else ([] if raw is None else [str(raw)])
            return _compare(op, actual, expected)
        raise ConditionSyntaxError("unexpected end of condition")


def _lookup(attrs: Mapping[str, Any], key: str) -> Any:
    for k, v in attrs.items():
        if k.lower() == key.lower():
            return v
    return None


def condition_allows(condition: str, data: ConditionInput) -> bool:
    """Evaluate a conditionVersion 2.0 expression; a condition that cannot be read denies."""
    try:
        parser = _Parser(_tokens(condition), data)
        value = parser.expr()
        if parser.peek() is not None:
            return False
        return value
    except ConditionSyntaxError:
        return False


def repository_attributes(repository: str) -> dict[str, str]:
    """The attributes an ACR repository request carries, for ``request_attributes`` and ``resource_attributes``.

    Azure documents the repository condition with the request attribute
    (``@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase
    'nginx'``; MicrosoftDocs azure-management-docs,
    container-registry-rbac-abac-repository-permissions.md, 2025-05-01); the ``@Resource[...]``
    spelling is read too, so a condition in either form is honoured.
    """
    return {REPOSITORY_NAME_ATTRIBUTE: repository}


def memberships(principal_id: str, groups: Mapping[str, Iterable[str]]) -> set[str]:
    """``principal_id`` and every group it belongs to, directly or through other groups (lower case).

    Azure RBAC counts an assignment to a group for its members, transitively.
    """
    found = {principal_id.lower()}
    grew = True
    while grew:
        grew = False
        for group, members in groups.items():
            if group.lower() not in found and found & {m.lower() for m in members}:
                found.add(group.lower())
                grew = True
    return found


def effective_assignments(
    assignments: Iterable[Mapping[str, Any]], principal_id: str, target_scope: str,
    *, groups: Mapping[str, Iterable[str]] | None = None,
) -> list[Mapping[str, Any]]:
    """Assignments to ``principal_id``, or to a group it belongs to, at ``target_scope`` or above."""
    principals = memberships(principal_id, groups or {})
    return [
        a for a in assignments
        if str(a["properties"].get("principalId", "")).lower() in principals
        and scope_contains(a["properties"]["scope"], target_scope)
    ]


def is_allowed(
    assignments: Iterable[Mapping[str, Any]],
    role_definitions: Mapping[str, Mapping[str, Any]],
    principal_id: str,
    operation: str,
    target_scope: str,
    *,
    data: bool = False,
    request_attributes: Mapping[str, Any] | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    groups: Mapping[str, Iterable[str]] | None = None,
    custom_wildcards: bool = True,
) -> bool:
    """Whether any assignment grants ``operation`` on ``target_scope`` (conditions honoured).

    ``role_definitions`` maps a role GUID (lower case) to its definition; ``groups`` maps a group's
    object id to its members', so assignments to a group count for them. ``custom_wildcards=False``:
    a custom role's wildcard actions do not count (ACR's own checks without ARM private link).
    """
    cond_input = ConditionInput(operation, request_attributes or {}, resource_attributes or {})
    for assignment in effective_assignments(assignments, principal_id, target_scope, groups=groups):
        props = assignment["properties"]
        role = role_definitions.get(guid_of(props["roleDefinitionId"]))
        if role is None or not role_grants(role, operation, data=data, custom_wildcards=custom_wildcards):
            continue
        condition = props.get("condition")
        if condition and not condition_allows(condition, cond_input):
            continue
        return True
    return False

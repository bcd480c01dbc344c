"""Azure RBAC as the product evaluates it: whether role assignments grant an operation at a scope.

- Operations match ``actions`` / ``dataActions`` patterns where ``*`` stands for any run of
  characters, case-insensitively; ``notActions`` / ``notDataActions`` take away what they match.
- An assignment applies at its scope and every scope below it, by whole path segment
  (``/resourceGroups/rg`` covers ``/resourceGroups/rg/providers/...``, not ``/resourceGroups/rg2``).
  A management-group scope is taken to apply: ARM lists such an assignment for a resource only
  when the resource's subscription is below that management group.
- ACR's own pull check (:data:`PULL_ACTION` and the repository data actions) honours a wildcard
  action of a *custom* role only in tenants with Azure Resource Manager private link ("In a tenant
  without an ARM private link, don't use wildcards", MicrosoftDocs azure-management-docs
  ``articles/container-registry/container-registry-rbac-custom-roles.md``, ms.date 2025-04-24, commit
  064a6550eb2d8f5a38ef9944e872f38ed7fed334); the pull functions take ``custom_wildcards`` for that.
  Built-in roles are as Azure defines them, and ARM's own checks (``registries/write``) honour
  wildcards everywhere.
- Conditions (``conditionVersion`` 2.0) are evaluated for the forms used with ACR repository
  permissions and role-assignment delegation: ``ActionMatches{'...'}``, ``SubOperationMatches{'...'}``,
  ``@Resource[...]``/``@Request[...]``/``@Principal[...]``/``@Environment[...]`` attributes compared
  with the ``String*`` and ``Guid*`` operators (``ForAnyOfAnyValues:``-style prefixes included),
  combined with ``AND``/``&&``, ``OR``/``||``, ``!``/``NOT`` and parentheses. A condition that
  cannot be read counts as not granting; :func:`condition_readable` tells callers so they can
  say it in evidence.

:func:`pull_right` and :func:`registry_write_right` decide what the gate asks of the deployer (the
principal that made the failed write) before it gives anyone access to a registry: that the
deployer could itself pull from it, or write it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remediation.model import Registry, RoleAssignment, RoleDefinition

PULL_ACTION = "Microsoft.ContainerRegistry/registries/pull/read"
REPOSITORY_CONTENT_READ = "Microsoft.ContainerRegistry/registries/repositories/content/read"
REPOSITORY_NAME_ATTRIBUTE = "Microsoft.ContainerRegistry/registries/repositories:name"
REGISTRY_WRITE = "Microsoft.ContainerRegistry/registries/write"


def action_matches(pattern: str, operation: str) -> bool:
    """Whether an ``actions``-style pattern matches ``operation`` (``*`` = any run, any case)."""
    regex = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.fullmatch(regex, operation, re.IGNORECASE) is not None


def scope_applies(assignment_scope: str, target_scope: str) -> bool:
    """Whether an assignment at ``assignment_scope`` applies at ``target_scope``."""
    assigned = [part.lower() for part in assignment_scope.split("/") if part]
    target = [part.lower() for part in target_scope.split("/") if part]
    if assigned[:2] == ["providers", "microsoft.management"]:
        return True
    return target[: len(assigned)] == assigned


def role_grant_reason(role: RoleDefinition, operation: str, *, data: bool = False,
                      custom_wildcards: bool = True) -> tuple[bool, str]:
    """``(grants, why)`` for one role definition and one operation, ignoring scope and conditions.

    ``custom_wildcards=False``: a custom role's ``*`` patterns do not count (ACR's pull without ARM
    private link); its explicit entries and every built-in role's patterns still do.
    """
    allows, denies = (role.data_actions, role.not_data_actions) if data else (role.actions, role.not_actions)
    kind, not_kind = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    matching = [p for p in allows if action_matches(p, operation)]
    if not matching:
        return False, f"role {role.role_name} has no {kind} entry matching {operation}"
    denied_by = next((p for p in denies if action_matches(p, operation)), None)
    if denied_by is not None:
        return False, f"role {role.role_name} allows {operation} through {matching[0]!r} but {not_kind} removes " \
            f"it through {denied_by!r}"
    ignored = not custom_wildcards and role.role_type == "CustomRole"
    allowed_by = next((p for p in matching if not (ignored and "*" in p)), None)
    if allowed_by is None:
        return False, (f"custom role {role.role_name} matches {operation} only through the wildcard {matching[0]!r}, "
                       "which ACR honours only in tenants with Azure Resource Manager private link")
    return True, f"role {role.role_name} allows {operation} through {allowed_by!r}"


@dataclass(frozen=True)
class Verdict:
    """Whether one assignment grants an operation, and why (for a finding's evidence)."""

    assignment: RoleAssignment
    role_name: str | None
    grants: bool
    reason: str
    decided: bool = True
    """False when the assignment applies but its role definition could not be read."""

    def as_evidence(self) -> dict[str, Any]:
        return {
            "id": self.assignment.id,
            "role": self.role_name or self.assignment.role_guid,
            "scope": self.assignment.scope,
            "condition": self.assignment.condition,
            "grants": self.grants,
            "reason": self.reason,
        }


def evaluate_assignment(
    assignment: RoleAssignment,
    roles: Mapping[str, RoleDefinition],
    operation: str,
    scope: str,
    *,
    data: bool = False,
    resource_attributes: Mapping[str, Any] | None = None,
    request_attributes: Mapping[str, Any] | None = None,
    custom_wildcards: bool = True,
) -> Verdict:
    """Whether ``assignment`` grants ``operation`` at ``scope``; ``roles`` maps role GUID → definition."""
    role = roles.get(assignment.role_guid)
    name = role.role_name if role else None
    if not scope_applies(assignment.scope, scope):
        return Verdict(assignment, name, False, f"assigned at {assignment.scope}, which is not {scope} or above it")
    if role is None:
        return Verdict(assignment, None, False, f"role definition {assignment.role_guid} could not be read",
                       decided=False)
    grants, why = role_grant_reason(role, operation, data=data, custom_wildcards=custom_wildcards)
    if not grants or not assignment.condition:
        return Verdict(assignment, name, grants, why)
    if not condition_readable(assignment.condition):
        return Verdict(assignment, name, False, f"{why}, but its condition could not be read, so it counts as not "
                                                "granting")
    if not condition_allows(assignment.condition, action=operation, resource_attributes=resource_attributes,
                            request_attributes=request_attributes):
        return Verdict(assignment, name, False, f"{why}, but its condition does not allow it for "
                                                f"{_describe(resource_attributes or request_attributes)}")
    described = _describe(resource_attributes or request_attributes)
    return Verdict(assignment, name, True, f"{why}, and its condition allows it for {described}")


def explain_assignments(
    assignments: Iterable[RoleAssignment],
    roles: Mapping[str, RoleDefinition],
    operation: str,
    scope: str,
    *,
    data: bool = False,
    resource_attributes: Mapping[str, Any] | None = None,
    request_attributes: Mapping[str, Any] | None = None,
    custom_wildcards: bool = True,
) -> list[Verdict]:
    """A :class:`Verdict` for each assignment, in order."""
    return [
        evaluate_assignment(a, roles, operation, scope, data=data, resource_attributes=resource_attributes,
                            request_attributes=request_attributes, custom_wildcards=custom_wildcards)
        for a in assignments
    ]


def explain_pull(assignments: Iterable[RoleAssignment], roles: Mapping[str, RoleDefinition], registry_id: str,
                 *, custom_wildcards: bool = False) -> list[Verdict]:
    """A :class:`Verdict` per assignment for :data:`PULL_ACTION` on a legacy-mode registry, as ACR
    decides it (a custom role's wildcard counts only with ``custom_wildcards``)."""
    return explain_assignments(assignments, roles, PULL_ACTION, registry_id, custom_wildcards=custom_wildcards)


def explain_repository_read(assignments: Iterable[RoleAssignment], roles: Mapping[str, RoleDefinition],
                            registry_id: str, repository: str, *, custom_wildcards: bool = False) -> list[Verdict]:
    """A :class:`Verdict` per assignment for pulling ``repository`` from an ABAC-mode registry.

    The repository's name is offered both as a request attribute, the form Azure documents and the
    portal, Bicep and Terraform write (``@Request[...repositories:name]``; MicrosoftDocs
    azure-management-docs, container-registry-rbac-abac-repository-permissions.md, 2025-05-01), and
    as a resource attribute (``@Resource[...]``), so a condition in either form is read.
    """
    attributes = {REPOSITORY_NAME_ATTRIBUTE: repository}
    return explain_assignments(assignments, roles, REPOSITORY_CONTENT_READ, registry_id, data=True,
                               resource_attributes=attributes, request_attributes=attributes,
                               custom_wildcards=custom_wildcards)


def repository_roles_excluding(assignments: Iterable[RoleAssignment], roles: Mapping[str, RoleDefinition],
                               registry_id: str, repository: str, *,
                               custom_wildcards: bool = False) -> list[RoleAssignment]:
    """The repository roles held at ``registry_id`` or above whose readable condition excludes ``repository``.

    Such a role grants :data:`REPOSITORY_CONTENT_READ` by its definition, but its condition (either
    attribute form, :func:`explain_repository_read`) does not allow it for this repository.
    """
    attributes = {REPOSITORY_NAME_ATTRIBUTE: repository}
    out = []
    for assignment in assignments:
        role = roles.get(assignment.role_guid)
        if role is None or not assignment.condition or not scope_applies(assignment.scope, registry_id):
            continue
        grants, _ = role_grant_reason(role, REPOSITORY_CONTENT_READ, data=True, custom_wildcards=custom_wildcards)
        if grants and condition_readable(assignment.condition) and not condition_allows(
                assignment.condition, action=REPOSITORY_CONTENT_READ, resource_attributes=attributes,
                request_attributes=attributes):
            out.append(assignment)
    return out


def age_seconds(assignment: RoleAssignment, now: datetime | None) -> float | None:
    """How long ago ``assignment`` was created (``createdOn``), or None when either time is unknown.

    A ``createdOn`` after ``now`` (clock skew between this host and ARM) counts as age 0.
    """
    if assignment.created_on is None or now is None:
        return None
    created = assignment.created_on if assignment.created_on.tzinfo else assignment.created_on.replace(tzinfo=UTC)
    return max(0.0, (now - created).total_seconds())


def still_propagating(assignment: RoleAssignment, now: datetime | None, minutes: int) -> bool:
    """Whether ``assignment`` is younger than the propagation window of ``minutes``.

    Azure RBAC: "it can take up to 10 minutes for changes to take effect" (MicrosoftDocs azure-docs
    ``articles/role-based-access-control/troubleshooting.md``, ms.date 2023-09-20, commit
    012ad308577ca7a4bcf96132a0e71b2819fa4a98). An assignment of unknown age is not waited for.
    """
    age = age_seconds(assignment, now)
    return age is not None and age < minutes * 60


def granting_assignments(
    assignments: Iterable[RoleAssignment],
    roles: Mapping[str, RoleDefinition],
    operation: str,
    scope: str,
    *,
    data: bool = False,
    resource_attributes: Mapping[str, Any] | None = None,
) -> list[RoleAssignment]:
    """The assignments that grant ``operation`` at ``scope`` (scope, role, notActions, condition)."""
    verdicts = explain_assignments(
        assignments, roles, operation, scope, data=data, resource_attributes=resource_attributes
    )
    return [v.assignment for v in verdicts if v.grants]


@dataclass(frozen=True)
class Right:
    """Whether a principal holds one right on a registry, and why (for a cause's evidence)."""

    principal_id: str
    operation: str
    scope: str
    holds: bool
    reason: str
    verdicts: tuple[Verdict, ...] = ()
    missing: tuple[str, ...] = ()
    """ABAC mode: the repositories it may not read."""

    def as_evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            "principalId": self.principal_id,
            "operation": self.operation,
            "scope": self.scope,
            "holds": self.holds,
            "reason": self.reason,
            "assignmentsConsidered": [v.as_evidence() for v in self.verdicts],
        }
        if not self.holds:
            evidence["lacks"] = self.operation
        if self.missing:
            evidence["repositories"] = list(self.missing)
        return evidence


def pull_right(principal_id: str, assignments: Iterable[RoleAssignment], roles: Mapping[str, RoleDefinition],
               registry: Registry, repositories: Sequence[str], *, custom_wildcards: bool = False) -> Right:
    """Whether ``principal_id`` can itself pull ``repositories`` from ``registry``.

    ``assignments`` are the principal's own and its groups' (``assignedTo``). A registry in
    ``LegacyRegistryPermissions`` mode wants :data:`PULL_ACTION` at the registry or above; one in
    ``AbacRepositoryPermissions`` mode honours only a repository role (:data:`REPOSITORY_CONTENT_READ`)
    whose condition covers every repository. An assignment whose role could not be read grants nothing;
    a custom role's wildcard counts only with ``custom_wildcards``.
    """
    assignments = list(assignments)
    if not registry.abac:
        return _right(principal_id, PULL_ACTION, registry,
                      explain_pull(assignments, roles, registry.id, custom_wildcards=custom_wildcards), ())
    if not repositories:
        return Right(principal_id, REPOSITORY_CONTENT_READ, registry.id, False,
                     f"which repositories of {registry.name} the group pulls is unknown")
    verdicts: list[Verdict] = []
    missing: list[str] = []
    for repository in repositories:
        found = explain_repository_read(assignments, roles, registry.id, repository, custom_wildcards=custom_wildcards)
        verdicts.extend(found)
        if not any(v.grants for v in found):
            missing.append(repository)
    return _right(principal_id, REPOSITORY_CONTENT_READ, registry, verdicts, tuple(missing))


def registry_write_right(principal_id: str, assignments: Iterable[RoleAssignment],
                         roles: Mapping[str, RoleDefinition], registry: Registry) -> Right:
    """Whether ``principal_id`` may write ``registry`` (:data:`REGISTRY_WRITE` at the registry or above)."""
    verdicts = explain_assignments(assignments, roles, REGISTRY_WRITE, registry.id)
    return _right(principal_id, REGISTRY_WRITE, registry, verdicts, ())


def _right(principal_id: str, operation: str, registry: Registry, verdicts: Sequence[Verdict],
           missing: tuple[str, ...]) -> Right:
    granting = next((v for v in verdicts if v.grants), None)
    if granting is not None and not missing:
        return Right(principal_id, operation, registry.id, True, f"through {granting.assignment.id}: "
                     f"{granting.reason}", tuple(verdicts))
    if missing:
        why = f"no role assignment grants {operation} on repositories {', '.join(missing)} of {registry.name}"
    else:
        why = f"no role assignment at {registry.name} or above grants {operation}"
    unread = sum(1 for v in verdicts if not v.decided)
    if unread:
        why += f" ({unread} whose role definition could not be read count as not granting)"
    return Right(principal_id, operation, registry.id, False, why, tuple(verdicts), missing)


def _describe(attributes: Mapping[str, Any] | None) -> str:
    if not attributes:
        return "a request without resource attributes"
    return ", ".join(f"{key.rsplit(':', 1)[-1]}={value!r}" for key, value in attributes.items())


# --- conditions ------------------------------------------------------------------------------


class ConditionError(ValueError):
    """A condition the evaluator cannot read (syntax, or an operator it does not know)."""


_TOKENS = re.compile(
    r"""\s*(?:
      (?P<lparen>\() | (?P<rparen>\)) | (?P<not>!|\bNOT\b) | (?P<and>&&|\bAND\b) | (?P<or>\|\||\bOR\b)
    | (?P<matcher>ActionMatches|SubOperationMatches)\s*\{\s*'(?P<pattern>[^']*)'\s*\}
    | @(?P<source>Resource|Request|Principal|Environment)\[(?P<attribute>[^\]]+)\]
    | (?P<operator>(?:For(?:Any|All)Of(?:Any|All)Values:)?[A-Za-z]+)
    | (?P<quoted>'[^']*')
    | \{(?P<values>[^}]*)\}
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_VALUE_IN_SET = re.compile(r"\s*(?:'(?P<quoted>[^']*)'|(?P<bare>[^,\s']+))\s*(?:,|$)")

_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "stringequals": lambda a, e: a == e,
    "stringequalsignorecase": lambda a, e: a.lower() == e.lower(),
    "stringstartswith": lambda a, e: a.startswith(e),
    "stringstartswithignorecase": lambda a, e: a.lower().startswith(e.lower()),
    "stringlike": lambda a, e: _like(e, a),
    "guidequals": lambda a, e: _guid(a) == _guid(e),
}
_NEGATED = {f"{base[:6]}not{base[6:]}" if base.startswith("string") else "guidnotequals": base
            for base in _STRING_OPERATORS}
_QUANTIFIERS = ("foranyofanyvalues", "forallofanyvalues", "foranyofallvalues", "forallofallvalues")


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any = None


@dataclass(frozen=True)
class _Node:
    kind: str  # "and", "or", "not", "action", "suboperation", "compare"
    children: tuple[_Node, ...] = ()
    pattern: str = ""
    source: str = ""
    attribute: str = ""
    quantifier: str = ""
    operator: str = ""
    values: tuple[str, ...] = ()


def condition_readable(text: str) -> bool:
    """Whether :func:`condition_allows` can read ``text`` (unreadable conditions never grant)."""
    try:
        _parse_condition(text)
    except ConditionError:
        return False
    return True


def condition_allows(
    text: str,
    *,
    action: str,
    resource_attributes: Mapping[str, Any] | None = None,
    request_attributes: Mapping[str, Any] | None = None,
) -> bool:
    """Evaluate a condition for a request performing ``action``; unreadable → False.

    Attributes are looked up by name, case-insensitively; a missing one satisfies only the
    negated operators (``StringNotEquals``, ...), as in Azure.
    """
    try:
        tree = _parse_condition(text)
    except ConditionError:
        return False
    sources = {"resource": resource_attributes or {}, "request": request_attributes or {}}
    return _evaluate(tree, action, sources)


def _parse_condition(text: str) -> _Node:
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("empty condition")
    parser = _Parser(_tokenize(text))
    tree = parser.expression()
    if parser.position != len(parser.tokens):
        raise ConditionError(f"unexpected {parser.tokens[parser.position].kind} after a complete expression")
    return tree


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, end = 0, len(text.rstrip())
    while position < end:
        match = _TOKENS.match(text, position)
        if match is None or match.end() == position:
            raise ConditionError(f"cannot read condition at {text[position:position + 30]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        if match.group("matcher"):
            tokens.append(_Token(match.group("matcher").lower(), match.group("pattern")))
        elif match.group("source"):
            tokens.append(_Token("attribute", (match.group("source").lower(), match.group("attribute").strip())))
        elif kind == "operator":
            tokens.append(_Token("operator", match.group("operator")))
        elif kind == "quoted":
            tokens.append(_Token("values", (match.group("quoted")[1:-1],)))
        elif kind == "values":
            tokens.append(_Token("values", _set_values(match.group("values"))))
        else:
            tokens.append(_Token(kind))
    return tokens


def _set_values(inner: str) -> tuple[str, ...]:
    values: list[str] = []
    position = 0
    while position < len(inner.strip()):
        match = _VALUE_IN_SET.match(inner, position)
        if match is None or match.end() == position:
            raise ConditionError(f"cannot read value set {{{inner}}}")
        values.append(match.group("quoted") if match.group("quoted") is not None else match.group("bare"))
        position = match.end()
    return tuple(values)


class _Parser:
    """Recursive descent: NOT binds tightest, then AND, then OR."""

    def __init__(self, tokens: Sequence[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position].kind if self.position < len(self.tokens) else None

    def _take(self, kind: str) -> _Token:
        if self._peek() != kind:
            raise ConditionError(f"expected {kind}, found {self._peek() or 'the end'}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self) -> _Node:
        nodes = [self._conjunction()]
        while self._peek() == "or":
            self._take("or")
            nodes.append(self._conjunction())
        return nodes[0] if len(nodes) == 1 else _Node("or", tuple(nodes))

    def _conjunction(self) -> _Node:
        nodes = [self._unary()]
        while self._peek() == "and":
            self._take("and")
            nodes.append(self._unary())
        return nodes[0] if len(nodes) == 1 else _Node("and", tuple(nodes))

    def _unary(self) -> _Node:
        kind = self._peek()
        if kind == "not":
            self._take("not")
            return _Node("not", (self._unary(),))
        if kind == "lparen":
            self._take("lparen")
            inner = self.expression()
            self._take("rparen")
            return inner
        if kind == "actionmatches":
            return _Node("action", pattern=self._take(kind).value)
        if kind == "suboperationmatches":
            return _Node("suboperation", pattern=self._take(kind).value)
        if kind == "attribute":
            source, attribute = self._take("attribute").value
            quantifier, _, operator = str(self._take("operator").value).lower().rpartition(":")
            if quantifier and quantifier not in _QUANTIFIERS:
                raise ConditionError(f"unknown quantifier {quantifier!r}")
            if operator not in _STRING_OPERATORS and operator not in _NEGATED:
                raise ConditionError(f"unsupported operator {operator!r}")
            values = self._take("values").value
            return _Node("compare", source=source, attribute=attribute, quantifier=quantifier,
                         operator=operator, values=values)
        raise ConditionError(f"expected an expression, found {kind or 'the end'}")


def _evaluate(node: _Node, action: str, sources: Mapping[str, Mapping[str, Any]]) -> bool:
    if node.kind == "or":
        return any(_evaluate(child, action, sources) for child in node.children)
    if node.kind == "and":
        return all(_evaluate(child, action, sources) for child in node.children)
    if node.kind == "not":
        return not _evaluate(node.children[0], action, sources)
    if node.kind == "action":
        return action_matches(node.pattern, action)
    if node.kind == "suboperation":
        # Pulls and the other requests evaluated here carry no sub-operation.
        return False
    return _compare(node, _attribute_values(sources.get(node.source, {}), node.attribute))


def _attribute_values(attributes: Mapping[str, Any], name: str) -> list[str]:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, (list, tuple, set, frozenset)) else [str(value)]
    return []


def _compare(node: _Node, actual: list[str]) -> bool:
    negated = node.operator in _NEGATED
    test = _STRING_OPERATORS[_NEGATED.get(node.operator, node.operator)]
    if not actual:
        return negated
    if node.quantifier in ("", "foranyofanyvalues"):
        result = any(test(a, e) for a in actual for e in node.values)
    elif node.quantifier == "forallofanyvalues":
        result = all(any(test(a, e) for e in node.values) for a in actual)
    elif node.quantifier == "foranyofallvalues":
        result = any(all(test(a, e) for e in node.values) for a in actual)
    else:
        result = all(test(a, e) for a in actual for e in node.values)
    return not result if negated else result


def _guid(value: str) -> str:
    # A role definition id may be given whole; its GUID is the last segment.
    return value.rstrip("/").rsplit("/", 1)[-1].strip("{}").lower()


def _like(pattern: str, value: str) -> bool:
    # StringLike: case-sensitive, ``*`` any run and ``?`` one character.
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None

"""Run the project's checks on what a file declares, plus preflight's own rule: the race.

Every registered check (:func:`remediation.checks.all_checks`) runs on each subject's context
(:mod:`remediation.preflight.context`); ``UNKNOWN`` is not a check and never reported here, as
nothing has failed. A finding whose inputs the file leaves unresolved is not reported: it becomes
a note (``could not decide …``), since a guess would be a false alarm or a false all-clear.

The race (:func:`race`): a container group pulls with identity I from declared registry R, a role
assignment granting I the pull on R is declared in the same input, and nothing orders the group
after it (``dependsOn``, a reference, ``depends_on``). Azure documents up to 10 minutes before an
assignment takes effect (MicrosoftDocs azure-docs ``articles/role-based-access-control/
troubleshooting.md``, commit 012ad308577ca7a4bcf96132a0e71b2819fa4a98), and without an ordering ARM
may create the group in parallel with, or before, the assignment: the pull then fails with
``InaccessibleImage`` on the first deploy. It reports ``ACR_PULL_PERMISSION_PROPAGATING``, the
cause the app finds when that happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remediation.actions.assign_role import ASSIGN_ROLE
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.checks import DOCUMENTS, Cause, all_checks, images_from, pull_subjects
from remediation.checks.acr_pull_permission_propagating import PULL_PERMISSION_PROPAGATING
from remediation.model import Action, Context, Finding, RoleAssignment
from remediation.permissions import explain_pull, explain_repository_read
from remediation.plan import FIXES, plan
from remediation.preflight import roles
from remediation.preflight.context import ASSIGNMENT_TYPE, REGISTRY_TYPE, Index, Subject, login_server, subjects
from remediation.preflight.model import Declared, Definitions, Location, ordered_after

_CREDENTIALS = "properties.imageRegistryCredentials"
_IMAGES = ("properties.containers", "properties.initContainers")
_GROUP_INPUTS: dict[str, tuple[str, ...]] = {
    "ACI_API_VERSION_TOO_OLD": ("apiVersion", _CREDENTIALS),
    "ACI_CREDENTIAL_AMBIGUOUS": (_CREDENTIALS,),
    "ACI_IDENTITY_NOT_ATTACHED": (_CREDENTIALS, "identity"),
    "ACI_SYSTEM_IDENTITY_UNSUPPORTED": (_CREDENTIALS, "identity"),
    "ACI_CREDENTIAL_SERVER_MISSING": (_CREDENTIALS, *_IMAGES),
}
"""What of the group's body each definition cause reads; every other cause reads the credentials,
the identity block and the images."""
_PULL_INPUTS = (_CREDENTIALS, "identity", *_IMAGES)
_REGISTRY_INPUTS: dict[str, tuple[str, ...]] = {
    "ACR_TRUSTED_SERVICES_DISABLED": ("properties.publicNetworkAccess", "properties.networkRuleSet",
                                      "properties.networkRuleBypassOptions"),
}
_REGISTRY_DEFAULT_INPUTS = ("properties.roleAssignmentMode", "properties.loginServer")


@dataclass(frozen=True)
class PreflightFinding:
    """What would fail, where it is declared, and what to change."""

    code: str
    summary: str
    location: Location
    resource: str
    """The :attr:`Declared.key` of the container group or private endpoint."""
    evidence: dict[str, Any]
    """The check's evidence, without its ``documents``."""
    fix: str
    documents: tuple[dict[str, Any], ...]
    symbol: str | None = None
    proposal: dict[str, Any] | None = None
    """The plan's corrected definition (``changes``, ``definition``, ...) where the project proposes one."""

    @property
    def help_uri(self) -> str:
        """The document the cause comes from."""
        return str(self.documents[0]["url"]) if self.documents else DOCUMENTS["troubleshooting guide"].url


@dataclass(frozen=True)
class Note:
    """Something preflight could not decide, or could not read, and where."""

    message: str
    location: Location


@dataclass(frozen=True)
class Outcome:
    findings: tuple[PreflightFinding, ...]
    notes: tuple[Note, ...]


def check_definitions(definitions: Definitions) -> Outcome:
    """Every finding and note for one file's declarations, offline."""
    # a loader's note names the file it is about; where that is the note's own file, once is enough
    notes = [Note(n.removeprefix(f"{definitions.path}: "), Location(definitions.path)) for n in definitions.notes]
    findings: list[PreflightFinding] = []
    found_subjects = subjects(definitions)
    for subject in found_subjects:
        found, subject_notes = check_subject(definitions, subject)
        findings.extend(found)
        notes.extend(subject_notes)
    findings.extend(race(definitions, found_subjects))
    return Outcome(tuple(findings), tuple(notes))


def check_subject(definitions: Definitions, subject: Subject,
                  context: Context | None = None) -> tuple[list[PreflightFinding], list[Note]]:
    """The registered checks' findings on ``subject`` (or on ``context``, a live one read for it),
    those whose inputs the file leaves unresolved turned into notes."""
    ctx = context or subject.context
    index = Index.of(definitions)
    where = subject.declared.location
    notes = [Note(n, where) for n in subject.notes]
    raw = [f for registered in all_checks() for f in registered.run(ctx)]
    kept: list[Finding] = []
    # every unresolved value a check reads is noted once, with the findings it kept from being decided
    blocked: dict[str, list[str]] = {u: [] for u in _read_by_checks(subject.declared, ctx, index)}
    for finding in raw:
        undecided = _undecided_by(finding, subject.declared, index)
        for entry in undecided:
            blocked.setdefault(entry, []).append(finding.code)
        if not undecided:
            kept.append(finding)
    name = subject.declared.name
    notes.extend(Note(f"{name}: could not decide {entry}" + (f" ({', '.join(dict.fromkeys(codes))} not decided)"
                                                             if codes else ""), where)
                 for entry, codes in blocked.items())
    actions = plan(kept, ctx)
    return [_preflight_finding(f, subject.declared, actions_for(f, actions)) for f in kept], notes


def actions_for(finding: Finding, actions: Iterable[Action]) -> list[Action]:
    """The planned actions that fix ``finding`` (a merged proposal names several causes)."""
    return [a for a in actions if finding.code in a.cause.split(",")]


def race(definitions: Definitions, found: Iterable[Subject]) -> list[PreflightFinding]:
    """The preflight rule: a granting role assignment declared beside the group it is for, with no
    ordering between them (see the module docstring)."""
    index = Index.of(definitions)
    after = ordered_after(definitions.resources)
    by_id = {index.resource_id(d).lower(): d for d in index.typed(ASSIGNMENT_TYPE)}
    cause = next(c for c in all_checks() if c.code == PULL_PERMISSION_PROPAGATING)
    out: list[PreflightFinding] = []
    for subject in found:
        ctx, group = subject.context, subject.declared
        for pull in pull_subjects(ctx):
            granting = _granting(ctx, pull.registry.id, pull.registry.login_server, pull.registry.abac,
                                 pull.assignments)
            declared = [by_id[a.id.lower()] for a in granting if a.id.lower() in by_id]
            if not declared or len(declared) < len(granting):
                continue  # a grant the file does not declare (or none): nothing to race
            if any(d.key in after.get(group.key, frozenset()) for d in declared):
                continue
            out.append(_race_finding(cause, group, pull.credential.identity or "", pull.registry.name,
                                     pull.registry.id, declared))
    return out


def _granting(ctx: Context, registry_id: str, server: str, abac: bool,
              assignments: tuple[RoleAssignment, ...]) -> list[RoleAssignment]:
    """The assignments that grant the pull, where every image pulled is granted; else none (a missing
    grant is the missing-permission checks' to report)."""
    if abac:
        repositories = sorted({i.repository for i in images_from(ctx, server)})
        verdicts = [explain_repository_read(assignments, ctx.role_definitions, registry_id, r,
                                            custom_wildcards=ctx.rbac.custom_wildcards) for r in repositories]
    else:
        verdicts = [explain_pull(assignments, ctx.role_definitions, registry_id,
                                 custom_wildcards=ctx.rbac.custom_wildcards)]
    granting = [[v.assignment for v in per if v.grants] for per in verdicts]
    if not granting or not all(granting):
        return []
    return list(dict.fromkeys(a for per in granting for a in per))


def _race_finding(cause: Cause, group: Declared, identity: str, registry: str, registry_id: str,
                  assignments: list[Declared]) -> PreflightFinding:
    names = ", ".join(a.symbol or a.name for a in assignments)
    finding = cause.finding(
        f"Container group {group.name} pulls from registry {registry} with {identity.rsplit('/', 1)[-1]}, whose "
        f"pull role ({names}) is declared in the same deployment, but nothing orders the group after it: the "
        "assignment may be too young to have taken effect when ACI pulls.",
        {
            "containerGroup": group.symbol or group.key,
            "roleAssignments": [{"resource": a.symbol or a.key, "file": a.location.file, "line": a.location.line}
                                for a in assignments],
            "identity": identity,
            "registryId": registry_id,
            "ordering": "no dependsOn (or reference) orders the container group after the role assignment",
        },
    )
    fix = (f"order container group {group.symbol or group.name} after {names}: dependsOn in ARM or Bicep, "
           "depends_on in Terraform")
    return _preflight_finding(finding, group, [], fix=fix)


def _preflight_finding(finding: Finding, declared: Declared, actions: list[Action], *,
                       fix: str | None = None) -> PreflightFinding:
    evidence = {k: v for k, v in finding.evidence.items() if k != "documents"}
    documents = tuple(dict(d) for d in finding.evidence.get("documents", ()))
    proposal = next((dict(a.params) for a in actions if a.kind == PROPOSE_DEFINITION.name), None)
    return PreflightFinding(
        code=finding.code,
        summary=finding.summary,
        location=declared.location,
        resource=declared.key,
        evidence=evidence,
        fix=fix or _fix_text(finding, actions, proposal),
        documents=documents,
        symbol=declared.symbol,
        proposal=proposal,
    )


def _fix_text(finding: Finding, actions: list[Action], proposal: Mapping[str, Any] | None) -> str:
    """The plan's proposal where the project has one, else the finding's own, else the cause's fix."""
    if finding.code == "ACI_API_VERSION_TOO_OLD":
        # the app redeploys with the current api-version; in a file, that is the version declared
        return (f"declare the container group with api-version {finding.evidence.get('proposedApiVersion')} "
                f"(registry credentials with an identity need {finding.evidence.get('minimumApiVersion')} or later)")
    if proposal is not None and proposal.get("changes"):
        return "; ".join(str(c) for c in proposal["changes"])
    details = [_declared_fix(a, finding) for a in actions if a.kind != REDEPLOY.name]
    if details:
        return "; ".join(details)
    if isinstance(finding.evidence.get("proposal"), str):
        return str(finding.evidence["proposal"])
    if isinstance(finding.evidence.get("suggestedCondition"), str):
        # a second assignment at the same scope is refused: the held one's condition is what to change
        return f"widen the condition of the assignment already declared to: {finding.evidence['suggestedCondition']}"
    registered = FIXES.get(finding.code)
    if registered is not None and finding.fixable:
        return registered.doc
    return next(c.doc for c in all_checks() if c.code == finding.code)


def _declared_fix(action: Action, finding: Finding) -> str:
    """A planned action as the change to make in the file: the app would write it to Azure after the
    failure; before the deploy, the definition declares it."""
    if action.kind != ASSIGN_ROLE.name:
        return f"in the definition: {action.detail}"
    guid = str(action.params.get("roleDefinitionId", "")).rstrip("/").rsplit("/", 1)[-1].lower()
    role = roles.BY_GUID.get(guid)
    condition = action.params.get("condition")
    return (f"declare a role assignment of {role.role_name if role else guid} to {finding.evidence.get('identity')} "
            f"with scope the registry {finding.evidence.get('registryId')}"
            + (f", with condition {condition}" if condition else "")
            + ", and order the container group after it (dependsOn)")


def _undecided_by(finding: Finding, group: Declared, index: Index) -> list[str]:
    """The unresolved values of the declarations ``finding`` was decided from (the group, and the
    registry its evidence names)."""
    prefixes = _GROUP_INPUTS.get(finding.code, _PULL_INPUTS)
    index_of = finding.evidence.get("credentialIndex")
    out = [u for u in group.unresolved if u.startswith(prefixes) and _same_credential(u, index_of)]
    server = str(finding.evidence.get("loginServer") or "").lower()
    registry_id = str(finding.evidence.get("registryId") or "").lower()
    for registry in index.typed(REGISTRY_TYPE):
        if login_server(registry) == server or index.resource_id(registry).lower() == registry_id:
            wanted = _REGISTRY_INPUTS.get(finding.code, _REGISTRY_DEFAULT_INPUTS)
            out.extend(f"{registry.key}: {u}" for u in registry.unresolved if u.startswith(wanted))
    return out


def _read_by_checks(group: Declared, ctx: Context, index: Index) -> list[str]:
    """The unresolved values of ``group``, and of the declared registries it pulls from, that some check reads."""
    inputs = tuple(dict.fromkeys(p for prefixes in (*_GROUP_INPUTS.values(), _PULL_INPUTS) for p in prefixes))
    out = [u for u in group.unresolved if u.startswith(inputs)]
    registry_inputs = tuple(dict.fromkeys((*_REGISTRY_DEFAULT_INPUTS, *(p for v in _REGISTRY_INPUTS.values()
                                                                        for p in v))))
    pulled = {r.id.lower() for r in ctx.registries.values() if r is not None}
    for registry in index.typed(REGISTRY_TYPE):
        if index.resource_id(registry).lower() in pulled:
            out.extend(f"{registry.key}: {u}" for u in registry.unresolved if u.startswith(registry_inputs))
    return out


def _same_credential(unresolved: str, index: Any) -> bool:
    """Whether an unresolved credential value may be the credential ``index`` (any, without an index)."""
    if not isinstance(index, int) or not unresolved.startswith(_CREDENTIALS + "["):
        return True
    return unresolved.startswith(f"{_CREDENTIALS}[{index}]")

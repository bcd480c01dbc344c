"""From what a file declares to the contexts the project's checks read (:class:`remediation.model.Context`).

One context per declared container group, and one per declared private endpoint of a registry
(checked as the write it would be). A context holds only what the same file declares:

- ``registries``: the declared registries whose login server the group's images or credentials
  name. A registry that is not declared has no key, so ``ACR_NOT_FOUND`` cannot fire offline.
- ``identities``: each credential identity that is a declared user-assigned identity, with its
  declared ``principalId`` (one that exists already) or :func:`~remediation.preflight.model.principal_of`
  as its principal id.
- ``assignments``: for each such principal, the declared role assignments naming it. A principal
  with none has an empty entry ("no role" is what the file says); a principal some assignment
  may name through an unresolved value has no entry (nothing is decided).
- ``role_definitions``: the built-in roles (:mod:`remediation.preflight.roles`) and the custom
  roles the file declares.

Nothing in a context was deployed yet, so no assignment has a ``createdOn`` and the
propagation check cannot fire on a context; the race between a new assignment and the group is
the preflight rule in :mod:`remediation.preflight.checks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remediation.checks import PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR
from remediation.definition import parse_definition
from remediation.errors import InputError
from remediation.model import (
    PRIVATE_ENDPOINT_WRITE,
    Context,
    ErrorInfo,
    FailureSignal,
    Identity,
    NetworkFacts,
    PrivateEndpoint,
    Registry,
    RoleAssignment,
    RoleDefinition,
    Subnet,
)
from remediation.permissions import scope_applies
from remediation.preflight import roles
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import RESOURCE_GROUP, SUBSCRIPTION, Declared, Definitions, principal_of
from remediation.resource_ids import parse_resource_id

GROUP_TYPE = "microsoft.containerinstance/containergroups"
GROUP_WRITE = "Microsoft.ContainerInstance/containerGroups/write"
REGISTRY_TYPE = "microsoft.containerregistry/registries"
IDENTITY_TYPE = "microsoft.managedidentity/userassignedidentities"
ASSIGNMENT_TYPE = "microsoft.authorization/roleassignments"
ROLE_DEFINITION_TYPE = "microsoft.authorization/roledefinitions"
VNET_TYPE = "microsoft.network/virtualnetworks"
SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
ENDPOINT_TYPE = "microsoft.network/privateendpoints"
ACR_LOGIN_DOMAIN = ".azurecr.io"
"""A registry's login server is its name, lower-cased, under ``azurecr.io`` in Azure's public cloud
("The login server name is in the format <registry-name>.azurecr.io (all lowercase)", MicrosoftDocs
azure-management-docs ``articles/container-registry/container-registry-get-started-portal.md``, read
2026-12-01); a file that sets ``properties.loginServer`` is taken at its word."""
_ASSIGNMENT_INPUTS = ("properties.principalId", "properties.roleDefinitionId", "properties.roleDefinitionName",
                      "properties.condition", "properties.scope", "scope")


@dataclass(frozen=True)
class Subject:
    """One thing the checks look at: a declared container group or private endpoint, its context,
    and what the file leaves undecided about it."""

    declared: Declared
    context: Context
    notes: tuple[str, ...] = ()
    """``could not decide …`` lines about this subject (unresolved values it depends on)."""


@dataclass(frozen=True)
class Index:
    """The declarations of one file, by what the checks look for."""

    by_key: Mapping[str, Declared]
    resources: tuple[Declared, ...]

    @classmethod
    def of(cls, definitions: Definitions) -> Index:
        return cls({r.key: r for r in definitions.resources}, definitions.resources)

    def typed(self, resource_type: str) -> list[Declared]:
        return [r for r in self.resources if r.type.lower() == resource_type]

    def resource_id(self, declared: Declared) -> str:
        return declared.resource_id or default_id(declared.type, declared.name)

    def scope_id(self, scope: str | None) -> str:
        """An extension resource's scope as an ARM id: a declared resource's id, the id named, or
        the deployment's resource group where none is given."""
        if not scope:
            return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        found = self.by_key.get(scope.lower())
        return self.resource_id(found) if found is not None else scope


def default_id(resource_type: str, name: str) -> str:
    """The ARM id of a resource of ``resource_type`` named ``name`` in the stand-in deployment scope
    (a child type's name holds its parents' names: ``vnet/subnet``)."""
    namespace, *types = resource_type.split("/")
    names = name.split("/")
    path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=False))
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{namespace}/{path}"


def login_server(registry: Declared) -> str:
    declared = _props(registry).get("loginServer")
    return (str(declared) if isinstance(declared, str) and declared else registry.name + ACR_LOGIN_DOMAIN).lower()


def subjects(definitions: Definitions) -> list[Subject]:
    """A :class:`Subject` for each declared container group and each private endpoint of a registry,
    in file order. Raises :class:`PreflightInputError` for a container group the project's definition
    reader refuses (an image reference that is not one)."""
    index = Index.of(definitions)
    out: list[Subject] = []
    for declared in definitions.resources:
        kind = declared.type.lower()
        if kind == GROUP_TYPE:
            out.append(group_subject(index, declared, definitions.path))
        elif kind == ENDPOINT_TYPE:
            subject = endpoint_subject(index, declared)
            if subject is not None:
                out.append(subject)
    return out


def group_subject(index: Index, group: Declared, path: str) -> Subject:
    """The context of one declared container group, read from the declarations around it."""
    notes: list[str] = []
    body = _without_unresolved_images(group)
    resource_id = index.resource_id(group)
    try:
        definition = parse_definition(resource_id, body, group.api_version, "replay")
    except InputError as exc:
        where = f"{path}:{group.location.line}" if group.location.line else path
        raise PreflightInputError(f"{where}: container group {group.name}: {exc}") from exc
    servers = {i.registry for i in definition.images} | {c.server for c in definition.credentials if c.server}
    registries = {login_server(r): r for r in index.typed(REGISTRY_TYPE)}
    declared_registries = {s: _registry(index, registries[s]) for s in sorted(servers) if s in registries}
    identities_by_id = {index.resource_id(i).lower(): i for i in index.typed(IDENTITY_TYPE)}
    identities: dict[str, Identity] = {}
    assignments: dict[str, tuple[RoleAssignment, ...]] = {}
    for credential in definition.credentials:
        found = identities_by_id.get((credential.identity or "").lower())
        if found is None:
            continue
        # an identity that exists already may carry its principal id; a new one is known by its stand-in
        known = _text(_props(found).get("principalId"))
        principal = known or principal_of(found.key)
        identities[(credential.identity or "").lower()] = Identity(index.resource_id(found), principal, None)
        names = {principal.lower(), principal_of(found.key).lower()}
        held, undecided = _assignments_of(index, names, [r.id for r in declared_registries.values()])
        if undecided:
            notes.extend(f"could not decide the pull rights of {found.name}: {u}" for u in undecided)
        else:
            assignments[principal.lower()] = held  # the checks look principals up in lower case
    signal = _signal(resource_id, group.name, body)
    context = Context(
        signal=signal,
        definition=definition,
        registries=dict(declared_registries),
        identities=identities,
        assignments=assignments,
        role_definitions=role_definitions(index),
        notes=tuple(notes),
    )
    return Subject(group, context, tuple(notes))


def endpoint_subject(index: Index, endpoint: Declared) -> Subject | None:
    """The context of a declared private endpoint of a registry, as the write it would be; None for an
    endpoint of anything else. The subnets known are the declared ones of the endpoint's network."""
    props = _props(endpoint)
    targets = tuple(
        str(_props(c).get("privateLinkServiceId"))
        for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections")
        for c in _list(props.get(key))
        if isinstance(c, Mapping) and _registry_target(index, _props(c))
    )
    subnet_ref = props.get("subnet")
    subnet_id = str(subnet_ref.get("id")) if isinstance(subnet_ref, Mapping) and subnet_ref.get("id") else None
    if not targets or subnet_id is None:
        return None
    resource_id = index.resource_id(endpoint)
    failed = PrivateEndpoint(resource_id, subnet_id, targets)
    subnets = tuple(s for s in declared_subnets(index) if s.vnet_id.lower() == failed.vnet_id.lower())
    network = NetworkFacts(failed_endpoint=failed, group_vnets=(failed.vnet_id,),
                           subnets={failed.vnet_id.lower(): subnets} if subnets else {})
    # Preflight asks what Azure would answer to this write; the check decides from the subnet's
    # delegations, the code only says which write it is.
    error = ErrorInfo(PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR, "preflight: the write has not been made",
                      "preflight")
    signal = _signal(resource_id, endpoint.name, None, operation=PRIVATE_ENDPOINT_WRITE)
    return Subject(endpoint, Context(signal=signal, error=error, network=network))


def declared_subnets(index: Index) -> list[Subnet]:
    """Every subnet the file declares, as a child resource or inside its virtual network, with its delegations."""
    found: dict[str, Subnet] = {}
    for vnet in index.typed(VNET_TYPE):
        vnet_id = index.resource_id(vnet)
        for entry in _list(_props(vnet).get("subnets")):
            if isinstance(entry, Mapping) and entry.get("name"):
                subnet_id = f"{vnet_id}/subnets/{entry['name']}"
                found[subnet_id.lower()] = Subnet(subnet_id, _delegations(_props(entry)))
    for subnet in index.typed(SUBNET_TYPE):
        subnet_id = index.resource_id(subnet)
        found[subnet_id.lower()] = Subnet(subnet_id, _delegations(_props(subnet)))
    return list(found.values())


def role_definitions(index: Index) -> dict[str, RoleDefinition]:
    """The built-in roles and the custom roles the file declares, by role GUID."""
    out = dict(roles.BY_GUID)
    for declared in index.typed(ROLE_DEFINITION_TYPE):
        props = _props(declared)
        permissions = [p for p in _list(props.get("permissions")) if isinstance(p, Mapping)]

        def joined(key: str, permissions: list[Mapping[str, Any]] = permissions) -> tuple[str, ...]:
            return tuple(str(a) for p in permissions for a in _list(p.get(key)))

        role = RoleDefinition(id=index.resource_id(declared), role_name=str(props.get("roleName") or declared.name),
                              actions=joined("actions"), not_actions=joined("notActions"),
                              data_actions=joined("dataActions"), not_data_actions=joined("notDataActions"),
                              role_type="CustomRole")
        out[role.guid] = role
    return out


def role_definition_id(declared: Declared) -> str | None:
    """A declared assignment's role as an id: its ``roleDefinitionId``, or the built-in role its
    ``roleDefinitionName`` names; None where neither resolves."""
    props = _props(declared)
    named = props.get("roleDefinitionId")
    if isinstance(named, str) and named:
        return named
    name = props.get("roleDefinitionName")
    role = roles.role_by_name(name) if isinstance(name, str) else None
    return role.id if role is not None else None


def assignment_of(index: Index, declared: Declared) -> RoleAssignment | None:
    """A declared role assignment as the checks read one; None where its principal or role does not resolve."""
    props = _props(declared)
    principal = props.get("principalId")
    role = role_definition_id(declared)
    if not isinstance(principal, str) or not principal or role is None:
        return None
    condition = props.get("condition")
    return RoleAssignment(id=index.resource_id(declared), scope=index.scope_id(declared.scope),
                          role_definition_id=role, principal_id=principal,
                          condition=str(condition) if isinstance(condition, str) and condition else None)


def _assignments_of(index: Index, principals: set[str],
                    registry_ids: Iterable[str]) -> tuple[tuple[RoleAssignment, ...], list[str]]:
    """The declared assignments of the principal (known by any of ``principals``, lower case), and why
    they cannot be decided: an assignment that may name it, or may apply at one of its registries,
    through a value the file leaves unresolved."""
    held: list[RoleAssignment] = []
    undecided: list[str] = []
    targets = list(registry_ids)
    for declared in index.typed(ASSIGNMENT_TYPE):
        assignment = assignment_of(index, declared)
        unresolved = [u for u in declared.unresolved if u.startswith(_ASSIGNMENT_INPUTS)]
        if assignment is not None and not unresolved:
            if assignment.principal_id.lower() in principals:
                held.append(assignment)
            continue
        maybe_ours = assignment is None or assignment.principal_id.lower() in principals
        maybe_here = assignment is None or any(scope_applies(assignment.scope, t) for t in targets)
        if maybe_ours and maybe_here:
            why = unresolved or [f"role assignment {declared.name} names no principal or role that resolves"]
            undecided.extend(f"{declared.key}: {u}" for u in why)
    return tuple(held), undecided


def _registry(index: Index, declared: Declared) -> Registry:
    props = _props(declared)
    rules = props.get("networkRuleSet")
    sku = declared.body.get("sku")
    registry_id = index.resource_id(declared)
    endpoints = tuple(
        index.resource_id(e) for e in index.typed(ENDPOINT_TYPE)
        if any(str(_props(c).get("privateLinkServiceId", "")).lower() == registry_id.lower()
               for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections")
               for c in _list(_props(e).get(key)) if isinstance(c, Mapping)))
    return Registry(
        id=registry_id,
        name=declared.name,
        login_server=login_server(declared),
        sku=str(sku.get("name")) if isinstance(sku, Mapping) and sku.get("name") else None,
        public_network_access=_text(props.get("publicNetworkAccess")),
        default_action=_text(rules.get("defaultAction")) if isinstance(rules, Mapping) else None,
        bypass=_text(props.get("networkRuleBypassOptions")),
        role_assignment_mode=_text(props.get("roleAssignmentMode")),
        private_endpoints=endpoints,
        tags={str(k): str(v) for k, v in (declared.body.get("tags") or {}).items()}
        if isinstance(declared.body.get("tags"), Mapping) else {},
    )


def _registry_target(index: Index, connection: Mapping[str, Any]) -> bool:
    """Whether a private link connection targets a registry's ``registry`` sub-resource."""
    target = str(connection.get("privateLinkServiceId") or "")
    groups = {str(g).lower() for g in _list(connection.get("groupIds"))}
    is_registry = "/providers/microsoft.containerregistry/registries/" in target.lower() or any(
        index.resource_id(r).lower() == target.lower() for r in index.typed(REGISTRY_TYPE))
    return is_registry and (not groups or "registry" in groups)


def _without_unresolved_images(group: Declared) -> dict[str, Any]:
    """The group's body without the containers whose image does not resolve (the checks note the
    unresolved value), since the project's definition reader requires an image for every container;
    a container with no image and nothing unresolved stays, for the reader to refuse."""
    body = dict(group.body)
    props = dict(_props(group))
    for key in ("initContainers", "containers"):
        containers = _list(props.get(key))
        kept = []
        for i, container in enumerate(containers):
            inner = container.get("properties") if isinstance(container, Mapping) else None
            image = f"properties.{key}[{i}].properties.image"
            if isinstance(inner, Mapping) and not inner.get("image") and any(
                    u.startswith(image) for u in group.unresolved):
                continue
            kept.append(container)
        if key in props:
            props[key] = kept
    body["properties"] = props
    return body


def _signal(resource_id: str, name: str, body: dict[str, Any] | None, *,
            operation: str = GROUP_WRITE) -> FailureSignal:
    try:
        where = parse_resource_id(resource_id)
        subscription, resource_group = where.subscription, where.resource_group or RESOURCE_GROUP
    except InputError:  # an id a loader could only partly resolve: the stand-in scope
        subscription, resource_group = SUBSCRIPTION, RESOURCE_GROUP
    return FailureSignal(resource_id=resource_id, subscription_id=subscription, resource_group=resource_group,
                         name=name, schema="cli", operation_name=operation, definition=body)


def _delegations(props: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(_props(d).get("serviceName") or "") for d in _list(props.get("delegations"))
                 if isinstance(d, Mapping))


def _props(declared: Declared | Mapping[str, Any]) -> Mapping[str, Any]:
    body = declared.body if isinstance(declared, Declared) else declared
    props = body.get("properties")
    return props if isinstance(props, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None

"""Terraform plans (``terraform show -json <planfile>``) read into :class:`Definitions`.

The plan format is Terraform's "JSON Output Format" (hashicorp/terraform
``website/docs/internals/json-format.mdx``, commit 024740126655c9ac8173ef42f3d2240db8e79563):
``format_version`` (major ``1``; reject another major), ``planned_values.root_module`` with
``resources`` and nested ``child_modules`` (the planned outcome, unknown values omitted),
``resource_changes`` (per instance: ``change.actions``, ``change.after_unknown`` marking what is
known only after apply), ``configuration.root_module`` (per resource ``expressions`` whose
``references`` name what an expression reads, and nested ``module_calls``) and ``prior_state``.
The configuration's ``depends_on`` is Terraform's ``jsonconfig`` field (hashicorp/terraform
``internal/command/jsonconfig/config.go``, commit 0ce040405cfeacc8c32759aa457ccc81c6b3c81f).

Each instance of a supported resource type (``count``/``for_each`` instances each on their own)
becomes a :class:`Declared` in ARM's REST shape; its Terraform address is the ``symbol`` and, as
plans carry no line numbers, its location has none. A value known only after apply is taken from
the configuration expression that sets it when that expression names exactly one declared
resource's attribute (``azurerm_user_assigned_identity.x.principal_id`` is that identity's
:func:`principal_of`, ``.id`` its resource id, a registry's ``.login_server`` its
``<name>.azurecr.io``); anything else is named in ``unresolved``. Ordering: every reference in a
resource's configuration and its ``depends_on``; what already exists (no ``create`` in its
actions) is ordered before what this plan creates.

The azurerm provider's ARM api-version is not in the plan, so a group declared with
``azurerm_container_group`` has no ``api_version`` (the api-version check does not decide);
``azapi_resource`` carries ``"<type>@<api-version>"`` and ARM's own body, and an
``azapi_update_resource`` body is merged into the declared resource it changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    Declared,
    Definitions,
    Location,
    key_of,
    principal_of,
)
from remediation.redaction import REDACTED

# ARM types of the azurerm resources read here. Attributes are mapped as the provider's own
# schema and expand functions do (hashicorp/terraform-provider-azurerm):
# - azurerm_container_group: internal/services/containers/container_group_resource.go, commit
#   026ed4fba65364e419564abc9b72100bafed9725 (identity type/identity_ids; image_registry_credential
#   server [Required], username, password, user_assigned_identity_id -> ImageRegistryCredential.Identity;
#   container/init_container image; subnet_ids; os_type; ip_address_type Public/Private/None; tags).
# - azurerm_container_registry: internal/services/containers/container_registry_resource.go, commit
#   82962863d8c4bba776ba27d2fe47b636ef06a3b7 (sku; public_network_access_enabled -> publicNetworkAccess
#   Enabled/Disabled; network_rule_bypass_option -> networkRuleBypassOptions, default AzureServices;
#   network_rule_set.default_action; login_server computed). That schema has no role-assignment
#   mode; ``role_assignment_mode`` is read when a plan has it (added in azurerm v4.81.0 according to
#   Azure/terraform-azurerm-avm-res-containerregistry-registry issue #195, 2026-07-27), else only an
#   azapi body declares ``properties.roleAssignmentMode``.
# - azurerm_role_assignment: internal/services/authorization/role_assignment_resource.go, commit
#   03ee9d8b46f077428306c4303f3c119cdd6e0fbc (scope; exactly one of role_definition_id and
#   role_definition_name; principal_id; principal_type; condition; condition_version).
# - azurerm_private_endpoint: website/docs/r/private_endpoint.html.markdown, commit
#   0045ff1637b1f246fb884f2a6f805b350e5696d3 (subnet_id; private_service_connection name,
#   is_manual_connection, private_connection_resource_id, subresource_names = group ids).
# - azurerm_subnet: website/docs/r/subnet.html.markdown, commit 0177a6ca6e8b84acc2d9d41d2bcfa3b7bd9bcc31
#   (virtual_network_name; address_prefixes; delegation.name, service_delegation.name/actions).
# - azurerm_virtual_network: website/docs/r/virtual_network.html.markdown, commit
#   0021d1ef5f428833426dd0723aebc74b75152068 (address_space; inline subnet blocks with name,
#   address_prefixes, delegation; the exported subnet id).
# - azapi_resource: Azure/terraform-provider-azapi docs/resources/resource.md, commit
#   0032257d144793c105afa33967c258a4119d33f5 (type "<resource-type>@<api-version>", name, parent_id,
#   location, identity type/identity_ids, body as an object; azapi 1.x took a jsonencode()d string).
CONTAINER_GROUP = "Microsoft.ContainerInstance/containerGroups"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
REGISTRY = "Microsoft.ContainerRegistry/registries"
PRIVATE_ENDPOINT = "Microsoft.Network/privateEndpoints"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
VIRTUAL_NETWORK = "Microsoft.Network/virtualNetworks"

AZURERM_TYPES = {
    "azurerm_container_group": CONTAINER_GROUP,
    "azurerm_user_assigned_identity": IDENTITY,
    "azurerm_role_assignment": ROLE_ASSIGNMENT,
    "azurerm_container_registry": REGISTRY,
    "azurerm_private_endpoint": PRIVATE_ENDPOINT,
    "azurerm_subnet": SUBNET,
    "azurerm_virtual_network": VIRTUAL_NETWORK,
}
AZAPI_RESOURCE = "azapi_resource"
AZAPI_UPDATE_RESOURCE = "azapi_update_resource"
RESOURCE_GROUP_TYPE = "azurerm_resource_group"
"""Not declared (nothing is checked on it), but its ``.id`` and ``.name`` resolve references."""

SUPPORTED_FORMAT_MAJORS = ("0", "1")
"""Terraform 0.12-1.0 wrote format_version 0.x, 1.1 and later write 1.x (json-format.mdx above)."""

REGISTRY_SUFFIX = ".azurecr.io"
"""An ACR login server is the lower-case registry name under azurecr.io in Azure's public cloud
(remediation/images.py ACR_SUFFIXES lists the sovereign clouds' suffixes, which a plan does not name)."""

_PRINCIPAL_ATTRIBUTES = ("principal_id", "identity.0.principal_id", "output.properties.principalId",
                         "output.identity.principalId")
_LOGIN_SERVER_ATTRIBUTES = ("login_server", "output.properties.loginServer")
_NOT_RESOURCES = ("var", "local", "module", "each", "count", "path", "self", "terraform", "data")
_REFERENCE = re.compile(r'^(?P<head>[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*)(?P<index>\[(?:"(?:[^"\\]|\\.)*"|\d+)\])?'
                        r'(?P<rest>.*)$')
_INDEX = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|\d+)\]')


@dataclass
class _Instance:
    """One resource instance of the plan, with what the loader needs of its change and configuration."""

    address: str
    config_address: str
    """The address without instance keys (``module.app.azurerm_x.y``), as the configuration names it."""
    config_module: str
    """The module part of :attr:`config_address`, ``""`` or ``"module.app."``."""
    type: str
    index: Any
    values: Mapping[str, Any]
    unknown: Any
    actions: tuple[str, ...]
    config: Mapping[str, Any]
    arm_type: str = ""
    name: str = ""
    resource_id: str | None = None
    api_version: str | None = None
    scope: str | None = None
    key: str = ""
    named: bool = True
    """Whether the name is known before apply (else the address stands in for it, see ``unresolved``)."""
    unresolved: list[str] = field(default_factory=list)


@dataclass
class _Collected:
    """A body being built: what could not be resolved, and the extra declarations it brings."""

    unresolved: list[str] = field(default_factory=list)
    extra: list[Declared] = field(default_factory=list)


def load(path: Path, parameters: Path | None = None) -> Definitions:
    """Read a ``terraform show -json`` plan. Raises :class:`PreflightInputError` (one line naming the
    file) for a file that is not JSON or not a Terraform plan, or a plan format this loader does not know.

    ``parameters`` is not used: a plan carries its variables already (noted when one is given).
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PreflightInputError(f"{path}: cannot read the file ({exc.__class__.__name__})") from exc
    except json.JSONDecodeError as exc:
        raise PreflightInputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(document, dict) or "format_version" not in document or not isinstance(
            document.get("planned_values"), dict):
        raise PreflightInputError(f"{path}: not a Terraform plan (terraform show -json <planfile> output with "
                                  "format_version and planned_values)")
    version = str(document["format_version"])
    if version.split(".", 1)[0] not in SUPPORTED_FORMAT_MAJORS:
        raise PreflightInputError(f"{path}: Terraform plan format_version {version} is not supported "
                                  f"(major versions {', '.join(SUPPORTED_FORMAT_MAJORS)})")
    plan = _Plan(document, str(path))
    resources = tuple(plan.declared())
    notes = list(plan.notes)
    if parameters is not None:
        notes.append(f"parameters file {parameters} not used: a Terraform plan carries its variables")
    return Definitions(path=str(path), kind="terraform-plan", resources=resources, notes=tuple(notes))


class _Plan:
    """A plan's managed resource instances, each with its change and configuration, and what their
    references resolve to."""

    def __init__(self, document: Mapping[str, Any], file: str) -> None:
        self.file = file
        self.notes: list[str] = []
        self.subscription = _provider_subscription(document.get("configuration")) or SUBSCRIPTION
        configs = dict(_config_resources(_object(_object(document.get("configuration")).get("root_module")), ""))
        existing = {str(r.get("address")) for r in _module_resources(
            _object(_object(_object(document.get("prior_state")).get("values")).get("root_module")))}
        if isinstance(document.get("resource_changes"), list):
            # every instance's change: its actions, its planned values ("after") and what is unknown in them
            entries = [(c, _object(c.get("change"))) for c in _objects(document["resource_changes"])]
        else:
            entries = [(r, {"after": r.get("values")}) for r in _module_resources(
                _object(document["planned_values"].get("root_module")))]
        self.instances: list[_Instance] = []
        for resource, change in entries:
            if resource.get("mode", "managed") != "managed":
                continue
            address = str(resource.get("address", ""))
            actions = tuple(str(a) for a in change.get("actions") or ()) or (
                ("no-op",) if address in existing else ("create",))
            if actions == ("delete",):
                continue  # a delete-only change (a deposed object's too) is not deployed
            config_address = _INDEX.sub("", address)
            module = config_address.rsplit(".", 2)[0] + "." if config_address.count(".") > 1 else ""
            self.instances.append(_Instance(
                address=address, config_address=config_address, config_module=module,
                type=str(resource.get("type", "")), index=resource.get("index"),
                values=_object(change.get("after")), unknown=change.get("after_unknown") or {},
                actions=actions, config=configs.get(config_address, {})))
        self.by_config: dict[str, list[_Instance]] = {}
        for inst in self.instances:
            self.by_config.setdefault(inst.config_address, []).append(inst)
        self._identified: set[str] = set()
        self._identifying: set[str] = set()
        for inst in self.instances:
            self.identify(inst)
        self.by_id = {inst.resource_id.lower(): inst.key for inst in self.instances
                      if inst.key and inst.resource_id}

    # -- identity: type, name, resource id and key, resolved on demand (a parent first) --

    def identify(self, inst: _Instance) -> None:
        if inst.address in self._identified or inst.address in self._identifying:
            return
        self._identifying.add(inst.address)
        try:
            if inst.type in AZURERM_TYPES or inst.type == RESOURCE_GROUP_TYPE:
                self._identify_azurerm(inst)
            elif inst.type == AZAPI_RESOURCE:
                self._identify_azapi(inst)
        finally:
            self._identifying.discard(inst.address)
            self._identified.add(inst.address)

    def _identify_azurerm(self, inst: _Instance) -> None:
        v = inst.values
        name = _text(v.get("name")) or self._reference_value(inst, ("name",), "name") or self._unnamed(inst)
        if inst.type == RESOURCE_GROUP_TYPE:
            inst.name = name
            inst.resource_id = _text(v.get("id")) or f"/subscriptions/{self.subscription}/resourceGroups/{name}"
            return
        inst.arm_type = AZURERM_TYPES[inst.type]
        group = _text(v.get("resource_group_name")) or self._reference_value(
            inst, ("resource_group_name",), "name") or RESOURCE_GROUP
        prefix = f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers"
        if inst.type == "azurerm_subnet":
            vnet = _text(v.get("virtual_network_name")) or self._reference_value(
                inst, ("virtual_network_name",), "name") or self._stand_in(inst, "virtual_network_name")
            inst.name = f"{vnet}/{name}"
            built: str | None = f"{prefix}/Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}"
        elif inst.type == "azurerm_role_assignment":
            inst.name = name
            scope = _text(v.get("scope")) or self._reference_value(inst, ("scope",), "id")
            built = f"{scope}/providers/{ROLE_ASSIGNMENT}/{name}" if scope and _text(v.get("name")) else None
        else:
            inst.name = name
            built = f"{prefix}/{inst.arm_type}/{name}"
        inst.resource_id = _text(v.get("id")) or built
        inst.key = key_of(inst.arm_type, inst.name)

    def _identify_azapi(self, inst: _Instance) -> None:
        v = inst.values
        arm_type, _, api_version = str(v.get("type") or "").partition("@")
        if not arm_type:
            return
        inst.arm_type = arm_type
        inst.api_version = api_version or None
        name = _text(v.get("name")) or self._reference_value(inst, ("name",), "name") or self._unnamed(inst)
        parent = _text(v.get("parent_id")) or self._reference_value(inst, ("parent_id",), "id")
        levels = len(arm_type.split("/")) - 2
        if parent is None:
            inst.name = name
            inst.resource_id = _text(v.get("id"))
        elif levels > 0:
            # a child resource: its full name starts with its parents' names, its id extends the parent's
            parts = parent.strip("/").split("/")
            inst.name = "/".join([*parts[len(parts) - 2 * levels + 1::2], name])
            inst.resource_id = f"{parent}/{arm_type.rsplit('/', 1)[-1]}/{name}"
        else:
            inst.name = name
            inst.resource_id = f"{parent}/providers/{arm_type}/{name}"
            if "/providers/" in parent:
                inst.scope = parent  # an extension resource (a role assignment on a registry)
        inst.resource_id = _text(v.get("id")) or inst.resource_id
        inst.key = key_of(arm_type, inst.name)

    def _unnamed(self, inst: _Instance) -> str:
        """The address, standing in for a name known only after apply (a role assignment's GUID)."""
        inst.named = False
        if inst.type == "azurerm_role_assignment":  # its GUID name matters to nothing checked
            return inst.address
        return self._stand_in(inst, "name")

    def _stand_in(self, inst: _Instance, argument: str) -> str:
        """The address, standing in for an argument of the resource's id known only after apply, which
        is named in ``unresolved``."""
        inst.unresolved.append(f"{argument}: {self.expression(inst, (argument,))}")
        return inst.address

    # -- references --

    def targets(self, inst: _Instance, reference: str) -> tuple[list[_Instance], str] | None:
        """The instances a reference names (one, or every instance of a counted resource) and the
        attribute it reads (``"identity.0.principal_id"``); None for a variable, local, data source..."""
        match = _REFERENCE.match(reference)
        if match is None or match.group("head").split(".", 1)[0] in _NOT_RESOURCES:
            return None
        candidates = self.by_config.get(inst.config_module + match.group("head"), [])
        index = match.group("index")
        if index is not None:
            wanted = json.loads(index[1:-1])
            candidates = [c for c in candidates if c.index == wanted]
        attribute = re.sub(r"\[(\d+)\]", r".\1", match.group("rest")).lstrip(".")
        return candidates, attribute

    def target(self, inst: _Instance, reference: str) -> tuple[_Instance, str] | None:
        """The one instance a reference reads from: the only one, or the one with the referring
        instance's own index (``x[count.index]``)."""
        found = self.targets(inst, reference)
        if found is None:
            return None
        candidates, attribute = found
        if len(candidates) > 1:
            candidates = [c for c in candidates if inst.index is not None and c.index == inst.index]
        return (candidates[0], attribute) if len(candidates) == 1 else None

    def value_of(self, target: _Instance, attribute: str) -> str | None:
        """What ``target.<attribute>`` will be, where it can be known before apply."""
        self.identify(target)
        if attribute == "id":
            return target.resource_id
        if attribute == "name":
            return target.name.rsplit("/", 1)[-1] if target.name and target.named else None
        if attribute in _PRINCIPAL_ATTRIBUTES and target.key and (
                attribute != "principal_id" or target.arm_type == IDENTITY):
            # a resource the plan only reads or keeps has a known principal, so its references are known
            return principal_of(target.key)
        if attribute in _LOGIN_SERVER_ATTRIBUTES and target.arm_type == REGISTRY:
            return _login_server(target)
        return _text(_at(target.values, tuple(int(p) if p.isdigit() else p for p in attribute.split("."))))

    def references(self, inst: _Instance, path: tuple[Any, ...]) -> list[str]:
        """The references of the configuration expression that sets ``path`` of ``inst``."""
        node: Any = inst.config.get("expressions") or {}
        for step in path:
            if isinstance(node, list):
                node = node[step] if isinstance(step, int) and step < len(node) else None
            elif isinstance(node, Mapping):
                node = node.get(step)
            else:
                node = None
        return _all_references(node)

    def expression(self, inst: _Instance, path: tuple[Any, ...]) -> str:
        """How the output names an expression it could not resolve: its references."""
        return " ".join(self.references(inst, path)) or "known after apply"

    def resolved(self, inst: _Instance, references: list[str], path: tuple[Any, ...] = ()
                 ) -> tuple[list[tuple[_Instance, str]], list[str]]:
        """Each declared resource attribute the references read (the most specific per resource), and
        the references that name nothing resolvable (variables, locals, module outputs, data sources).

        A reference through a computed index (``x[count.index].id``) names only the resource
        (Terraform stops the traversal at the index), so the attribute is the one ``path`` takes:
        a ``principal_id`` reads a principal, a ``server`` a login server, an ``*_id`` an id."""
        found: dict[str, tuple[_Instance, str]] = {}
        others = []
        for reference in sorted(references, key=len, reverse=True):
            hit = self.target(inst, reference)
            if hit is None:
                if reference.split(".", 1)[0] not in ("count", "each") and not any(
                        r.startswith(reference) and r != reference for r in references):
                    others.append(reference)
                continue
            target, attribute = hit
            attribute = attribute or _attribute_for(path, target)
            if attribute and target.address not in found:
                found[target.address] = (target, attribute)
        return list(found.values()), others

    def _reference_value(self, inst: _Instance, path: tuple[Any, ...], attribute: str) -> str | None:
        """The value of a reference to exactly one declared resource's ``attribute`` at ``path``."""
        hits, _ = self.resolved(inst, self.references(inst, path))
        values = [self.value_of(t, attribute) for t, a in hits if a == attribute]
        return values[0] if len(values) == 1 else None

    def scalar(self, inst: _Instance, path: tuple[Any, ...], where: str, collected: _Collected) -> Any:
        """The value at ``path``: known, or resolved from the one declared attribute its expression
        reads; None (and ``where`` named as unresolved) when it is known only after apply."""
        known = _at(inst.values, path)
        if known is not None or _at(inst.unknown, path) is not True:
            return known
        references = self.references(inst, path)
        hits, others = self.resolved(inst, references, path)
        if len(hits) == 1 and not others:
            value = self.value_of(*hits[0])
            if value is not None:
                return value
        collected.unresolved.append(f"{where}: {' '.join(references) or 'known after apply'}")
        return None

    def listed(self, inst: _Instance, path: tuple[Any, ...], where: str, collected: _Collected) -> list[Any]:
        """A list of ids at ``path``: the known items, plus the ids of the declared resources its
        expression reads where some are known only after apply."""
        known = [item for item in _at(inst.values, path) or [] if item is not None]
        unknown = _at(inst.unknown, path)
        if unknown is not True and not (isinstance(unknown, list) and True in unknown):
            return known
        references = self.references(inst, path)
        hits, others = self.resolved(inst, references, path)
        values = [value for value in (self.value_of(t, a) for t, a in hits) if value is not None]
        known += [value for value in dict.fromkeys(values) if value not in known]
        if others or len(values) < len(hits) or not hits:
            collected.unresolved.append(f"{where}: {' '.join(references) or 'known after apply'}")
        return known

    # -- ordering --

    def ordered_after(self, inst: _Instance) -> set[str]:
        """The keys ``inst`` is deployed after: what its configuration references, its ``depends_on``
        (a module's every resource for ``module.x``), and, for a create, everything that exists already."""
        references = _all_references(inst.config.get("expressions"))
        for meta in ("count_expression", "for_each_expression"):
            references += _all_references(inst.config.get(meta))
        keys: set[str] = set()
        for reference in references:
            found = self.targets(inst, reference)
            keys |= {t.key for t in found[0]} if found else set()
        for dependency in inst.config.get("depends_on") or ():
            dependency = str(dependency)
            if dependency.startswith("module."):
                inside = inst.config_module + _INDEX.sub("", dependency) + "."
                keys |= {i.key for i in self.instances if i.config_address.startswith(inside)}
            else:
                keys |= {t.key for t in self.by_config.get(inst.config_module + _INDEX.sub("", dependency), [])}
        if "create" in inst.actions:
            # what exists already was deployed before anything this plan creates
            keys |= {i.key for i in self.instances if "create" not in i.actions}
        keys.discard(inst.key)
        keys.discard("")
        return keys

    # -- declarations --

    def declared(self) -> Iterator[Declared]:
        """Each supported instance in ARM's shape, then the inline subnets it declares."""
        builders = {
            "azurerm_container_group": self._container_group,
            "azurerm_user_assigned_identity": self._identity,
            "azurerm_role_assignment": self._role_assignment,
            "azurerm_container_registry": self._registry,
            "azurerm_private_endpoint": self._private_endpoint,
            "azurerm_subnet": self._subnet,
            "azurerm_virtual_network": self._virtual_network,
            AZAPI_RESOURCE: self._azapi,
        }
        patches = self._patches()
        for inst in self.instances:
            build = builders.get(inst.type)
            if build is None or not inst.key:
                continue
            collected = _Collected()
            body = build(inst, collected)
            for patch in patches.get(inst.key, []):
                body = _merged(body, self._azapi_body(patch, collected))
            scope = inst.scope
            if inst.type == "azurerm_role_assignment":
                scope = self.scalar(inst, ("scope",), "scope", collected)
            if scope is not None:
                scope = self.by_id.get(scope.lower(), scope)
            yield Declared(
                key=inst.key, type=inst.arm_type, name=inst.name, location=Location(self.file, None),
                resource_id=inst.resource_id, api_version=inst.api_version, body=body, scope=scope,
                depends_on=frozenset(self.ordered_after(inst)),
                unresolved=tuple(inst.unresolved + collected.unresolved),
                symbol=inst.address)
            yield from collected.extra

    def _patches(self) -> dict[str, list[_Instance]]:
        """The ``azapi_update_resource`` instances by the key of the declared resource each changes (its
        ``resource_id``, or ``parent_id``, ``type`` and ``name``): their body is merged into it, the way
        azapi changes properties of a resource another provider manages (Azure/terraform-provider-azapi
        ``docs/resources/update_resource.md``, commit 0499042f128848267ffe3211e18eb2974e8aee01). An older
        azurerm declares a registry's role-assignment mode only this way."""
        patches: dict[str, list[_Instance]] = {}
        for inst in self.instances:
            if inst.type != AZAPI_UPDATE_RESOURCE:
                continue
            target = _text(inst.values.get("resource_id")) or self._reference_value(inst, ("resource_id",), "id")
            parent = _text(inst.values.get("parent_id")) or self._reference_value(inst, ("parent_id",), "id")
            arm_type = str(inst.values.get("type") or "").partition("@")[0]
            if target is None and parent and _text(inst.values.get("name")) and arm_type:
                target = f"{parent}/providers/{arm_type}/{inst.values['name']}"
            key = self.by_id.get(target.lower()) if target else None
            if key is None:
                self.notes.append(f"{inst.address} changes {target or 'a resource known only after apply'}, which "
                                  "this plan does not declare")
                continue
            patches.setdefault(key, []).append(inst)
        return patches

    def _common(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if _text(inst.values.get("location")):
            body["location"] = inst.values["location"]
        if inst.values.get("tags"):
            body["tags"] = dict(inst.values["tags"])
        identity = _first(inst.values.get("identity"))
        if identity is not None:
            body["identity"] = {"type": identity.get("type")}
            ids = self.listed(inst, ("identity", 0, "identity_ids"), "identity.userAssignedIdentities", collected)
            if ids:
                body["identity"]["userAssignedIdentities"] = {str(i): {} for i in ids}
        return body

    def _container_group(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        v = inst.values
        body = self._common(inst, collected)
        props: dict[str, Any] = {}
        if v.get("os_type"):
            props["osType"] = v["os_type"]
        if v.get("ip_address_type") in ("Public", "Private"):
            props["ipAddress"] = {"type": v["ip_address_type"]}
        for tf_name, arm_name in (("init_container", "initContainers"), ("container", "containers")):
            containers = []
            for i, container in enumerate(_objects(v.get(tf_name))):
                entry: dict[str, Any] = {"name": container.get("name"), "properties": {}}
                image = _text(container.get("image"))
                if image is None:
                    # a templated image ("${...login_server}/app") cannot be rebuilt from its references
                    collected.unresolved.append(f"properties.{arm_name}[{i}].properties.image: "
                                                f"{self.expression(inst, (tf_name, i, 'image'))}")
                else:
                    entry["properties"]["image"] = image
                containers.append(entry)
            if containers:
                props[arm_name] = containers
        credentials = []
        for i, credential in enumerate(_objects(v.get("image_registry_credential"))):
            where = f"properties.imageRegistryCredentials[{i}]"
            entry = {}
            for tf_name, arm_name in (("server", "server"), ("username", "username"),
                                      ("user_assigned_identity_id", "identity")):
                value = self.scalar(inst, ("image_registry_credential", i, tf_name), f"{where}.{arm_name}", collected)
                if value:
                    entry[arm_name] = value
            if credential.get("password") or _at(inst.unknown, ("image_registry_credential", i, "password")) is True:
                entry["password"] = REDACTED  # only whether one is set matters, never the secret
            credentials.append(entry)
        if credentials:
            props["imageRegistryCredentials"] = credentials
        subnets = self.listed(inst, ("subnet_ids",), "properties.subnetIds", collected)
        if subnets:
            props["subnetIds"] = [{"id": s} for s in subnets]
        body["properties"] = props
        return body

    def _identity(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        body = self._common(inst, collected)
        known = {arm: inst.values[tf] for tf, arm in (("principal_id", "principalId"), ("client_id", "clientId"),
                                                        ("tenant_id", "tenantId")) if _text(inst.values.get(tf))}
        if known:
            body["properties"] = known
        return body

    def _role_assignment(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        v = inst.values
        props: dict[str, Any] = {}
        if _text(v.get("role_definition_id")):
            props["roleDefinitionId"] = v["role_definition_id"]
        elif _text(v.get("role_definition_name")):
            props["roleDefinitionName"] = v["role_definition_name"]  # resolved by the checks' role table
        else:
            self.scalar(inst, ("role_definition_id",), "properties.roleDefinitionId", collected)
        principal = self.scalar(inst, ("principal_id",), "properties.principalId", collected)
        if principal:
            props["principalId"] = principal
        for tf_name, arm_name in (("principal_type", "principalType"), ("condition", "condition"),
                                  ("condition_version", "conditionVersion")):
            if _text(v.get(tf_name)):
                props[arm_name] = v[tf_name]
        return {"properties": props}

    def _registry(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        v = inst.values
        body = self._common(inst, collected)
        if _text(v.get("sku")):
            body["sku"] = {"name": v["sku"]}
        props: dict[str, Any] = {}
        login_server = _text(v.get("login_server")) or _login_server(inst)
        if login_server:
            props["loginServer"] = login_server
        if isinstance(v.get("public_network_access_enabled"), bool):
            props["publicNetworkAccess"] = "Enabled" if v["public_network_access_enabled"] else "Disabled"
        if _text(v.get("network_rule_bypass_option")):
            props["networkRuleBypassOptions"] = v["network_rule_bypass_option"]
        rules = _first(v.get("network_rule_set"))
        if rules is not None:
            props["networkRuleSet"] = {"defaultAction": rules.get("default_action"), "ipRules": [
                {"action": r.get("action"), "value": r.get("ip_range")} for r in _objects(rules.get("ip_rule"))]}
        if _text(v.get("role_assignment_mode")):
            props["roleAssignmentMode"] = v["role_assignment_mode"]
        for tf_name, arm_name in (("admin_enabled", "adminUserEnabled"), ("anonymous_pull_enabled",
                                                                          "anonymousPullEnabled")):
            if isinstance(v.get(tf_name), bool):
                props[arm_name] = v[tf_name]
        body["properties"] = props
        return body

    def _private_endpoint(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        body = self._common(inst, collected)
        props: dict[str, Any] = {}
        subnet = self.scalar(inst, ("subnet_id",), "properties.subnet.id", collected)
        if subnet:
            props["subnet"] = {"id": subnet}
        for i, connection in enumerate(_objects(inst.values.get("private_service_connection"))):
            target = self.scalar(inst, ("private_service_connection", i, "private_connection_resource_id"),
                                 f"properties.privateLinkServiceConnections[{i}].properties.privateLinkServiceId",
                                 collected)
            properties: dict[str, Any] = {"groupIds": list(connection.get("subresource_names") or [])}
            if target:
                properties["privateLinkServiceId"] = target
            entry = {"name": connection.get("name"), "properties": properties}
            manual = connection.get("is_manual_connection") is True
            props.setdefault("manualPrivateLinkServiceConnections" if manual else "privateLinkServiceConnections",
                             []).append(entry)
        body["properties"] = props
        return body

    def _subnet(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        return {"properties": _subnet_properties(inst.values)}

    def _virtual_network(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        body = self._common(inst, collected)
        subnets = []
        for subnet in _objects(inst.values.get("subnet")):
            name = str(subnet.get("name"))
            subnet_id = _text(subnet.get("id")) or f"{inst.resource_id}/subnets/{name}"
            properties = _subnet_properties(subnet)
            subnets.append({"name": name, "id": subnet_id, "properties": properties})
            # an inline subnet is declared on its own too, as azurerm_subnet declares one
            collected.extra.append(Declared(
                key=key_of(SUBNET, f"{inst.name}/{name}"), type=SUBNET, name=f"{inst.name}/{name}",
                location=Location(self.file, None), resource_id=subnet_id, body={"properties": properties},
                depends_on=frozenset({inst.key}), symbol=f'{inst.address}.subnet["{name}"]'))
        body["properties"] = {"addressSpace": {"addressPrefixes": list(inst.values.get("address_space") or [])}}
        if subnets:
            body["properties"]["subnets"] = subnets
        return body

    def _azapi(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        body = self._azapi_body(inst, collected)
        common = self._common(inst, collected)
        body.update({k: v for k, v in common.items() if k != "tags" or "tags" not in body})
        return body

    def _azapi_body(self, inst: _Instance, collected: _Collected) -> dict[str, Any]:
        """An azapi ``body``: an object (azapi 2.x) or a ``jsonencode()``d string (1.x), with its
        leaves known only after apply filled where they can be."""
        raw = inst.values.get("body")
        unknown = _object(inst.unknown).get("body")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                collected.unresolved.append("body: not a JSON object (jsonencode)")
                raw = {}
        elif raw is None and unknown is True:
            collected.unresolved.append(f"body: {self.expression(inst, ('body',))}")
        body = dict(raw) if isinstance(raw, dict) else {}
        if unknown is not True and unknown:
            self._fill_unknown(inst, body, unknown, (), collected)
        return body

    def _fill_unknown(self, inst: _Instance, node: Any, unknown: Any, path: tuple[Any, ...],
                      collected: _Collected) -> None:
        """Fill the leaves of an azapi body known only after apply, each from the one declared
        resource the body's expression reads that fits the leaf (a principalId from a principal, an
        id from an id...); an object body has a single expression, so no other pairing is possible."""
        items: Iterator[tuple[Any, Any]] = iter(unknown.items()) if isinstance(unknown, dict) else iter(
            enumerate(unknown) if isinstance(unknown, list) else ())
        for step, flag in items:
            where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in (*path, step)).lstrip(".")
            if flag is True:
                value = self._fit(inst, str(path[-1] if isinstance(step, int) and path else step))
                if value is None:
                    collected.unresolved.append(
                        f"{where}: {self.expression(inst, ('body',))}")
                elif isinstance(node, dict) or (isinstance(node, list) and isinstance(step, int) and step < len(node)):
                    node[step] = value
            elif isinstance(flag, (dict, list)):
                child = node.get(step) if isinstance(node, dict) else (
                    node[step] if isinstance(node, list) and isinstance(step, int) and step < len(node) else None)
                if isinstance(child, (dict, list)):
                    self._fill_unknown(inst, child, flag, (*path, step), collected)

    def _fit(self, inst: _Instance, leaf: str) -> str | None:
        hits, _ = self.resolved(inst, self.references(inst, ("body",)))
        if leaf == "principalId":
            wanted = [(t, a) for t, a in hits if a in _PRINCIPAL_ATTRIBUTES]
        elif leaf in ("server", "loginServer"):
            wanted = [(t, a) for t, a in hits if a in _LOGIN_SERVER_ATTRIBUTES]
        elif leaf == "identity":
            wanted = [(t, a) for t, a in hits if a == "id" and t.arm_type == IDENTITY]
        elif leaf.lower().endswith("id"):
            wanted = [(t, a) for t, a in hits if a == "id"]
        else:
            wanted = []
        return self.value_of(*wanted[0]) if len(wanted) == 1 else None


def _merged(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in, object by object (what a PATCH of ARM properties does)."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(
            out.get(key), dict) else value
    return out


def _attribute_for(path: tuple[Any, ...], target: _Instance) -> str:
    """The attribute of ``target`` that an argument at ``path`` takes (see :meth:`_Plan.resolved`)."""
    argument = next((step for step in reversed(path) if isinstance(step, str)), "")
    if argument == "principal_id":
        return "principal_id" if target.arm_type == IDENTITY else "identity.0.principal_id"
    if argument == "server":
        return "login_server"
    return "id" if argument.endswith(("_id", "_ids")) or argument == "scope" else ""


def _login_server(registry: _Instance) -> str | None:
    return f"{registry.name.lower()}{REGISTRY_SUFFIX}" if registry.named else None


def _subnet_properties(values: Mapping[str, Any]) -> dict[str, Any]:
    delegations = []
    for delegation in _objects(values.get("delegation")):
        service = _first(delegation.get("service_delegation")) or {}
        delegations.append({"name": delegation.get("name"), "properties": {
            "serviceName": service.get("name"), "actions": list(service.get("actions") or [])}})
    return {"addressPrefixes": list(values.get("address_prefixes") or []), "delegations": delegations}


def _provider_subscription(configuration: Any) -> str | None:
    """The azurerm provider's ``subscription_id`` where the configuration sets it as a constant."""
    for provider in _object(_object(configuration).get("provider_config")).values():
        if isinstance(provider, Mapping) and provider.get("name") == "azurerm":
            value = _object(_object(provider.get("expressions")).get("subscription_id")).get("constant_value")
            if _text(value):
                return str(value)
    return None


def _module_resources(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from _objects(module.get("resources"))
    for child in _objects(module.get("child_modules")):
        yield from _module_resources(child)


def _config_resources(module: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Configuration resources by their address without instance keys, through nested module calls."""
    for resource in _objects(module.get("resources")):
        yield prefix + str(resource.get("address", "")), resource
    for name, call in _object(module.get("module_calls")).items():
        yield from _config_resources(_object(_object(call).get("module")), f"{prefix}module.{name}.")


def _all_references(node: Any) -> list[str]:
    """Every reference in an expression or a block of them, nested blocks included."""
    if isinstance(node, Mapping):
        if isinstance(node.get("references"), list):
            return [str(r) for r in node["references"]]
        return [r for child in node.values() for r in _all_references(child)]
    if isinstance(node, list):
        return [r for child in node for r in _all_references(child)]
    return []


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _first(value: Any) -> Mapping[str, Any] | None:
    items = _objects(value)
    return items[0] if items else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None

"""Plain data passed between the pipeline's stages.

event → :class:`FailureSignal` → :class:`Context` (gathered from Azure) → :class:`Finding`
(checks) → :class:`Action` (plan) → policy gate → apply → redeploy → report. Every stage takes
and returns these frozen values; only ``remediation.azure`` talks to Azure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Trigger = Literal["eventgrid", "replay", "sweep", "cli"]
Outcome = Literal["remediated", "fixed-awaiting-redeploy", "diagnosed", "dry-run", "skipped", "failed"]
ActionStatus = Literal["applied", "planned", "skipped", "failed"]

CURRENT_ACI_API_VERSION = "2023-05-01"
MIN_IDENTITY_API_VERSION = "2021-07-01"
SYSTEM_IDENTITY_REFERENCES = ("[system]", "system")
PRIVATE_ENDPOINT_WRITE = "Microsoft.Network/privateEndpoints/write"
"""The other failed write a run handles: a registry's private endpoint (the ACI-delegated subnet cause)."""


@dataclass(frozen=True)
class FailureSignal:
    """A container-group write that failed, from an event, a replay request or the CLI."""

    resource_id: str
    subscription_id: str
    resource_group: str
    name: str
    correlation_id: str | None = None
    operation_name: str = "Microsoft.ContainerInstance/containerGroups/write"
    tenant_id: str | None = None
    caller_object_id: str | None = None
    event_id: str | None = None
    event_time: str | None = None
    event_type: str = "Microsoft.Resources.ResourceWriteFailure"
    schema: Literal["eventgrid", "cloudevents", "replay", "cli", "sweep"] = "eventgrid"
    """``sweep``: no failure happened; the group is checked before anyone deploys again."""
    definition: dict[str, Any] | None = None
    """A definition supplied with the signal (a replay body); first choice for redeploying."""


@dataclass(frozen=True)
class Skip:
    """Why an input is not ours to handle (not a container-group write failure, ...)."""

    reason: str
    resource_id: str | None = None


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. ``registry`` is the login server, lower-cased."""

    raw: str
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"


@dataclass(frozen=True)
class RegistryCredential:
    index: int
    server: str | None
    username: str | None = None
    has_password: bool = False
    identity: str | None = None
    identity_url: str | None = None


@dataclass(frozen=True)
class GroupDefinition:
    """The container group that was attempted, as far as it could be recovered."""

    resource_id: str
    body: dict[str, Any]
    """ARM JSON of the group, secrets redacted (``password`` and secure env values removed)."""
    api_version: str | None
    source: Literal["replay", "activity-log", "deployment", "existing", "snapshot", "error-message"]
    """``error-message``: only the image named in the error is known; enough to diagnose the
    registry side, never enough to redeploy."""
    location: str | None = None
    os_type: str | None = None
    subnet_ids: tuple[str, ...] = ()
    identity_type: str | None = None
    user_assigned_identities: tuple[str, ...] = ()
    credentials: tuple[RegistryCredential, ...] = ()
    images: tuple[ImageRef, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether this is a whole definition (one a redeploy could use), not a partial one."""
        return self.source != "error-message"

    @property
    def recorded_by_azure(self) -> bool:
        """Read from Azure itself, not supplied by whoever called the replay route."""
        return self.source not in ("replay", "error-message")


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    role_name: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    role_type: str = "BuiltInRole"

    @property
    def guid(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    scope: str
    role_definition_id: str
    principal_id: str
    condition: str | None = None
    created_on: datetime | None = None
    """ARM's ``properties.createdOn``: how young the assignment is (it may still be propagating)."""

    @property
    def role_guid(self) -> str:
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class RbacRules:
    """How the tenant's Azure treats pull roles, from the settings (CONTRACT §6).

    ``propagation_minutes`` (``REMEDIATION_RBAC_PROPAGATION_MINUTES``): an assignment younger than
    this may still be taking effect, so it is waited for, never duplicated. ``custom_wildcards``
    (``REMEDIATION_TENANT_HAS_ARM_PRIVATE_LINK``): ACR counts a wildcard action of a custom role
    only in tenants with Azure Resource Manager private link.
    """

    propagation_minutes: int = 10
    custom_wildcards: bool = False


@dataclass(frozen=True)
class Registry:
    id: str
    name: str
    login_server: str
    sku: str | None
    public_network_access: str | None
    default_action: str | None
    bypass: str | None
    """``networkRuleBypassOptions``: ``AzureServices`` or ``None``."""
    role_assignment_mode: str | None
    private_endpoints: tuple[str, ...] = ()
    ip_rules: int = 0
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def network_restricted(self) -> bool:
        return (self.public_network_access or "").lower() == "disabled" or (
            (self.default_action or "").lower() == "deny"
        )

    @property
    def abac(self) -> bool:
        return (self.role_assignment_mode or "").lower() == "abacrepositorypermissions"


@dataclass(frozen=True)
class Identity:
    id: str
    principal_id: str | None
    client_id: str | None
    found: bool = True


@dataclass(frozen=True)
class ImageStatus:
    """Whether an image exists; ``exists`` is None when the registry could not be read."""

    image: ImageRef
    exists: bool | None
    detail: str = ""


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    source: str = "activity-log"
    """Where it was read: ``activity-log``, ``deployment``, ``instance-view``, ``replay``."""


@dataclass(frozen=True)
class WriteRecord:
    """A write or delete of the container group as the Activity Log recorded it (its end, not its start)."""

    operation: str
    """``Microsoft.ContainerInstance/containerGroups/write`` or ``.../delete``."""
    status: str
    """``Succeeded`` or ``Failed``."""
    caller: str | None
    """The object id of the principal that made it (the record's ``caller``)."""
    at: datetime | None
    correlation_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"

    @property
    def delete(self) -> bool:
        return self.operation.lower().endswith("/delete")


@dataclass(frozen=True)
class Context:
    """Everything the checks may look at, gathered once. Checks never call Azure."""

    signal: FailureSignal
    error: ErrorInfo | None = None
    definition: GroupDefinition | None = None
    registries: dict[str, Registry | None] = field(default_factory=dict)
    """Login server (lower) → registry, or None when no registry with it is visible."""
    identities: dict[str, Identity] = field(default_factory=dict)
    """Identity resource id (lower) → identity."""
    assignments: dict[str, tuple[RoleAssignment, ...]] = field(default_factory=dict)
    """Principal id (lower) → its assignments at a registry's scope or above."""
    role_definitions: dict[str, RoleDefinition] = field(default_factory=dict)
    """Role GUID (lower) → definition."""
    images: tuple[ImageStatus, ...] = ()
    existing_group: dict[str, Any] | None = None
    failed_write: WriteRecord | None = None
    """The Activity Log record of the failed write; its ``caller`` is the deployer, the principal the
    app acts for. None where the log holds no such record (yet), and for a sweep."""
    group_writes: tuple[WriteRecord, ...] | None = None
    """The group's writes and deletes in the Activity Log after the failed write (a sweep: within the
    log's retention), newest first; None where they could not be read."""
    notes: tuple[str, ...] = ()
    """What could not be read, and why (a check that cannot decide says so)."""
    read_at: datetime | None = None
    """When the context was read: the assignments' ages are measured from it."""
    rbac: RbacRules = field(default_factory=RbacRules)
    network: NetworkFacts | None = None
    """The private networking around a VNet-injected group and its restricted registries, or around
    a failed private endpoint write; None where none was read."""
    locks: tuple[ManagementLock, ...] = ()
    """The management locks at the registries and the container group, their resource groups and
    subscriptions (at or above each of them)."""
    deny_assignments: tuple[DenyAssignment, ...] = ()
    """The deny assignments at or above the registries and the container group."""
    policy_assignments: tuple[PolicyAssignment, ...] = ()
    """The Azure Policy assignments that apply at the registries, each with its definition's rule."""


@dataclass(frozen=True)
class ManagementLock:
    """A ``Microsoft.Authorization/locks`` resource: ``ReadOnly`` refuses writes and deletes at its
    scope and below, ``CanNotDelete`` only deletes."""

    id: str
    level: str
    notes: str = ""

    @property
    def scope(self) -> str:
        """The resource, resource group or subscription the lock is on (its id before ``/providers/…/locks/``)."""
        at = self.id.lower().rfind("/providers/microsoft.authorization/locks/")
        return self.id[:at] if at > 0 else self.id


@dataclass(frozen=True)
class DenyAssignment:
    """A ``Microsoft.Authorization/denyAssignments`` resource (read-only in ARM): the ``principals``
    may not perform ``actions`` (less ``not_actions``) at ``scope``, unless excluded."""

    id: str
    name: str
    scope: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    exclude_principals: tuple[str, ...] = ()
    applies_to_child_scopes: bool = True


@dataclass(frozen=True)
class PolicyAssignment:
    """A ``Microsoft.Authorization/policyAssignments`` resource with what its definition says."""

    id: str
    name: str
    scope: str
    definition_id: str
    display_name: str = ""
    enforced: bool = True
    """``enforcementMode`` is ``Default`` (``DoNotEnforce`` evaluates but never denies or modifies)."""
    effect: str | None = None
    """The effect as assigned (its ``[parameters('effect')]`` resolved), None where it cannot be told."""
    rule: dict[str, Any] = field(default_factory=dict)
    """The definition's ``policyRule`` (``if`` and ``then``)."""
    not_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    code: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixable: bool = False
    source: str = ""
    """Which document lists this cause (troubleshooting guide, current docs)."""


@dataclass(frozen=True)
class Action:
    """One change the plan proposes; ``params`` hold exactly what will be written."""

    kind: str
    """The name of a declared kind (``remediation.actions.KINDS``); the gate refuses any other."""
    target: str
    detail: str
    params: dict[str, Any] = field(default_factory=dict)
    cause: str = ""
    status: ActionStatus = "planned"
    retryable: bool = False
    """A failed write that a later attempt may get through (throttling, 5xx, connection)."""


@dataclass(frozen=True)
class RedeployResult:
    status: Literal["succeeded", "failed", "skipped"]
    attempts: int = 0
    detail: str = ""
    error: ErrorInfo | None = None
    retryable: bool = False


@dataclass(frozen=True)
class Subnet:
    id: str
    delegations: tuple[str, ...] = ()
    """The service names the subnet is delegated to (``Microsoft.ContainerInstance/containerGroups``, ...)."""

    @property
    def vnet_id(self) -> str:
        return self.id.rstrip("/").rpartition("/subnets/")[0] or self.id

    @property
    def delegated(self) -> bool:
        return bool(self.delegations)


@dataclass(frozen=True)
class PrivateEndpoint:
    """A private endpoint as read from Azure, or as a failed write attempted it."""

    id: str
    subnet_id: str
    targets: tuple[str, ...] = ()
    """The resource ids its connections target for the ``registry`` sub-resource."""

    @property
    def vnet_id(self) -> str:
        return Subnet(self.subnet_id).vnet_id


@dataclass(frozen=True)
class NetworkFacts:
    """What was read of the private networking (virtual networks, peerings, private endpoints and
    ``privatelink.azurecr.io`` zone links); ids as Azure returned them."""

    group_vnets: tuple[str, ...] = ()
    """The virtual networks of the group's subnets (``subnetIds``)."""
    peerings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Virtual network id (lower) → the ids of the networks it is peered with (``Connected``)."""
    endpoints: dict[str, tuple[PrivateEndpoint, ...]] = field(default_factory=dict)
    """Registry id (lower) → its private endpoints; a registry whose endpoints could not be read has no key."""
    dns_zones: tuple[str, ...] | None = None
    """The ``privatelink.azurecr.io`` zones found; None where they could not be listed."""
    dns_links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Zone id (lower) → the virtual networks linked to it."""
    subnets: dict[str, tuple[Subnet, ...]] = field(default_factory=dict)
    """Virtual network id (lower) → its subnets, for the networks read."""
    failed_endpoint: PrivateEndpoint | None = None
    """The private endpoint the failed write attempted (a ``privateEndpoints/write`` signal)."""

    def linked(self, vnet_id: str) -> bool:
        """Whether a ``privatelink.azurecr.io`` zone is linked to ``vnet_id``."""
        return any(vnet_id.lower() in {v.lower() for v in vnets} for vnets in self.dns_links.values())

    def reachable(self, vnet_id: str) -> set[str]:
        """``vnet_id`` and the networks peered with it, lower-cased."""
        return {vnet_id.lower(), *(p.lower() for p in self.peerings.get(vnet_id.lower(), ()))}

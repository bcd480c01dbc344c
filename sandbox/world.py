"""The sandbox's Azure: resources in ARM's shapes, plus the state ARM keeps behind them.

One ``World`` per sandbox. Every surface reads and writes it under ``world.lock``. Time is
``world.now()`` (wall clock plus an offset tests may advance), so RBAC propagation and Activity
Log lag behave like Azure's without tests having to sleep through them.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import rbac
from .scenario import Scenario


def iso(ts: float) -> str:
    """ARM's timestamp format (seven fractional digits, Z)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def parse_iso(text: str) -> float:
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        frac = ""
        tz = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tz = rest[i:]
                break
            frac += ch
        text = f"{head}.{frac[:6] or '0'}{tz}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def resource_type_of(resource_id: str) -> str:
    """``Microsoft.X/a/b`` from ``/subscriptions/s/resourceGroups/g/providers/Microsoft.X/a/n/b/m``."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        if len(parts) >= 4 and lowered[2] == "resourcegroups":
            return "Microsoft.Resources/resourceGroups"
        return "Microsoft.Resources/subscriptions"
    i = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = parts[i + 1:]
    return "/".join([rest[0], *rest[1::2]])


def subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1].lower() if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def resource_group_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    if len(parts) > 3 and parts[2].lower() == "resourcegroups":
        return parts[3]
    return None


@dataclass
class RequestRecord:
    """One call the sandbox answered, for tests and benchmarks."""

    method: str
    path: str
    query: str
    status: int
    caller: str | None
    started: float
    ended: float
    fault: str | None = None


@dataclass(frozen=True)
class AuthorizationCheck:
    """One RBAC decision of ``World.allows``: may ``principal`` perform ``operation`` at ``scope``."""

    principal: str
    operation: str
    scope: str
    data: bool
    allowed: bool


@dataclass
class ActivityEntry:
    visible_at: float
    record: dict[str, Any]


@dataclass
class Operation:
    """An async operation ARM reports through ``Azure-AsyncOperation``."""

    id: str
    done_at: float
    complete: Callable[[], dict[str, Any] | None]
    status: str = "InProgress"
    error: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.lock = threading.RLock()
        self.scenario = scenario
        self.tenant_id: str = scenario.tenant_id
        self.subscriptions: list[str] = [s.lower() for s in scenario.subscriptions]
        self.behaviour: dict[str, Any] = copy.deepcopy(scenario.behaviour)
        self.remediator: str | None = (scenario.remediator or {}).get("principalId")
        self.deployer: str | None = (scenario.deployer or {}).get("principalId")
        """The scenario's deployer, where it names one (else the sandbox's user makes the write)."""
        self.groups: dict[str, list[str]] = {g.lower(): [m.lower() for m in members]
                                             for g, members in scenario.groups.items()}
        self.images: dict[str, dict[str, list[str]]] = {
            server.lower(): {repo: list(tags) for repo, tags in repos.items()}
            for server, repos in scenario.images.items()
        }
        self._offset = 0.0
        self.resources: dict[str, dict[str, Any]] = {}
        self.created_at: dict[str, float] = {}
        self.custom_roles: dict[str, dict[str, Any]] = {}
        self.activity: list[ActivityEntry] = []
        self.operations: dict[str, Operation] = {}
        self.deployment_operations: dict[str, list[dict[str, Any]]] = {}
        self.request_log: list[RequestRecord] = []
        self.authorization_checks: list[AuthorizationCheck] = []
        """Every RBAC decision ``allows`` made for a principal the scenario restricts: what its
        roles were used for, and what they lacked (tests/test_least_privilege.py)."""
        self.response_observers: list[Callable[[Any, Any], None]] = []
        """Called with every (request, response) before it is sent; tests check answers against the specs."""
        self.fault_hits: dict[int, int] = {}
        self.subscribers: list[Any] = []
        self.delivered: list[dict[str, Any]] = []
        self.data_tokens: dict[str, dict[str, Any]] = {}
        self.sink_posts: list[dict[str, Any]] = []
        """What the notification sinks (sandbox/surfaces/sinks.py) were sent."""
        for role in scenario.role_definitions:
            self.custom_roles[rbac.guid_of(role["id"])] = copy.deepcopy(role)
        for sub in self.subscriptions:
            self.created_at[f"/subscriptions/{sub}"] = float("-inf")
        self.scenario_resource_ids: frozenset[str] = frozenset(
            str(r["id"]).rstrip("/").lower() for r in scenario.resources)
        """The resources the scenario itself holds (made before the run, by whoever the scenario says)."""
        for resource in scenario.resources:
            stored, created = self._as_created(copy.deepcopy(resource))
            self.put(stored, created=created)
        self._add_implied_groups()

    def _as_created(self, resource: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """A scenario resource as ARM holds it, and when it was created.

        The sandbox-only ``"sandbox": {"createdSecondsAgo": N}`` (CONTRACT §3) is taken off: the
        resource was created N seconds before the run, so a role assignment that young is still
        propagating (:meth:`role_assignments`), and its ``properties.createdOn`` says so, as ARM's
        does (RoleAssignmentProperties.createdOn, azure-rest-api-specs specification/authorization/
        resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json).
        Without it a resource has always existed.
        """
        extra = resource.pop("sandbox", None)
        ago = extra.get("createdSecondsAgo") if isinstance(extra, dict) else None
        if not isinstance(ago, (int, float)):
            return resource, float("-inf")
        created = self.now() - float(ago)
        if str(resource.get("type", "")).lower() == "microsoft.authorization/roleassignments":
            resource.setdefault("properties", {})["createdOn"] = iso(created)
        return resource, created

    def _add_implied_groups(self) -> None:
        """Resource groups that scenario resources live in exist, even when not listed."""
        for resource in list(self.resources.values()):
            rg = resource_group_of(resource["id"])
            sub = subscription_of(resource["id"])
            if rg and self.resource_group(sub, rg) is None:
                self.put({"id": f"/subscriptions/{sub}/resourceGroups/{rg}", "name": rg,
                          "type": "Microsoft.Resources/resourceGroups",
                          "location": resource.get("location", "eastus"), "tags": {},
                          "properties": {"provisioningState": "Succeeded"}}, created=float("-inf"))

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (propagation delay, log lag) without sleeping."""
        with self.lock:
            self._offset += seconds

    def knob(self, name: str, default: float) -> float:
        value = self.behaviour.get(name, default)
        return float(value) if value is not None else default

    # -- resources ----------------------------------------------------------------------------

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.rstrip("/").lower())

    def put(self, resource: dict[str, Any], *, created: float | None = None) -> dict[str, Any]:
        key = resource["id"].rstrip("/").lower()
        with self.lock:
            if key not in self.resources:
                self.created_at[key] = self.now() if created is None else created
            self.resources[key] = resource
        return resource

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        key = resource_id.rstrip("/").lower()
        with self.lock:
            self.created_at.pop(key, None)
            return self.resources.pop(key, None)

    def of_type(self, resource_type: str, under: str | None = None) -> list[dict[str, Any]]:
        t = resource_type.lower()
        with self.lock:
            items = [r for r in self.resources.values() if str(r.get("type", "")).lower() == t]
        if under:
            items = [r for r in items if rbac.scope_contains(under, r["id"])]
        return sorted(items, key=lambda r: r["id"].lower())

    def subscription_exists(self, subscription_id: str) -> bool:
        return subscription_id.lower() in self.subscriptions

    def resource_group(self, subscription_id: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/subscriptions/{subscription_id}/resourceGroups/{name}")

    def registry_by_login_server(self, login_server: str) -> dict[str, Any] | None:
        wanted = login_server.lower()
        for reg in self.of_type("Microsoft.ContainerRegistry/registries"):
            if str(reg.get("properties", {}).get("loginServer", "")).lower() == wanted:
                return reg
        return None

    def identity_by_principal(self, principal_id: str) -> dict[str, Any] | None:
        for ident in self.of_type("Microsoft.ManagedIdentity/userAssignedIdentities"):
            if str(ident.get("properties", {}).get("principalId", "")).lower() == principal_id.lower():
                return ident
        return None

    # -- RBAC ---------------------------------------------------------------------------------

    def role_definitions(self) -> dict[str, dict[str, Any]]:
        """Role GUID (lower) → definition, built-in and custom."""
        out = {rbac.guid_of(r["id"]): r for r in rbac.builtin_role_definitions()}
        out.update(self.custom_roles)
        return out

    def role_assignments(self, *, propagated_only: bool = False) -> list[dict[str, Any]]:
        """All assignments; with ``propagated_only``, those older than the propagation delay."""
        items = self.of_type("Microsoft.Authorization/roleAssignments")
        if not propagated_only:
            return items
        cutoff = self.now() - self.knob("rbacPropagationSeconds", 0.0)
        return [a for a in items if self.created_at.get(a["id"].lower(), float("-inf")) <= cutoff]

    @property
    def tenant_has_arm_private_link(self) -> bool:
        """The scenario's ``behaviour.tenantHasArmPrivateLink`` (default false)."""
        return self.behaviour.get("tenantHasArmPrivateLink") is True

    def enforces(self, principal_id: str | None) -> bool:
        """Whether ``principal_id`` may do only what its role assignments allow: the scenario's
        remediator and deployer, where it names them; anyone else may do anything."""
        caller = (principal_id or "").lower()
        return bool(caller) and caller in {(p or "").lower() for p in (self.remediator, self.deployer) if p}

    def allows(
        self,
        principal_id: str,
        operation: str,
        scope: str,
        *,
        data: bool = False,
        request_attributes: dict[str, Any] | None = None,
        resource_attributes: dict[str, Any] | None = None,
    ) -> bool:
        """Whether ``principal_id`` may perform ``operation`` at ``scope`` right now.

        Only assignments that have propagated count, as in Azure.
        """
        # ACR's own checks count a custom role's wildcard only with ARM private link (rbac.ACR_DATA_PLANE_OPERATIONS)
        custom_wildcards = self.tenant_has_arm_private_link or operation.lower() not in rbac.ACR_DATA_PLANE_OPERATIONS
        with self.lock:
            allowed = rbac.is_allowed(
                self.role_assignments(propagated_only=True),
                self.role_definitions(),
                principal_id,
                operation,
                scope,
                data=data,
                request_attributes=request_attributes,
                resource_attributes=resource_attributes,
                groups=self.groups,
                custom_wildcards=custom_wildcards,
            )
            if self.enforces(principal_id):
                self.authorization_checks.append(
                    AuthorizationCheck(principal_id.lower(), operation, scope, data, allowed))
            return allowed

    # -- Activity Log -------------------------------------------------------------------------

    def log_activity(self, record: dict[str, Any]) -> None:
        lag = self.knob("activityLogLagSeconds", 0.0)
        with self.lock:
            self.activity.append(ActivityEntry(self.now() + lag, record))

    def visible_activity(self, subscription_id: str) -> list[dict[str, Any]]:
        now = self.now()
        with self.lock:
            return [
                e.record for e in self.activity
                if e.visible_at <= now and e.record.get("subscriptionId", "").lower() == subscription_id.lower()
            ]

    # -- async operations ---------------------------------------------------------------------

    def start_operation(self, complete: Callable[[], dict[str, Any] | None], *, delay: float) -> Operation:
        """Register work that finishes ``delay`` seconds from now.

        ``complete`` runs once, at the first poll after that; it returns an ARM error object
        (``{"code", "message"}``) when the operation failed, else None.
        """
        op = Operation(id=str(uuid.uuid4()), done_at=self.now() + delay, complete=complete)
        with self.lock:
            self.operations[op.id] = op
        return op

    def poll_operation(self, op_id: str) -> Operation | None:
        with self.lock:
            op = self.operations.get(op_id)
            if op is None:
                return None
            if op.status == "InProgress" and self.now() >= op.done_at:
                error = op.complete()
                op.status = "Failed" if error else "Succeeded"
                op.error = error
            return op

    def settle(self) -> None:
        """Complete every async operation now (used when dumping state)."""
        with self.lock:
            for op in list(self.operations.values()):
                if op.status == "InProgress":
                    op.done_at = min(op.done_at, self.now())
                    self.poll_operation(op.id)

    # -- faults -------------------------------------------------------------------------------

    def use_fault(self, index: int, fault: dict[str, Any]) -> bool:
        """Count one use of the scenario's fault ``index``; False once its ``times`` are used up."""
        with self.lock:
            used = self.fault_hits.get(index, 0)
            if "times" in fault and used >= fault["times"]:
                return False
            self.fault_hits[index] = used + 1
            return True

    # -- bookkeeping --------------------------------------------------------------------------

    def writes(self, caller: str | None = None) -> list[RequestRecord]:
        """Mutating ARM calls answered with success, optionally by one caller."""
        with self.lock:
            log = list(self.request_log)
        return [
            r for r in log
            if r.method in ("PUT", "PATCH", "POST", "DELETE") and r.status < 400
            and (caller is None or (r.caller or "").lower() == caller.lower())
            and "/oauth2/" not in r.path and not r.path.lower().endswith("/exporttemplate")
        ]

    def dump_resources(self) -> list[dict[str, Any]]:
        """The world in the scenario ``resources`` shape."""
        self.settle()
        with self.lock:
            return [copy.deepcopy(r) for _, r in sorted(self.resources.items())]


def new_guid() -> str:
    return str(uuid.uuid4())


def lower_all(values: Iterable[str]) -> list[str]:
    return [v.lower() for v in values]

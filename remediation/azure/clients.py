"""The Azure SDK clients the engine uses, built once per subscription and shared.

This package (``remediation.azure``) is the only place that talks to Azure. Against real Azure
the endpoint is ``https://management.azure.com``; against the local sandbox only ``arm_endpoint``,
the credential and the CA bundle differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from ..model import RoleDefinition
from ..telemetry import ArmCallCounter
from .registry_data import RegistryDataClient

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
ACR_AUDIENCE = "https://containerregistry.azure.net"
"""The registry data plane's own Entra audience, in every cloud: a registry may refuse ARM-audience
tokens (``policies.azureADAuthenticationAsArmPolicy`` disabled) but always accepts this one, and the
app's Resource Manager token is never sent to a registry."""
BUILT_IN_ROLE_SECONDS = 3600.0
"""How long a built-in role's definition is kept once read. Built-in roles "have the same role ID
across clouds" and keep it when renamed (MicrosoftDocs azure-docs
``articles/role-based-access-control/role-definitions.md``, ms.date 2025-03-30, the role properties
table), so one read serves every subscription and run; only Microsoft changes their permissions, and
an hour bounds how long a process goes on with an older version."""
T = TypeVar("T")


def arm_scope(arm_endpoint: str) -> str:
    """The token scope for a Resource Manager endpoint: its own audience, so sovereign clouds
    (``https://management.usgovcloudapi.net``, ``https://management.chinacloudapi.cn``) get tokens
    they accept. The SDK's default is the public cloud's whatever the endpoint."""
    return f"{arm_endpoint.rstrip('/')}/.default"


class AzureClients:
    """Lazily built, cached SDK clients keyed by subscription.

    ``verify`` is the CA bundle path (or True for the system store); ``registry_endpoint`` maps a
    login server to its data-plane endpoint (``https://<login server>`` in Azure). ``retry_total``
    and ``read_timeout`` override azure-core's defaults (10 retries of a throttled, failed or
    dropped call; 300 s to wait for an answer) for every client.

    The app keeps one instance per process (``remediation.service.get_service``), so what is kept
    here lasts across runs: the registries' tokens (:meth:`registry_data`) and the built-in roles'
    definitions (:meth:`kept_role`), each until it expires. ``clock`` is what their expiry is
    measured on (a test may move it).
    """

    def __init__(
        self,
        credential: TokenCredential,
        *,
        arm_endpoint: str = DEFAULT_ARM_ENDPOINT,
        verify: str | bool = True,
        registry_endpoint_template: str = "https://{loginServer}",
        polling_interval: float | None = None,
        retry_total: int | None = None,
        read_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credential = credential
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.verify = verify
        self.registry_endpoint_template = registry_endpoint_template
        self._polling_interval = polling_interval
        self._transport: dict[str, Any] = {name: value for name, value in
                           (("retry_total", retry_total), ("read_timeout", read_timeout)) if value is not None}
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._roles: dict[str, tuple[RoleDefinition, float]] = {}

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"base_url": self.arm_endpoint, "connection_verify": self.verify,
                              "per_retry_policies": [ArmCallCounter()], **self._transport}
        if self._polling_interval is not None:
            kw["polling_interval"] = self._polling_interval
        kw["credential_scopes"] = [arm_scope(self.arm_endpoint)]
        return kw

    def _get(self, kind: str, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            client = self._cache.get((kind, key))
            if client is None:
                client = build()
                self._cache[(kind, key)] = client
            return client

    def container_instance(self, subscription_id: str) -> ContainerInstanceManagementClient:
        return self._get("aci", subscription_id.lower(), lambda: ContainerInstanceManagementClient(
            self.credential, subscription_id, **self._kwargs()))

    def container_registry(self, subscription_id: str) -> ContainerRegistryManagementClient:
        return self._get("acr", subscription_id.lower(), lambda: ContainerRegistryManagementClient(
            self.credential, subscription_id, **self._kwargs()))

    def identities(self, subscription_id: str) -> ManagedServiceIdentityClient:
        return self._get("msi", subscription_id.lower(), lambda: ManagedServiceIdentityClient(
            self.credential, subscription_id, **self._kwargs()))

    def authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        return self._get("authz", subscription_id.lower(), lambda: AuthorizationManagementClient(
            self.credential, subscription_id, **self._kwargs()))

    def monitor(self, subscription_id: str) -> MonitorManagementClient:
        return self._get("monitor", subscription_id.lower(), lambda: MonitorManagementClient(
            self.credential, subscription_id, **self._kwargs()))

    def deployments(self, subscription_id: str) -> DeploymentsMgmtClient:
        return self._get("deploy", subscription_id.lower(), lambda: DeploymentsMgmtClient(
            self.credential, subscription_id, **self._kwargs()))

    def resources(self, subscription_id: str) -> ResourceManagementClient:
        return self._get("resources", subscription_id.lower(), lambda: ResourceManagementClient(
            self.credential, subscription_id, **self._kwargs()))

    def registry_data(self, login_server: str) -> RegistryDataClient:
        """The registry's data plane; its tokens are kept with the client, so across the runs that
        share these clients, for as long as the registry issued them for."""
        endpoint = self.registry_endpoint_template.replace("{loginServer}", login_server.lower())
        return self._get("acr-data", login_server.lower(), lambda: RegistryDataClient(
            endpoint, login_server, self.credential, audience=ACR_AUDIENCE, verify=self.verify, **self._transport))

    def kept_role(self, role_id: str) -> RoleDefinition | None:
        """A built-in role's definition read by an earlier run (by its GUID, under ``role_id``), while
        it is younger than :data:`BUILT_IN_ROLE_SECONDS`; None: read it."""
        guid = role_id.rstrip("/").rsplit("/", 1)[-1].lower()
        with self._lock:
            kept = self._roles.get(guid)
            if kept is None or kept[1] <= self._clock():
                self._roles.pop(guid, None)
                return None
        return replace(kept[0], id=role_id)

    def keep_role(self, role: RoleDefinition) -> None:
        """Keep a built-in role's definition just read, for :data:`BUILT_IN_ROLE_SECONDS`."""
        with self._lock:
            self._roles[role.guid] = (role, self._clock() + BUILT_IN_ROLE_SECONDS)

    def close(self) -> None:
        with self._lock:
            clients = list(self._cache.values())
            self._cache.clear()
        for client in clients:
            client.close()

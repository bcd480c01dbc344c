"""Real SDK clients pointed at a sandbox: only base_url, credential and CA bundle differ."""

from __future__ import annotations

from typing import Any

from azure.containerregistry import ContainerRegistryClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox import USER_PRINCIPAL, Sandbox

from .worlds import SUB


def _kw(sb: Sandbox) -> dict[str, Any]:
    return {"base_url": sb.arm_endpoint, "connection_verify": sb.ca_bundle, "polling_interval": 0.05}


def aci(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(sb.credential(principal), sub, **_kw(sb))


def acr(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> ContainerRegistryManagementClient:
    return ContainerRegistryManagementClient(sb.credential(principal), sub, **_kw(sb))


def msi(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(sb.credential(principal), sub, **_kw(sb))


def authz(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(sb.credential(principal), sub, **_kw(sb))


def monitor(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> MonitorManagementClient:
    return MonitorManagementClient(sb.credential(principal), sub, **_kw(sb))


def resources(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> ResourceManagementClient:
    return ResourceManagementClient(sb.credential(principal), sub, **_kw(sb))


def deployments(sb: Sandbox, principal: str = USER_PRINCIPAL, sub: str = SUB) -> DeploymentsMgmtClient:
    return DeploymentsMgmtClient(sb.credential(principal), sub, **_kw(sb))


def registry_data(sb: Sandbox, login_server: str, principal: str = USER_PRINCIPAL) -> ContainerRegistryClient:
    return ContainerRegistryClient(sb.registry_endpoint(login_server), sb.credential(principal),
                                   audience="https://management.azure.com", connection_verify=sb.ca_bundle)

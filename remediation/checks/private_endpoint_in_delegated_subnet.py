"""ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET: a registry's private endpoint was put in the ACI-delegated subnet."""

from __future__ import annotations

from remediation.checks import (
    PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR,
    FindingFactory,
    check,
    document,
)
from remediation.model import Context, Finding
from remediation.resource_ids import parse_resource_id

ACI_DELEGATION = "Microsoft.ContainerInstance/containerGroups"


@check(
    "ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET",
    "The failed write is a registry's private endpoint in a subnet delegated to "
    "Microsoft.ContainerInstance/containerGroups, which holds only container groups. Never fixed: a "
    "non-delegated subnet reachable from the ACI network is proposed.",
    rank=60,
    fixable=False,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"), document("current docs")),
)
def private_endpoint_in_delegated_subnet(ctx: Context, finding: FindingFactory) -> list[Finding]:
    network = ctx.network
    endpoint = network.failed_endpoint if network is not None else None
    if network is None or endpoint is None or not endpoint.targets:
        return []
    if ctx.error is None or ctx.error.code != PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR:
        return []
    subnets = network.subnets.get(endpoint.vnet_id.lower())
    subnet = next((s for s in subnets or () if s.id.lower() == endpoint.subnet_id.lower()), None)
    # decided from the subnet as Azure returns it, not from the error text
    if subnet is None or ACI_DELEGATION.lower() not in {d.lower() for d in subnet.delegations}:
        return []
    peered = list(network.peerings.get(endpoint.vnet_id.lower(), ()))
    # the ACI network's own subnets first, then those of the networks peered with it
    free = [s.id for vnet in (endpoint.vnet_id, *peered) for s in network.subnets.get(vnet.lower(), ())
            if not s.delegated]
    where = parse_resource_id(endpoint.id)
    vnet = parse_resource_id(endpoint.vnet_id)
    # the CLI takes a subnet id with --subnet, so the free subnet may sit in a peered network
    target = free[0] if free else f"{endpoint.vnet_id}/subnets/<new-subnet>"
    commands = [] if free else [
        f"az network vnet subnet create --resource-group {vnet.resource_group} --vnet-name {vnet.name} "
        "--name <new-subnet> --address-prefixes <free prefix>"]
    commands.append(
        f"az network private-endpoint create --resource-group {where.resource_group} --name {where.name} "
        f"--subnet {target} --private-connection-resource-id {endpoint.targets[0]} "
        f"--group-id registry --connection-name {where.name}-connection")
    return [finding(
        f"Private endpoint {where.name} of registry {endpoint.targets[0].rsplit('/', 1)[-1]} was put in subnet "
        f"{subnet.id.rsplit('/', 1)[-1]}, which is delegated to {ACI_DELEGATION}; a delegated subnet holds only "
        "container groups.",
        {
            "privateEndpointId": endpoint.id,
            "registryIds": list(endpoint.targets),
            "subnetId": subnet.id,
            "delegations": list(subnet.delegations),
            "virtualNetwork": endpoint.vnet_id,
            "nonDelegatedSubnets": free,
            "peeredNetworks": peered,
            "proposal": "create the private endpoint in a subnet that is not delegated, in the ACI virtual "
                        "network or one peered with it" + (f" (e.g. {free[0]})" if free else
                                                           " (the network has none: add one)"),
            "commands": commands,
        },
    )]

"""ACI_VNET_REGISTRY_UNREACHABLE: a VNet-injected group cannot reach its network-restricted registry privately."""

from __future__ import annotations

from remediation.checks import FindingFactory, acr_images, check, document
from remediation.model import Context, Finding, NetworkFacts, PrivateEndpoint, Registry, Subnet
from remediation.resource_ids import parse_resource_id

ACR_DNS_ZONE = "privatelink.azurecr.io"


@check(
    "ACI_VNET_REGISTRY_UNREACHABLE",
    "A VNet-injected group pulls from a network-restricted registry, and no private endpoint of the registry "
    "sits in the group's virtual network or a peered one, or the privatelink.azurecr.io zone is not linked to "
    "that network. Never fixed: the private endpoint, peering or DNS link is proposed.",
    rank=70,
    fixable=False,
    source="current docs",
    documents=(document("current docs"), document("troubleshooting guide")),
)
def vnet_registry_unreachable(ctx: Context, finding: FindingFactory) -> list[Finding]:
    network = ctx.network
    if network is None or network.failed_endpoint is not None:
        return []
    registries: dict[str, Registry] = {}
    for image in acr_images(ctx):
        registry = ctx.registries.get(image.registry)
        if registry is not None and registry.network_restricted:
            registries.setdefault(registry.id.lower(), registry)
    out = []
    for registry in registries.values():
        endpoints = network.endpoints.get(registry.id.lower())
        # undecidable where the endpoints, the zones or the group's network could not be read
        if endpoints is None or network.dns_zones is None:
            continue
        for vnet in network.group_vnets:
            if vnet.lower() not in network.subnets:
                continue
            reachable = network.reachable(vnet)
            in_reach = [e for e in endpoints if e.vnet_id.lower() in reachable]
            linked = network.linked(vnet)
            if in_reach and linked:
                continue
            missing = ([] if in_reach else ["a private endpoint of the registry in the group's or a peered network"]) \
                + ([] if linked else [f"a {ACR_DNS_ZONE} private DNS zone linked to the group's network"])
            out.append(finding(
                f"Container group network {_name(vnet)} has no private path to registry {registry.name}: "
                f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing.",
                {
                    "registryId": registry.id,
                    "loginServer": registry.login_server.lower(),
                    "publicNetworkAccess": registry.public_network_access,
                    "defaultAction": registry.default_action,
                    "groupVirtualNetwork": vnet,
                    "peeredNetworks": list(network.peerings.get(vnet.lower(), ())),
                    "privateEndpoints": [{"id": e.id, "subnet": e.subnet_id, "virtualNetwork": e.vnet_id}
                                         for e in endpoints],
                    "privateDnsZones": list(network.dns_zones),
                    "dnsZoneLinks": {zone: list(network.dns_links.get(zone.lower(), ())) for zone in network.dns_zones},
                    "missing": missing,
                    "proposal": _proposal(vnet, endpoints, bool(in_reach), linked),
                    "commands": _commands(network, registry, vnet, bool(in_reach), linked, endpoints),
                },
            ))
    return out


def _proposal(vnet: str, endpoints: tuple[PrivateEndpoint, ...], reached: bool, linked: bool) -> str:
    steps = []
    if not reached:
        elsewhere = sorted({_name(e.vnet_id) for e in endpoints})
        steps.append((f"peer {_name(vnet)} with {', '.join(elsewhere)} (where the registry's private endpoints are) "
                      "or " if elsewhere else "") + f"create a private endpoint of the registry in a non-delegated "
                     f"subnet of {_name(vnet)} or a network peered with it")
    if not linked:
        steps.append(f"link the {ACR_DNS_ZONE} private DNS zone to {_name(vnet)}")
    return "; and ".join(steps) + ". The app changes nothing: the commands are for someone who may."


def _commands(network: NetworkFacts, registry: Registry, vnet: str, reached: bool, linked: bool,
              endpoints: tuple[PrivateEndpoint, ...]) -> list[str]:
    where = parse_resource_id(vnet)
    commands = []
    if not reached:
        if endpoints:
            remote = endpoints[0].vnet_id
            commands.append(f"az network vnet peering create --resource-group {where.resource_group} --vnet-name "
                            f"{where.name} --name {where.name}-to-{_name(remote)} --remote-vnet {remote} "
                            "--allow-vnet-access  # and the peering back from the remote network")
        subnet = _open_subnet(network.subnets.get(vnet.lower(), ()))
        commands.append(f"az network private-endpoint create --resource-group {where.resource_group} --name "
                        f"{registry.name}-{where.name}-pe --vnet-name {where.name} --subnet {subnet} "
                        f"--private-connection-resource-id {registry.id} --group-id registry "
                        f"--connection-name {registry.name}-connection")
    if not linked:
        zone = next(iter(network.dns_zones or ()), None)
        if zone is None:
            commands.append(f"az network private-dns zone create --resource-group {where.resource_group} "
                            f"--name {ACR_DNS_ZONE}")
        zone_group = parse_resource_id(zone).resource_group if zone else where.resource_group
        commands.append(f"az network private-dns link vnet create --resource-group {zone_group} --zone-name "
                        f"{ACR_DNS_ZONE} --name {where.name}-link --virtual-network {vnet} "
                        "--registration-enabled false")
    return commands


def _open_subnet(subnets: tuple[Subnet, ...]) -> str:
    """A subnet of the group's network that may hold a private endpoint (not delegated)."""
    free = next((s for s in subnets if not s.delegated), None)
    return _name(free.id) if free else "<a subnet without delegations>"


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]

"""ARM and registry surfaces; importing this package registers every route."""

from . import (  # noqa: F401
    authorization,
    containerinstance,
    containerregistry,
    denyassignments,
    deployments,
    identity,
    locks,
    monitor,
    network,
    policy,
    registry_data,
    resources,
    sinks,
)

"""ARM and registry surfaces; importing this package registers every route."""

from . import (  # noqa: F401
    authorization,
    containerinstance,
    containerregistry,
    deployments,
    identity,
    monitor,
    network,
    registry_data,
    resources,
    sinks,
)

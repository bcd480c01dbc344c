"""A local Azure for developing and testing the remediation app without a subscription.

An ARM emulator over TLS that the real ``azure-mgmt-*`` clients talk to unchanged; see
README.md ("The sandbox"). The deployed function app never imports this package.
"""

from .runtime import USER_PRINCIPAL, Sandbox
from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = ["USER_PRINCIPAL", "Sandbox", "Scenario", "ScenarioError", "load_scenario", "parse_scenario"]

"""Heals Azure Container Instances deployments that fail to pull images from Azure Container
Registry with a managed identity.

The pipeline, one package or module per stage: ``signal`` (event → :class:`FailureSignal`),
``definition`` and ``images`` (what was attempted), ``permissions`` (Azure RBAC as the product
evaluates it), ``checks`` (one file per cause code), then plan, policy, apply, redeploy, report.
The plain data passed between stages lives in ``model``.
"""

from remediation import logs

logs.install()  # every record of the app's loggers is one line, whoever imports it first

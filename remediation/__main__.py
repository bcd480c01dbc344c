"""Command line: ``python -m remediation demo|diagnose|remediate|preflight`` (CONTRACT.md §4).

Exit codes: 0 finished (and matched ``expect`` for demo; for preflight, nothing would fail), 1 did not
match / could not finish (for preflight, something would fail), 2 bad input, with a one-line error naming
the problem.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from .errors import InputError
from .settings import Settings, SettingsError


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoInputError, run

    printer = None if args.json else print
    try:
        result = run(args.scenario, printer=printer)
    except DemoInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dump_state:
        try:
            with open(args.dump_state, "w", encoding="utf-8") as fh:
                json.dump({"resources": result.world}, fh, indent=2)
        except OSError as exc:
            print(f"error: --dump-state {args.dump_state}: {exc.strerror}", file=sys.stderr)
            return 2
    main_report = next((r for r in result.reports if "/containergroups/" in r["resourceId"].lower()),
                       result.reports[0] if result.reports else None)
    if args.json:
        _print_json(main_report if main_report is not None else {})
    else:
        verdict = "matched the scenario's expectations" if result.matched else "did NOT match: " + "; ".join(
            result.mismatches)
        print(f"Result: {main_report['outcome'] if main_report else 'no report'} — {verdict}")
    return 0 if result.matched else 1


def _real(args: argparse.Namespace, *, remediate: bool) -> int:
    from azure.identity import DefaultAzureCredential

    from .azure.clients import AzureClients
    from .engine import Engine
    from .signal import signal_for_resource

    try:
        settings = Settings.from_env(os.environ)
        if getattr(args, "dry_run", False) or not remediate:
            settings = settings.with_overrides({"REMEDIATION_DRY_RUN": "true"})
        signal = signal_for_resource(args.resource_id, schema="cli")
    except (SettingsError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verify: str | bool = settings.arm_ca_bundle or True
    clients = AzureClients(DefaultAzureCredential(), arm_endpoint=settings.arm_endpoint, verify=verify,
                           registry_endpoint_template=settings.acr_endpoint_template)
    engine = Engine(clients, settings, progress=None if args.json else (
        lambda stage, took, summary: print(f"- {stage} ({took:.1f}s): {summary}", file=sys.stderr)))
    report = engine.run(signal, trigger="cli")
    clients.close()
    if args.json or remediate:
        _print_json(report)
    else:
        for cause in report["causes"]:
            print(f"{cause['code']}: {cause['summary']}")
        if not report["causes"]:
            print(f"no cause found ({report['outcome']})")
    return 1 if report["outcome"] == "failed" else 0


def _preflight(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .preflight.command import LiveCheck, Request, run

    def print_err(line: str) -> None:
        print(line, file=sys.stderr)

    request = Request(paths=tuple(Path(p) for p in args.paths), output_format=args.format,
                      parameters=Path(args.parameters) if args.parameters else None,
                      output=Path(args.output) if args.output else None)
    live: LiveCheck | None = None
    clients = None
    if args.live:
        from functools import partial

        from azure.identity import DefaultAzureCredential

        from .azure.clients import AzureClients
        from .preflight.live import live_file

        subscription = args.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID", "")
        try:
            settings = Settings.from_env(os.environ)
        except SettingsError as exc:
            print_err(f"error: {exc}")
            return 2
        if not subscription or not args.resource_group:
            print_err("error: --live needs --subscription (or AZURE_SUBSCRIPTION_ID) and --resource-group")
            return 2
        clients = AzureClients(DefaultAzureCredential(), arm_endpoint=settings.arm_endpoint,
                               verify=settings.arm_ca_bundle or True,
                               registry_endpoint_template=settings.acr_endpoint_template)
        live = partial(live_file, clients=clients, settings=settings, subscription=subscription,
                       resource_group=args.resource_group)
    try:
        return run(request, live=live, print_out=print, print_err=print_err)
    finally:
        if clients is not None:
            clients.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediation",
                                     description="Diagnose and heal ACI image pulls from ACR with managed identity")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a scenario end to end in the local sandbox")
    demo.add_argument("--scenario", help="scenario file (default: scenarios/missing-acrpull.json)")
    demo.add_argument("--json", action="store_true", help="print only the report")
    demo.add_argument("--dump-state", metavar="FILE", help="write the final world in the scenario resources shape")
    diag = sub.add_parser("diagnose", help="diagnose a container group in Azure (no writes)")
    diag.add_argument("resource_id")
    diag.add_argument("--json", action="store_true")
    rem = sub.add_parser("remediate", help="diagnose and fix a container group in Azure")
    rem.add_argument("resource_id")
    rem.add_argument("--dry-run", action="store_true")
    rem.add_argument("--json", action="store_true")
    pre = sub.add_parser("preflight", help="check definitions before they are deployed (ARM, Bicep, container "
                                           "group JSON or YAML, Terraform plans)")
    pre.add_argument("paths", nargs="+", metavar="PATH", help="a file, or a directory of them")
    pre.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    pre.add_argument("--live", action="store_true", help="also read Azure (registries, RBAC, network, images)")
    pre.add_argument("--parameters", metavar="FILE", help="ARM or Bicep parameters file")
    pre.add_argument("--output", metavar="FILE", help="write the output here instead of standard output")
    pre.add_argument("--subscription", help="--live: the subscription deployed to (default AZURE_SUBSCRIPTION_ID)")
    pre.add_argument("--resource-group", help="--live: the resource group deployed to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        return _demo(args)
    if args.command == "preflight":
        return _preflight(args)
    return _real(args, remediate=args.command == "remediate")


if __name__ == "__main__":
    sys.exit(main())

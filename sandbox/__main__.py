"""``python -m sandbox serve [--scenario FILE] [--port N]`` (CONTRACT.md §4)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .scenario import DEFAULT_SCENARIO, ScenarioError, load_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local Azure sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a scenario until interrupted")
    serve.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario file (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from .runtime import Sandbox

    try:
        sandbox = Sandbox(scenario, port=args.port)
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(json.dumps({"armEndpoint": sandbox.arm_endpoint, "caBundle": sandbox.ca_bundle}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

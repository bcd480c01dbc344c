"""Cold start: ``python -X importtime -c "import function_app"``, the app as it is against a
variant that imports every SDK eagerly.

The variant is generated in a temporary directory: ``function_app.py`` with an import of every
``azure.*`` module that ``remediation/`` imports anywhere, and of ``remediation.service``, added
after its own imports. Both run from copies in that directory, so only the imports differ.
Interleaved runs, medians. Target: the app's import time ≤ 40% of the eager variant's.
"""

from __future__ import annotations

import ast
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.figures import Figure
from bench.runs import ROOT

NAME = "cold-start"
MAX_SHARE = 0.40


def sdk_modules() -> list[str]:
    """Every ``azure.*`` module imported anywhere under ``remediation/``."""
    found: set[str] = set()
    for path in (ROOT / "remediation").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("azure."))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("azure.") and not node.level:
                found.add(str(node.module))
    return sorted(found)


def eager_variant(source: str) -> str:
    """``source`` (function_app.py) importing the SDKs and the service right after its own imports."""
    tree = ast.parse(source)
    last_import = max(n.end_lineno or n.lineno for n in tree.body
                      if isinstance(n, (ast.Import, ast.ImportFrom)))
    lines = source.splitlines()
    eager = [f"import {name}  # noqa: F401" for name in [*sdk_modules(), "remediation.service"]]
    return "\n".join([*lines[:last_import], *eager, *lines[last_import:]]) + "\n"


def import_microseconds(directory: Path) -> int:
    """Cumulative import time of ``function_app`` from ``directory``, as ``-X importtime`` reports it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT)]), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import function_app"], cwd=directory,
                          env=env, capture_output=True, text=True, check=True)
    for line in done.stderr.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == "function_app":
            return int(fields[1])
    raise RuntimeError(f"no import time for function_app in:\n{done.stderr[-2000:]}")


def run(quick: bool = False) -> list[Figure]:
    repeat = 1 if quick else 5
    source = (ROOT / "function_app.py").read_text()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        lazy_dir, eager_dir = Path(tmp, "lazy"), Path(tmp, "eager")
        for directory, text in ((lazy_dir, source), (eager_dir, eager_variant(source))):
            directory.mkdir()
            (directory / "function_app.py").write_text(text)
        import_microseconds(eager_dir)  # a first import warms the file cache for both
        lazy: list[int] = []
        eager: list[int] = []
        for _ in range(repeat):
            lazy.append(import_microseconds(lazy_dir))
            eager.append(import_microseconds(eager_dir))
    app, variant = statistics.median(lazy), statistics.median(eager)
    print(f"  import function_app: {app / 1000:.0f} ms; with every SDK eager ({len(sdk_modules())} azure modules "
          f"and remediation.service): {variant / 1000:.0f} ms; median of {repeat}")
    return [Figure("import time, share of the eager variant's", round(app / variant, 2), "<=", MAX_SHARE)]

"""bandit (the Python security linter) finds nothing in the app, and ``make test`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "$(PY) -m bandit -q -r remediation function_app.py"


def test_make_test_runs_bandit_on_the_app() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\bbandit\b", makefile, re.MULTILINE)
    assert re.search(rf"^bandit:.*\n\t{re.escape(COMMAND)}$", makefile, re.MULTILINE)


def test_bandit_finds_nothing_in_the_app() -> None:
    run = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", "remediation", "function_app.py"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

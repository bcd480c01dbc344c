"""``python -m remediation preflight PATH… [--format text|json|sarif] [--live] [--parameters FILE]
[--output FILE]`` (CONTRACT.md §4).

Exit 0 when nothing would fail, 1 when something would, 2 for bad input (one line on standard
error naming the file). A directory stands for every supported file under it, sorted; in a
directory, a JSON or YAML file that declares nothing preflight reads (a parameters file, an
unrelated document) is passed over with a note, where named on its own it is bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from remediation.preflight.checks import Note, PreflightFinding, check_definitions
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.inputs import NotADefinition, expand, load_any
from remediation.preflight.model import Definitions, Location
from remediation.preflight.output import Result, exit_code, render

LiveCheck = Callable[[Definitions], tuple[list[PreflightFinding], list[Note]]]
"""Reads Azure for every container group of one file (``--live``); built by the caller, which holds
the credential."""


@dataclass(frozen=True)
class Request:
    paths: tuple[Path, ...]
    output_format: str = "text"
    parameters: Path | None = None
    output: Path | None = None


def preflight(request: Request, *, live: LiveCheck | None = None) -> Result:
    """Read every file and run every check. Raises :class:`PreflightInputError` for bad input."""
    if request.parameters is not None and not request.parameters.is_file():
        raise PreflightInputError(f"{request.parameters}: no such parameters file")
    named = {p.resolve() for p in request.paths if not p.is_dir()}
    files: list[Definitions] = []
    findings: list[PreflightFinding] = []
    notes: list[Note] = []
    for path in expand(request.paths):
        try:
            definitions = load_any(path, request.parameters)
        except NotADefinition as exc:
            if path.resolve() in named:
                raise
            notes.append(Note(f"skipped: {str(exc).removeprefix(f'{path}: ')}", Location(str(path))))
            continue
        files.append(definitions)
        outcome = check_definitions(definitions)
        findings.extend(outcome.findings)
        notes.extend(outcome.notes)
        if live is not None:
            more, live_notes = live(definitions)
            seen = {(f.code, f.resource) for f in findings}
            findings.extend(f for f in more if (f.code, f.resource) not in seen)
            notes.extend(n for n in live_notes if n not in notes)
    return Result(tuple(files), tuple(findings), tuple(notes))


def run(request: Request, *, live: LiveCheck | None = None, print_out: Callable[[str], None],
        print_err: Callable[[str], None]) -> int:
    """The command: its output to ``print_out`` (or ``request.output``), its exit code returned."""
    try:
        result = preflight(request, live=live)
    except PreflightInputError as exc:
        print_err(f"error: {' '.join(str(exc).split())}")
        return 2
    rendered = render(result, request.output_format)
    if request.output is not None:
        try:
            request.output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            print_err(f"error: --output {request.output}: {exc.strerror or exc}")
            return 2
    else:
        print_out(rendered.rstrip("\n"))
    return exit_code(result.findings)

"""Which loader reads a file, and which files a directory holds (``preflight PATH…``).

By suffix and content: ``.bicep`` → :mod:`~remediation.preflight.bicep`; JSON whose ``$schema`` is
a deployment template → :mod:`~remediation.preflight.arm`; JSON with ``format_version`` and
``planned_values`` (``terraform show -json``) → :mod:`~remediation.preflight.terraform`; YAML and any
other JSON → :mod:`~remediation.preflight.containers`. Each loader module is imported only when a
file needs it, so a missing one is a one-line error, not an ImportError.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from remediation.preflight.errors import PreflightInputError
from remediation.preflight.model import Definitions

SUFFIXES = (".json", ".yaml", ".yml", ".bicep")
"""The files a directory walk reads."""
_LOADERS = {"arm": "ARM templates", "bicep": "Bicep files", "terraform": "Terraform plans",
            "containers": "container group definitions"}

Loader = Callable[[Path, Path | None], Definitions]


class NotADefinition(PreflightInputError):
    """A file of a supported kind (JSON, YAML) that declares nothing preflight reads: an error when
    named on the command line, passed over (with a note) in a directory."""


def load_any(path: Path, parameters: Path | None = None) -> Definitions:
    """The declarations in ``path``, read by the loader its suffix and content call for."""
    return _loader(loader_for(path), path)(path, parameters)


def loader_for(path: Path) -> str:
    """The name of the loader module for ``path`` (``arm``, ``bicep``, ``terraform``, ``containers``)."""
    suffix = path.suffix.lower()
    if suffix == ".bicep":
        return "bicep"
    if suffix in (".yaml", ".yml"):
        return "containers"
    document = read_json(path)
    if isinstance(document, dict):
        schema = str(document.get("$schema", "")).lower()
        if "deploymentparameters.json" in schema:
            raise NotADefinition(f"{path}: an ARM parameters file, not a template (pass it with --parameters)")
        if "deploymenttemplate.json" in schema:
            return "arm"
        if "format_version" in document and "planned_values" in document:
            return "terraform"
    return "containers"


def read_text(path: Path) -> str:
    """``path``'s text; :class:`PreflightInputError` (one line, naming the file) where it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PreflightInputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PreflightInputError(f"{path}: not UTF-8 text") from exc


def read_json(path: Path) -> Any:
    """``path``'s JSON; :class:`PreflightInputError` (one line, naming the file) where it is not."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = exc
    # ARM's extended JSON (comments, line breaks inside strings), which the CLI deploys
    from remediation.preflight.arm import without_comments
    try:
        return json.loads(without_comments(text), strict=False)
    except json.JSONDecodeError:
        raise PreflightInputError(f"{path}: not valid JSON: {error.msg} at line {error.lineno}") from error


def expand(paths: Iterable[Path]) -> list[Path]:
    """Each path, a directory replaced by every supported file under it (recursively, sorted; not in
    hidden folders).
    Raises :class:`PreflightInputError` for a path that does not exist."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            # hidden folders (.terraform, .git, .azure) hold tools' state, not definitions
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                              and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.is_file():
            out.append(path)
        else:
            raise PreflightInputError(f"{path}: no such file or directory")
    return out


def _loader(name: str, path: Path) -> Loader:
    module_name = f"remediation.preflight.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise PreflightInputError(f"{path}: reading {_LOADERS[name]} needs {module_name}, which this "
                                  "installation does not have") from exc
    return cast(Loader, module.load)

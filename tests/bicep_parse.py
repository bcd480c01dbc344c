"""The .bicep files under infra/ as pycep-parser reads them (the parser checkov uses for Bicep).

pycep gives each file as JSON: ``parameters``, ``variables``, ``resources``, ``modules`` and
``outputs`` by symbol. A resource's body is under ``config``; a conditional one (``= if (...)``)
nests it once more, under ``config.config`` beside ``config.condition``. Strings keep their text:
a literal ``'x'`` and a reference ``x`` both read as ``"x"``, and an interpolated string keeps its
``${...}`` parts, so tests compare against what the Bicep says, not what it would evaluate to.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parent.parent / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep JSON of one file (raises lark's ``UnexpectedInput`` when it does not parse)."""
    parsed: dict[str, Any] = BicepParser().parse(file_path=path)
    return parsed


def resources(path: Path, resource_type: str) -> dict[str, dict[str, Any]]:
    """Symbol -> body of each resource of ``resource_type`` (any api-version), conditions unwrapped."""
    found = {}
    for symbol, resource in (parse(path).get("resources") or {}).items():
        if resource["type"] == resource_type:
            found[symbol] = body(resource)
    return found


def body(resource: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = resource["config"]
    if "condition" in config and isinstance(config.get("config"), dict):
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def resource_lines(path: Path) -> list[tuple[int, int]]:
    """(first, last) line numbers of each resource declaration in ``path``."""
    parsed: dict[str, Any] = BicepParser(add_line_numbers=True).parse(file_path=path)
    return [(r["__start_line__"], r["__end_line__"]) for r in (parsed.get("resources") or {}).values()]


def api_versions(path: Path) -> dict[str, str]:
    """Symbol -> api-version of every resource in ``path``."""
    return {symbol: r["api_version"] for symbol, r in (parse(path).get("resources") or {}).items()}

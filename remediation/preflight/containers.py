"""Container group definitions: JSON (an ARM resource object or a bare REST body) and
``az container create --file`` YAML.

A JSON file holds one container group: an object with ``type``
``Microsoft.ContainerInstance/containerGroups`` (``name``, ``apiVersion``, ``location``,
``identity``, ``properties``…, as in a template's ``resources``, with literal values), or a
REST body (``properties.containers``) as PUT to or returned by Resource Manager.

The YAML is the Azure CLI's ("YAML reference: Azure Container Instances", MicrosoftDocs
azure-compute-docs ``articles/container-instances/container-instances-reference-yaml.md``, read
2026-12-01): top-level ``apiVersion`` (the ACI api-version the CLI writes with), ``location``,
``name``, ``identity``, ``properties``, ``tags`` and ``type``. PyYAML is imported only here.

Neither format has expressions, so every value is the value deployed. The group's name is the
file's ``name``, else the file's stem; its id lies in the stand-in deployment scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remediation.preflight.context import default_id
from remediation.preflight.errors import PreflightInputError
from remediation.preflight.inputs import NotADefinition, read_json, read_text
from remediation.preflight.model import Declared, Definitions, Location, key_of

GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"
_BODY_KEYS = ("location", "identity", "properties", "tags", "zones", "sku")


def load(path: Path, parameters: Path | None = None) -> Definitions:
    """The one container group ``path`` declares (``parameters`` is not used: the formats have none)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        document, line = _yaml(path)
    else:
        document, line = read_json(path), _first_line(path)
    if not isinstance(document, dict):
        raise NotADefinition(f"{path}: not a container group (the document is not an object)")
    declared_type = document.get("type")
    if declared_type is not None and str(declared_type).lower() != GROUP_TYPE.lower():
        raise NotADefinition(f"{path}: declares a {declared_type}, not a container group")
    props = document.get("properties")
    if not isinstance(props, dict) or "containers" not in props:
        raise NotADefinition(f"{path}: not a container group (no properties.containers)")
    name = str(document.get("name") or path.stem)
    api_version = document.get("apiVersion")
    group = Declared(
        key=key_of(GROUP_TYPE, name),
        type=GROUP_TYPE,
        name=name,
        location=Location(str(path), line),
        resource_id=default_id(GROUP_TYPE, name),
        api_version=str(api_version) if api_version else None,
        body={k: document[k] for k in _BODY_KEYS if k in document},
    )
    return Definitions(path=str(path), kind="container-group", resources=(group,))


def _yaml(path: Path) -> tuple[Any, int | None]:
    import yaml

    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise PreflightInputError(f"{path}: not valid YAML: {problem}{at}") from exc
    return document, (node.start_mark.line + 1) if node is not None else None


def _first_line(path: Path) -> int:
    """The line of the JSON document's opening brace."""
    text = path.read_text(encoding="utf-8-sig")
    brace = text.find("{")
    return text.count("\n", 0, brace) + 1 if brace >= 0 else 1

"""Refresh the swagger subsets in this folder from a checkout of Azure/azure-rest-api-specs.

    python tests/specs/subset.py /path/to/azure-rest-api-specs

For each file in ``manifest.json`` it keeps the listed operations (``paths`` and ``x-ms-paths``),
their body parameters, responses and the x-ms-examples listed under ``examples``, every
definition those reach through ``$ref`` (in the same file or another one, which is then subset
too), and drops what only documents (descriptions, titles, client-generation hints). The example
files are copied as they are. It then records the checkout's commit in the manifest.

The subsets checked in were taken without network, with a read-only index of the repository:
``manifest.json`` names, per file, the commit of the version read (``read`` says when).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import subprocess  # nosec B404 # git, to name the commit of the checkout read
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
MANIFEST = HERE / "manifest.json"

# Keys that only document or steer code generators; validation and replay never read them.
DOCUMENTATION = frozenset((
    "description", "summary", "title", "tags", "externalDocs", "x-ms-identifiers", "x-ms-enum",
    "x-ms-client-flatten", "x-ms-client-name", "x-ms-mutability", "x-ms-parameter-location",
    "x-ms-skip-url-encoding", "x-ms-external", "x-nullable", "x-ms-odata", "x-ms-code-generation-settings",
))


# Keys whose values map names (of properties, definitions, paths...) to schemas: the names stay.
NAMED = frozenset(("properties", "definitions", "paths", "x-ms-paths", "responses", "x-ms-examples", "parameters"))


def _strip(value: Any, *, names: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, names=k in NAMED and not names) for k, v in value.items()
                if names or k not in DOCUMENTATION}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


class Subsetter:
    """The definitions each spec file must keep, found by following ``$ref`` from the operations."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs: dict[str, dict[str, Any]] = {}
        self.keep: dict[str, set[str]] = {}

    def doc(self, path: str) -> dict[str, Any]:
        if path not in self.docs:
            self.docs[path] = json.loads((self.root / path).read_text())
            self.keep.setdefault(path, set())
        return self.docs[path]

    def follow(self, path: str, value: Any) -> None:
        for ref in _refs(value):
            target, _, pointer = ref.partition("#")
            file = posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) if target else path
            if not pointer.startswith("/definitions/"):
                continue
            name = pointer.split("/")[2]
            if name in self.keep.setdefault(file, set()):
                continue
            self.keep[file].add(name)
            self.follow(file, self.doc(file)["definitions"][name])

    def operations(self, path: str, wanted: set[str], examples: set[str]) -> dict[str, Any]:
        doc = self.doc(path)
        out: dict[str, Any] = {}
        for section in ("paths", "x-ms-paths"):
            kept: dict[str, Any] = {}
            for template, methods in (doc.get(section) or {}).items():
                for method, op in methods.items():
                    if not isinstance(op, dict) or op.get("operationId") not in wanted:
                        continue
                    body = [self._parameter(doc, p) for p in op.get("parameters", [])]
                    entry = {k: v for k, v in op.items() if k not in ("parameters", "x-ms-examples")}
                    if any(p.get("in") == "body" for p in body):
                        entry["parameters"] = [p for p in body if p.get("in") == "body"]
                    stored = {n: r for n, r in (op.get("x-ms-examples") or {}).items()
                              if r["$ref"].removeprefix("./") in examples}
                    if stored:
                        entry["x-ms-examples"] = stored
                    self.follow(path, entry)
                    kept.setdefault(template, {})[method] = entry
            if kept:
                out[section] = kept
        return out

    @staticmethod
    def _parameter(doc: dict[str, Any], param: dict[str, Any]) -> dict[str, Any]:
        ref = param.get("$ref", "")
        if ref.startswith("#/parameters/"):
            return dict(doc["parameters"][ref.split("/")[2]])
        return param


def subset_all(root: Path, out: Path, manifest: dict[str, Any]) -> None:
    """Write the subsets of ``manifest``'s files, read from the checkout ``root``, under ``out``."""
    subsetter = Subsetter(root)
    kept_ops = {entry["path"]: subsetter.operations(entry["path"], set(entry["operations"]), set(entry["examples"]))
                for entry in manifest["files"]}
    missing = sorted(set(subsetter.keep) - set(kept_ops))
    if missing:
        raise SystemExit(f"add these referenced files to manifest.json: {', '.join(missing)}")
    for entry in manifest["files"]:
        path = entry["path"]
        doc = subsetter.doc(path)
        subset: dict[str, Any] = {"swagger": doc["swagger"], "info": {"version": doc["info"]["version"]}}
        if "host" in doc:
            subset["host"] = doc["host"]
        subset.update({"paths": {}, **kept_ops[path]})
        subset["definitions"] = {n: d for n, d in doc.get("definitions", {}).items() if n in subsetter.keep[path]}
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_strip(subset), indent=2) + "\n")
        for example in entry["examples"]:
            (target.parent / example).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / posixpath.dirname(path) / example, target.parent / example)


def main(root: Path) -> None:
    manifest = json.loads(MANIFEST.read_text())
    subset_all(root, HERE, manifest)
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,  # nosec B603 B607
                            capture_output=True, text=True).stdout.strip()
    for entry in manifest["files"]:
        entry["commit"] = commit
        entry["examples"] = dict.fromkeys(entry["examples"], commit)
    manifest["read"] = f"a checkout of Azure/azure-rest-api-specs at {commit}"
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))

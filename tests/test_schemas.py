"""The published JSON Schemas (CONTRACT.md §4): ``schemas/report.schema.json`` is the file the app
validates every report with, and is deployed with it; ``schemas/scenario.schema.json`` is the one
the sandbox loads scenario files with. Each accepts what the app and the bundled files produce, as
any draft 2020-12 validator reads it, and a violation is one line naming the field."""

from __future__ import annotations

import copy
import fnmatch
import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from remediation import demo, model, notify, report
from remediation.model import Action, ErrorInfo, Finding, RedeployResult
from remediation.notify.summary import compact
from remediation.report import ReportError, build_report, validate_report
from remediation.settings import Settings
from sandbox import ScenarioError, parse_scenario
from sandbox.scenario import SCHEMA_FILE as SCENARIO_SCHEMA_FILE
from sandbox.scenario import bundled_scenarios

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {"report": ROOT / "schemas" / "report.schema.json", "scenario": ROOT / "schemas" / "scenario.schema.json"}
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# One bundled scenario per outcome the sandbox can reach (a failed run is built below).
BY_OUTCOME = {"remediated": "missing-acrpull", "fixed-awaiting-redeploy": "no-recoverable-definition",
              "diagnosed": "identity-not-attached", "dry-run": "dry-run", "skipped": "opted-out"}


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PUBLISHED[name].read_text(encoding="utf-8"))
    return data


def _validator(name: str, definition: str | None = None) -> Draft202012Validator:
    """A plain jsonschema validator of the published file (or one of its ``$defs``), as a consumer
    would build one."""
    schema = _schema(name)
    if definition:
        schema = {"$schema": DRAFT, "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Reports the app produced, one of every outcome, with what the service adds when it stores one."""
    out = {outcome: demo.run(ROOT / "scenarios" / f"{name}.json").reports[-1] for outcome, name in BY_OUTCOME.items()}
    failed = build_report(
        resource_id=out["remediated"]["resourceId"], trigger="replay", error="the run broke off: ServiceRequestError",
        findings=[Finding("ACR_PULL_PERMISSION_MISSING", "no AcrPull", {"registryId": "x"}, True, source="doc")],
        actions=[Action("assign-role", "x", "403 AuthorizationFailed", params={"scope": "x"},
                        cause="ACR_PULL_PERMISSION_MISSING", status="failed")],
        redeploy=RedeployResult("failed", 3, "still failing", ErrorInfo("InaccessibleImage", "not accessible")),
        notes=["the Activity Log could not be read: 429 TooManyRequests"],
    )
    out["failed"] = {**failed, "retryable": True, "id": "0123456789abcdef0123456789abcdef-1"}
    return out


# --- the published files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = _schema(name)
    assert schema["$schema"] == DRAFT
    Draft202012Validator.check_schema(schema)


def test_the_published_report_schema_is_the_file_the_app_loads() -> None:
    loaded = Path(str(report.SCHEMA_FILE))
    assert PUBLISHED["report"].resolve() == loaded.resolve()
    assert PUBLISHED["report"].read_bytes() == loaded.read_bytes()
    assert report.report_schema() == _schema("report")
    assert tuple(_schema("report")["required"]) == report.REQUIRED_KEYS


def test_the_published_scenario_schema_is_the_file_the_sandbox_loads() -> None:
    assert SCENARIO_SCHEMA_FILE.resolve() == PUBLISHED["scenario"].resolve()


def _packaged(relative: PurePosixPath) -> bool:
    """Whether ``func azure functionapp publish`` ships ``relative``: no .funcignore line matches it.

    Every pattern there is a bare name or ``**/name`` (asserted), which gitignore matches against
    any path component.
    """
    for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip().rstrip("/").removeprefix("**/")
        if not pattern or pattern.startswith("#"):
            continue
        assert "/" not in pattern, f"{line!r}: teach _packaged this pattern"
        if any(fnmatch.fnmatchcase(part, pattern) for part in relative.parts):
            return False
    return True


def test_the_report_schema_the_app_loads_is_deployed_with_it(tmp_path: Path) -> None:
    loaded = Path(str(report.SCHEMA_FILE))
    assert not loaded.is_symlink() and loaded.resolve().is_relative_to(ROOT / "remediation")
    # the published copy at the root is a pointer for readers; the deployment leaves it out
    assert not _packaged(PurePosixPath("schemas/report.schema.json"))
    # What the deployment ships of the app, alone: it still finds and uses the schema.
    for path in (ROOT / "remediation").rglob("*"):
        relative = PurePosixPath(path.relative_to(ROOT).as_posix())
        if path.is_file() and _packaged(relative):
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp_path / relative)
    check = ("import sys; from remediation import report; "
             "assert str(report.SCHEMA_FILE).startswith(sys.argv[1]), report.SCHEMA_FILE; "
             "report.validate_report(report.build_report(resource_id='/subscriptions/x', trigger='cli'))")
    # -E: no PYTHONPATH, so the copy in the working directory is the only remediation there is
    done = subprocess.run([sys.executable, "-E", "-c", check, str(tmp_path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_schemas_enums_are_the_models() -> None:
    defs = _schema("report")["$defs"]
    assert tuple(defs["trigger"]["enum"]) == typing.get_args(model.Trigger)
    assert tuple(defs["outcome"]["enum"]) == typing.get_args(model.Outcome)
    assert tuple(defs["actionStatus"]["enum"]) == typing.get_args(model.ActionStatus)
    hints = typing.get_type_hints(RedeployResult)
    assert tuple(defs["redeployStatus"]["enum"]) == typing.get_args(hints["status"])
    assert tuple(defs["notification"]["properties"]["channel"]["enum"]) == notify.CHANNELS
    assert _schema("scenario")["$defs"]["expect"]["properties"]["outcome"]["enum"] == defs["outcome"]["enum"]


# --- what the app and the bundled files produce fits -------------------------------------------------


def test_every_report_shape_fits_the_published_schema(reports: dict[str, dict[str, Any]]) -> None:
    assert set(reports) == set(typing.get_args(model.Outcome))
    validator = _validator("report")
    for outcome, produced in reports.items():
        assert produced["outcome"] == outcome
        assert list(validator.iter_errors(produced)) == [], outcome
        validate_report(produced)


def test_every_event_grid_data_fits_the_published_schema(reports: dict[str, dict[str, Any]]) -> None:
    validator = _validator("report", "eventData")
    for outcome, produced in reports.items():
        assert list(validator.iter_errors(compact(produced))) == [], outcome
    with pytest.raises(Exception, match="needsAction"):
        validator.validate({k: v for k, v in compact(reports["diagnosed"]).items() if k != "needsAction"})


def test_notification_entries_fit_the_published_schema(reports: dict[str, dict[str, Any]]) -> None:
    entries = notify.Notifier(Settings()).send(reports["remediated"])
    assert list(_validator("report").iter_errors({**reports["remediated"], "notifications": entries})) == []


@pytest.mark.parametrize("path", bundled_scenarios(), ids=lambda p: p.stem)
def test_every_bundled_scenario_fits_the_published_schema(path: Path) -> None:
    assert list(_validator("scenario").iter_errors(json.loads(path.read_text(encoding="utf-8")))) == []


# --- a violation is one line naming the field ---------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["causes"][0].pop("summary"), "missing key causes[0].summary"),
        (lambda r: r["redeploy"].update(error="boom"), "redeploy.error must be a JSON object, got string"),
        (lambda r: r.update(timings={"gather": "fast"}), "timings.gather must be a number, got string"),
        (lambda r: r.update(notes="one"), "notes must be a list, got string"),
        (lambda r: r["actions"][0].update(status="applied"), "actions[0].status must not be applied: a dry-run"),
    ],
)
def test_a_report_violation_is_one_line_naming_the_field(
    reports: dict[str, dict[str, Any]], mutate: Any, expected: str
) -> None:
    broken = copy.deepcopy(reports["dry-run"])
    mutate(broken)
    assert list(_validator("report").iter_errors(broken)), "the published schema refuses it too"
    with pytest.raises(ReportError) as info:
        validate_report(broken)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"invalid report: {expected}"), message


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["behaviour"].update(pullFailureMode="later"), "behaviour.pullFailureMode: "),
        (lambda d: d["expect"].update(redeployAttempts={"min": "two"}), "expect.redeployAttempts.min: "),
        (lambda d: d["failedWrite"].pop("body"), "failedWrite.body: must be the container group JSON"),
        (lambda d: d["resources"][0].pop("id"), "resources[0].id: must be a resource id starting with /subscriptions/"),
        (lambda d: d.update(deployer={}), "deployer.principalId: is missing"),
        (lambda d: d["behaviour"]["faults"].append({"match": "* *", "deliver": "x"}), "behaviour.faults[0].deliver: "),
    ],
)
def test_a_scenario_violation_is_one_line_naming_the_field(mutate: Any, expected: str) -> None:
    data = json.loads((ROOT / "scenarios" / "missing-acrpull.json").read_text(encoding="utf-8"))
    mutate(data)
    assert list(_validator("scenario").iter_errors(data)), "the published schema refuses it too"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "bad.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"bad.json: {expected}"), message

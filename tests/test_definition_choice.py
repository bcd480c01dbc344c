"""Which source's definition stands for the failed write: replay > Activity Log > deployment >
live group > snapshot > the image the error names."""

from __future__ import annotations

from typing import Any

import pytest

from remediation.definition import DefinitionSources, choose_definition, parse_definition
from remediation.errors import InputError
from remediation.model import ErrorInfo

GROUP_ID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/web"
FAILED_IMAGE = "myacr.azurecr.io/team/app:v2"
PULL_ERROR = ErrorInfo("InaccessibleImage", f"The image '{FAILED_IMAGE}' in container group 'web' is not "
                                            "accessible. Please check the image and registry credential.")
BAD_BODY = {"properties": {"containers": [{"name": "app", "properties": {"image": "myacr.azurecr.io/App:v2"}}]}}
BAD_BODY_NOTE = ("could not be read: properties.containers[0].properties.image 'myacr.azurecr.io/App:v2' is not a "
                 "valid image reference: repository component 'App' must be lower-case")
NOTHING_RECOVERED = "no definition of the attempted container group could be recovered"


def body(image: str = FAILED_IMAGE, **extra: Any) -> dict[str, Any]:
    return {"location": "eastus", "properties": {"containers": [{"name": "app", "properties": {"image": image}}]},
            **extra}


DEPLOYMENT = parse_definition(GROUP_ID, body(), "2023-05-01", "deployment")


def choose(**sources: Any) -> tuple[str | None, tuple[str, ...]]:
    """The chosen definition's source, and the notes."""
    choice = choose_definition(GROUP_ID, DefinitionSources(**sources))
    return (choice.definition.source if choice.definition else None), choice.notes


def test_a_replay_wins_over_every_recorded_source() -> None:
    choice = choose_definition(GROUP_ID, DefinitionSources(
        replay=body(apiVersion="2021-10-01"), activity_log=body(), deployment=DEPLOYMENT, existing=body(),
        snapshot=body(), error=PULL_ERROR))
    assert choice.definition is not None
    assert (choice.definition.source, choice.definition.api_version) == ("replay", "2021-10-01")
    assert choice.notes == () and choice.recovered


def test_a_replay_that_cannot_be_read_is_the_callers_error() -> None:
    with pytest.raises(InputError, match="must be lower-case"):
        choose_definition(GROUP_ID, DefinitionSources(replay=BAD_BODY, activity_log=body()))


def test_the_activity_log_wins_over_the_deployment_and_the_live_group() -> None:
    assert choose(activity_log=body(), deployment=DEPLOYMENT, existing=body(), error=PULL_ERROR) == (
        "activity-log", ())


def test_an_unreadable_activity_log_body_is_noted_and_the_deployment_used() -> None:
    assert choose(activity_log=BAD_BODY, deployment=DEPLOYMENT) == (
        "deployment", (f"the definition from activity-log {BAD_BODY_NOTE}",))


def test_the_deployment_wins_over_the_live_group_and_the_snapshot() -> None:
    assert choose(deployment=DEPLOYMENT, existing=body(), snapshot=body(), error=PULL_ERROR) == ("deployment", ())


def test_the_live_group_stands_in_when_it_runs_the_image_that_failed() -> None:
    assert choose(existing=body(), snapshot=body(), error=PULL_ERROR) == ("existing", ())


def test_the_live_group_stands_in_when_the_error_names_no_image() -> None:
    assert choose(existing=body("myacr.azurecr.io/team/app:v1")) == ("existing", ())
    other = ErrorInfo("InaccessibleImage", "the image could not be pulled")
    assert choose(existing=body("myacr.azurecr.io/team/app:v1"), error=other) == ("existing", ())


def test_a_live_group_running_another_image_is_not_what_was_attempted() -> None:
    assert choose(existing=body("myacr.azurecr.io/team/app:v1"), snapshot=body(), error=PULL_ERROR) == (
        "snapshot",
        (f"the existing definition does not run {FAILED_IMAGE}, the image that failed; it is not what was "
         "attempted, so it is not used",))


def test_the_image_check_ignores_case() -> None:
    assert choose(existing=body(FAILED_IMAGE), error=ErrorInfo("InaccessibleImage", PULL_ERROR.message.replace(
        FAILED_IMAGE, FAILED_IMAGE.upper()))) == ("existing", ())


def test_an_unreadable_live_group_is_noted_and_the_snapshot_used() -> None:
    assert choose(existing=BAD_BODY, snapshot=body(), error=PULL_ERROR) == (
        "snapshot", (f"the definition from existing {BAD_BODY_NOTE}",))


def test_a_snapshot_of_another_image_leaves_only_the_error_message() -> None:
    choice = choose_definition(GROUP_ID, DefinitionSources(snapshot=body("myacr.azurecr.io/team/app:v1"),
                                                           error=PULL_ERROR))
    assert choice.definition is not None and choice.definition.source == "error-message"
    assert [i.raw for i in choice.definition.images] == [FAILED_IMAGE]
    assert not choice.recovered
    assert choice.notes == (
        f"the snapshot definition does not run {FAILED_IMAGE}, the image that failed; it is not what was "
        "attempted, so it is not used",
        f"{NOTHING_RECOVERED}; diagnosing from the image named in the error ({FAILED_IMAGE})",
    )


def test_with_no_source_the_error_message_names_the_image() -> None:
    assert choose(error=PULL_ERROR) == (
        "error-message", (f"{NOTHING_RECOVERED}; diagnosing from the image named in the error ({FAILED_IMAGE})",))


def test_with_no_source_and_no_image_in_the_error_nothing_is_recovered() -> None:
    assert choose() == (None, (NOTHING_RECOVERED,))
    assert choose(error=ErrorInfo("InaccessibleImage", "pull failed")) == (None, (NOTHING_RECOVERED,))
    assert not choose_definition(GROUP_ID, DefinitionSources()).recovered


def test_an_image_in_the_error_that_is_not_a_valid_reference_recovers_nothing() -> None:
    error = ErrorInfo("InaccessibleImage", "The image 'Bad Image' in container group 'web' is not accessible.")
    assert choose(error=error) == (None, (NOTHING_RECOVERED,))


def test_a_sweep_never_diagnoses_from_the_error_message() -> None:
    assert choose(error=PULL_ERROR, from_error_message=False) == (None, ())
    assert choose(existing=body(), from_error_message=False) == ("existing", ())


def test_read_notes_come_in_the_order_of_the_sources() -> None:
    read_notes = {"existing": ["the container group could not be read: Forbidden"],
                  "deployment": ["deployments could not be listed: Forbidden"],
                  "activity-log": ["Activity Log could not be read: Forbidden"]}
    assert choose(activity_log=BAD_BODY, existing=body("myacr.azurecr.io/team/app:v1"), error=PULL_ERROR,
                  read_notes=read_notes) == ("error-message", (
                      "Activity Log could not be read: Forbidden",
                      f"the definition from activity-log {BAD_BODY_NOTE}",
                      "deployments could not be listed: Forbidden",
                      "the container group could not be read: Forbidden",
                      f"the existing definition does not run {FAILED_IMAGE}, the image that failed; it is not what "
                      "was attempted, so it is not used",
                      f"{NOTHING_RECOVERED}; diagnosing from the image named in the error ({FAILED_IMAGE})"))


def test_read_notes_are_kept_whichever_source_is_chosen() -> None:
    assert choose(replay=body(), read_notes={"existing": ["the container group could not be read: Forbidden"]}) == (
        "replay", ("the container group could not be read: Forbidden",))

"""MDF Connect's submission document, status vocabulary and naming rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from matterhub.core.connect import (
    CODES,
    STEP_NAMES,
    StepStatus,
    SubmissionRequest,
    display_status,
    merge_blocks,
    overall_state,
    sandbox_source_name,
)
from matterhub.core.datasets import derive_source_name

DC = {"titles": [{"title": "The Elastic Moduli of Refractory High Entropy Alloys"}],
      "creators": [{"creatorName": "Blaiszik, Ben"}]}  # fmt: skip


def test_twelve_steps_and_eleven_codes_as_mdf() -> None:
    assert STEP_NAMES[0] == "sub_start" and STEP_NAMES[-1] == "ingest_cleanup"
    assert len(STEP_NAMES) == 12
    assert set(CODES) == set("zPSMLFRHNTX")


def test_source_name_uses_author_and_title_words_one_two_and_last() -> None:
    assert derive_source_name(DC) == "blaiszik_elastic_moduli_alloys"
    short = {**DC, "titles": [{"title": "Graphene"}]}
    assert derive_source_name(short) == "blaiszik_graphene"
    assert sandbox_source_name("blaiszik_graphene", test=True) == "_test_blaiszik_graphene"
    assert sandbox_source_name("x", test=False) == "x"


def test_a_full_mdf_submission_parses() -> None:
    request = SubmissionRequest.model_validate(
        {
            "dc": DC,
            "data_sources": ["https://example.org/data.zip"],
            "mdf": {"acl": ["public"], "organizations": ["MDF Open"]},
            "index": {
                "csv": {
                    "mapping": {"material.composition": "formula", "custom.gap": "gap"},
                    "units": {"custom": {"gap": "eV"}},
                }
            },
            "services": {"mdf_publish": {"publication_location": "x"}},
            "curation": True,
            "test": True,
            "tags": ["alloys"],
            "custom": {"temperature": "300 K"},
            "custom_desc": {"temperature": "measurement temperature"},
            "extraction_config": {"group_by_dir": True},
            "no_extract": False,
            "update": False,
        }
    )
    assert request.curation and request.test and request.index["csv"]["mapping"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"data_sources": ["x"]}, None, "dc is required"),
        ({"dc": DC}, None, "data_sources is required"),
        ({"dc": DC, "data_sources": ["x"], "services": {"zenodo": {}}}, None, "unknown service"),
        (
            {"dc": DC, "data_sources": ["x"], "custom": {str(i): "v" for i in range(11)}},
            "custom",
            "at most 10",
        ),
        ({"dc": DC, "data_sources": ["x"], "curation": "maybe"}, "curation", "boolean"),
        (
            {"dc": DC, "data_sources": ["x"], "index": {"csv": {"units": ["kcal/mol"]}}},
            "index",
            "index.csv.units must be an object",
        ),
        (
            {"dc": DC, "data_sources": ["x"], "index": {"csv": {"units": {"dft": {"e": ""}}}}},
            "index",
            "index.csv.units.dft.e: a unit is a non-empty string",
        ),
        ({"dc": DC, "data_sources": ["x"], "surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_bad_submissions_name_the_problem(body: dict, field: str | None, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SubmissionRequest.model_validate(body)
    error = caught.value.errors()[0]
    assert message in error["msg"]
    if field:
        assert error["loc"][0] == field


def test_metadata_only_updates_need_no_data_sources() -> None:
    assert SubmissionRequest.model_validate({"update_metadata_only": True}).dc == {}


def test_overall_state_and_display() -> None:
    steps = [StepStatus(step=name, code="S") for name in STEP_NAMES]
    assert overall_state(steps) == "SUCCEEDED"
    steps[5] = StepStatus(step="curation", code="P", detail="waiting for a curator")
    assert overall_state(steps) == "ACTIVE"
    steps[6] = StepStatus(step="ingest_search", code="F", detail="index unavailable")
    assert overall_state(steps) == "FAILED"
    text = display_status("x_v1.1", "alice", datetime(2026, 1, 2, 3, 4, tzinfo=UTC), steps)
    assert "Dataset curation: Processing: waiting for a curator" in text
    assert "MDF Search ingestion: Failed: index unavailable" in text


def test_merge_blocks_is_deep() -> None:
    merged = merge_blocks(
        {"material": {"elements": ["Fe"]}, "a": 1}, {"material": {"composition": "Fe"}, "a": 2}
    )
    assert merged == {"material": {"elements": ["Fe"], "composition": "Fe"}, "a": 2}

"""MDF's record and dataset schemas, as shipped and as Connect applies them."""

from __future__ import annotations

from typing import Any

import pytest

from matterhub.connect.pipeline import _validated
from matterhub.core.errors import InvalidInput
from matterhub.core.schemas import schema, validation_errors


def record(**blocks: Any) -> dict[str, Any]:
    return {
        "mdf": {
            "source_name": "x",
            "source_id": "x_v1.0",
            "scroll_id": 1,
            "acl": ["public"],
            "ingest_date": "2026-01-01T00:00:00Z",
            "resource_type": "record",
        },
        "files": [{"filename": "a.cif", "data_type": "text", "length": 3}],
        **blocks,
    }


def test_a_good_record_passes() -> None:
    good = record(
        material={"elements": ["Fe"], "composition": "Fe2"},
        crystal_structure={"space_group_number": 229},
    )
    assert validation_errors(good, "record") == []


@pytest.mark.parametrize(
    ("blocks", "path"),
    [
        (
            {"crystal_structure": {"space_group_number": 300}},
            "crystal_structure.space_group_number",
        ),
        ({"material": {"elements": "Fe"}}, "material.elements"),
        ({"surprise": {}}, "(top)"),
    ],
)
def test_bad_records_name_the_path(blocks: dict[str, Any], path: str) -> None:
    errors = validation_errors(record(**blocks), "record")
    assert errors and errors[0][0] == path


def test_dataset_needs_dc_with_its_required_fields() -> None:
    errors = validation_errors(
        {"mdf": record()["mdf"], "dc": {"titles": [{"title": "t"}]}}, "dataset"
    )
    assert {p for p, _ in errors} == {"dc"}
    assert schema("dataset")["required"] == ["dc", "mdf"]


def test_connect_drops_bad_blocks_and_keeps_the_rest() -> None:
    records, dropped = _validated(
        [
            record(
                material={"elements": ["Fe"]}, crystal_structure={"space_group_number": 0}, weird={}
            )
        ]
    )
    assert "crystal_structure" not in records[0] and "weird" not in records[0]
    assert records[0]["material"] == {"elements": ["Fe"]}
    assert len(dropped) == 2
    broken = record()
    broken["mdf"].pop("acl")
    with pytest.raises(InvalidInput, match="mdf"):
        _validated([broken])

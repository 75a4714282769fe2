"""DLHub type blocks in words, as the servable page shows them."""

from __future__ import annotations

import pytest

from matterhub.web.servable_view import call_snippets, summarize_servable
from matterhub.web.typenames import parameter_rows, type_parts, type_text

FLOAT = {"type": "float"}


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (FLOAT, "float"),
        ({"type": "integer"}, "integer"),
        ({"type": "ndarray", "shape": [None, 3], "item_type": FLOAT}, "ndarray[None, 3] of float"),
        ({"type": "ndarray", "shape": "Any"}, "ndarray of any shape"),
        ({"type": "ndarray", "shape": []}, "ndarray[]"),
        ({"type": "list", "item_type": {"type": "structure"}}, "list of structure"),
        (
            {"type": "list", "item_type": {"type": "list", "item_type": {"type": "string"}}},
            "list of list of string",
        ),
        (
            {"type": "tuple", "element_types": [FLOAT, {"type": "list", "item_type": FLOAT}]},
            "tuple (float, list of float)",
        ),
        (
            {
                "type": "tuple",
                "element_types": [{"type": "tuple", "element_types": [FLOAT, FLOAT]}, FLOAT],
            },
            "tuple ((tuple (float, float)), float)",
        ),
        ({"type": "dict", "properties": {}}, "dict (any keys)"),
        (
            {"type": "dict", "properties": {"a": FLOAT, "b": {"type": "boolean"}}},
            "dict {a: float, b: boolean}",
        ),
        ({"type": "python object", "python_type": "ase.Atoms"}, "python object (ase.Atoms)"),
        ({"type": "file", "file_types": ["image/png"]}, "file (image/png)"),
        ({"type": "file"}, "file"),
        (
            {"type": "structure", "elements": ["Fe", "O"], "periodic": True, "max_sites": 50},
            "structure (elements Fe, O; periodic; at most 50 sites)",
        ),
        ({"type": "composition"}, "composition"),
        ({"type": "datetime"}, "date-time"),
        ({"type": "mystery"}, "mystery"),
        ({}, "any"),
        (None, "any"),
    ],
)
def test_type_text(spec: object, text: str) -> None:
    assert type_text(spec) == text


def test_parts_keep_each_element_and_its_description() -> None:
    spec = {
        "type": "tuple",
        "element_types": [
            {"type": "structure", "description": "the crystal"},
            {"type": "ndarray", "shape": [3], "item_type": FLOAT},
        ],
    }
    assert type_parts(spec) == [
        {"name": "[0]", "type": "structure", "description": "the crystal"},
        {"name": "[1]", "type": "ndarray[3] of float", "description": ""},
    ]
    assert type_parts({"type": "dict", "properties": {"t": FLOAT}})[0]["name"] == "t"
    assert type_parts(FLOAT) == []


def test_parameters_use_declared_types_else_the_defaults_kind() -> None:
    method = {
        "parameters": {"offset": 0.0, "mode": "fast", "flag": True},
        "method_details": {"parameter_types": {"mode": {"type": "string", "description": "how"}}},
    }
    rows = {r["name"]: r for r in parameter_rows(method)}
    assert rows["offset"]["type"] == "float" and rows["offset"]["default"] == "0.0"
    assert rows["mode"]["type"] == "string" and rows["mode"]["description"] == "how"
    assert rows["flag"]["type"] == "boolean" and rows["flag"]["default"] == "true"
    assert parameter_rows({}) == []


def test_search_row_and_snippets() -> None:
    document = {
        "datacite": {"titles": [{"title": "Gap"}], "creators": [{"creatorName": "Doe, Jane"}]},
        "dlhub": {"owner": "jane", "name": "gap", "shorthand_name": "jane/gap", "domains": ["dft"]},
        "servable": {"methods": {"run": {"input": {"type": "list", "item_type": FLOAT}}}},
    }
    row = summarize_servable(document)
    assert row["href"] == "/servables/jane/gap" and row["input"] == "list of float"
    assert row["authors"] == ["Doe, Jane"] and row["domains"] == ["dft"]
    public = call_snippets("jane/gap", "http://hub/", [1.0, True], public=True)
    assert 'client.run("jane/gap", [1.0, True])' in public["python"]
    assert "token" not in public["python"] and "Authorization" not in public["curl"]
    assert "-d '{\"inputs\": [1.0, true]}'" in public["curl"]
    assert "http://hub/api/servables/jane/gap/run" in public["curl"]
    private = call_snippets("jane/gap", "http://hub", "it's", public=False)
    assert 'token="YOUR_TOKEN"' in private["python"]
    assert "Bearer $MATTERHUB_TOKEN" in private["curl"] and "it'\\''s" in private["curl"]
    huge = call_snippets("jane/gap", "http://hub", list(range(1000)), public=True)
    assert 'client.run("jane/gap", inputs)' in huge["python"]

"""Excel and XML (summaries and MDF `index` mappings), the `filename` index, and bad input."""

from __future__ import annotations

import datetime as dt
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.connect.extractors import ExtractionContext, FileGroup, run_extractors
from matterhub.connect.extractors import sheets as sheets_module
from matterhub.connect.extractors.pool import ExtractorPool
from matterhub.connect.extractors.tabular import TabularExtractor

from .conftest import staged

TABULAR = TabularExtractor()
XML = """<?xml version="1.0"?>
<dataset xmlns="urn:example:lab" title="Band gaps">
  <sample id="1"><formula>Fe2O3</formula><gap units="eV">2.1</gap></sample>
  <sample id="2"><formula>TiO2</formula><gap units="eV">3.2</gap></sample>
  <sample id="3"><formula>Si</formula><gap units="eV">n.a.</gap></sample>
</dataset>
"""


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractorPool]:
    pool = ExtractorPool(2)
    yield pool
    pool.close()


def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "gaps"
    sheet.append(["formula", "gap (eV)", "T (K)", "measured", "ok"])
    sheet.append(["Fe2O3", 2.1, 300, dt.datetime(2024, 5, 1, 12, 0), True])
    sheet.append(["TiO2", 3.2, 310, dt.datetime(2024, 5, 2, 9, 30), False])
    sheet.append(["Si", None, 290, None, True])
    other = book.create_sheet("notes")
    other.append(["title row, not a header"])
    other.append(["sample", "value"])
    other.append(["a", "x"])
    book.save(path)
    return path


def _run(path: Path, root: Path, **context: Any) -> Any:
    file = staged(path, root)
    assert TABULAR.accepts(file)
    return TABULAR.extract(FileGroup(file.relpath, (file,)), ExtractionContext(**context))


def test_excel_summary_has_sheets_columns_types_and_row_count(tmp_path: Path) -> None:
    table = _run(_workbook(tmp_path / "gaps.xlsx"), tmp_path)["tabular"]
    assert table["format"] == "excel"
    assert table["sheet_names"] == ["gaps", "notes"]
    assert table["row_count"] == 3
    columns = {c["name"]: c for c in table["columns"]}
    assert [c["name"] for c in table["columns"]] == [
        "formula",
        "gap (eV)",
        "T (K)",
        "measured",
        "ok",
    ]
    assert columns["formula"]["type"] == "string"
    assert columns["gap (eV)"] == {
        "name": "gap (eV)",
        "type": "number",
        "missing": 1,
        "min": 2.1,
        "max": 3.2,
        "mean": pytest.approx(2.65),
    }
    assert columns["T (K)"]["min"] == 290
    assert columns["measured"]["type"] == "datetime"
    assert columns["ok"]["type"] == "boolean"
    assert table["sheets"][1]["name"] == "notes"


def test_excel_mapping_gives_one_record_per_row(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "gaps.xlsx")
    mapping = {"material": {"composition": "formula"}, "custom.gap": "gap (eV)"}  # nested, as MDF
    rows = _run(path, tmp_path, index={"excel": {"mapping": mapping, "na_values": ["-"]}})
    assert rows == [
        {"material": {"composition": "Fe2O3"}, "custom": {"gap": 2.1}},
        {"material": {"composition": "TiO2"}, "custom": {"gap": 3.2}},
        {"material": {"composition": "Si"}},
    ]
    index = {"excel": {"mapping": {"custom.v": "value"}, "sheet": "notes", "header_row": 2}}
    assert _run(path, tmp_path, index=index) == [{"custom": {"v": "x"}}]
    index = {"excel": {"mapping": {"custom.when": "measured"}}}
    assert _run(path, tmp_path, index=index)[0] == {"custom": {"when": "2024-05-01T12:00:00"}}


def test_xml_summary_finds_the_rows_and_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "gaps.xml"
    path.write_text(XML)
    table = _run(path, tmp_path)["tabular"]
    assert table["root"] == "dataset"
    assert table["row_path"] == "dataset.sample"
    assert table["row_count"] == 3
    columns = {c["name"]: c for c in table["columns"]}
    assert set(columns) == {"@id", "formula", "gap.@units", "gap.#text"}
    assert columns["@id"]["type"] == "number"
    assert columns["formula"]["type"] == "string"
    assert columns["gap.#text"] == {
        "name": "gap.#text",
        "type": "string",  # "n.a." is text unless the submission calls it N/A
        "missing": 0,
    }
    assert table["element_count"] == 1 + 3 * 3


def test_xml_mapping_with_rows_and_whole_document(tmp_path: Path) -> None:
    path = tmp_path / "gaps.xml"
    path.write_text(XML)
    mapping = {"material.composition": "formula", "custom.gap": "gap.#text", "custom.id": "@id"}
    index = {"xml": {"mapping": mapping, "rows": "dataset.sample", "na_values": "n.a."}}
    assert _run(path, tmp_path, index=index) == [
        {"material": {"composition": "Fe2O3"}, "custom": {"gap": 2.1, "id": 1}},
        {"material": {"composition": "TiO2"}, "custom": {"gap": 3.2, "id": 2}},
        {"material": {"composition": "Si"}, "custom": {"id": 3}},
    ]
    # Without rows: one record for the document, paths from the root tag (MDF's xmltodict view).
    index = {
        "xml": {
            "mapping": {
                "custom.title": "dataset.@title",
                "custom.first": "dataset.sample.0.formula",
            }
        }
    }
    assert _run(path, tmp_path, index=index) == [
        {"custom": {"title": "Band gaps", "first": "Fe2O3"}}
    ]


def test_vasprun_is_left_to_the_vasp_extractor(tmp_path: Path) -> None:
    path = tmp_path / "vasprun.xml"
    path.write_text("<modeling/>")
    assert not TABULAR.accepts(staged(path, tmp_path))


def test_filename_index_fills_fields_from_names(tmp_path: Path, pool: ExtractorPool) -> None:
    (tmp_path / "Fe2O3_300K_run1.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "TiO2_na_run2.txt").write_text("y")
    files = [staged(p, tmp_path) for p in sorted(tmp_path.rglob("*.txt"))]
    mapping = {
        "material.composition": "^[A-Za-z0-9]+(?=_)",  # MDF: the whole match
        "custom.temperature_K": r"_(\d+)K",  # one group: the group
        "custom.run": r"run(?P<value>\d+)",  # a group named value
    }
    context = ExtractionContext(index={"filename": {"mapping": mapping}})
    result = run_extractors(files, context, pool=pool)
    by_name = {r["files"][0]["filename"]: r for r in result.records}
    assert by_name["Fe2O3_300K_run1.txt"]["material"] == {"composition": "Fe2O3"}
    assert by_name["Fe2O3_300K_run1.txt"]["custom"] == {"temperature_K": 300, "run": 1}
    assert by_name["TiO2_na_run2.txt"]["custom"] == {"run": 2}
    assert "filename" in result.citations
    # Without a filename index the extractor does not run at all.
    plain = run_extractors(files, ExtractionContext(), pool=pool)
    assert "filename" not in plain.citations
    assert all("custom" not in r for r in plain.records)


def test_filename_bad_regex_is_a_warning_naming_the_field(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    (tmp_path / "Fe_1.txt").write_text("x")
    mapping = {"custom.bad": "([", "material.composition": "^[A-Z][a-z]?"}
    context = ExtractionContext(index={"filename": {"mapping": mapping}})
    result = run_extractors([staged(tmp_path / "Fe_1.txt", tmp_path)], context, pool=pool)
    assert result.records[0]["material"] == {"composition": "Fe"}
    (warning,) = result.warnings
    assert "index.filename.mapping.custom.bad" in warning["message"]


def _bomb(path: Path) -> None:
    """The billion laughs: 10**11 "lol"s from a few hundred bytes of entity definitions."""
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 12))
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e0 "lol">{entities}]><r>&e11;</r>')


BAD: dict[str, tuple[Any, str]] = {
    "truncated.xlsx": (
        lambda p, good: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
        "BadZipFile",
    ),
    "mislabelled.xlsx": (lambda p, good: p.write_text("formula,gap\nFe2O3,2.1\n"), "BadZipFile"),
    "not-a-workbook.xlsx": (lambda p, good: zipfile.ZipFile(p, "w").close(), "not an Excel"),
    "truncated.xml": (lambda p, good: p.write_text(XML[: len(XML) // 2]), "unclosed token"),
    "binary.xml": (lambda p, good: p.write_bytes(b"\x00\xff\xfe garbage"), "not well-formed"),
    "bomb.xml": (lambda p, good: _bomb(p), "amplification"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_tables_give_a_warning_within_the_time_limit(
    name: str, tmp_path: Path, pool: ExtractorPool
) -> None:
    good = _workbook(tmp_path / "good.xlsx")
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    make, message = BAD[name]
    make(bad, good)
    started = time.monotonic()
    result = run_extractors(
        [staged(bad, bad.parent)], ExtractionContext(time_limit_s=10), pool=pool
    )
    assert time.monotonic() - started < 12
    assert [w["extractor"] for w in result.warnings] == ["tabular"], result.warnings
    assert message in result.warnings[0]["message"]
    assert result.records[0]["files"][0]["filename"] == name
    assert "tabular" not in result.records[0]


def test_a_workbook_that_inflates_too_far_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _workbook(tmp_path / "gaps.xlsx")
    monkeypatch.setattr(sheets_module, "MAX_INFLATED_BYTES", 1000)
    with pytest.raises(ValueError, match="inflates to"):
        _run(path, tmp_path)


def test_mapping_units_go_beside_each_mapped_value(tmp_path: Path) -> None:
    table = tmp_path / "energies.csv"
    table.write_text("name,De_kcal_mol,De_xtb\nCH4,420.18,388.58\nH2O,232.58,\n")
    index = {
        "csv": {
            "mapping": {"custom.name": "name", "custom.De": "De_kcal_mol", "dft.De": "De_xtb"},
            "units": {"custom": {"De": "kcal/mol"}, "dft.De": "kcal/mol", "custom.none": "eV"},
        }
    }
    rows = _run(table, tmp_path, index=index)
    assert rows[0] == {
        "custom": {"name": "CH4", "De": 420.18, "De_units": "kcal/mol"},
        "dft": {"De": 388.58, "De_units": "kcal/mol"},
    }
    # No value, no unit: H2O's empty cell maps to nothing, so gets no `dft` block at all.
    assert rows[1] == {"custom": {"name": "H2O", "De": 232.58, "De_units": "kcal/mol"}}
    one = tmp_path / "one.json"
    one.write_text('{"e": 1.5}')
    json_index = {"json": {"mapping": {"dft.e": "e"}, "units": {"dft.e": "eV"}}}
    assert _run(one, tmp_path, index=json_index) == [{"dft": {"e": 1.5, "e_units": "eV"}}]


@pytest.mark.parametrize(
    ("units", "message"),
    [
        (["kcal/mol"], "index.csv.units must be an object"),
        ({"custom.a": 3}, "index.csv.units.custom.a"),
    ],
)
def test_bad_mapping_units_are_a_warning_naming_the_field(
    units: Any, message: str, tmp_path: Path, pool: ExtractorPool
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    index = {"csv": {"mapping": {"custom.a": "a"}, "units": units}}
    result = run_extractors(
        [staged(table, tmp_path)], ExtractionContext(index=index, time_limit_s=10), pool=pool
    )
    assert [w["extractor"] for w in result.warnings] == ["tabular"]
    assert message in result.warnings[0]["message"]

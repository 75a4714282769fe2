"""The argument-type grammar, validation messages and the materials types."""

from __future__ import annotations

import datetime as dt

import pytest

from matterhub.core.errors import InvalidInput
from matterhub.core.materials import parse_formula, parse_structure
from matterhub.core.types import check_type, compose_argument_block, type_label, validate

NACL_POSCAR = """NaCl
1.0
5.64 0 0
0 5.64 0
0 0 5.64
Na Cl
1 1
Direct
0 0 0
0.5 0.5 0.5
"""
WATER_XYZ = "3\nwater\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n"
SI_CIF = """data_Si
_cell_length_a 5.43
_cell_length_b 5.43
_cell_length_c 5.43
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Si1 Si 0 0 0
Si2 Si 0.25 0.25 0.25
"""


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "ndarray"}, "type.shape"),
        ({"type": "list"}, "type.item_type"),
        ({"type": "tuple"}, "type.element_types"),
        ({"type": "dict"}, "type.properties"),
        ({"type": "python object"}, "type.python_type"),
        ({"type": "tensor"}, "type.type"),
        ({"type": "ndarray", "shape": [3, 0]}, "type.shape[1]"),
        ({"type": "file", "file_types": ["not a mime"]}, "type.file_types[0]"),
        ({"type": "dict", "properties": {"f": {"type": "file"}}}, "type.properties.f"),
        (
            {"type": "list", "item_type": {"type": "list", "item_type": {"type": "file"}}},
            "type.item_type.item_type",
        ),
        ({"type": "structure", "elements": ["Xx"]}, "type.elements[0]"),
        ({"type": "string", "shape": [1]}, "type.shape"),
    ],
)
def test_grammar_errors_name_the_key(spec: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_type(spec)
    assert caught.value.field == field


def test_file_placement_follows_dlhub() -> None:
    check_type({"type": "file"})
    check_type({"type": "list", "item_type": {"type": "file", "file_types": ["text/csv"]}})
    check_type({"type": "tuple", "element_types": [{"type": "file"}, {"type": "integer"}]})


def test_compose_requires_the_type_keys() -> None:
    assert compose_argument_block("ndarray", "pixels", shape=[None, 3]) == {
        "type": "ndarray",
        "description": "pixels",
        "shape": [None, 3],
    }
    with pytest.raises(InvalidInput, match="needs 'item_type'"):
        compose_argument_block("list")


def test_messages_carry_the_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate(["a"], {"type": "list", "item_type": {"type": "integer"}})
    assert str(caught.value) == "expected int, received str at input[0]"
    assert caught.value.field == "input[0]"
    with pytest.raises(InvalidInput, match=r"expected list\[int\], received str at input$"):
        validate("a", {"type": "list", "item_type": {"type": "integer"}})


def test_dlhub_coercions() -> None:
    assert validate(3, {"type": "float"}) == []
    assert validate(1 + 2j, {"type": "number"}) == []
    assert validate(1, {"type": "boolean"}) == ["int given for bool at input"]
    with pytest.raises(InvalidInput):
        validate(True, {"type": "integer"})
    with pytest.raises(InvalidInput):
        validate(2.5, {"type": "integer"})
    assert validate("2024-01-02T03:04:05", {"type": "datetime"}) == []
    assert validate(dt.timedelta(seconds=3), {"type": "timedelta"}) == []
    with pytest.raises(InvalidInput):
        validate("yesterday", {"type": "datetime"})


def test_tuples_and_dicts_are_strict() -> None:
    pair = {"type": "tuple", "element_types": [{"type": "string"}, {"type": "float"}]}
    validate(["a", 1.0], pair)
    with pytest.raises(InvalidInput, match="length 3, expected 2"):
        validate(["a", 1.0, 2.0], pair)
    record = {"type": "dict", "properties": {"t": {"type": "float"}}}
    with pytest.raises(InvalidInput, match="unexpected key 'u'"):
        validate({"t": 1.0, "u": 2}, record)
    with pytest.raises(InvalidInput, match="missing key 't'"):
        validate({}, record)
    validate({"anything": 1}, {"type": "dict", "properties": {}})


def test_ndarrays_check_rank_sizes_and_items() -> None:
    spec = {"type": "ndarray", "shape": [None, 3], "item_type": {"type": "float"}}
    validate([[1, 2, 3], [4, 5, 6]], spec)
    with pytest.raises(InvalidInput, match="size 3 on axis 1, received 2"):
        validate([[1, 2], [3, 4]], spec)
    with pytest.raises(InvalidInput, match="shape \\(3,\\)"):
        validate([1, 2, 3], spec)
    with pytest.raises(InvalidInput, match="ragged"):
        validate([[1, 2, 3], [4]], spec)
    with pytest.raises(InvalidInput, match="expected float, received str"):
        validate([[1, 2, "x"]], spec)
    validate([[[1]]], {"type": "ndarray", "shape": "Any"})
    np = pytest.importorskip("numpy")
    validate(np.zeros((4, 3)), spec)
    with pytest.raises(InvalidInput):
        validate(np.zeros((4, 2)), spec)


def test_structures_parse_and_check_their_elements() -> None:
    assert parse_structure(NACL_POSCAR).elements == {"Na", "Cl"}
    assert parse_structure(WATER_XYZ).species == ("O", "H", "H")
    assert not parse_structure(WATER_XYZ).periodic
    assert parse_structure(SI_CIF).species == ("Si", "Si")
    assert parse_structure({"numbers": [26, 26], "pbc": [True, True, True]}).elements == {"Fe"}
    pymatgen_json = {"lattice": {}, "sites": [{"species": [{"element": "Ga", "occu": 1}]}]}
    assert parse_structure(pymatgen_json).format == "pymatgen-json"

    oxides = {"type": "structure", "elements": ["Na", "Cl", "O"], "periodic": True}
    validate(NACL_POSCAR, oxides)
    with pytest.raises(InvalidInput, match="element H is outside"):
        validate(WATER_XYZ, {"type": "structure", "elements": ["O"]})
    with pytest.raises(InvalidInput, match="periodic crystal"):
        validate(WATER_XYZ, {"type": "structure", "periodic": True})
    with pytest.raises(InvalidInput, match="not a structure"):
        validate("2\nbroken\nO 0 0\n", {"type": "structure", "formats": ["xyz"]})
    with pytest.raises(InvalidInput, match="Qq"):
        validate("1\nx\nQq 0 0 0\n", {"type": "structure"})
    with pytest.raises(InvalidInput, match="over the limit"):
        validate(WATER_XYZ, {"type": "structure", "max_sites": 2})


def test_structures_from_ase_objects() -> None:
    ase = pytest.importorskip("ase")
    validate(ase.Atoms("H2O"), {"type": "structure", "elements": ["H", "O"], "periodic": False})


def test_compositions() -> None:
    assert parse_formula("Ca(OH)2") == {"Ca": 1.0, "O": 2.0, "H": 2.0}
    assert parse_formula("Li0.5CoO2") == {"Li": 0.5, "Co": 1.0, "O": 2.0}
    spec = {"type": "composition", "elements": ["Fe", "O"]}
    validate("Fe2O3", spec)
    validate({"Fe": 2, "O": 3}, spec)
    with pytest.raises(InvalidInput, match="outside"):
        validate("NaCl", spec)
    with pytest.raises(InvalidInput, match="not a chemical element"):
        validate("Xy2", {"type": "composition"})
    with pytest.raises(InvalidInput, match="unbalanced"):
        validate("Ca(OH2", {"type": "composition"})
    with pytest.raises(InvalidInput):
        validate({"Fe": -1}, spec)


def test_labels() -> None:
    assert (
        type_label({"type": "tuple", "element_types": [{"type": "string"}, {"type": "float"}]})
        == "tuple[str, float]"
    )
    assert (
        type_label({"type": "ndarray", "shape": [None, 3], "item_type": {"type": "float"}})
        == "ndarray[float](None, 3)"
    )

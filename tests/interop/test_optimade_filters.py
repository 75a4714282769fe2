"""OPTIMADE filters → the search query tree; the formulas the indexer writes; XYZ sites."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matterhub.core.optimade import (
    anonymous_formula,
    element_counts,
    hill_formula,
    reduced_formula,
    structure_properties,
)
from matterhub.interop.optimade.entries import parse_xyz, sites_file
from matterhub.interop.optimade.fields import PREFIX, STRUCTURE_FIELDS
from matterhub.interop.optimade.filters import NOTHING, FilterError, FilterLimits, parse_filter
from matterhub.search import tree as qt

MUST, SHOULD, MUST_NOT = qt.Occur.MUST, qt.Occur.SHOULD, qt.Occur.MUST_NOT
# Filter-like text: properties, operators, values and parentheses in any order.
_FILTERISH = (
    r"((NOT |\(|\)| AND | OR |nsites|elements|_x_y|id|HAS |ALL |ONLY |LENGTH |IS KNOWN"
    r'|[<>=!]{1,2}|-?[0-9]{1,30}(\.[0-9]+)?|"[A-Za-z ]{0,5}"|,| ){0,30})'
)


def tree(text: str, limits: FilterLimits | None = None) -> qt.Node:
    node, _warnings = parse_filter(text, STRUCTURE_FIELDS, prefix=PREFIX, limits=limits)
    return node


def refused(text: str, limits: FilterLimits | None = None) -> FilterError:
    with pytest.raises(FilterError) as caught:
        tree(text, limits)
    return caught.value


def test_comparisons_become_exact_ranges_on_the_index_paths() -> None:
    assert tree("nelements=2") == qt.Range("optimade.nelements", "2", "2")
    assert tree("nsites < 5") == qt.Range("optimade.nsites", None, "5", include_high=False)
    assert tree("nsites >= 5") == qt.Range("optimade.nsites", "5", None)
    assert tree('chemical_formula_reduced="Fe2O3"') == qt.Range(
        "optimade.chemical_formula_reduced", "Fe2O3", "Fe2O3"
    )
    # `x != v` is false where x is unknown, so the value must exist.
    assert tree("nelements != 2") == qt.Bool(
        (
            (MUST, qt.Exists("optimade.nelements")),
            (MUST_NOT, qt.Range("optimade.nelements", "2", "2")),
        )
    )
    assert tree('last_modified >= "2026-01-01T00:00:00Z"') == qt.Range(
        "optimade.last_modified", "2026-01-01T00:00:00Z", None
    )


def test_constant_first_comparisons_flip_the_operator() -> None:
    assert tree("2 < nsites") == tree("nsites > 2")
    assert tree('"Fe" = chemical_formula_reduced') == tree('chemical_formula_reduced = "Fe"')
    assert tree("1 = 1") == qt.MatchAll()
    assert tree("1 > 2") == NOTHING


def test_boolean_structure_and_precedence() -> None:
    node = tree("nelements=1 OR nelements=2 AND NOT nsites>4")
    one = qt.Range("optimade.nelements", "1", "1")
    two = qt.Range("optimade.nelements", "2", "2")
    big = qt.Range("optimade.nsites", "4", None, include_low=False)
    # AND binds tighter than OR; NOT applies to its phrase.
    assert node == qt.Bool(
        ((SHOULD, one), (SHOULD, qt.Bool(((MUST, two), (MUST, qt.Bool(((MUST_NOT, big),)))))))
    )
    assert tree("(nelements=1 OR nelements=2) AND nsites>4") == qt.Bool(
        ((MUST, qt.Bool(((SHOULD, one), (SHOULD, two)))), (MUST, big))
    )
    assert tree("") == qt.MatchAll()


def test_list_operators() -> None:
    fe = qt.Range("optimade.elements", "Fe", "Fe")
    o = qt.Range("optimade.elements", "O", "O")
    assert tree('elements HAS "Fe"') == fe
    assert tree('elements HAS ALL "Fe","O"') == qt.Bool(((MUST, fe), (MUST, o)))
    assert tree('elements HAS ANY "Fe","O"') == qt.Bool(((SHOULD, fe), (SHOULD, o)))
    assert tree("elements LENGTH 3") == qt.Range("optimade.nelements", "3", "3")
    assert tree("elements LENGTH >= 3") == qt.Range("optimade.nelements", "3", None)
    only = tree('elements HAS ONLY "Fe","O"')
    assert isinstance(only, qt.Bool)
    excluded = {c.low for occur, c in only.clauses if occur is MUST_NOT and isinstance(c, qt.Range)}
    assert "Fe" not in excluded and "O" not in excluded and {"H", "C", "Og"} <= excluded
    # dimension_types always has three items; structure_features is always empty here.
    assert tree("dimension_types LENGTH 3") == qt.MatchAll()
    assert tree("structure_features LENGTH 0") == qt.MatchAll()
    assert tree('structure_features HAS "disorder"') == qt.Range(
        "optimade.structure_features", "disorder", "disorder"
    )


def test_string_operators_match_words() -> None:
    path = "optimade.chemical_formula_hill"
    assert tree('chemical_formula_hill CONTAINS "H4"') == qt.Wildcard(path, "*H4*")
    assert tree('chemical_formula_hill STARTS WITH "CH"') == qt.Wildcard(path, "CH*")
    assert tree('chemical_formula_hill STARTS "CH"') == qt.Wildcard(path, "CH*")
    assert tree('chemical_formula_hill ENDS WITH "O"') == qt.Wildcard(path, "*O")
    assert tree('chemical_formula_hill ENDS ""') == qt.Exists(path)
    assert tree('_matterhub_crystal_system CONTAINS "cub ic"') == qt.Phrase(
        "crystal_structure.crystal_system", "cub ic"
    )
    assert refused('_matterhub_crystal_system STARTS WITH "a b"').status == 501
    # Strings escape quotes and backslashes.
    assert tree(r'id = "a\"b"') == qt.Phrase("optimade.id", 'a"b')


def test_known_unknown_and_other_providers() -> None:
    assert tree("nsites IS KNOWN") == qt.Exists("optimade.nsites")
    assert tree("nsites IS UNKNOWN") == qt.Bool(((MUST_NOT, qt.Exists("optimade.nsites")),))
    node, warnings = parse_filter(
        "_otherdb_band_gap > 2", STRUCTURE_FIELDS, prefix=PREFIX, limits=None
    )
    assert node == NOTHING and "_otherdb_band_gap" in warnings[0]
    assert tree("_otherdb_band_gap IS UNKNOWN") == qt.MatchAll()
    assert tree('_matterhub_source_name = "dcdft"') == qt.Range("mdf.source_name", "dcdft", "dcdft")
    assert tree('type = "structures"') == qt.MatchAll()
    assert tree('type = "references"') == NOTHING


@pytest.mark.parametrize(
    ("text", "status", "says"),
    [
        ("nelements=", 400, "not valid OPTIMADE"),
        ("nelements = 2 AND", 400, "not valid OPTIMADE"),
        ("crazyfield = 2", 400, "unknown property 'crazyfield'"),
        ("_matterhub_nope = 2", 400, "unknown property"),
        ('nelements = "2"', 400, "holds numbers"),
        ("chemical_formula_reduced = 2", 400, "not a string"),
        ('elements = "Fe"', 400, "compare it with HAS"),
        ('nsites HAS "Fe"', 400, "not a list"),
        ('last_modified > "yesterday"', 400, "RFC 3339"),
        ("nelements CONTAINS 2", 400, "needs a string property"),
        ('lattice_vectors HAS "x"', 501, "cannot be used in filters"),
        ("nelements = nsites", 501, "two properties"),
        ('elements:species_at_sites HAS "Fe":"Fe"', 501, "zipped"),
        ('species_at_sites HAS ONLY "Fe"', 501, "cannot be used"),
        ('chemical_formula_reduced HAS ONLY "Fe"', 400, "not a list"),
        ("nelements = TRUE", 501, "boolean"),
        ('a.b = "x"', 501, "nested"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(text: str, status: int, says: str) -> None:
    error = refused(text)
    assert error.status == status and says in error.detail, error.detail


def test_filters_are_bounded_before_the_parser_runs() -> None:
    limits = FilterLimits(max_bytes=200, max_depth=5, max_comparisons=4)
    long = " OR ".join(f"nsites={i}" for i in range(40))
    error = refused(long, limits)
    assert "bytes long; the limit is 200" in error.detail and error.status == 400
    deep = "(" * 6 + "nsites=1" + ")" * 6
    assert "deeper than 5" in refused(deep, limits).detail
    # Parentheses inside strings are not nesting.
    assert tree('id = "((((((("', limits) == qt.Phrase("optimade.id", "(((((((")
    many = " OR ".join(f"nsites={i}" for i in range(5))
    assert "more than 4 comparisons" in refused(many, limits).detail
    # The default bound admits a filter of the largest size (its cost: bench, not asserted here).
    worst = " OR ".join(f'(nelements={i} AND elements HAS "Fe")' for i in range(200))[:4096]
    worst = worst[: worst.rfind(" OR ")]
    node = tree(worst)
    assert isinstance(node, qt.Bool) and len(node.clauses) > 80
    assert "bytes long" in refused("nsites=1 OR " * 400 + "nsites=1").detail


def test_formulas_follow_optimade() -> None:
    counts = element_counts("Fe4 O6")
    assert counts == {"Fe": 4, "O": 6}
    assert reduced_formula(counts) == "Fe2O3"
    assert anonymous_formula(counts) == "A3B2"
    assert hill_formula({"H": 4, "C": 1, "O": 1}) == "CH4O"
    assert hill_formula({"Na": 1, "Cl": 1}) == "ClNa"
    assert element_counts("Fe0.5 O1") is None  # partial occupancy
    assert element_counts("(CH3)2") is None
    many = {f"E{i}": 30 - i for i in range(28)}
    assert anonymous_formula(many).startswith("A30B29") and "Aa" in anonymous_formula(many)


def test_structure_properties_of_records() -> None:
    crystal = {
        "material": {"formula": "Na4 Cl4", "composition": "Na4Cl4"},
        "crystal_structure": {"number_of_atoms": 8, "space_group_number": 225},
    }
    props = structure_properties(crystal, id="x_1", immutable_id="x_v1.0.1", last_modified="t")
    assert props is not None
    assert props["elements"] == ["Cl", "Na"] and props["elements_ratios"] == [0.5, 0.5]
    assert props["chemical_formula_reduced"] == "ClNa"
    assert props["chemical_formula_descriptive"] == "Na4Cl4"
    assert props["nperiodic_dimensions"] == 3 and props["space_group_it_number"] == 225
    molecule = {
        "material": {"formula": "C2 H6"},
        "molecule": {"number_of_atoms": 8},
    }
    props = structure_properties(molecule, id="m_1", immutable_id="m", last_modified="t")
    assert props is not None and props["chemical_formula_hill"] == "C2H6"
    assert props["dimension_types"] == [0, 0, 0] and "space_group_it_number" not in props
    disordered = {**crystal, "crystal_structure": {"number_of_atoms": 8, "is_ordered": False}}
    assert structure_properties(disordered, id="", immutable_id="", last_modified="") is None
    assert structure_properties({"material": {"formula": "Fe"}}, id="", immutable_id="",
                                last_modified="") is None  # fmt: skip
    wrong_count = {**molecule, "molecule": {"number_of_atoms": 3}}
    assert structure_properties(wrong_count, id="", immutable_id="", last_modified="") is None


def test_sites_from_extended_and_plain_xyz() -> None:
    extended = [
        "2",
        'Lattice="2.8 0.0 0.0 0.0 2.8 0.0 0.0 0.0 2.8" Properties=species:S:1:pos:R:3 pbc="T T T"',
        "Fe 0.0 0.0 0.0",
        "Fe 1.4 1.4 1.4",
    ]
    sites = parse_xyz(iter(extended), nsites=2)
    assert sites.symbols == ["Fe", "Fe"] and sites.positions[1] == [1.4, 1.4, 1.4]
    assert sites.lattice == [[2.8, 0.0, 0.0], [0.0, 2.8, 0.0], [0.0, 0.0, 2.8]]
    extra = ["1", "Properties=id:I:1:species:S:1:pos:R:3", "7 O 1 2 3", "1", "", "H 0 0 0"]
    sites = parse_xyz(iter(extra), nsites=1)
    assert sites.symbols == ["O"] and sites.positions == [[1.0, 2.0, 3.0]] and sites.lattice is None
    with pytest.raises(ValueError, match="the record 3"):
        parse_xyz(iter(["2", "", "H 0 0 0", "H 0 0 1"]), nsites=3)
    with pytest.raises(ValueError, match="not an element"):
        parse_xyz(iter(["1", "", "Qq 0 0 0"]), nsites=1)
    record = {
        "files": [
            {
                "path": "a.cif",
                "previews": [{"path": ".derived/a.cif/a.cif.extxyz"}, {"path": "x.png"}],
            }
        ]
    }
    assert sites_file(record) == ".derived/a.cif/a.cif.extxyz"
    assert sites_file({"files": [{"path": "mol/H2O.xyz"}]}) == "mol/H2O.xyz"
    assert sites_file({"files": [{"path": "table.csv"}]}) is None


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(max_size=120) | st.from_regex(_FILTERISH, fullmatch=True))
def test_any_text_is_a_tree_or_a_refusal(text: str) -> None:
    outcome: object
    try:
        outcome, _warnings = parse_filter(text, STRUCTURE_FIELDS, prefix=PREFIX)
    except FilterError as error:
        outcome = error
    if isinstance(outcome, FilterError):
        assert outcome.status in (400, 501) and outcome.detail
    else:
        nodes = qt.Bool | qt.Range | qt.Exists | qt.MatchAll | qt.Wildcard | qt.Phrase
        assert isinstance(outcome, nodes)

"""The query-string parser: Lucene clause semantics, every syntax mdf_toolbox emits, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matterhub.core.errors import BadRequest
from matterhub.search.parser import parse_query, parse_simple_query, wildcard_regex
from matterhub.search.tree import (
    Bool,
    Boost,
    Exists,
    Fuzzy,
    MatchAll,
    Occur,
    Phrase,
    Range,
    Regex,
    Term,
    Wildcard,
)

MUST, SHOULD, NOT = Occur.MUST, Occur.SHOULD, Occur.MUST_NOT


def t(field: str | None, text: str) -> Term:
    return Term(field, text)


def test_or_then_and_follows_lucene_not_precedence() -> None:
    # Globus evaluates this as "has O and band_gap < 2.5"; Fe only adds score.
    tree = parse_query("(material.elements:Fe OR material.elements:O AND band_gap:{* TO 2.5})")
    assert tree == Bool(
        (
            (SHOULD, t("material.elements", "Fe")),
            (MUST, t("material.elements", "O")),
            (MUST, Range("band_gap", None, "2.5", include_low=False, include_high=False)),
        )
    )


def test_and_not() -> None:
    assert parse_query("a AND NOT b") == Bool(((MUST, t(None, "a")), (NOT, t(None, "b"))))
    assert parse_query("NOT b") == Bool(((NOT, t(None, "b")),))
    assert parse_query("+a -b c") == Bool(
        ((MUST, t(None, "a")), (NOT, t(None, "b")), (SHOULD, t(None, "c")))
    )


def test_forge_query_with_groups() -> None:
    q = (
        "(mdf.source_name:oqmd OR mdf.source_name:aflow) AND (material.elements:Al AND "
        "material.elements:Cu) AND (dc.publicationYear:[2015 TO 2018] AND  NOT mdf.resource_type:dataset)"
    )
    tree = parse_query(q)
    assert isinstance(tree, Bool)
    assert [occur for occur, _ in tree.clauses] == [MUST, MUST, MUST]
    last = tree.clauses[2][1]
    assert last == Bool(
        (
            (MUST, Range("dc.publicationYear", "2015", "2018")),
            (NOT, t("mdf.resource_type", "dataset")),
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"iron oxide"', Phrase(None, "iron oxide")),
        ('"iron oxide"~3', Phrase(None, "iron oxide", 3)),
        (
            'dc.identifier.identifier:"10.18126/M2X59R"',
            Phrase("dc.identifier.identifier", "10.18126/M2X59R"),
        ),
        ("quikc~", Fuzzy(None, "quikc", 2)),
        ("quikc~1", Fuzzy(None, "quikc", 1)),
        ("qu?ck", Wildcard(None, "qu?ck")),
        ("*ride", Wildcard(None, "*ride")),
        ("name:/joh?n(ath[oa]n)/", Regex("name", "joh?n(ath[oa]n)")),
        ("age:>=10", Range("age", "10", None)),
        ("age:<10", Range("age", None, "10", include_high=False)),
        ("date:{* TO 2012-01-01}", Range("date", None, "2012-01-01", False, False)),
        ("dc.date:[2018-01-01T00:00:00Z TO *]", Range("dc.date", "2018-01-01T00:00:00Z", None)),
        ("_exists_:title", Exists("title")),
        ("title:*", Exists("title")),
        ("*", MatchAll()),
        ("quick^2", Boost(t(None, "quick"), 2.0)),
        ("a\\:b", t(None, "a:b")),
        ("ANDROID", t(None, "ANDROID")),
        ("foo-bar", t(None, "foo-bar")),
    ],
)
def test_syntax(text: str, expected: object) -> None:
    assert parse_query(text) == expected


def test_field_applies_to_a_group() -> None:
    assert parse_query("title:(a OR b)^2") == Boost(
        Bool(((SHOULD, t("title", "a")), (SHOULD, t("title", "b")))), 2.0
    )


@pytest.mark.parametrize(
    ("text", "position"),
    [("foo AND (bar", 13), ("a:[1 TO", 8), ('"unterminated', 1), ("title:(a OR b", 14)],
)
def test_errors_point_at_the_position(text: str, position: int) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_query(text)
    assert f"position {position}" in caught.value.detail
    assert caught.value.field == "q"
    assert caught.value.status == 400


def test_range_without_field_is_an_error() -> None:
    with pytest.raises(BadRequest, match="position 1"):
        parse_query("[1 TO 2]")
    with pytest.raises(BadRequest, match="position 1"):
        parse_query(">=2")


@given(st.text(max_size=60))
def test_simple_mode_never_raises(text: str) -> None:
    parse_simple_query(text)


def test_simple_mode_keeps_valid_syntax_and_words_otherwise() -> None:
    assert parse_simple_query("(iron AND oxide)") == Bool(
        ((MUST, t(None, "iron")), (MUST, t(None, "oxide")))
    )
    assert parse_simple_query("iron (oxide") == Bool(
        ((SHOULD, t(None, "iron")), (SHOULD, t(None, "oxide")))
    )
    assert parse_simple_query("   ") == MatchAll()


def test_wildcard_regex() -> None:
    assert wildcard_regex("nitr*") == ("nitr.*", "nitr")
    assert wildcard_regex("*ride") == (".*ride", None)
    assert wildcard_regex("qu?ck") == ("qu.ck", None)
    assert wildcard_regex("a\\*b*") == ("a\\*b.*", "a*b")

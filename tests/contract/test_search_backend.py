"""Search backend contract: what Discover relies on from an engine, run on every backend installed.

The suite talks to the port (`SearchBackend`) directly, with the entries and specs Discover
builds (`Prepared`, parsed query trees), and compares against answers computed here in Python
from the same records. Each backend registered under the `matterhub.search_backends` entry
points runs it with its default settings; a third-party backend runs it by being installed
(`pytest tests/contract/test_search_backend.py -k <name>`, see docs/plugins.md).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.core.errors import BadRequest
from matterhub.core.identity import group_principal, user_principal
from matterhub.core.search import GBoost, GFacet, GFilter, GSort, HistogramRange
from matterhub.plugins import load_plugin, plugin_names, plugin_settings
from matterhub.search.backend import ENTRY_POINT_GROUP, Hit, Page, SearchBackend, SearchSpec
from matterhub.search.documents import Prepared
from matterhub.search.parser import parse_query
from matterhub.search.tree import MatchAll, Node

BACKENDS = plugin_names(ENTRY_POINT_GROUP)
PUBLIC = "public"
LAB = group_principal("lab")
ALICE = user_principal("alice")
ELEMENTS = ["H", "C", "O", "Fe", "Cu", "Si", "Ti"]
WORDS = ["oxide", "alloy", "crystal", "perovskite", "catalyst", "battery"]
N = 60

Opener = Callable[[str], SearchBackend]


def test_the_builtin_backend_is_registered() -> None:
    assert "tantivy" in BACKENDS


# ---- data -----------------------------------------------------------------------------------


def make_records(n: int = N, *, seed: int = 11) -> list[dict[str, Any]]:
    """GMetaEntry dicts shaped like MDF records; every fifth is the lab's, every seventh Alice's."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        elements = sorted(set(rng.sample(ELEMENTS, rng.randint(1, 3))))
        visible = [LAB] if i % 5 == 4 else [ALICE] if i % 7 == 6 else [PUBLIC]
        out.append(
            {
                "subject": f"src.{i}",
                "id": None,
                "visible_to": visible,
                "content": {
                    "mdf": {
                        "source_name": f"src_{i % 3}",
                        "scroll_id": i,
                        "ingest_date": f"20{10 + i % 6:02d}-0{1 + i % 9}-15T12:00:00Z",
                    },
                    "dc": {"titles": [{"title": " ".join(rng.sample(WORDS, 2)).capitalize()}]},
                    "material": {"elements": elements, "composition": "".join(elements)},
                    "band_gap": round(rng.uniform(0, 8), 3),
                    "n_atoms": rng.randint(1, 200),
                },
            }
        )
    return out


RECORDS = make_records()


def prepared(entries: list[dict[str, Any]]) -> list[Prepared]:
    return [Prepared(entry, position=i) for i, entry in enumerate(entries)]


def entry(subject: str, content: dict[str, Any], *, id: str | None = None, **kw: Any) -> Prepared:
    raw = {"subject": subject, "id": id, "visible_to": kw.get("visible_to", [PUBLIC])}
    return Prepared({**raw, "content": content}, position=0)


def spec(q: str | Node = "*", **kw: Any) -> SearchSpec:
    tree = q if not isinstance(q, str) else MatchAll() if q == "*" else parse_query(q)
    return SearchSpec(tree=tree, principals=kw.pop("principals", None), **kw)


def contents(page: Page | list[Hit]) -> list[dict[str, Any]]:
    hits = page.hits if isinstance(page, Page) else page
    return [json.loads(h.source) for h in hits]


def visible(record: dict[str, Any], principals: frozenset[str] | None) -> bool:
    return principals is None or bool(principals & set(record["visible_to"]))


def count(keep: Callable[[dict[str, Any]], bool], principals: frozenset[str] | None = None) -> int:
    return sum(1 for r in RECORDS if visible(r, principals) and keep(r["content"]))


# ---- backends -------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _opener(name: str, root: Path) -> tuple[Opener, list[SearchBackend]]:
    """Open indexes of backend `name` under `root` through the plugin loader, default settings."""
    cls = load_plugin(ENTRY_POINT_GROUP, name, field="search_backend", what="search backend")
    settings = plugin_settings(
        cls.settings_model, {}, prefix="MATTERHUB_TEST_UNUSED_", field="search_options"
    )
    opened: list[SearchBackend] = []

    def open_(index: str = "contract") -> SearchBackend:
        backend = cls.open(root / index, settings)
        assert isinstance(backend, SearchBackend)
        opened.append(backend)
        return backend

    return open_, opened


@pytest.fixture
def opener(backend_name: str, tmp_path: Path) -> Iterator[Opener]:
    open_, opened = _opener(backend_name, tmp_path)
    yield open_
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(opener: Opener) -> SearchBackend:
    return opener("contract")


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchBackend]:
    """One index per backend holding RECORDS, shared by the read-only tests."""
    open_, opened = _opener(str(request.param), tmp_path_factory.mktemp("loaded"))
    backend = open_("loaded")
    backend.upsert(prepared(RECORDS))
    backend.commit()
    yield backend
    for b in opened:
        b.close()


# Gaps a backend has against the contract, by test id, stated here so that they show in every
# run (strict xfail: the test fails once the gap is closed, and the entry goes).
KNOWN_GAPS = {
    "test_sort_orders_a_list_by_its_ends[tantivy-size]": (
        "tantivy's top_hits sorts numbers and dates by a list's first value (text sorts, done "
        "by the backend itself, follow the contract)"
    ),
}


@pytest.fixture(autouse=True)
def _known_gap(request: pytest.FixtureRequest) -> None:
    reason = KNOWN_GAPS.get(request.node.name)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


# ---- an empty index -------------------------------------------------------------------------


def test_an_empty_index_answers_everything_with_nothing(backend: SearchBackend) -> None:
    assert backend.count() == 0
    page = backend.search(spec(facets=[GFacet(field_name="material.elements")]))
    assert (page.total, page.hits, page.has_next) == (0, [], False)
    assert page.facets[0]["buckets"] == []
    assert backend.search(spec("band_gap:[1 TO 2]")).total == 0
    scrolled = backend.scroll(spec(limit=10), None)
    assert (scrolled.hits, scrolled.marker, scrolled.has_next) == ([], None, False)
    assert backend.entries("src.1", None) == []
    assert backend.mapping() == {}
    backend.commit()  # committing nothing is fine
    assert backend.count() == 0


# ---- writes ---------------------------------------------------------------------------------


def test_writes_are_visible_after_commit_and_durable(opener: Opener) -> None:
    backend = opener("durable")
    backend.upsert(prepared(RECORDS[:10]))
    backend.commit()
    assert backend.count() == 10
    assert backend.search(spec(limit=0)).total == 10
    backend.close()
    reopened = opener("durable")
    assert reopened.count() == 10
    assert sorted(h.subject for h in reopened.search(spec(limit=20)).hits) == sorted(
        r["subject"] for r in RECORDS[:10]
    )
    assert reopened.mapping()["band_gap"] == "double"


def test_rollback_drops_pending_writes(backend: SearchBackend) -> None:
    backend.upsert(prepared(RECORDS[:5]))
    backend.commit()
    backend.upsert(prepared(RECORDS[5:10]))
    backend.delete_subject("src.0")
    backend.rollback()
    backend.commit()
    assert backend.count() == 5
    assert {h.subject for h in backend.search(spec(limit=10)).hits} == {
        f"src.{i}" for i in range(5)
    }
    assert "unseen" not in backend.mapping()


def test_upsert_replaces_by_subject_and_entry_id(backend: SearchBackend) -> None:
    backend.upsert(
        [
            entry("s", {"v": 1}),
            entry("s", {"v": 2}, id="a"),
            entry("s", {"v": 3}, id="b"),
            entry("s", {"v": 4}),  # the same key (s, None) twice in one batch: the last wins
        ]
    )
    backend.commit()
    assert backend.count() == 3
    backend.upsert([entry("s", {"v": 5}, id="a", visible_to=[LAB])])  # a committed key
    backend.commit()
    assert backend.count() == 3
    got = {h.entry_id: json.loads(h.source)["v"] for h in backend.entries("s", None)}
    assert got == {None: 4, "a": 5, "b": 3}
    # the replacement's visibility replaced the old one too
    assert {h.entry_id for h in backend.entries("s", frozenset({PUBLIC}))} == {None, "b"}


def test_deletes(backend: SearchBackend) -> None:
    backend.upsert(
        [
            entry("a", {"n": 1}),
            entry("a", {"n": 2}, id="x"),
            entry("a.1", {"n": 3}),  # a subject that starts like another is not that subject
            entry("b", {"n": 4}),
            entry("b", {"n": 5}, id="x"),
            entry("c", {"n": 6, "tag": "gone"}),
            entry("d", {"n": 7, "tag": "gone"}),
            entry("e", {"n": 8, "tag": "kept"}),
        ]
    )
    backend.commit()
    backend.delete_subject("a")
    backend.delete_entry("b", "x")
    backend.delete_entry("nothing", None)  # deleting what is not there is no error
    backend.commit()
    assert backend.entries("a", None) == []
    assert [h.subject for h in backend.entries("a.1", None)] == ["a.1"]
    assert [h.entry_id for h in backend.entries("b", None)] == [None]
    removed = backend.delete_matching(spec("tag:gone"))
    backend.commit()
    assert removed == 2
    assert sorted(h.subject for h in backend.search(spec(limit=10)).hits) == ["a.1", "b", "e"]
    assert backend.count() == 3


def test_unicode_subjects_and_content_round_trip(backend: SearchBackend) -> None:
    content = {
        "dc": {"titles": [{"title": "Schrödinger équation für Übergänge"}]},
        "note": "氧化铁 catalyst 🧪",
        "name": "Ångström",
    }
    backend.upsert([entry("sujet-α/β", content, id="ид")])
    backend.commit()
    hit = backend.entries("sujet-α/β", None)[0]
    assert (hit.subject, hit.entry_id) == ("sujet-α/β", "ид")
    assert json.loads(hit.source) == content
    for q in ("schrödinger", "dc.titles.title:übergänge", "氧化铁", 'name:"Ångström"'):
        assert backend.search(spec(q)).total == 1, q
    assert backend.search(spec("schrodinger")).total == 0  # no folding the engine did not do


def test_delete_matching_respects_principals(backend: SearchBackend) -> None:
    backend.upsert(prepared(RECORDS))
    backend.commit()
    public = frozenset({PUBLIC})
    removed = backend.delete_matching(spec("mdf.source_name:src_0", principals=public))
    backend.commit()
    assert removed == count(lambda c: c["mdf"]["source_name"] == "src_0", public)
    assert backend.count() == N - removed


# ---- reads ----------------------------------------------------------------------------------


def test_hits_are_the_stored_json_byte_for_byte(loaded: SearchBackend) -> None:
    page = loaded.search(spec("mdf.scroll_id:7", limit=1))
    assert [h.subject for h in page.hits] == ["src.7"]
    assert page.hits[0].source == json.dumps(RECORDS[7]["content"], separators=(",", ":"))
    assert page.hits[0].entry_id is None


@pytest.mark.parametrize(
    "principals",
    [None, frozenset({PUBLIC}), frozenset({PUBLIC, LAB}), frozenset({ALICE}), frozenset()],
    ids=["all", "public", "public+lab", "alice", "nobody"],
)
def test_visibility_by_principals(loaded: SearchBackend, principals: frozenset[str]) -> None:
    expected = {r["subject"] for r in RECORDS if visible(r, principals)}
    page = loaded.search(spec(principals=principals, limit=N))
    assert {h.subject for h in page.hits} == expected
    assert page.total == len(expected)
    # the filter applies to every read: counts, facets, scroll, a subject's entries
    faceted = loaded.search(
        spec(principals=principals, limit=0, facets=[GFacet(field_name="mdf.source_name")])
    )
    assert sum(b["count"] for b in faceted.facets[0]["buckets"]) == len(expected)
    scrolled = loaded.scroll(spec(principals=principals, limit=N), None)
    assert {h.subject for h in scrolled.hits} == expected
    for subject in ("src.4", "src.6", "src.0"):
        assert bool(loaded.entries(subject, principals)) == (subject in expected)
    assert loaded.count() == N  # the count is of the whole index


ORACLE: dict[str, Callable[[dict[str, Any]], bool]] = {
    "mdf.source_name:src_1": lambda c: c["mdf"]["source_name"] == "src_1",
    "band_gap:[1.5 TO 2.5]": lambda c: 1.5 <= c["band_gap"] <= 2.5,
    "band_gap:{* TO 2.5}": lambda c: c["band_gap"] < 2.5,
    "n_atoms:>=150": lambda c: c["n_atoms"] >= 150,
    "n_atoms:[10 TO 99.5]": lambda c: 10 <= c["n_atoms"] <= 99.5,
    "material.elements:Fe AND NOT material.elements:O": lambda c: (
        "Fe" in c["material"]["elements"] and "O" not in c["material"]["elements"]
    ),
    "material.elements:Fe OR material.elements:Cu": lambda c: bool(
        {"Fe", "Cu"} & set(c["material"]["elements"])
    ),
    "mdf.ingest_date:[2012-01-01 TO 2013-12-31]": lambda c: (
        "2012" <= c["mdf"]["ingest_date"][:4] <= "2013"
    ),
    "perovskite": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
    '"perovskite oxide"': lambda c: "perovskite oxide" in c["dc"]["titles"][0]["title"].lower(),
    "dc.titles.title:perovskit~1": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
    "perov*": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
    "material.composition:/fe.*/": lambda c: c["material"]["composition"].lower().startswith("fe"),
    "_exists_:n_atoms": lambda c: True,
    "_exists_:nothing.here": lambda c: False,
    "NOT mdf.source_name:src_0": lambda c: c["mdf"]["source_name"] != "src_0",
}


@pytest.mark.parametrize("q", list(ORACLE))
def test_queries_agree_with_python(loaded: SearchBackend, q: str) -> None:
    assert loaded.search(spec(q, limit=0)).total == count(ORACLE[q]), q
    public = frozenset({PUBLIC})
    assert loaded.search(spec(q, principals=public, limit=0)).total == count(ORACLE[q], public)


def test_filters(loaded: SearchBackend) -> None:
    def els(c: dict[str, Any]) -> set[str]:
        return set(c["material"]["elements"])

    cases: list[tuple[GFilter, Callable[[dict[str, Any]], bool]]] = [
        (
            GFilter(type="match_any", field_name="material.elements", values=["Fe", "Cu"]),
            lambda c: bool(els(c) & {"Fe", "Cu"}),
        ),
        (
            GFilter(type="match_all", field_name="material.elements", values=["Fe", "Cu"]),
            lambda c: {"Fe", "Cu"} <= els(c),
        ),
        (
            GFilter(type="range", field_name="band_gap", values=[{"from": 2, "to": 4}]),
            lambda c: 2 <= c["band_gap"] <= 4,
        ),
        (
            GFilter(type="range", field_name="n_atoms", values=[{"from": 150, "to": "*"}]),
            lambda c: c["n_atoms"] >= 150,
        ),
        (GFilter(type="exists", field_name="band_gap"), lambda c: True),
        (
            GFilter(
                type="not",
                filter=GFilter(type="match_any", field_name="material.elements", values=["O"]),
            ),
            lambda c: "O" not in els(c),
        ),
    ]
    for flt, keep in cases:
        assert loaded.search(spec(filters=[flt], limit=0)).total == count(keep), flt
    both = [cases[0][0], cases[2][0]]  # filters AND together
    expected = count(lambda c: cases[0][1](c) and cases[2][1](c))
    assert loaded.search(spec(filters=both, limit=0)).total == expected


def test_facets(loaded: SearchBackend) -> None:
    facets = [
        GFacet(name="els", field_name="material.elements", size=20),
        GFacet(
            name="gaps",
            field_name="band_gap",
            type="numeric_histogram",
            size=4,
            histogram_range=HistogramRange(low=0, high=8),
        ),
        GFacet(field_name="mdf.ingest_date", type="date_histogram", date_interval="year"),
        GFacet(name="sum", field_name="band_gap", type="sum"),
        GFacet(name="avg", field_name="n_atoms", type="avg"),
        GFacet(name="top", field_name="mdf.source_name", size=2),
    ]
    page = loaded.search(spec(facets=facets, limit=0))
    by_name = {f["name"]: f for f in page.facets}
    assert [f["name"] for f in page.facets] == [
        "els",
        "gaps",
        "mdf.ingest_date",
        "sum",
        "avg",
        "top",
    ]
    expected: dict[str, int] = {}
    for r in RECORDS:
        for e in r["content"]["material"]["elements"]:
            expected[e] = expected.get(e, 0) + 1
    assert {b["value"]: b["count"] for b in by_name["els"]["buckets"]} == expected
    counts = [b["count"] for b in by_name["els"]["buckets"]]
    assert counts == sorted(counts, reverse=True)  # terms: most frequent first
    gaps = by_name["gaps"]["buckets"]
    assert [b["value"]["from"] for b in gaps] == [0, 2, 4, 6]
    for b in gaps:
        low, high = b["value"]["from"], b["value"]["to"]
        assert b["count"] == count(lambda c, lo=low, hi=high: lo <= c["band_gap"] < hi), b
    years: dict[str, int] = {}
    for r in RECORDS:
        label = r["content"]["mdf"]["ingest_date"][:4] + "-01-01T00:00:00Z"
        years[label] = years.get(label, 0) + 1
    assert {b["value"]: b["count"] for b in by_name["mdf.ingest_date"]["buckets"]} == years
    total = sum(r["content"]["band_gap"] for r in RECORDS)
    assert by_name["sum"]["value"] == pytest.approx(total, rel=1e-9)
    mean = sum(r["content"]["n_atoms"] for r in RECORDS) / N
    assert by_name["avg"]["value"] == pytest.approx(mean, rel=1e-9)
    assert len(by_name["top"]["buckets"]) == 2  # `size` caps the buckets


def test_post_filters_narrow_hits_not_facets(loaded: SearchBackend) -> None:
    post = [GFilter(type="match_any", field_name="mdf.source_name", values=["src_0"])]
    page = loaded.search(
        spec(facets=[GFacet(field_name="mdf.source_name")], post_filters=post, limit=N)
    )
    assert page.total == count(lambda c: c["mdf"]["source_name"] == "src_0")
    assert {h.subject for h in page.hits} == {f"src.{i}" for i in range(0, N, 3)}
    assert {b["value"]: b["count"] for b in page.facets[0]["buckets"]} == {
        "src_0": 20,
        "src_1": 20,
        "src_2": 20,
    }


@pytest.mark.parametrize(("field", "order"), [("band_gap", "desc"), ("n_atoms", "asc")])
def test_sort_and_paging(loaded: SearchBackend, field: str, order: str) -> None:
    values = sorted((r["content"][field] for r in RECORDS), reverse=order == "desc")
    sort = [GSort(field_name=field, order=order)]  # type: ignore[arg-type]
    page = loaded.search(spec(sort=sort, limit=5, offset=3))
    assert [c[field] for c in contents(page)] == values[3:8]
    assert (page.total, page.has_next) == (N, True)
    # pages laid end to end are the whole sorted list, each entry once
    seen: list[dict[str, Any]] = []
    for offset in range(0, N, 13):
        seen += contents(loaded.search(spec(sort=sort, limit=13, offset=offset)))
    assert [c[field] for c in seen] == values
    assert len({c["mdf"]["scroll_id"] for c in seen}) == N
    last = loaded.search(spec(sort=sort, limit=13, offset=52))
    assert (len(last.hits), last.has_next) == (N - 52, False)
    past = loaded.search(spec(sort=sort, limit=5, offset=N + 5))
    assert (past.total, past.hits, past.has_next) == (N, [], False)


def test_sort_by_a_string_field(loaded: SearchBackend) -> None:
    sort = [GSort(field_name="mdf.source_name", order="desc"), GSort(field_name="n_atoms")]
    got = contents(loaded.search(spec(sort=sort, limit=N)))
    keys = [(c["mdf"]["source_name"], c["n_atoms"]) for c in got]
    expected = sorted(
        ((r["content"]["mdf"]["source_name"], r["content"]["n_atoms"]) for r in RECORDS),
        key=lambda k: (-int(k[0][-1]), k[1]),
    )
    assert keys == expected


@pytest.mark.parametrize("field", ["name", "size"])
def test_sort_puts_entries_without_the_field_last(backend: SearchBackend, field: str) -> None:
    # Two commits, the first without the field at all (an engine may keep them apart).
    backend.upsert([entry("b", {"other": 1, "rank": 1}), entry("d", {"other": 2, "rank": 0})])
    backend.commit()
    backend.upsert(
        [
            entry("a", {"name": "m", "size": 5, "rank": 2}),
            entry("c", {"name": "q", "size": 10, "rank": 3}),
            entry("e", {"name": "b", "size": 1, "rank": 4}),
        ]
    )
    backend.commit()

    def order(direction: str, **page: int) -> list[str]:
        sort = [GSort(field_name=field, order=direction), GSort(field_name="rank")]  # type: ignore[arg-type]
        return [h.subject for h in backend.search(spec(sort=sort, **page)).hits]

    # those without the field follow, ordered by the next key
    assert order("asc") == ["e", "a", "c", "d", "b"]
    assert order("desc") == ["c", "a", "e", "d", "b"]
    assert order("asc", offset=2, limit=2) == ["c", "d"]  # a page across the two parts
    assert order("desc", offset=4, limit=5) == ["b"]


@pytest.mark.parametrize("field", ["name", "size"])
def test_sort_orders_a_list_by_its_ends(backend: SearchBackend, field: str) -> None:
    backend.upsert(
        [
            entry("a", {"name": ["m", "z"], "size": [5, 30]}),
            entry("b", {"name": "q", "size": 10}),
            entry("d", {"name": ["b", "y"], "size": [1, 20]}),
        ]
    )
    backend.commit()

    def order(direction: str) -> list[str]:
        sort = [GSort(field_name=field, order=direction)]  # type: ignore[arg-type]
        return [h.subject for h in backend.search(spec(sort=sort, limit=10)).hits]

    # ascending by each list's least value, descending by its greatest (as Elasticsearch)
    assert order("asc") == ["d", "a", "b"]
    assert order("desc") == ["a", "d", "b"]


def test_unsorted_paging_and_counts(loaded: SearchBackend) -> None:
    first = loaded.search(spec(limit=0))
    assert (first.total, first.hits) == (N, [])
    seen: list[str] = []
    for offset in range(0, N, 25):
        page = loaded.search(spec(limit=25, offset=offset))
        assert page.total == N and page.has_next == (offset + 25 < N)
        seen += [h.subject for h in page.hits]
    assert sorted(seen) == sorted(r["subject"] for r in RECORDS)


def test_boosts_raise_entries_with_the_field(backend: SearchBackend) -> None:
    backend.upsert([entry(f"plain{i}", {"title": "alloy steel"}) for i in range(5)])
    backend.upsert([entry("boosted", {"title": "alloy steel", "featured": True})])
    backend.commit()
    page = backend.search(spec("alloy", boosts=[GBoost(field_name="featured", factor=5)]))
    assert page.hits[0].subject == "boosted" and page.total == 6


def test_scroll_reads_everything_once(loaded: SearchBackend) -> None:
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        page = loaded.scroll(spec(limit=17), marker)
        seen += [h.subject for h in page.hits]
        pages += 1
        assert page.has_next == (page.marker is not None)
        marker = page.marker
        if marker is None:
            break
    assert sorted(seen) == sorted(r["subject"] for r in RECORDS) and len(seen) == N
    assert pages == 4
    query = loaded.scroll(spec("mdf.source_name:src_2", limit=N), None)
    assert {h.subject for h in query.hits} == {f"src.{i}" for i in range(2, N, 3)}


def test_a_foreign_marker_is_a_bad_request_naming_it(loaded: SearchBackend) -> None:
    with pytest.raises(BadRequest) as caught:
        loaded.scroll(spec(limit=5), "not-a-marker")
    assert caught.value.field == "marker"


@pytest.mark.parametrize(
    ("facet", "field"),
    [
        (GFacet(field_name="mdf.source_name", type="avg"), "facets[0].field_name"),
        (GFacet(field_name="band_gap", type="date_histogram"), "facets[0].field_name"),
        (GFacet(field_name="band_gap", type="numeric_histogram"), "facets[0].histogram_range"),
        (
            GFacet(field_name="band_gap", type="date_histogram", date_interval="fortnight"),
            "facets[0].field_name",
        ),
    ],
)
def test_impossible_facets_are_bad_requests_naming_the_field(
    loaded: SearchBackend, facet: GFacet, field: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        loaded.search(spec(facets=[facet], limit=0))
    assert caught.value.field == field


def test_a_range_over_a_text_field_is_a_bad_request(loaded: SearchBackend) -> None:
    flt = GFilter(type="range", field_name="mdf.source_name", values=[{"from": 1}])
    with pytest.raises(BadRequest) as caught:
        loaded.search(spec(filters=[flt], limit=0))
    assert caught.value.field == "filters[0].field_name"


def test_entries_of_a_subject(loaded: SearchBackend) -> None:
    hits = loaded.entries("src.3", None)
    assert [(h.subject, h.entry_id) for h in hits] == [("src.3", None)]
    assert contents(hits) == [RECORDS[3]["content"]]
    assert loaded.entries("src", None) == []  # whole subjects only


def test_mapping_lists_every_field_with_its_type(loaded: SearchBackend) -> None:
    mapping = loaded.mapping()
    assert mapping["band_gap"] == "double"
    assert mapping["n_atoms"] == "long"
    assert mapping["mdf.ingest_date"] == "date"
    assert mapping["mdf.source_name"] == "string"
    assert mapping["material.elements"] == "string"
    assert mapping["dc.titles.title"] == "string"


def test_indexes_are_independent(opener: Opener) -> None:
    one, two = opener("one"), opener("two")
    one.upsert([entry("x", {"a": 1})])
    one.commit()
    two.upsert([entry("y", {"b": "text"})])
    two.commit()
    assert [h.subject for h in one.search(spec(limit=5)).hits] == ["x"]
    assert [h.subject for h in two.search(spec(limit=5)).hits] == ["y"]
    assert set(one.mapping()) == {"a"} and set(two.mapping()) == {"b"}

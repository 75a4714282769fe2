"""Discover over real tantivy indexes and a real catalog: queries, visibility, facets, durability."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.core.errors import BadRequest, InvalidInput, NotFound, PermissionDenied
from matterhub.core.identity import (
    ANONYMOUS,
    SYSTEM_IDENTITY,
    Identity,
    group_principal,
    user_principal,
)
from matterhub.core.search import GFacet, GFilter, GScrollRequest, GSearchRequest
from matterhub.settings import Settings
from tests.search.conftest import ingest, make_records

ALICE = Identity(user_id="alice-id", username="alice", group_ids=frozenset({"lab"}))
BOB = Identity(user_id="bob-id", username="bob")


def search(hub: Services, q: str | None = None, who: Identity = ANONYMOUS, **kw: Any) -> Any:
    return hub.search.search(who, "mdf", GSearchRequest(q=q, advanced=True, **kw))


def contents(page: Any) -> list[dict[str, Any]]:
    return [json.loads(h.source) for h in page.hits]


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return make_records(300)


@pytest.fixture
def loaded(hub: Services, records: list[dict[str, Any]]) -> Services:
    ingest(hub, records)
    return hub


def count(records: list[dict[str, Any]], keep: Any) -> int:
    return sum(1 for r in records if keep(r["content"]))


def test_queries_agree_with_a_python_oracle(
    loaded: Services, records: list[dict[str, Any]]
) -> None:
    cases = {
        "mdf.source_name:demo_src_1": lambda c: c["mdf"]["source_name"] == "demo_src_1",
        "band_gap:[1.5 TO 2.5]": lambda c: 1.5 <= c["band_gap"] <= 2.5,
        "band_gap:{* TO 2.5}": lambda c: c["band_gap"] < 2.5,
        "n_atoms:>=150": lambda c: c["n_atoms"] >= 150,
        "material.elements:Fe AND NOT material.elements:O": lambda c: (
            "Fe" in c["material"]["elements"] and "O" not in c["material"]["elements"]
        ),
        "(material.elements:Fe OR material.elements:O AND band_gap:{* TO 2.5})": lambda c: (
            "O" in c["material"]["elements"] and c["band_gap"] < 2.5
        ),
        "mdf.scroll_id:>=10 AND mdf.scroll_id:<20": lambda c: 10 <= c["mdf"]["scroll_id"] < 20,
        "mdf.ingest_date:[2015-01-01 TO 2016-12-31]": lambda c: (
            "2015" <= c["mdf"]["ingest_date"][:4] <= "2016"
        ),
        "dc.titles.title:perovskite": lambda c: (
            "perovskite" in c["dc"]["titles"][0]["title"].lower()
        ),
        "perovskite": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
        "perovskit~1": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
        "perov*": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
        "dc.titles.title:*skite": lambda c: "perovskite" in c["dc"]["titles"][0]["title"].lower(),
        "material.composition:/fe.*/": lambda c: (
            c["material"]["composition"].lower().startswith("fe")
        ),
        "_exists_:n_atoms": lambda c: True,
        "NOT mdf.source_name:demo_src_0": lambda c: c["mdf"]["source_name"] != "demo_src_0",
    }
    for q, keep in cases.items():
        assert search(loaded, q, limit=0).total == count(records, keep), q


def test_results_are_byte_faithful(loaded: Services, records: list[dict[str, Any]]) -> None:
    page = search(loaded, "mdf.scroll_id:7", limit=1)
    assert page.hits[0].subject == "demo_src.7"
    assert page.hits[0].source == json.dumps(records[6]["content"], separators=(",", ":"))


def test_each_entry_has_its_own_visibility(hub: Services) -> None:
    entries = [
        {"subject": "s1", "id": "open", "visible_to": ["public"], "content": {"v": "open"}},
        {
            "subject": "s1",
            "id": "lab",
            "visible_to": [group_principal("lab")],
            "content": {"v": "lab"},
        },
        {
            "subject": "s1",
            "id": "bob",
            "visible_to": [f"urn:globus:auth:identity:{BOB.user_id}"],
            "content": {"v": "bob"},
        },
    ]
    ingest(hub, entries)
    seen = {
        name: sorted(json.loads(h.source)["v"] for h in search(hub, "*", who).hits)
        for name, who in {
            "anon": ANONYMOUS,
            "alice": ALICE,
            "bob": BOB,
            "admin": SYSTEM_IDENTITY,
        }.items()
    }
    assert seen == {
        "anon": ["open"],
        "alice": ["lab", "open"],
        "bob": ["bob", "open"],
        "admin": ["bob", "lab", "open"],
    }
    assert [h.entry_id for h in hub.search.get_subject(ALICE, "mdf", "s1")] in (
        ["open", "lab"],
        ["lab", "open"],
    )
    with pytest.raises(NotFound):
        hub.search.get_entry(ANONYMOUS, "mdf", "s1", "bob")


def test_bypass_visible_to_is_for_admins(loaded: Services) -> None:
    with pytest.raises(PermissionDenied):
        search(loaded, "*", ALICE, bypass_visible_to=True)
    assert search(loaded, "*", SYSTEM_IDENTITY, bypass_visible_to=True).total == 300


def test_filters(loaded: Services, records: list[dict[str, Any]]) -> None:
    any_ = GFilter(type="match_any", field_name="material.elements", values=["Fe", "Cu"])
    all_ = GFilter(type="match_all", field_name="material.elements", values=["Fe", "Cu"])
    rng = GFilter(type="range", field_name="band_gap", values=[{"from": 2, "to": 4}])
    els = lambda c: set(c["material"]["elements"])  # noqa: E731
    assert search(loaded, filters=[any_], limit=0).total == count(
        records, lambda c: els(c) & {"Fe", "Cu"}
    )
    assert search(loaded, filters=[all_], limit=0).total == count(
        records, lambda c: {"Fe", "Cu"} <= els(c)
    )
    assert search(loaded, filters=[rng], limit=0).total == count(
        records, lambda c: 2 <= c["band_gap"] <= 4
    )
    nope = GFilter(
        type="not", filter=GFilter(type="match_any", field_name="material.elements", values=["O"])
    )
    assert search(loaded, filters=[nope], limit=0).total == count(
        records, lambda c: "O" not in els(c)
    )


def test_facets(loaded: Services, records: list[dict[str, Any]]) -> None:
    facets = [
        GFacet(name="els", field_name="material.elements", size=20),
        GFacet(
            name="gaps",
            field_name="band_gap",
            type="numeric_histogram",
            size=4,
            histogram_range={"low": 0, "high": 8},
        ),
        GFacet(field_name="mdf.ingest_date", type="date_histogram", date_interval="year"),
        GFacet(field_name="band_gap", type="sum"),
    ]
    page = search(loaded, "*", facets=facets, limit=0)
    by_name = {f["name"]: f for f in page.facets}
    expected = {}
    for r in records:
        for e in r["content"]["material"]["elements"]:
            expected[e] = expected.get(e, 0) + 1
    assert {b["value"]: b["count"] for b in by_name["els"]["buckets"]} == expected
    assert sum(b["count"] for b in by_name["gaps"]["buckets"]) == 300
    assert [b["value"]["from"] for b in by_name["gaps"]["buckets"]] == [0, 2, 4, 6]
    years = {b["value"][:4]: b["count"] for b in by_name["mdf.ingest_date"]["buckets"]}
    assert sum(years.values()) == 300 and min(years) == "2010"
    total = sum(r["content"]["band_gap"] for r in records)
    assert page.facets[3]["value"] == pytest.approx(total, rel=1e-6)


def test_post_facet_filters_narrow_hits_not_facets(loaded: Services) -> None:
    post = [GFilter(type="match_any", field_name="mdf.source_name", values=["demo_src_0"])]
    page = search(
        loaded, "*", facets=[GFacet(field_name="mdf.source_name")], post_facet_filters=post
    )
    assert page.total == 100
    assert {b["value"] for b in page.facets[0]["buckets"]} == {
        "demo_src_0",
        "demo_src_1",
        "demo_src_2",
    }


def test_sort_and_paging(loaded: Services, records: list[dict[str, Any]]) -> None:
    gaps = sorted((r["content"]["band_gap"] for r in records), reverse=True)
    page = search(
        loaded, "*", sort=[{"field_name": "band_gap", "order": "desc"}], limit=5, offset=3
    )
    assert [c["band_gap"] for c in contents(page)] == gaps[3:8]
    assert page.total == 300 and page.has_next


def test_scroll_reads_everything_once(loaded: Services) -> None:
    seen: list[str] = []
    marker = None
    while True:
        page = loaded.search.scroll(
            ANONYMOUS, "mdf", GScrollRequest(q="*", advanced=True, limit=70, marker=marker)
        )
        seen += [h.subject for h in page.hits]
        marker = page.marker
        if marker is None:
            break
    assert len(seen) == len(set(seen)) == 300


@pytest.mark.parametrize(
    ("request_kw", "field"),
    [
        ({"limit": 10_001}, "limit"),
        ({"offset": 9_995, "limit": 10}, "limit"),
        ({"facets": [GFacet(field_name="mdf.source_name", type="avg")]}, "facets[0].field_name"),
        (
            {"facets": [GFacet(field_name="band_gap", type="date_histogram")]},
            "facets[0].field_name",
        ),
        ({"q": "band_gap:[1 TO"}, "q"),
        (
            {
                "filters": [
                    GFilter(type="range", field_name="mdf.source_name", values=[{"from": 1}])
                ]
            },
            "filters[0].field_name",
        ),
    ],
)
def test_bad_requests_name_the_field(
    loaded: Services, request_kw: dict[str, Any], field: str
) -> None:
    kw = {"q": "*", **request_kw}
    with pytest.raises(BadRequest) as caught:
        search(loaded, **kw)
    assert caught.value.field == field


def test_unknown_index(hub: Services) -> None:
    with pytest.raises(NotFound):
        hub.search.search(ANONYMOUS, "nope", GSearchRequest(q="x"))


def test_default_indexes_answer_to_mdf_toolbox_uuids(hub: Services) -> None:
    assert hub.search.get_index(ANONYMOUS, "1a57bbe5-5272-477f-9d31-343b8258b7a5").name == "mdf"
    assert hub.search.get_index(ANONYMOUS, "dlhub").id == "847c9105-18a0-4ffb-8a71-03dd76dfcc9d"


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"subject": "", "visible_to": ["public"], "content": {}}, "ingest_data.gmeta[1].subject"),
        (
            {"subject": "x" * 501, "visible_to": ["public"], "content": {}},
            "ingest_data.gmeta[1].subject",
        ),
        ({"subject": "s", "visible_to": [], "content": {}}, "ingest_data.gmeta[1].visible_to"),
        (
            {"subject": "s", "visible_to": ["public"] * 101, "content": {}},
            "ingest_data.gmeta[1].visible_to",
        ),
        (
            {"subject": "s", "visible_to": ["somebody"], "content": {}},
            "ingest_data.gmeta[1].visible_to",
        ),
        (
            {"subject": "s", "visible_to": ["public"], "content": {"a": "x" * 40_000}},
            "ingest_data.gmeta[1].content.a",
        ),
    ],
)
def test_bad_entries_are_refused_whole(hub: Services, entry: dict[str, Any], field: str) -> None:
    good = {"subject": "fine", "visible_to": ["public"], "content": {"ok": 1}}
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": [good, entry]}}
    with pytest.raises(InvalidInput) as caught:
        hub.search.ingest(SYSTEM_IDENTITY, "mdf", body)
    assert caught.value.field == field
    assert hub.search.list_tasks(SYSTEM_IDENTITY, "mdf") == []  # nothing recorded


def test_only_writers_ingest(hub: Services) -> None:
    hub.accounts.create_user(SYSTEM_IDENTITY, "alice")
    hub.accounts.create_group(SYSTEM_IDENTITY, "lab")
    hub.accounts.add_member(SYSTEM_IDENTITY, "lab", "alice")
    alice = hub.accounts.authenticate(hub.accounts.create_token(SYSTEM_IDENTITY, "alice").token)
    group_id = hub.accounts.get_group(SYSTEM_IDENTITY, "lab").id
    body = {
        "ingest_type": "GMetaEntry",
        "ingest_data": {"subject": "s", "visible_to": ["public"], "content": {}},
    }
    with pytest.raises(PermissionDenied):
        hub.search.ingest(alice, "mdf", body)
    hub.search.create_index(SYSTEM_IDENTITY, "lab-index", writers=[group_principal(group_id)])
    task = hub.search.ingest(alice, "lab-index", body)
    assert hub.search.wait(task.task_id).state == "SUCCESS"


def test_deletes(loaded: Services) -> None:
    s = loaded.search
    for task in (
        s.delete_subject(SYSTEM_IDENTITY, "mdf", "demo_src.1"),
        s.delete_entry(SYSTEM_IDENTITY, "mdf", "demo_src.2", None),
        s.delete_by_query(
            SYSTEM_IDENTITY, "mdf", {"q": "mdf.source_name:demo_src_2", "advanced": True}
        ),
    ):
        assert s.wait(task.task_id).state == "SUCCESS"
    # demo_src.1 and .2 belong to sources 0 and 1; source 2 holds 100 records
    assert search(loaded, "*", limit=0).total == 300 - 1 - 1 - 100
    with pytest.raises(NotFound):
        s.get_subject(ANONYMOUS, "mdf", "demo_src.1")


def test_reingesting_a_subject_replaces_it(loaded: Services) -> None:
    new = make_records(1)[0]
    new["content"]["band_gap"] = 99.0
    ingest(loaded, [new])
    assert search(loaded, "*", limit=0).total == 300
    assert contents(search(loaded, "band_gap:>=99"))[0]["band_gap"] == 99.0


def test_a_key_written_twice_before_a_commit_is_kept_once(
    tmp_path: Path, database_url: str
) -> None:
    # Deletes are skipped for keys absent from the index; keys added since the last commit count
    # as present, within one ingest and across the tasks of one batch.
    settings = Settings(data_dir=tmp_path / "hub", database_url=database_url)
    first = build_services(settings)  # not started: both tasks wait and are applied as one batch
    old = make_records(3)
    same = {**old[0], "content": {**old[0]["content"], "band_gap": 50.0}}
    newest = {**old[0], "content": {**old[0]["content"], "band_gap": 60.0}}
    tasks = [
        first.search.ingest(
            SYSTEM_IDENTITY, "mdf", {"ingest_type": "GMetaList", "ingest_data": {"gmeta": batch}}
        ).task_id
        for batch in ([*old, same], [newest])
    ]
    first.catalog.close()
    restarted = build_services(settings)
    restarted.start()
    try:
        for task_id in tasks:
            assert restarted.search.wait(task_id).state == "SUCCESS"
        assert search(restarted, "*", limit=0).total == 3
        assert [h.subject for h in search(restarted, "band_gap:>=50").hits] == ["demo_src.1"]
        assert contents(search(restarted, "band_gap:>=50"))[0]["band_gap"] == 60.0
        ingest(restarted, [same])  # committed key, replaced in a later batch
        assert search(restarted, "*", limit=0).total == 3
        assert contents(search(restarted, "band_gap:>=50"))[0]["band_gap"] == 50.0
    finally:
        restarted.close()


def test_acknowledged_writes_survive_a_crash(tmp_path: Path, database_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "hub", database_url=database_url)
    crashed = build_services(settings)  # never started: the worker is "dead" before applying
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": make_records(25)}}
    task = crashed.search.ingest(SYSTEM_IDENTITY, "mdf", body)
    assert crashed.search.get_task(SYSTEM_IDENTITY, task.task_id).state == "PENDING"
    crashed.catalog.close()
    restarted = build_services(settings)
    restarted.start()
    try:
        assert restarted.search.wait(task.task_id).state == "SUCCESS"
        assert restarted.search.search(ANONYMOUS, "mdf", GSearchRequest(q="*", limit=0)).total == 25
    finally:
        restarted.close()


def test_reindex_rebuilds_from_the_catalog(loaded: Services) -> None:
    task = loaded.search.delete_subject(SYSTEM_IDENTITY, "mdf", "demo_src.5")
    loaded.search.wait(task.task_id)
    before = [
        h.subject
        for h in search(loaded, "*", limit=300, sort=[{"field_name": "mdf.scroll_id"}]).hits
    ]
    assert loaded.search.reindex(SYSTEM_IDENTITY, "mdf") == 299
    after = [
        h.subject
        for h in search(loaded, "*", limit=300, sort=[{"field_name": "mdf.scroll_id"}]).hits
    ]
    assert after == before
    with pytest.raises(PermissionDenied):
        loaded.search.reindex(ALICE, "mdf")


def test_mapping_lists_fields_with_types(loaded: Services) -> None:
    mapping = loaded.search.mapping(ANONYMOUS, "mdf")
    assert mapping["mdf.source_name"] == "string"
    assert mapping["mdf.scroll_id"] == "long"
    assert mapping["band_gap"] == "double"
    assert mapping["mdf.ingest_date"] == "date"


def test_fractional_upper_bounds_over_integral_values(hub: Services) -> None:
    # tantivy stores 2.0 as an integer; a fractional upper bound on such a column used to panic.
    values = [2.0, 3.5, 1.25, -2, 2.5, 7, 1, 3, 0, 0.0]
    ingest(
        hub,
        [
            {"subject": f"v{i}", "visible_to": ["public"], "content": {"x": v}}
            for i, v in enumerate(values)
        ],
    )
    cases = {
        "x:[1 TO 2.5]": lambda v: 1 <= v <= 2.5,
        "x:[1 TO 2.5}": lambda v: 1 <= v < 2.5,
        "x:{* TO 3.4]": lambda v: v <= 3.4,
        "x:<-1.5": lambda v: v < -1.5,
        "x:<=2.5": lambda v: v <= 2.5,
        "x:[-3.5 TO 2.0]": lambda v: -3.5 <= v <= 2,
        "x:{1 TO 2.5]": lambda v: 1 < v <= 2.5,
        "x:[1.5 TO 3}": lambda v: 1.5 <= v < 3,
        "x:[1.5 TO 3]": lambda v: 1.5 <= v <= 3,
        "x:{-2 TO 1.25}": lambda v: -2 < v < 1.25,
        # A bound of 0 moves to ±5e-324, which must be written without an exponent.
        "x:[0 TO 2.5]": lambda v: 0 <= v <= 2.5,
        "x:{0 TO 2.5]": lambda v: 0 < v <= 2.5,
        "x:[-2.5 TO 0]": lambda v: -2.5 <= v <= 0,
        "x:[-2.5 TO 0}": lambda v: -2.5 <= v < 0,
        "x:[1e20 TO 2.5e20]": lambda v: False,
    }
    for q, keep in cases.items():
        assert search(hub, q, limit=0).total == sum(1 for v in values if keep(v)), q


def test_user_principal_urns_are_accepted(hub: Services) -> None:
    entry = {
        "subject": "mine",
        "visible_to": [user_principal(ALICE.user_id or "")],
        "content": {"x": 1},
    }
    ingest(hub, [entry])
    assert search(hub, "x:1", ALICE).total == 1
    assert search(hub, "x:1", BOB).total == 0


def test_fielded_wildcards_see_whole_tokens_of_at_most_40_characters(hub: Services) -> None:
    long, edge = "q" * 41, "z" * 40
    entry = {"subject": "w", "visible_to": ["public"], "content": {"x": f"{long} {edge} ab_cd"}}
    ingest(hub, [entry])
    assert search(hub, "x:z*z").total == 1  # 40 characters: a keyword
    assert search(hub, "x:q*q").total == 0  # 41: too long to be one, and no part of it is either
    assert search(hub, "x:a?_cd").total == 1

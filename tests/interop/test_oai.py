"""OAI-PMH 2.0 at /oai over a real HTTP server: harvested by `sickle`, every verb, every error.

The hub holds public datasets and the kinds that must never show (private, in curation, draft,
test), plus two that must show as deleted: one whose only version was withdrawn and one whose
latest version is no longer public. Pages hold two items, so every list resumes.
"""

from __future__ import annotations

import importlib.resources
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sickle import Sickle
from sickle.oaiexceptions import (
    CannotDisseminateFormat,
    IdDoesNotExist,
    NoRecordsMatch,
)
from sqlalchemy import update

from matterhub.catalog.models import Dataset
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.interop.oai import TokenCodec
from tests.conftest import _postgres_database, catalog_backends
from tests.interop.conftest import DC, Served, serve_hub

OAI = "{http://www.openarchives.org/OAI/2.0/}"
DATACITE = "{http://datacite.org/schema/kernel-4}"
MARK = "zqoaiprivatemarker"
LIVE = {"alpha", "beta", "gamma", "delta", "old", "twice", "control"}
DELETED = {"gone", "hidden"}
OLD = datetime(2020, 5, 5, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=catalog_backends())
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    # The item queries carry per-dialect SQL: on PostgreSQL too when CI provides one.
    databases = _postgres_database() if request.param == "postgresql" else (u for u in [""])
    url = next(databases)
    try:
        yield from _seeded(tmp_path_factory.mktemp("oai") / "hub", url)
    finally:
        databases.close()


def _seeded(data_dir: Path, database_url: str) -> Iterator[Served]:
    extra = {"database_url": database_url} if database_url else {}
    with serve_hub(data_dir, oai_page_size=2, **extra) as served:
        alice, datasets = served.alice, served.services.datasets
        served.publish("alpha", "Alpha", blocks={"mdf": {"organizations": ["Center for X"]}})
        served.publish("beta", "Beta", blocks={"mdf": {"organizations": ["Argonne"]}})
        served.publish("gamma", "Gamma")
        delta = served.publish("delta", "Delta")
        datasets.update_metadata(alice, delta, dc={**DC, "titles": [{"title": "Delta renamed"}]})
        served.publish("old", "Old")
        served.publish("control", "Control\x01char\x0b")  # characters XML 1.0 cannot carry
        served.publish("twice", "Twice")
        second = datasets.new_version(alice, "twice", dc={**DC, "titles": [{"title": "Twice v2"}]})
        datasets.publish(alice, second.source_id)
        datasets.withdraw(alice, second.source_id, reason="a mistake")  # v1.0 is shown again
        gone = served.publish("gone", f"Gone {MARK}")
        datasets.withdraw(alice, gone, reason="wrong data")
        hidden = served.publish("hidden", "Hidden")
        datasets.update_metadata(
            alice,
            hidden,
            dc={**DC, "titles": [{"title": f"Now private {MARK}"}]},
            visible_to=["group:lab"],
        )
        served.publish("secret", f"Secret {MARK}", visible_to=("group:lab",))
        served.publish("testds", f"Test {MARK}", test=True)
        curated = datasets.create(
            alice, dc={**DC, "titles": [{"title": f"Cur {MARK}"}]}, source_name="cur"
        )
        datasets.submit_for_curation(alice, curated.source_id)
        datasets.create(
            alice, dc={**DC, "titles": [{"title": f"Draft {MARK}"}]}, source_name="draft"
        )
        with served.services.catalog.transaction() as session:
            session.execute(
                update(Dataset).where(Dataset.source_name == "old").values(updated_at=OLD)
            )
        yield served


def ident(name: str) -> str:
    return f"oai:127.0.0.1:{name}"


def names(identifiers: Iterator[str] | list[str]) -> set[str]:
    return {i.removeprefix("oai:127.0.0.1:") for i in identifiers}


def raw(hub: Served, **params: str) -> tuple[str, ET.Element]:
    answer = httpx.get(f"{hub.base}/oai", params=params)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    return answer.text, ET.fromstring(answer.content)


def error_code(hub: Served, **params: str) -> str:
    _text, root = raw(hub, **params)
    error = root.find(f"{OAI}error")
    assert error is not None, _text
    return str(error.get("code"))


def test_sickle_harvests_exactly_the_public_datasets(hub: Served) -> None:
    records = list(Sickle(f"{hub.base}/oai").ListRecords(metadataPrefix="oai_dc"))
    assert len(records) == len(LIVE | DELETED)  # nine items in pages of two: resumed four times
    live = {r.header.identifier: r for r in records if not r.deleted}
    assert names(live) == LIVE
    assert names(r.header.identifier for r in records if r.deleted) == DELETED
    assert live[ident("delta")].metadata["title"] == ["Delta renamed"]
    assert live[ident("twice")].metadata["title"] == ["Twice"]
    assert "twice_v1.0" in live[ident("twice")].metadata["identifier"]
    assert "delta_v1.1" in live[ident("delta")].metadata["identifier"]
    assert all(MARK not in r.raw for r in records)


def test_sickle_harvests_datacite_over_post(hub: Served) -> None:
    sickle = Sickle(f"{hub.base}/oai", http_method="POST")
    records = list(sickle.ListRecords(metadataPrefix="oai_datacite", ignore_deleted=True))
    assert names(r.header.identifier for r in records) == LIVE
    for record in records:
        resource = record.xml.find(f".//{DATACITE}resource")
        assert resource is not None
        title = resource.findtext(f"{DATACITE}titles/{DATACITE}title")
        assert title and title.lower().startswith(record.header.identifier.rsplit(":", 1)[1][:3])


def test_identify(hub: Served) -> None:
    identify = Sickle(f"{hub.base}/oai").Identify()
    assert identify.repositoryName == "MatterHub"
    assert identify.baseURL == f"{hub.base}/oai"
    assert identify.protocolVersion == "2.0"
    assert identify.granularity == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.deletedRecord == "transient"
    # The oldest item's datestamp (`old` was stamped 2020-05-05), a lower bound of them all.
    assert identify.earliestDatestamp == "2020-05-05T10:00:00Z"


def test_list_metadata_formats(hub: Served) -> None:
    sickle = Sickle(f"{hub.base}/oai")
    formats = {f.metadataPrefix: f for f in sickle.ListMetadataFormats()}
    assert set(formats) == {"oai_dc", "oai_datacite"}
    assert formats["oai_datacite"].metadataNamespace == "http://datacite.org/schema/kernel-4"
    assert {f.metadataPrefix for f in sickle.ListMetadataFormats(identifier=ident("alpha"))} == {
        "oai_dc",
        "oai_datacite",
    }
    with pytest.raises(IdDoesNotExist):
        list(sickle.ListMetadataFormats(identifier=ident("secret")))


def test_list_sets_resumes_and_names_organisations_and_sources(hub: Served) -> None:
    specs = {s.setSpec: s.setName for s in Sickle(f"{hub.base}/oai").ListSets()}
    expected = {"org", "source", "org:center-for-x", "org:argonne"}
    expected |= {f"source:{n}" for n in LIVE | DELETED}
    assert set(specs) == expected
    assert specs["org:center-for-x"] == "Center for X"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("org:argonne", {"beta"}),
        ("org", {"alpha", "beta"}),
        ("source:gamma", {"gamma"}),
        ("source:gone", {"gone"}),
        ("source", LIVE | DELETED),
    ],
)
def test_sets_select_their_items(hub: Served, spec: str, expected: set[str]) -> None:
    headers = Sickle(f"{hub.base}/oai").ListIdentifiers(metadataPrefix="oai_dc", set=spec)
    assert names(h.identifier for h in headers) == expected


def test_unknown_set_and_private_source_match_nothing(hub: Served) -> None:
    sickle = Sickle(f"{hub.base}/oai")
    for spec in ("org:nowhere", "source:secret", "source:draft", "nothing"):
        with pytest.raises(NoRecordsMatch):
            list(sickle.ListIdentifiers(metadataPrefix="oai_dc", set=spec))


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"until": "2020-05-05"}, {"old"}),
        ({"until": "2020-05-05T10:00:00Z"}, {"old"}),
        ({"from": "2020-05-05T10:00:00Z", "until": "2020-05-05T10:00:00Z"}, {"old"}),
        ({"from": "2020-05-05", "until": "2020-05-05"}, {"old"}),
        ({"from": "2020-05-06"}, (LIVE | DELETED) - {"old"}),
        ({"from": "2020-05-05T10:00:01Z"}, (LIVE | DELETED) - {"old"}),
    ],
)
def test_from_and_until_are_inclusive_at_both_granularities(
    hub: Served, bounds: dict[str, str], expected: set[str]
) -> None:
    headers = Sickle(f"{hub.base}/oai").ListIdentifiers(metadataPrefix="oai_dc", **bounds)
    assert names(h.identifier for h in headers) == expected


def test_datestamps_follow_changes(hub: Served) -> None:
    headers = list(Sickle(f"{hub.base}/oai").ListIdentifiers(metadataPrefix="oai_dc"))
    stamps = {h.identifier: h.datestamp for h in headers}
    assert stamps[ident("old")] == "2020-05-05T10:00:00Z"
    assert [h.datestamp for h in headers] == sorted(h.datestamp for h in headers)
    latest = max(stamps.values())
    later = Sickle(f"{hub.base}/oai").ListIdentifiers(metadataPrefix="oai_dc", **{"from": latest})
    assert names(h.identifier for h in later) == {
        n for n in LIVE | DELETED if stamps[ident(n)] == latest
    }


def test_no_records_before_the_first_change_or_after_now(hub: Served) -> None:
    sickle = Sickle(f"{hub.base}/oai")
    with pytest.raises(NoRecordsMatch):
        list(sickle.ListIdentifiers(metadataPrefix="oai_dc", until="2020-05-05T09:59:59Z"))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    with pytest.raises(NoRecordsMatch):
        list(sickle.ListRecords(metadataPrefix="oai_dc", **{"from": tomorrow}))


def test_get_record(hub: Served) -> None:
    sickle = Sickle(f"{hub.base}/oai")
    for prefix in ("oai_dc", "oai_datacite"):
        control = sickle.GetRecord(identifier=ident("control"), metadataPrefix=prefix)
        assert "Control\ufffdchar\ufffd" in control.raw
    record = sickle.GetRecord(identifier=ident("alpha"), metadataPrefix="oai_datacite")
    assert record.xml.findtext(f".//{DATACITE}title") == "Alpha"
    assert record.header.datestamp.endswith("Z")
    assert "org:center-for-x" in record.header.setSpecs
    deleted = sickle.GetRecord(identifier=ident("gone"), metadataPrefix="oai_dc")
    assert deleted.deleted and not hasattr(deleted, "metadata")
    for name in ("secret", "cur", "draft", "testds", "nosuch"):
        with pytest.raises(IdDoesNotExist):
            sickle.GetRecord(identifier=ident(name), metadataPrefix="oai_dc")
    with pytest.raises(IdDoesNotExist):
        sickle.GetRecord(identifier="oai:elsewhere.org:alpha", metadataPrefix="oai_dc")
    with pytest.raises(CannotDisseminateFormat):
        sickle.GetRecord(identifier=ident("alpha"), metadataPrefix="marcxml")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "Harvest"}, "badVerb"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "Identify", "set": "org"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": "oai:127.0.0.1:alpha"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2020-1-1"}, "badArgument"),
        (
            {
                "verb": "ListIdentifiers",
                "metadataPrefix": "oai_dc",
                "from": "2020-01-01",
                "until": "2021-01-01T00:00:00Z",
            },
            "badArgument",
        ),
        (
            {
                "verb": "ListIdentifiers",
                "metadataPrefix": "oai_dc",
                "from": "2021-01-02",
                "until": "2021-01-01",
            },
            "badArgument",
        ),
        ({"verb": "ListRecords", "metadataPrefix": "mods"}, "cannotDisseminateFormat"),
        (
            {"verb": "ListRecords", "resumptionToken": "bm9wZQ.0123456789abcdef0123456789abcdef"},
            "badResumptionToken",
        ),
        ({"verb": "ListSets", "resumptionToken": "garbage"}, "badResumptionToken"),
        (
            {"verb": "ListRecords", "resumptionToken": "x", "metadataPrefix": "oai_dc"},
            "badArgument",
        ),
        ({"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "x" * 2000}, "badArgument"),
    ],
)
def test_errors_in_the_protocols_xml(hub: Served, params: dict[str, str], code: str) -> None:
    assert error_code(hub, **params) == code


def test_repeated_arguments_and_verbs(hub: Served) -> None:
    twice = httpx.get(f"{hub.base}/oai?verb=Identify&verb=Identify")
    root = ET.fromstring(twice.content)
    assert root.find(f"{OAI}error").get("code") == "badVerb"  # type: ignore[union-attr]
    # After badVerb/badArgument the request element carries no attributes.
    assert root.find(f"{OAI}request").attrib == {}  # type: ignore[union-attr]
    again = httpx.get(f"{hub.base}/oai?verb=ListSets&resumptionToken=a&resumptionToken=b")
    assert ET.fromstring(again.content).find(f"{OAI}error").get("code") == "badArgument"  # type: ignore[union-attr]


def test_a_token_is_bound_to_its_verb_and_unforgeable(hub: Served) -> None:
    _text, root = raw(hub, verb="ListIdentifiers", metadataPrefix="oai_dc")
    token = root.findtext(f"{OAI}ListIdentifiers/{OAI}resumptionToken")
    assert token
    _text, page2 = raw(hub, verb="ListIdentifiers", resumptionToken=token)
    assert len(page2.findall(f"{OAI}ListIdentifiers/{OAI}header")) == 2
    assert error_code(hub, verb="ListRecords", resumptionToken=token) == "badResumptionToken"
    data, mac = token.split(".")
    forged = f"{data[:-2]}{'AA' if data[-2:] != 'AA' else 'BB'}.{mac}"
    assert error_code(hub, verb="ListIdentifiers", resumptionToken=forged) == "badResumptionToken"


def test_tokens_expire() -> None:
    codec = TokenCodec("secret", ttl=timedelta(minutes=5))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token, expires = codec.encode({"v": "ListSets", "o": 2}, now=now)
    assert expires == now + timedelta(minutes=5)
    assert codec.decode(token, verb="ListSets", now=now + timedelta(minutes=4))["o"] == 2
    with pytest.raises(Exception, match="badResumptionToken"):
        codec.decode(token, verb="ListSets", now=now + timedelta(minutes=6))
    with pytest.raises(Exception, match="badResumptionToken"):
        TokenCodec("other", ttl=timedelta(minutes=5)).decode(token, verb="ListSets", now=now)


def test_post_needs_a_form_body(hub: Served) -> None:
    form = httpx.post(f"{hub.base}/oai", data={"verb": "Identify"})
    assert ET.fromstring(form.content).find(f"{OAI}Identify") is not None
    as_json = httpx.post(f"{hub.base}/oai", json={"verb": "Identify"})
    error = ET.fromstring(as_json.content).find(f"{OAI}error")
    assert error is not None and error.get("code") == "badArgument"


def test_private_datasets_stay_invisible_even_to_their_owner(hub: Served) -> None:
    token = hub.services.accounts.create_token(SYSTEM_IDENTITY, "alice").token
    headers = {"Authorization": f"Bearer {token}"}
    seen = []
    for params in (
        {"verb": "ListRecords", "metadataPrefix": "oai_datacite"},
        {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "source:secret"},
        {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": ident("secret")},
        {"verb": "ListSets"},
    ):
        while True:
            answer = httpx.get(f"{hub.base}/oai", params=params, headers=headers)
            seen.append(answer.text)
            token_text = ET.fromstring(answer.content).findtext(f".//{OAI}resumptionToken")
            if not token_text:
                break
            params = {"verb": params["verb"], "resumptionToken": token_text}
    text = "\n".join(seen)
    assert MARK not in text
    for name in ("secret", "cur", "draft", "testds"):
        assert f"<identifier>{ident(name)}</identifier>" not in text
        assert f"<setSpec>source:{name}</setSpec>" not in text
    assert "idDoesNotExist" in text and "noRecordsMatch" in text


def test_oai_datacite_records_validate_against_datacites_schema(hub: Served) -> None:
    from lxml import etree

    xsd = importlib.resources.files("validator") / "schema" / "metadata.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    records = list(
        Sickle(f"{hub.base}/oai").ListRecords(metadataPrefix="oai_datacite", ignore_deleted=True)
    )
    assert len(records) == len(LIVE)
    for record in records:
        resource = record.xml.find(f".//{DATACITE}resource")
        document = etree.fromstring(etree.tostring(resource))
        assert schema.validate(document), (record.header.identifier, schema.error_log)

"""Servable identifiers and citations: minted when live, cited in five formats, resolved, found.

With the local provider on every catalog backend, and with the DataCite fake (an outage, then
the retry). Builds are a tiny function servable's.
"""

from __future__ import annotations

import importlib.resources
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bibtexparser
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from lxml import etree
from sqlalchemy import select
from typer.testing import CliRunner

from matterhub.catalog.models import Servable, ServableVersion
from matterhub.cli.main import app as cli_app
from matterhub.client.errors import APIError
from matterhub.core.identity import PUBLIC
from tests.e2e.test_serve import free_port
from tests.fakes.datacite import FakeDataCite
from tests.hub.conftest import Hub, function_servable, hub_settings, start_hub
from tests.hub.test_pipelines import publish_pipeline
from tests.publish.conftest import DC

pytestmark = pytest.mark.timeout(600)

XSD = importlib.resources.files("validator") / "schema" / "metadata.xsd"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))
NS = {"d": "http://datacite.org/schema/kernel-4"}


def _dataset(hub: Hub, name: str, *, public: bool = True) -> tuple[str, str]:
    """A published dataset of alice's: (source_id, pid)."""
    alice = hub.services.accounts.identity_for("alice")
    datasets = hub.services.datasets
    visible = [PUBLIC] if public else []
    draft = datasets.create(alice, dc=DC, source_name=name, visible_to=visible)
    published = datasets.publish(alice, draft.source_id)
    assert published.pid is not None
    return published.source_id, published.pid


def _versions(hub: Hub, name: str) -> list[ServableVersion]:
    with hub.services.catalog.transaction() as session:
        rows = session.scalars(
            select(ServableVersion)
            .join(Servable, Servable.id == ServableVersion.servable_id)
            .where(Servable.name == name)
        ).all()
        for row in rows:
            session.expunge(row)
        return sorted(rows, key=lambda v: int(v.version))


def _rows(hub: Hub) -> list[ServableVersion]:
    with hub.services.catalog.transaction() as session:
        rows = list(session.scalars(select(ServableVersion)).all())
        for row in rows:
            session.expunge(row)
        return sorted(rows, key=lambda v: int(v.version))


def _ris(text: str) -> dict[str, list[str]]:
    """A minimal RIS reader: tag → values, checking the `TAG  - value` line shape."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        assert line[2:6] == "  - ", line
        fields.setdefault(line[:2], []).append(line[6:])
    return fields


def _base(hub: Hub) -> str:
    return hub.services.settings.base_url.rstrip("/")


def _http(hub: Hub, user: str | None = None) -> httpx.Client:
    return hub.client(user)._http  # type: ignore[attr-defined,no-any-return]


def test_each_live_version_gets_an_identifier_and_citations(hub: Hub, tmp_path: Path) -> None:
    base = _base(hub)
    source_id, dataset_pid = _dataset(hub, "radium")
    alice = hub.client("alice")
    first = function_servable(tmp_path / "v1", "adder").link_dataset(source_id=source_id)
    queued = alice.publish_servable(first)
    # Not while building: the row has no identifier until its build passed.
    building = _rows(hub)
    assert building[0].state == "building" and building[0].pid is None
    build = alice.wait_for_build("alice/adder", queued["id"], timeout=300)
    assert build["status"] == "succeeded", build["log"]

    (v1,) = _rows(hub)
    assert v1.state == "ready" and v1.pid_state == "registered"
    assert v1.pid is not None and v1.pid.startswith("mh/")
    described = hub.client().describe_servable("alice/adder")["document"]
    assert described["dlhub"]["identifier"] == v1.pid
    assert described["datacite"]["identifier"] == {
        "identifier": f"{base}/pid/{v1.pid}",
        "identifierType": "URL",
    }

    # BibTeX parses, RIS is well formed and says "computer program".
    bib = bibtexparser.loads(hub.client().cite_servable("alice/adder")).entries
    assert len(bib) == 1 and bib[0]["ENTRYTYPE"] == "misc"
    assert bib[0]["title"] == "{Adder adder}" and bib[0]["author"] == "Doe, Jane and Roe, Rick"
    assert bib[0]["version"] == v1.version
    assert bib[0]["url"] == f"{base}/pid/{v1.pid}"  # the persistent URL
    ris = _ris(hub.client().cite_servable("alice/adder", format="ris"))
    assert ris["TY"] == ["COMP"] and ris["AU"] == ["Doe, Jane", "Roe, Rick"] and "ER" in ris

    # DataCite XML validates against the kernel-4 XSD; Software, derived from the dataset.
    xml = hub.client().cite_servable("alice/adder", format="datacite-xml")
    doc = etree.fromstring(xml.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log
    assert doc.find("d:resourceType", NS).get("resourceTypeGeneral") == "Software"
    assert doc.findtext("d:resourceType", namespaces=NS) == "Python function"
    related = {
        (r.text, r.get("relationType"))
        for r in doc.findall("d:relatedIdentifiers/d:relatedIdentifier", NS)
    }
    assert related == {(f"{base}/pid/{dataset_pid}", "IsDerivedFrom")}
    alternates = [a.text for a in doc.findall("d:alternateIdentifiers/d:alternateIdentifier", NS)]
    assert v1.pid in alternates

    ld = json.loads(hub.client().cite_servable("alice/adder", format="schema.org"))
    assert ld["@type"] == "SoftwareSourceCode" and ld["identifier"] == v1.pid
    assert ld["isBasedOn"] == [f"{base}/pid/{dataset_pid}"]
    body = json.loads(hub.client().cite_servable("alice/adder", format="datacite-json"))
    attrs = body["data"]["attributes"]
    assert attrs["types"] == {"resourceTypeGeneral": "Software", "resourceType": "Python function"}
    assert attrs["identifiers"] == [{"identifier": v1.pid, "identifierType": "MatterHub"}]

    # A second version gets its own identifier, and says which one it follows.
    second = function_servable(tmp_path / "v2", "adder").link_dataset(source_id=source_id)
    assert alice.publish_servable(second, wait=True, timeout=300)["status"] == "succeeded"
    v1_again, v2 = _rows(hub)
    assert v2.pid_state == "registered" and v2.pid not in (None, v1.pid)
    assert v1_again.pid == v1.pid  # an identifier never changes
    xml2 = etree.fromstring(
        hub.client().cite_servable("alice/adder", format="datacite-xml").encode()
    )
    assert SCHEMA.validate(xml2), SCHEMA.error_log
    related2 = {
        (r.text, r.get("relationType"))
        for r in xml2.findall("d:relatedIdentifiers/d:relatedIdentifier", NS)
    }
    assert (f"{base}/pid/{v1.pid}", "IsNewVersionOf") in related2
    old = hub.client().cite_servable("alice/adder", format="bibtex", version=v1.version)
    assert f"version = {{{v1.version}}}" in old
    # …and the first now names its successor.
    first_xml = hub.client().cite_servable("alice/adder", format="datacite-xml", version=v1.version)
    successors = [
        r.text
        for r in etree.fromstring(first_xml.encode()).findall(
            "d:relatedIdentifiers/d:relatedIdentifier[@relationType='IsPreviousVersionOf']", NS
        )
    ]
    assert successors == [f"{base}/pid/{v2.pid}"]

    # A failed build is never live and gets none.
    broken = function_servable(tmp_path / "v3", "adder", expected=99.0)
    assert alice.publish_servable(broken, wait=True, timeout=300)["status"] == "failed"
    failed = _rows(hub)[-1]
    assert failed.state == "failed" and failed.pid is None and failed.pid_state is None
    listed = {v["version"]: v["identifier"] for v in hub.client().servable_versions("alice/adder")}
    assert listed == {v1.version: v1.pid, v2.version: v2.pid, failed.version: None}
    with pytest.raises(APIError) as caught:
        hub.client().cite_servable("alice/adder", version=failed.version)
    assert caught.value.status == 404
    with pytest.raises(APIError) as caught:
        hub.client().cite_servable("alice/adder", format="endnote")
    assert caught.value.status == 422 and caught.value.field == "format"

    # The identifier resolves to the version's landing page (HTML) or its description (JSON).
    http = _http(hub)
    page = http.get(f"/pid/{v1.pid}")
    assert page.status_code == 200
    assert "Adder adder" in page.text and v1.pid in page.text and "Doe, Jane" in page.text
    assert f"/api/servables/alice/adder/versions/{v1.version}/cite?format=datacite-xml" in page.text
    assert f"/datasets/{source_id}" in page.text  # the training data link
    as_json = http.get(f"/pid/{v1.pid}", headers={"Accept": "application/json"}).json()
    assert as_json["document"]["dlhub"]["version"] == v1.version
    landing = http.get(f"/servables/alice/adder/versions/{v2.version}")
    assert (
        landing.status_code == 200 and v2.pid in landing.text and 'id="cite-bibtex"' in landing.text
    )
    latest_page = http.get("/servables/alice/adder")
    assert v2.pid in latest_page.text and 'id="cite-formats"' in latest_page.text
    # The dataset's own identifier still resolves to the dataset.
    assert "Radium chloride" in http.get(f"/pid/{dataset_pid}").text

    # Searchable: by the SDK's filter, and by the query language over the Globus Search API.
    found = hub.client().search_by_identifier(v1.pid)
    assert [d["dlhub"]["version"] for d in found] == [v1.version]
    found = hub.client().search(f'dlhub.identifier:"{v2.pid}"')
    assert [d["dlhub"]["version"] for d in found] == [v2.version]
    globus = http.post(
        "/v1/index/dlhub/search", json={"q": f'dlhub.identifier:"{v1.pid}"', "advanced": True}
    ).json()
    assert [g["subject"] for g in globus["gmeta"]] == [f"alice/adder/{v1.version}"]


def test_private_servables_and_datasets_stay_private(hub: Hub, tmp_path: Path) -> None:
    private_source, private_pid = _dataset(hub, "secret", public=False)
    alice = hub.client("alice")
    hidden = function_servable(tmp_path / "h", "hidden").set_visibility(["user:alice"])
    hidden.link_dataset(source_id=private_source)
    assert alice.publish_servable(hidden, wait=True, timeout=300)["status"] == "succeeded"
    (row,) = _versions(hub, "hidden")
    assert row.pid is not None and row.pid_state == "registered"
    # Its owner cites it, with her private dataset (only she sees both).
    xml = alice.cite_servable("alice/hidden", format="datacite-xml")
    assert f"/pid/{private_pid}" in xml
    for user in (None, "bob"):
        client = hub.client(user)
        with pytest.raises(APIError) as caught:
            client.cite_servable("alice/hidden")
        assert caught.value.status == 404
        with pytest.raises(APIError) as caught:
            client.cite_servable("alice/hidden", version=row.version, format="ris")
        assert caught.value.status == 404
        http = _http(hub, user)
        assert http.get(f"/servables/alice/hidden/versions/{row.version}").status_code == 404
        assert http.get(f"/pid/{row.pid}").status_code == 404
        assert client.search_by_identifier(row.pid) == []

    # A public servable trained on a private dataset never shows the dataset's identifier.
    public = function_servable(tmp_path / "p", "open").link_dataset(source_id=private_source)
    assert alice.publish_servable(public, wait=True, timeout=300)["status"] == "succeeded"
    for fmt in ("datacite-xml", "bibtex", "schema.org", "datacite-json"):
        assert private_pid not in hub.client().cite_servable("alice/open", format=fmt)
    assert private_pid not in _http(hub).get("/servables/alice/open").text


@pytest.fixture
def datacite() -> Iterator[FakeDataCite]:
    fake = FakeDataCite().start()
    yield fake
    fake.stop()


@pytest.fixture
def dc_hub(tmp_path: Path, datacite: FakeDataCite) -> Iterator[Hub]:
    """A hub whose PID provider is DataCite (the fake); closed even when the test fails."""
    fake = datacite
    settings = hub_settings(
        tmp_path / "dc-hub",
        pid_provider="datacite",
        datacite_url=fake.url,
        datacite_user=fake.user,
        datacite_password=fake.password,
        datacite_prefix=fake.prefix,
        pid_retry_s=0.5,  # the idle build worker retries what DataCite refused
    )
    yield from start_hub(settings)


def test_datacite_dois_survive_an_outage(
    tmp_path: Path, datacite: FakeDataCite, dc_hub: Hub
) -> None:
    hub = dc_hub
    base = _base(hub)
    source_id, dataset_doi = _dataset(hub, "radium")
    alice = hub.client("alice")
    # DataCite is down: the version still goes live, and its row says what is missing.
    datacite.fail_next = 1000
    first = function_servable(tmp_path / "a", "adder").link_dataset(source_id=source_id)
    assert alice.publish_servable(first, wait=True, timeout=300)["status"] == "succeeded"
    (v1,) = _versions(hub, "adder")
    assert v1.state == "ready" and v1.pid is None and v1.pid_state == "failed"
    assert hub.client().describe_servable("alice/adder")["latest_version"] == v1.version
    bib = hub.client().cite_servable("alice/adder")  # cited by its landing page meanwhile
    assert "doi = " not in bib and f"/versions/{v1.version}" in bib

    # DataCite is back: the idle build worker mints it (as would the next start or build).
    datacite.fail_next = 0
    deadline = time.monotonic() + 60
    while _versions(hub, "adder")[0].pid_state != "registered":
        assert time.monotonic() < deadline, "the identifier was never retried"
        time.sleep(0.2)
    (v1,) = _versions(hub, "adder")
    assert v1.pid is not None and v1.pid.startswith("10.5072/")
    record = datacite.dois[v1.pid]["attributes"]
    assert record["state"] == "findable"
    assert record["url"] == f"{base}/servables/alice/adder/versions/{v1.version}"
    assert record["types"]["resourceTypeGeneral"] == "Software"
    assert record["titles"] == [{"title": "Adder adder"}]
    assert {
        "relatedIdentifier": dataset_doi,
        "relatedIdentifierType": "DOI",
        "relationType": "IsDerivedFrom",
    } in record["relatedIdentifiers"]
    xml = hub.client().cite_servable("alice/adder", format="datacite-xml")
    doc = etree.fromstring(xml.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log
    assert doc.findtext("d:identifier", namespaces=NS) == v1.pid
    assert bibtexparser.loads(hub.client().cite_servable("alice/adder")).entries[0]["doi"] == (
        v1.pid
    )
    # The index is re-entered right after the row says `registered`.
    while not hub.client().search_by_identifier(v1.pid):
        assert time.monotonic() < deadline, "the DOI never reached the index"
        time.sleep(0.1)
    assert [d["dlhub"]["name"] for d in hub.client().search_by_identifier(v1.pid)] == ["adder"]

    # The next version's DOI is minted when it goes live and points at the first.
    second = function_servable(tmp_path / "b", "adder")
    assert alice.publish_servable(second, wait=True, timeout=300)["status"] == "succeeded"
    v2 = _versions(hub, "adder")[1]
    assert v2.pid_state == "registered" and v2.pid != v1.pid
    related = datacite.dois[v2.pid]["attributes"]["relatedIdentifiers"]
    assert {
        "relatedIdentifier": v1.pid,
        "relatedIdentifierType": "DOI",
        "relationType": "IsNewVersionOf",
    } in related
    # v1's record at DataCite was updated: it names v2 as its next version.
    assert {
        "relatedIdentifier": v2.pid,
        "relatedIdentifierType": "DOI",
        "relationType": "IsPreviousVersionOf",
    } in datacite.dois[v1.pid]["attributes"]["relatedIdentifiers"]
    assert datacite.dois[v1.pid]["attributes"]["state"] == "findable"
    # `/pid/<doi>` is the landing page DataCite's url points at, too.
    assert v2.pid in _http(hub).get(f"/pid/{v2.pid}").text


def test_a_pipeline_version_gets_one_too(hub: Hub, tmp_path: Path) -> None:
    step = function_servable(tmp_path / "s", "adder")
    assert hub.client("alice").publish_servable(step, wait=True, timeout=300)["status"] == (
        "succeeded"
    )
    build = publish_pipeline(hub, "chain", [{"servable": "alice/adder"}])
    assert build["status"] == "succeeded", build["log"]
    (row,) = _versions(hub, "chain")
    assert row.pid_state == "registered" and row.pid is not None
    xml = etree.fromstring(
        hub.client().cite_servable("alice/chain", format="datacite-xml").encode()
    )
    assert SCHEMA.validate(xml), SCHEMA.error_log
    assert xml.find("d:resourceType", NS).get("resourceTypeGeneral") == "Workflow"


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    """The hub's app under uvicorn on a loopback port (the CLI talks real HTTP)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_cli_cites_a_servable(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = hub.client("alice")
    hidden = function_servable(tmp_path / "h", "hidden").set_visibility(["user:alice"])
    assert alice.publish_servable(hidden, wait=True, timeout=300)["status"] == "succeeded"
    (row,) = _versions(hub, "hidden")
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    with _served(hub.app) as base:
        monkeypatch.setenv("MATTERHUB_URL", base)
        monkeypatch.setenv("MATTERHUB_TOKEN", hub.tokens["alice"])
        bib = runner.invoke(cli_app, ["servable", "cite", "alice/hidden"])
        assert bib.exit_code == 0, bib.output
        (entry,) = bibtexparser.loads(bib.output).entries
        assert entry["version"] == row.version and row.pid is not None
        assert row.pid in bib.output
        xml = runner.invoke(
            cli_app,
            ["servable", "cite", "alice/hidden", "-f", "datacite-xml", "--version", row.version],
        )
        assert xml.exit_code == 0, xml.output
        assert SCHEMA.validate(etree.fromstring(xml.output.encode())), SCHEMA.error_log
        bad = runner.invoke(cli_app, ["servable", "cite", "alice/hidden", "-f", "endnote"])
        assert bad.exit_code == 2 and "--format" in bad.output and "Traceback" not in bad.output
        # bob may not see it: the same 404 as a servable that does not exist, one clear line.
        monkeypatch.setenv("MATTERHUB_TOKEN", hub.tokens["bob"])
        hidden_from_bob = runner.invoke(cli_app, ["servable", "cite", "alice/hidden"])
        assert hidden_from_bob.exit_code == 2 and "error:" in hidden_from_bob.output
        assert "alice/hidden" in hidden_from_bob.output and row.pid not in hidden_from_bob.output

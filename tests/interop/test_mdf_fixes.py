"""The MDF code that used to trip, run with the unmodified MDF clients against a served hub.

- Forge's `match_years` (a numeric range on `dc.publicationYear`, stored as a string);
- mdf-connect-client's `submit_dataset_metadata_update` (no `data_sources` in the body);
- servable search by author with any form of the name;
- records with titles (`mdf.title`), from Connect and after a reindex.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.records import record_title
from tests.hub.conftest import function_servable, hub_settings, running_hub
from tests.hub.served import serve
from tests.interop.exports_hub import ExportsHub, exports_hub

pytestmark = pytest.mark.timeout(600)
YEAR = datetime.datetime.now(datetime.UTC).year


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportsHub]:
    with exports_hub(tmp_path_factory.mktemp("mdf")) as served:
        yield served


@pytest.fixture
def forge(hub: ExportsHub, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_SEARCH", hub.base + "/")
    from mdf_forge import Forge

    return Forge(index="mdf", anonymous=True)


def _datasets(results: list[dict[str, Any]]) -> list[str]:
    return sorted(
        r["mdf"]["source_name"] for r in results if r["mdf"]["resource_type"] == "dataset"
    )


def test_forge_match_years_finds_the_datasets(forge: Any, hub: ExportsHub) -> None:
    # The public datasets anonymous Forge can see; `secret` is the lab's only.
    public = ["arrays", "dcdft", "g2"]
    assert _datasets(forge.match_years(start=2000).search()) == public
    assert _datasets(forge.match_years(start=2000, stop=YEAR).search()) == public
    assert _datasets(forge.match_years([YEAR]).search()) == public
    assert _datasets(forge.match_years(start=YEAR + 1).search()) == []
    assert _datasets(forge.match_years(stop=1999).search()) == []
    # The query string of the issue, and the document still spells the year as DataCite does.
    results = forge.search("dc.publicationYear:[2000 TO *]", advanced=True)
    assert _datasets(results) == public
    assert all(r["dc"]["publicationYear"] == str(YEAR) for r in results)
    assert forge.show_fields("dc")["dc.publicationYear"] == "long"
    # The web's year facet and its filter (a string value) agree with the numeric field.
    body = {
        "q": "*",
        "advanced": True,
        "filters": [
            {"type": "match_any", "field_name": "dc.publicationYear", "values": [str(YEAR)]}
        ],
        "facets": [{"name": "year", "field_name": "dc.publicationYear", "type": "terms"}],
    }
    found = httpx.post(f"{hub.base}/v1/index/mdf/search", json=body).json()
    assert found["total"] == len(public)
    assert found["facet_results"][0]["buckets"] == [{"value": YEAR, "count": len(public)}]


def test_reindex_keeps_years_numeric_and_titles_records(forge: Any, hub: ExportsHub) -> None:
    services = hub.served.services
    # An MDF record written before records had titles (as Connect wrote them then).
    old = {
        "subject": "legacy_v1.0.1",
        "visible_to": ["public"],
        "content": {
            "mdf": {"source_name": "legacy", "source_id": "legacy_v1.0", "scroll_id": 1,
                    "resource_type": "record"},
            "files": [{"filename": "Si.cif", "path": "cifs/Si.cif", "data_type": "CIF"}],
            "material": {"composition": "Si2", "elements": ["Si"]},
        },
    }  # fmt: skip
    task = services.search.ingest(
        SYSTEM_IDENTITY, "mdf", {"ingest_type": "GMetaEntry", "ingest_data": old}
    )
    assert services.search.wait(task.task_id).state == "SUCCESS"
    before = forge.search("mdf.source_name:legacy", advanced=True)
    assert [r["mdf"].get("title") for r in before] == [None]

    services.search.reindex(SYSTEM_IDENTITY, "mdf")

    after = forge.search("mdf.source_name:legacy", advanced=True)
    assert [r["mdf"]["title"] for r in after] == ["Si2 (cifs/Si.cif)"]
    assert _datasets(forge.match_years(start=2000).search()) == ["arrays", "dcdft", "g2"]
    # Connect's records had their titles already; the reindex leaves them as they were.
    dcdft = (
        forge.match_field("mdf.source_name", "dcdft")
        .match_field("mdf.resource_type", "record")
        .search()
    )
    assert len(dcdft) > 71  # a record per CIF and per CSV row
    assert all(r["mdf"]["title"] == record_title(r) for r in dcdft)


def test_connect_records_have_useful_titles(hub: ExportsHub) -> None:
    body = {"q": "mdf.resource_type:record", "advanced": True, "limit": 1000}
    gmeta = httpx.post(f"{hub.base}/v1/index/mdf/search", json=body).json()["gmeta"]
    titles = {g["entries"][0]["content"]["mdf"]["title"] for g in gmeta}
    assert "Fe (structures/Fe.cif)" in titles  # a crystal: formula and file
    assert "H2O (molecules/H2O.xyz)" in titles  # a molecule
    assert "spectra.h5" in titles  # no formula: the file
    assert all(titles)


def test_cli_search_lists_record_titles(
    hub: ExportsHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from matterhub.cli.main import app

    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", hub.base)
    monkeypatch.setenv("COLUMNS", "200")
    query = "mdf.source_name:g2 AND mdf.resource_type:record"
    result = CliRunner().invoke(app, ["search", query, "--advanced", "--limit", "5"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "g2_v1.0." in line]
    assert len(rows) == 5
    assert all("(molecules/" in row and ".xyz)" in row for row in rows), result.output


def test_connect_client_metadata_update(hub: ExportsHub) -> None:
    import globus_sdk
    from mdf_connect_client import MDFConnectClient

    folder = hub.incoming / "update-me"
    folder.mkdir()
    (folder / "cell.txt").write_text("a = 3.6 A\n")
    mdfcc = MDFConnectClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(hub.served.tokens["alice"])
    )
    mdfcc.service_loc = hub.base + "/connect"
    mdfcc.create_dc_block(title="Lattice notes", authors=["Ada Lovelace"], affiliations=["Hub"])
    mdfcc.add_data_source(str(folder))
    mdfcc.set_source_name("lattice_notes")
    first = mdfcc.submit_dataset()
    assert first["success"], first
    connect = hub.served.services.connect
    assert connect.wait(first["source_id"], timeout=120)["flow_status"]["status"] == "SUCCEEDED"

    # What the issue hit: the client strips data_sources and posts to /update/<source_id>.
    mdfcc.create_dc_block(
        title="Lattice notes, revised", authors=["Ada Lovelace"], affiliations=["Hub"]
    )
    answer = mdfcc.submit_dataset_metadata_update(first["source_id"])
    assert answer == {"success": True, "error": None, "status_code": 202}
    new = "lattice_notes_v1.1"
    assert connect.wait(new, timeout=120)["flow_status"]["status"] == "SUCCEEDED"
    version = hub.served.services.datasets.get(SYSTEM_IDENTITY, "lattice_notes")
    assert version.source_id == new
    assert version.dc["titles"][0]["title"] == "Lattice notes, revised"
    files = hub.served.services.datasets.manifest(SYSTEM_IDENTITY, new)
    old_files = hub.served.services.datasets.manifest(SYSTEM_IDENTITY, first["source_id"])
    assert [(f.path, f.sha512) for f in files] == [(f.path, f.sha512) for f in old_files]
    status = mdfcc.check_status(new, raw=True)
    assert status["status"]["original_submission"]["update_metadata_only"] is True
    # Renaming the dataset through an update is still refused, naming the field.
    mdfcc.set_source_name("another_name")
    refused = mdfcc.submit_dataset_metadata_update(new)
    assert refused["success"] is False and refused["status_code"] == 422
    direct = httpx.post(
        f"{hub.base}/connect/update/{new}",
        json={"mdf": {"source_name": "another_name"}},
        headers={"Authorization": f"Bearer {hub.served.tokens['alice']}"},
    )
    assert direct.status_code == 422 and direct.json()["field"] == "mdf.source_name"


def test_servable_search_by_author_matches_any_form_of_the_name(tmp_path: Path) -> None:
    with running_hub(hub_settings(tmp_path / "hub")) as hub:
        description = function_servable(tmp_path, "adder")  # creators Doe, Jane; Roe, Rick
        build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
        assert build["status"] == "succeeded", build["log"]
        client = hub.client()
        try:
            for name in ("Roe", "Rick", "Rick Roe", "Roe, Rick", "roe rick", ["Doe", "Roe"]):
                found = client.search_by_authors(name)
                assert [d["dlhub"]["name"] for d in found] == ["adder"], name
            for name in ("Lovelace", "Rick Lovelace", ["Roe", "Lovelace"]):
                assert client.search_by_authors(name) == [], name
            assert [d["dlhub"]["name"] for d in client.search_by_authors(
                ["Roe", "Lovelace"], match_all=False
            )] == ["adder"]  # fmt: skip
            assert client.search("adder", author=["Jane"]) != []
            assert client.search("nothing_like_it", author=["Jane"]) == []
        finally:
            client.close()


def test_dlhub_sdks_author_query_through_mdf_toolbox_finds_the_servable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query DLHub's SDK (2.1.0) builds in `search_by_authors` — `datacite.creators.familyName`
    and, after a comma, `givenName` — sent by mdf_toolbox's unmodified SearchHelper over
    globus-sdk. (dlhub_sdk itself cannot be imported here: it needs `pkg_resources`, gone from
    current setuptools, and its client needs Globus Auth and Globus Compute.)"""
    from globus_sdk import SearchClient
    from mdf_toolbox.globus_search.search_helper import SearchHelper

    with serve(hub_settings(tmp_path / "hub")) as served, served.client("alice") as alice:
        description = function_servable(tmp_path, "adder")  # creators Doe, Jane; Roe, Rick
        build = alice.publish_servable(description, wait=True, timeout=300)
        assert build["status"] == "succeeded", build["log"]
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_SEARCH", served.base.rstrip("/") + "/")

        def names(authors: list[str], match_all: bool = True) -> list[str]:
            helper = SearchHelper("dlhub", search_client=SearchClient())
            for i, author in enumerate(authors):  # dlhub_sdk's DLHubSearchHelper.match_authors
                family, *given = author.split(",")
                helper.match_field(
                    field="datacite.creators.familyName", value=f'"{family}"',
                    required=True if i == 0 else match_all, new_group=True,
                )  # fmt: skip
                if given:
                    helper.match_field(
                        field="datacite.creators.givenName", value=f'"{given[0].strip()}"',
                        required=True, new_group=False,
                    )  # fmt: skip
            return sorted(r["dlhub"]["name"] for r in helper.search())

        assert names(["Roe"]) == names(["Roe, Rick"]) == names(["Doe", "Roe"]) == ["adder"]
        assert names(["Lovelace"]) == names(["Roe, Ada"]) == names(["Roe", "Lovelace"]) == []
        assert names(["Roe", "Lovelace"], match_all=False) == ["adder"]

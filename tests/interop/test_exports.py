"""RO-Crate, Croissant and schema.org exports of the demo datasets, read back by their own libraries.

A hub served on loopback publishes the demo datasets through Connect (plus `arrays`, an HDF5 file
and a CSV, and `secret`, the lab's only); the exports are fetched over HTTP, by the client, by
Forge and by the CLI, and read back by `rocrate` (RO-Crate 1.1) and `mlcroissant`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from matterhub.client import Client, Forge
from matterhub.client.errors import NotFoundError
from tests.interop.exports_hub import SECRET_MARKER, ExportsHub, exports_hub

pytestmark = pytest.mark.timeout(600)
FORMATS = {
    "ro-crate": "ro-crate-metadata.json",
    "croissant": "croissant.json",
    "schema.org": "schema.org.json",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportsHub]:
    with exports_hub(tmp_path_factory.mktemp("exports")) as served:
        yield served


def _get(hub: ExportsHub, path: str, user: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {hub.served.tokens[user]}"} if user else {}
    return httpx.get(f"{hub.base}{path}", headers=headers, timeout=60)


def _manifest(hub: ExportsHub, sid: str) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = _get(hub, f"/api/datasets/{sid}/files").json()
    return files


def _public(hub: ExportsHub) -> list[str]:
    return [*hub.demo, hub.arrays]


def test_ro_crate_at_its_url_reads_back_as_rocrate_1_1(hub: ExportsHub, tmp_path: Path) -> None:
    from rocrate.rocrate import ROCrate

    for sid in _public(hub):
        answer = _get(hub, f"/api/datasets/{sid}/ro-crate-metadata.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/ld+json"
        folder = tmp_path / sid
        folder.mkdir()
        (folder / "ro-crate-metadata.json").write_bytes(answer.content)
        crate = ROCrate(folder)
        assert crate.version == "1.1"
        version = _get(hub, f"/api/datasets/{sid}").json()
        assert crate.root_dataset["name"] == version["dc"]["titles"][0]["title"]
        assert crate.root_dataset["version"] == version["version"]
        assert crate.root_dataset["datePublished"] == version["published_at"][:10]
        creators = [c["creatorName"] for c in version["dc"]["creators"]]
        assert [a["name"] for a in crate.root_dataset["author"]] == creators
        files = {f["path"]: f for f in _manifest(hub, sid)}
        entities = {unquote(e.id): e for e in crate.data_entities}
        assert set(entities) == set(files)
        for path, entity in entities.items():
            assert entity["contentSize"] == str(files[path]["size"])
            assert entity["identifier"] == f"sha512:{files[path]['sha512']}"


def test_the_zip_and_tar_carry_the_same_ro_crate(hub: ExportsHub, tmp_path: Path) -> None:
    from rocrate.rocrate import ROCrate

    for sid in _public(hub):
        metadata = _get(hub, f"/api/datasets/{sid}/ro-crate-metadata.json").json()
        archive = _get(hub, f"/api/datasets/{sid}/archive.zip")
        assert archive.status_code == 200
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
            assert json.loads(zf.read(f"{sid}/ro-crate-metadata.json")) == metadata
            zf.extractall(tmp_path / sid)
        crate = ROCrate(tmp_path / sid / sid)
        assert crate.version == "1.1"
        manifest = {f["path"]: f for f in _manifest(hub, sid)}
        for entity in crate.data_entities:  # every file the crate names is in the bundle
            on_disk = tmp_path / sid / sid / unquote(entity.id)
            assert on_disk.stat().st_size == manifest[unquote(entity.id)]["size"]
            digest = hashlib.sha512(on_disk.read_bytes()).hexdigest()
            assert entity["identifier"] == f"sha512:{digest}"
        # Without the top folder the zip itself is a crate the library opens directly.
        flat = tmp_path / f"{sid}.zip"
        flat.write_bytes(_get(hub, f"/api/datasets/{sid}/archive.zip?root=false").content)
        assert ROCrate(flat).root_dataset["name"] == crate.root_dataset["name"]
        # For another hub collecting the files: the files alone, no crate.
        bare = _get(hub, f"/api/datasets/{sid}/archive.zip?root=false&ro_crate=false")
        with zipfile.ZipFile(io.BytesIO(bare.content)) as zf:
            assert sorted(zf.namelist()) == sorted(manifest)
        tar = _get(hub, f"/api/datasets/{sid}/archive.tar")
        with tarfile.open(fileobj=io.BytesIO(tar.content)) as tf:
            member = tf.extractfile(f"{sid}/ro-crate-metadata.json")
            assert member is not None and json.loads(member.read()) == metadata


# mlcroissant 1.1.1 builds its graph with rdflib's deprecated ConjunctiveGraph.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_croissant_validates_with_mlcroissant(hub: ExportsHub, tmp_path: Path) -> None:
    import mlcroissant as mlc

    for sid in _public(hub):
        answer = _get(hub, f"/api/datasets/{sid}/croissant.json")
        assert answer.status_code == 200
        doc = answer.json()
        dataset = mlc.Dataset(jsonld=doc)  # raises on any validation error
        assert dataset.metadata.name == _get(hub, f"/api/datasets/{sid}").json()["dc"]["titles"][
            0
        ]["title"]  # fmt: skip
        path = tmp_path / f"{sid}.json"
        path.write_bytes(answer.content)
        run = subprocess.run(
            [str(Path(sys.executable).parent / "mlcroissant"), "validate", "--jsonld", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        # Every FileObject's sha256 is the file's.
        for item in doc["distribution"]:
            content = httpx.get(item["contentUrl"].replace("http://127.0.0.1:8000", hub.base))
            assert hashlib.sha256(content.content).hexdigest() == item["sha256"]


def test_croissant_record_sets_follow_the_csv_and_hdf5_files(hub: ExportsHub) -> None:
    dcdft = _get(hub, f"/api/datasets/{hub.demo[0]}/croissant.json").json()
    header = _get(hub, f"/api/datasets/{hub.demo[0]}/files/dcdft.csv").text.splitlines()[0]
    assert [rs["@id"] for rs in dcdft["recordSet"]] == ["dcdft.csv"]
    fields = dcdft["recordSet"][0]["field"]
    assert [f["name"] for f in fields] == header.split(",")
    types = {f["name"]: f["dataType"] for f in fields}
    assert types["formula"] == "sc:Text" and types["natoms"] == "sc:Integer"
    assert types["wien2k_volume"] == "sc:Float"
    assert all(f["source"]["extract"]["column"] == f["name"] for f in fields)

    g2 = _get(hub, f"/api/datasets/{hub.demo[1]}/croissant.json").json()
    assert g2["distribution"] == [] and g2["recordSet"] == []  # XYZ files only: no table

    arrays = _get(hub, f"/api/datasets/{hub.arrays}/croissant.json").json()
    sets = {rs["@id"]: rs for rs in arrays["recordSet"]}
    assert set(sets) == {"peaks.csv", "spectra.h5"}
    peaks = {f["name"]: f["dataType"] for f in sets["peaks.csv"]["field"]}
    assert peaks == {"position": "sc:Float", "height": "sc:Float", "label": "sc:Text"}
    h5 = {f["name"]: f for f in sets["spectra.h5"]["field"]}
    assert h5["energy"]["arrayShape"] == "16" and h5["energy"]["isArray"] is True
    assert "(eV)" in h5["energy"]["description"]
    assert h5["sample/intensity"]["arrayShape"] == "16,2"
    assert h5["sample/intensity"]["dataType"] == "sc:Float"
    formats = {d["name"]: d["encodingFormat"] for d in arrays["distribution"]}
    assert formats == {"peaks.csv": "text/csv", "spectra.h5": "application/x-hdf5"}


def test_landing_page_embeds_the_schema_org_dataset(hub: ExportsHub) -> None:
    for sid in _public(hub):
        page = _get(hub, f"/datasets/{sid}")
        assert page.status_code == 200
        scripts = re.findall(
            r'<script type="application/ld\+json">(.*?)</script>', page.text, re.DOTALL
        )
        assert len(scripts) == 1
        embedded = json.loads(scripts[0])
        assert embedded == _get(hub, f"/api/datasets/{sid}/schema.org.json").json()
        assert embedded["@context"] == "https://schema.org"
        assert embedded["@type"] == "Dataset"
        version = _get(hub, f"/api/datasets/{sid}").json()
        assert embedded["name"] == version["dc"]["titles"][0]["title"]
        assert embedded["distribution"][0]["contentUrl"].endswith(f"/{sid}/archive.zip")
        assert f"/api/datasets/{sid}/croissant.json" in page.text


def test_client_forge_and_cli_fetch_each_export(
    hub: ExportsHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from matterhub.cli.main import app

    sid = hub.arrays
    expected = {f: _get(hub, f"/api/datasets/{sid}/{p}").json() for f, p in FORMATS.items()}
    with Client(hub.base, retries=0, backoff=0) as client:
        for fmt, doc in expected.items():
            assert client.dataset_export(sid, fmt) == doc
        with pytest.raises(ValueError, match="unknown export format"):
            client.dataset_export(sid, "dcat")
    forge = Forge(index="mdf", base_url=hub.base, anonymous=True)
    try:
        assert forge.dataset_export(sid, "croissant") == expected["croissant"]
    finally:
        forge.close()
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", hub.base)
    runner = CliRunner()
    for fmt, doc in expected.items():
        result = runner.invoke(app, ["export", sid, "--format", fmt])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == doc
    saved = tmp_path / "crate.json"
    result = runner.invoke(app, ["export", sid, "-f", "ro-crate", "-o", str(saved)])
    assert result.exit_code == 0 and json.loads(saved.read_text()) == expected["ro-crate"]


def test_private_versions_export_only_to_their_readers(hub: ExportsHub) -> None:
    sid = hub.secret
    paths = [f"/api/datasets/{sid}/{p}" for p in FORMATS.values()]
    paths += [f"/api/datasets/{sid}/archive.zip", f"/datasets/{sid}"]
    for user in (None, "carol"):
        for path in paths:
            answer = _get(hub, path, user)
            assert answer.status_code == 404, (user, path)
            assert SECRET_MARKER not in answer.text
    for user in ("alice", "bob"):  # the owner; a member of the lab (the API, by token)
        for path in paths[:-1]:
            answer = _get(hub, path, user)
            assert answer.status_code == 200, (user, path)
        crate = _get(hub, f"/api/datasets/{sid}/ro-crate-metadata.json", user).json()
        assert SECRET_MARKER in json.dumps(crate)
    croissant = _get(hub, f"/api/datasets/{sid}/croissant.json", "bob").json()
    assert croissant["recordSet"][0]["field"][0]["name"] == SECRET_MARKER
    with Client(hub.base, retries=0, backoff=0) as anonymous, pytest.raises(NotFoundError):
        anonymous.dataset_export(sid, "ro-crate")


def test_drafts_have_no_exports(hub: ExportsHub) -> None:
    with hub.served.client("alice") as alice:
        draft = alice._json(
            "POST",
            "/api/datasets",
            json={"dc": {"titles": [{"title": "Draft"}], "creators": [{"creatorName": "A, B"}]}},
        )
    for path in FORMATS.values():
        answer = _get(hub, f"/api/datasets/{draft['source_id']}/{path}", "alice")
        assert answer.status_code == 404
        assert "not published" in answer.json()["detail"]

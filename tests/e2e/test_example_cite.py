"""`examples/cite_servable.py` against a real `matterhub serve` on loopback minting DataCite DOIs.

The server's PID provider is DataCite, answered by the DataCite fake (its real wire format) on
loopback; the example publishes a servable trained on a published dataset, waits until it is
live, and prints its DOI, BibTeX and DataCite XML.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from matterhub.client import Client
from tests.e2e.test_serve import MATTERHUB, free_port, stop, wait_healthy
from tests.fakes.datacite import FakeDataCite
from tests.hub.conftest import LOCAL_WHEELS, SHARED_CACHE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cite_servable.py"
XSD = importlib.resources.files("validator") / "schema" / "metadata.xsd"
DC = {
    "titles": [{"title": "Band gaps"}],
    "creators": [{"creatorName": "Doe, Jane"}],
    "publisher": "MatterHub",
    "publicationYear": "2026",
    "resourceType": {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"},
    "rightsList": [{"rights": "CC-BY 4.0"}],
}


def _env(fake: FakeDataCite) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    return {
        **clean,
        "MATTERHUB_PID_PROVIDER": "datacite",
        "MATTERHUB_DATACITE_URL": fake.url,
        "MATTERHUB_DATACITE_USER": fake.user,
        "MATTERHUB_DATACITE_PASSWORD": fake.password,
        "MATTERHUB_DATACITE_PREFIX": fake.prefix,
        "MATTERHUB_HUB_CACHE_DIR": str(SHARED_CACHE),
        "MATTERHUB_HUB_FIND_LINKS": json.dumps(LOCAL_WHEELS),
    }


def _cli(data_dir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*MATTERHUB, "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def datacite() -> Iterator[FakeDataCite]:
    fake = FakeDataCite().start()
    yield fake
    fake.stop()


def test_the_cite_example_prints_a_doi_and_valid_citations(
    tmp_path: Path, datacite: FakeDataCite
) -> None:
    data_dir = tmp_path / "hub"
    env = _env(datacite)
    _cli(data_dir, env, "user", "add", "alice")
    token = _cli(data_dir, env, "token", "create", "alice", "--quiet").strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*MATTERHUB, "--data-dir", str(data_dir), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_healthy(base, proc).status_code == 200
        # A public, published dataset with a DOI: the servable's training data.
        dataset, dataset_doi = _publish_dataset(base, token)
        assert datacite.dois[dataset_doi]["attributes"]["state"] == "findable"

        client_env = {**env, "MATTERHUB_URL": base, "MATTERHUB_TOKEN": token}
        run = subprocess.run(
            [sys.executable, str(EXAMPLE), "--dataset", dataset],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        lines = run.stdout.splitlines()
        identifier = next(x for x in lines if x.startswith("identifier:")).split()[1]
        assert identifier.startswith(f"{datacite.prefix}/")
        assert datacite.dois[identifier]["attributes"]["state"] == "findable"
        assert f"doi = {{{identifier}}}" in run.stdout
        xml = run.stdout.split("# DataCite XML\n", 1)[1]
        doc = etree.fromstring(xml.encode())
        schema = etree.XMLSchema(etree.parse(str(XSD)))
        assert schema.validate(doc), schema.error_log
        ns = {"d": "http://datacite.org/schema/kernel-4"}
        assert doc.findtext("d:identifier", namespaces=ns) == identifier
        related = {
            (r.text, r.get("relationType"))
            for r in doc.findall("d:relatedIdentifiers/d:relatedIdentifier", ns)
        }
        assert (dataset_doi, "IsDerivedFrom") in related
        assert doc.findtext("d:rightsList/d:rights", namespaces=ns) == "MIT"
        # The DOI is what the index finds.
        anonymous = Client(base)
        try:
            found = anonymous.search_by_identifier(identifier)
        finally:
            anonymous.close()
        assert [d["dlhub"]["name"] for d in found] == ["cite_example"]

        # --url/--token work as well as the environment; a second run is a second version.
        again = subprocess.run(
            [sys.executable, str(EXAMPLE), "--url", base, "--token", token],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        second = next(x for x in again.stdout.splitlines() if x.startswith("identifier:"))
        assert second.split()[1] not in (identifier, "not")
    finally:
        if proc.poll() is None:
            stop(proc)


def _publish_dataset(base: str, token: str) -> tuple[str, str]:
    """(source_id, DOI) of a public dataset alice creates and publishes over the API."""
    auth = {"Authorization": f"Bearer {token}"}
    body = {"dc": DC, "source_name": "band_gaps", "visible_to": ["public"]}
    draft = httpx.post(f"{base}/api/datasets", json=body, headers=auth, timeout=30)
    assert draft.status_code == 201, draft.text
    sid = draft.json()["source_id"]
    published = httpx.post(f"{base}/api/datasets/{sid}/publish", headers=auth, timeout=60)
    assert published.status_code == 200, published.text
    return sid, str(published.json()["pid"])

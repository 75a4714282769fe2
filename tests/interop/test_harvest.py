"""Following another MatterHub: its OAI-PMH endpoint harvested into this hub's search, over loopback.

Two hubs, each a real HTTP server: the remote publishes datasets (and a private one), the local
one follows it through `/api/harvest` (administrators only) and the outbound guard, which is told
to allow loopback. Re-harvests are incremental, updates replace entries, deletions remove them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sickle import Sickle
from sqlalchemy import update
from typer.testing import CliRunner

from matterhub.catalog.models import Dataset, HarvestSource
from matterhub.cli.main import app as cli
from matterhub.core.connect import SubmissionRequest
from matterhub.core.identity import ANONYMOUS
from matterhub.core.search import GSearchRequest
from matterhub.web.search import summarize
from tests.fakes.oai import FakeOAI, datacite_record
from tests.interop.conftest import DC, Served, serve_hub

MARK = "zqharvestprivatemarker"
LOOPBACK = {"outbound_allowed_networks": ["127.0.0.1/32"]}


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Served]:
    with serve_hub(tmp_path / "remote", oai_page_size=2) as served:
        served.publish(
            "perovskite", "Perovskite films", blocks={"mdf": {"organizations": ["Argonne"]}}
        )
        served.publish("zeolite", "Zeolite sorption")
        served.publish("graphene", "Graphene sheets")
        served.publish("secret", f"Secret {MARK}", visible_to=("group:lab",))
        served.services.datasets.create(
            served.alice, dc={**DC, "titles": [{"title": f"Draft {MARK}"}]}, source_name="draft"
        )
        yield served


def admin(hub: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.tokens['root']}"}


def search(hub: Served, q: str) -> list[dict[str, Any]]:
    body = {"q": q, "advanced": True, "limit": 100}
    answer = httpx.post(f"{hub.base}/v1/index/mdf/search", json=body)
    assert answer.status_code == 200, answer.text
    return [e["content"] for g in answer.json()["gmeta"] for e in g["entries"]]


def titles(entries: list[dict[str, Any]]) -> set[str]:
    return {e["dc"]["titles"][0]["title"] for e in entries}


def follow(local: Served, remote: Served, **extra: Any) -> None:
    body = {"name": "remote", "url": f"{remote.base}/oai", **extra}
    answer = httpx.post(f"{local.base}/api/harvest", json=body, headers=admin(local))
    assert answer.status_code == 201, answer.text


def run(local: Served, name: str = "remote") -> dict[str, Any]:
    answer = httpx.post(f"{local.base}/api/harvest/{name}/run", headers=admin(local), timeout=60)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_follow_a_hub_search_both_and_reharvest_incrementally(
    remote: Served, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "alloy.csv").write_text("a,b\n1,2\n")
    with serve_hub(tmp_path / "local", connect_allowed_roots=[incoming], **LOOPBACK) as local:
        request = SubmissionRequest.model_validate(
            {
                "dc": {**DC, "titles": [{"title": "Local alloy data"}]},
                "data_sources": [str(incoming)],
            }
        )
        sid = local.services.connect.submit(local.alice, request)["source_id"]
        assert local.services.connect.wait(sid, timeout=120)["status"]["state"] == "succeeded"

        refused = httpx.post(
            f"{local.base}/api/harvest",
            json={"name": "remote", "url": f"{remote.base}/oai"},
            headers={"Authorization": f"Bearer {local.tokens['alice']}"},
        )
        assert refused.status_code == 403
        follow(local, remote)
        # The oldest change is long past: a re-harvest's `from` leaves it out.
        with remote.services.catalog.transaction() as session:
            past = datetime(2021, 1, 1, tzinfo=UTC)
            session.execute(
                update(Dataset).where(Dataset.source_name == "perovskite").values(updated_at=past)
            )

        first = run(local)
        assert first["records"] == 3 and first["indexed"] == 3 and first["complete"]
        assert first["status"] == "complete" and first["error"] is None
        harvested = search(local, 'external.repository:"remote"')
        assert titles(harvested) == {"Perovskite films", "Zeolite sorption", "Graphene sheets"}
        zeolite = next(e for e in harvested if e["mdf"]["source_name"] == "remote:zeolite")
        assert zeolite["mdf"]["resource_type"] == "dataset"
        assert zeolite["external"]["source_id"] == "zeolite_v1.0"
        landing = zeolite["external"]["url"]
        assert landing.startswith(f"{remote.base}/pid/")
        assert httpx.get(landing).status_code == 200  # the link leads to the remote's page
        # One search spans this hub and the one it follows.
        datasets = titles(search(local, 'mdf.resource_type:"dataset"'))
        assert {"Local alloy data", "Perovskite films"} <= datasets
        row = summarize(f"external:remote:{zeolite['external']['identifier']}", zeolite)
        assert row["link"] == landing and row["title"] == "Zeolite sorption"  # web result row
        ours = search(local, 'mdf.resource_type:"dataset" AND NOT _exists_:external.repository')
        assert titles(ours) == {"Local alloy data"}
        # This hub's own /oai serves its own datasets only: what it follows is not re-exported.
        exported = Sickle(f"{local.base}/oai").ListRecords(metadataPrefix="oai_dc")
        assert [r.metadata["title"] for r in exported] == [["Local alloy data"]]
        everything = json.dumps(search(local, "*"))
        assert MARK not in everything and "remote:secret" not in everything

        remote.services.datasets.update_metadata(
            remote.alice,
            "zeolite_v1.0",
            dc={**DC, "titles": [{"title": "Zeolite sorption, revised"}]},
        )
        remote.services.datasets.withdraw(remote.alice, "graphene_v1.0", reason="retracted")
        remote.publish("perovskite2", "Perovskite single crystals")

        second = run(local)
        # Only what changed: the revised, the withdrawn and the new one — not perovskite.
        assert (second["records"], second["indexed"], second["deleted"]) == (3, 2, 1)
        after = search(local, 'external.repository:"remote"')
        assert titles(after) == {
            "Perovskite films",
            "Zeolite sorption, revised",
            "Perovskite single crystals",
        }
        assert len(after) == 3  # the revision replaced its entry
        source = httpx.get(f"{local.base}/api/harvest/remote", headers=admin(local)).json()
        assert source["last_status"] == "complete" and source["harvested_until"]
        assert not source["pending"]

        third = run(local)
        assert third["records"] <= 3 and third["complete"]  # nothing new beyond the overlap

        gone = httpx.delete(f"{local.base}/api/harvest/remote", headers=admin(local))
        assert gone.status_code == 204
        assert search(local, 'external.repository:"remote"') == []
        assert "Local alloy data" in titles(search(local, 'mdf.resource_type:"dataset"'))


def test_a_run_is_bounded_and_the_next_one_goes_on(remote: Served, tmp_path: Path) -> None:
    for n in range(2):
        remote.publish(f"extra{n}", f"Extra {n}")
    with serve_hub(tmp_path / "local", harvest_max_records=2, **LOOPBACK) as local:
        follow(local, remote, metadata_prefix="oai_dc")
        runs = [run(local)]
        while not runs[-1]["complete"]:
            assert len(runs) < 5
            source = httpx.get(f"{local.base}/api/harvest/remote", headers=admin(local)).json()
            assert source["pending"] and source["last_status"] == "partial"
            runs.append(run(local))
        assert [r["records"] for r in runs] == [2, 2, 1]
        assert [r["status"] for r in runs] == ["partial", "partial", "complete"]
        found = search(local, 'external.repository:"remote"')
        assert len(found) == 5
        graphene = next(e for e in found if e["mdf"]["source_name"] == "remote:graphene")
        assert graphene["external"]["metadata_prefix"] == "oai_dc"
        assert graphene["dc"]["publicationYear"] == 2024
        assert graphene["external"]["source_id"] == "graphene_v1.0"


def test_the_outbound_guard_refuses_loopback_unless_allowed(remote: Served, tmp_path: Path) -> None:
    with serve_hub(tmp_path / "local") as local:
        follow(local, remote)
        result = run(local)  # the run happened; the guard refused its request
        assert result["status"] == "failed" and "private address" in result["error"]
        source = httpx.get(f"{local.base}/api/harvest/remote", headers=admin(local)).json()
        assert source["last_status"] == "failed" and source["last_error"]
        assert search(local, 'external.repository:"remote"') == []


def test_responses_are_bounded(remote: Served, tmp_path: Path) -> None:
    with serve_hub(tmp_path / "local", harvest_max_response_bytes=2048, **LOOPBACK) as local:
        follow(local, remote)
        result = run(local)
        assert result["status"] == "failed" and "harvest_max_response_bytes" in result["error"]
        assert result["records"] == 0


def test_sources_are_checked(remote: Served, tmp_path: Path) -> None:
    with serve_hub(tmp_path / "local", **LOOPBACK) as local:
        headers = admin(local)
        bad = [
            ({"name": "Bad Name", "url": "http://x.org/oai"}, "name"),
            ({"name": "ok", "url": "ftp://x.org/oai"}, "url"),
            (
                {"name": "ok", "url": "http://x.org/oai", "metadata_prefix": "marc"},
                "metadata_prefix",
            ),
            ({"name": "ok", "url": "http://x.org/oai", "set_spec": "a b"}, "set_spec"),
        ]
        for body, field in bad:
            answer = httpx.post(f"{local.base}/api/harvest", json=body, headers=headers)
            assert answer.status_code == 422, body
            assert answer.json().get("field") == field
        follow(local, remote)
        again = httpx.post(
            f"{local.base}/api/harvest",
            json={"name": "remote", "url": "http://x.org/oai"},
            headers=headers,
        )
        assert again.status_code == 409
        assert httpx.get(f"{local.base}/api/harvest/nosuch", headers=headers).status_code == 404
        listed = httpx.get(f"{local.base}/api/harvest", headers=headers).json()
        assert [s["name"] for s in listed] == ["remote"]
        assert httpx.get(f"{local.base}/api/harvest").status_code == 403


def test_the_cli_follows_a_repository(remote: Served, tmp_path: Path) -> None:
    env = {
        "MATTERHUB_DATA_DIR": str(tmp_path / "local"),
        "MATTERHUB_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }
    runner = CliRunner()
    added = runner.invoke(
        cli, ["harvest", "add", "remote", f"{remote.base}/oai", "--set", "org:argonne"], env=env
    )
    assert added.exit_code == 0, added.output
    done = runner.invoke(cli, ["harvest", "run", "remote"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["indexed"] == 1
    listed = runner.invoke(cli, ["harvest", "list"], env=env)
    assert json.loads(listed.output)[0]["last_status"] == "complete"

    from matterhub.bootstrap import build_services
    from matterhub.settings import Settings

    services = build_services(Settings(data_dir=tmp_path / "local"))
    try:
        page = services.search.search(
            ANONYMOUS, "mdf", GSearchRequest(q='external.repository:"remote"', advanced=True)
        )
        assert [json.loads(h.source)["dc"]["titles"][0]["title"] for h in page.hits] == [
            "Perovskite films"
        ]
    finally:
        services.close()
    removed = runner.invoke(cli, ["harvest", "remove", "remote"], env=env)
    assert removed.exit_code == 0, removed.output
    runner.invoke(cli, ["harvest", "add", "nowhere", "http://127.0.0.1:9/oai"], env=env)
    failed = runner.invoke(cli, ["harvest", "run", "nowhere"], env=env)
    assert failed.exit_code == 1 and json.loads(failed.output)["status"] == "failed"


def test_nothing_new_keeps_the_mark(remote: Served, tmp_path: Path) -> None:
    with remote.services.catalog.transaction() as session:
        session.execute(update(Dataset).values(updated_at=datetime(2021, 1, 1, tzinfo=UTC)))
    with serve_hub(tmp_path / "local", **LOOPBACK) as local:
        follow(local, remote, set_spec="org:argonne")
        assert run(local)["indexed"] == 1
        mark = httpx.get(f"{local.base}/api/harvest/remote", headers=admin(local)).json()
        again = run(local)  # noRecordsMatch since the mark: a complete, empty run
        assert (again["records"], again["status"]) == (0, "complete")
        after = httpx.get(f"{local.base}/api/harvest/remote", headers=admin(local)).json()
        assert after["harvested_until"] == mark["harvested_until"]
        assert len(search(local, 'external.repository:"remote"')) == 1


def test_another_kind_of_repository_and_a_record_the_index_refuses(tmp_path: Path) -> None:
    # A subject holds at most 500 bytes: this identifier is short in characters, long in bytes.
    wide = "oai:zenodo.org:" + "\U0001d518" * 150
    records = [
        datacite_record("oai:zenodo.org:1", "Oxide band gaps", "10.5281/zenodo.1"),
        datacite_record(wide, "Too wide to index", "10.5281/zenodo.2"),
        datacite_record("oai:zenodo.org:3", "Nitride phonons", "10.5281/zenodo.3"),
    ]
    with FakeOAI(records) as zenodo, serve_hub(tmp_path / "local", **LOOPBACK) as local:
        body = {"name": "zenodo", "url": zenodo.url}
        assert httpx.post(f"{local.base}/api/harvest", json=body, headers=admin(local)).is_success
        result = run(local, "zenodo")
        assert (result["records"], result["indexed"], result["skipped"]) == (3, 2, 1)
        found = search(local, 'external.repository:"zenodo"')
        assert titles(found) == {"Oxide band gaps", "Nitride phonons"}
        assert {e["external"]["url"] for e in found} == {
            "https://doi.org/10.5281/zenodo.1",
            "https://doi.org/10.5281/zenodo.3",
        }
        assert zenodo.requests[0]["metadataPrefix"] == ["oai_datacite"]
        assert "from" not in zenodo.requests[0]  # a first run lists everything
        run(local, "zenodo")
        assert zenodo.requests[-1]["from"] == ["2026-12-07T11:59:00Z"]  # its clock, a minute back


def test_one_run_at_a_time_per_source(tmp_path: Path) -> None:
    record = datacite_record("oai:zenodo.org:1", "Oxide band gaps", "10.5281/zenodo.1")
    with FakeOAI([record]) as zenodo, serve_hub(tmp_path / "local", **LOOPBACK) as local:
        body = {"name": "zenodo", "url": zenodo.url}
        assert httpx.post(f"{local.base}/api/harvest", json=body, headers=admin(local)).is_success

        def claim(until: datetime) -> None:
            with local.services.catalog.transaction() as session:
                session.execute(update(HarvestSource).values(claimed_until=until))

        claim(datetime.now(UTC) + timedelta(minutes=5))  # a run in another server process
        busy = httpx.post(f"{local.base}/api/harvest/zenodo/run", headers=admin(local))
        assert busy.status_code == 409
        assert zenodo.requests == []
        claim(datetime.now(UTC) - timedelta(minutes=5))  # that process died long ago
        assert run(local, "zenodo")["indexed"] == 1
        assert run(local, "zenodo")["status"] == "complete"  # the claim was released

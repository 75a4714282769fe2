"""Connect's extraction on the hub's Ray executor: the same pipeline, extractor calls as Ray tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.connect.extractors.base import ExtractionContext, FileGroup, StagedFile
from matterhub.connect.extractors.pool import Task
from matterhub.connect.extractors.ray_pool import RayExtractorPool
from matterhub.settings import Settings
from tests.connect.helpers import codes, dc, search, submit, user

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ray_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Path]]:
    """A hub whose executor is a local Ray (`ray:local`), allowed to collect from a folder."""
    from tests.connect.conftest import CIF

    root = tmp_path_factory.mktemp("rayconnect")
    incoming = root / "incoming" / "set1"
    incoming.mkdir(parents=True)
    (incoming / "Fe.cif").write_text(CIF)
    (incoming / "table.csv").write_text("a,b\n1,2\n3,4\n")
    settings = Settings(
        data_dir=root / "hub", executor="ray:local", connect_allowed_roots=[root / "incoming"]
    )
    services = build_services(settings)
    services.start()
    yield services, incoming
    services.close()


def test_a_submission_extracts_on_ray_and_is_searchable(ray_hub: tuple[Services, Path]) -> None:
    hub, incoming = ray_hub
    pool = hub.connect._extract.keywords["pool"]  # type: ignore[attr-defined]
    assert isinstance(pool, RayExtractorPool)
    alice = user(hub, "alice")
    sid = submit(hub, alice, dc=dc(), data_sources=[str(incoming)])
    status = hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert codes(status)[-1] == "S"
    found = search(hub, "material.elements:Fe AND crystal_structure.space_group_number:229")
    assert found.total == 1
    assert json.loads(found.hits[0].source)["mdf"]["source_id"] == sid
    import ray

    assert ray.is_initialized()  # the extractor calls ran as Ray tasks on the hub's Ray


class _Hangs:
    """An extractor that never finishes (pickled by Ray to its worker)."""

    name = "hangs"
    priority = 50

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict:
        time.sleep(3600)
        return {}


class _Raises:
    name = "raises"
    priority = 50

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict:
        raise ValueError("unreadable")


def test_timeouts_and_errors_are_outcomes(ray_hub: tuple[Services, Path]) -> None:
    _, incoming = ray_hub
    staged = StagedFile(incoming / "table.csv", "table.csv", 16)
    group = FileGroup("table.csv", (staged,))
    context = ExtractionContext(time_limit_s=2.0)
    pool = RayExtractorPool()
    started = time.monotonic()
    hung, failed = pool.run(
        [Task(_Hangs(), group, context), Task(_Raises(), group, context)]  # type: ignore[arg-type]
    )
    assert hung.error == "timed out after 2 s"
    assert failed.error == "ValueError: unreadable"
    assert time.monotonic() - started < 30

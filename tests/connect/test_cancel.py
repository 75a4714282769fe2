"""Cancelling submissions: by the submitter, and by a newer update of the same dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.core.errors import Conflict, NotFound
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.connect.helpers import dc, submit, user


def test_a_cancelled_submission_never_runs(tmp_path: Path, data_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    stopped = build_services(settings)  # acknowledged, not yet picked up
    ann = user(stopped, "ann")
    sid = submit(
        stopped, ann, dc=dc("Cancelled before running"), data_sources=[str(data_root / "set1")]
    )
    answer = stopped.connect.cancel(ann, sid)
    assert answer["success"] is True
    status = stopped.connect.status(ann, sid)
    assert status["flow_status"]["status"] == "FAILED" and status["status"]["state"] == "cancelled"
    assert status["status"]["status_code"][0] == "S" and set(
        status["status"]["status_code"][1:]
    ) == {"X"}
    stopped.catalog.close()
    restarted = build_services(settings)
    restarted.start()
    try:
        assert restarted.connect.status(ann, sid)["status"]["state"] == "cancelled"
        assert restarted.datasets.get(SYSTEM_IDENTITY, sid).state == "draft"  # nothing published
        with pytest.raises(Conflict):
            restarted.connect.cancel(ann, sid)
    finally:
        restarted.close()


def test_only_the_submitter_cancels(hub: Services, data_root: Path) -> None:
    bob = user(hub, "bob")
    eve = user(hub, "eve")
    sid = submit(
        hub,
        bob,
        dc=dc("Not yours to cancel"),
        data_sources=[str(data_root / "set1")],
        curation=True,
    )
    hub.connect.wait(sid)
    with pytest.raises(NotFound):
        hub.connect.cancel(eve, sid)


def test_an_update_supersedes_a_waiting_submission(hub: Services, data_root: Path) -> None:
    cy = user(hub, "cy")
    source = [str(data_root / "set1")]
    first = submit(hub, cy, dc=dc("Superseded while curating"), data_sources=source)
    hub.connect.wait(first)
    waiting = submit(
        hub, cy, dc=dc("Superseded while curating"), data_sources=source, update=True, curation=True
    )
    assert hub.connect.wait(waiting)["status"]["state"] == "curation"
    newest = submit(hub, cy, dc=dc("Superseded while curating"), data_sources=source, update=True)
    assert newest == waiting  # the newer submission takes over the unpublished v2.0
    status = hub.connect.wait(newest)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert hub.datasets.get(SYSTEM_IDENTITY, newest).state == "published"
    history = hub.connect.submissions(cy, [["source_id", "==", waiting]])
    assert [s["state"] for s in history] == ["cancelled", "succeeded"]
    assert "superseded by" in history[0]["status_message"]

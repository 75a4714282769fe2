"""Publish → build → describe → search, rights and bad input, on every catalog backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from matterhub.catalog.models import Servable, ServableVersion
from matterhub.client.errors import APIError
from matterhub.core.errors import NotFound, PermissionDenied
from tests.hub.conftest import Hub, function_servable

pytestmark = pytest.mark.timeout(600)


def _publish(hub: Hub, user: str, description, *, ok: bool = True) -> dict:
    build = hub.client(user).publish_servable(description, wait=True, timeout=300)
    if ok:
        assert build["status"] == "succeeded", build["log"]
    return build


def test_publish_build_describe_and_search(hub: Hub, tmp_path: Path) -> None:
    description = function_servable(tmp_path, "adder")
    queued = hub.client("alice").publish_servable(description)
    assert queued["status"] in ("pending", "running", "succeeded")
    build = hub.client("alice").wait_for_build("alice/adder", queued["id"], timeout=300)
    assert build["status"] == "succeeded", build["log"]
    assert build["step"] == "done"
    for step in ("== unpack", "== environment", "== example", "== recipes"):
        assert step in build["log"]
    assert "matches the expected output" in build["log"]
    assert build["artefacts"] == ["Dockerfile", "apptainer.def", "requirements.txt"]

    described = hub.client().describe_servable("alice/adder")
    document = described["document"]
    assert document["dlhub"]["owner"] == "alice"
    assert document["dlhub"]["shorthand_name"] == "alice/adder"
    assert document["dlhub"]["publication_date"] == int(document["dlhub"]["version"])
    assert described["latest_version"] == document["dlhub"]["version"]
    assert described["usage"]["methods"]["run"]["input"] == "list[float]"
    assert document["servable"]["methods"]["run"]["parameters"] == {"offset": 0.0}

    found = hub.client().search_by_servable("adder")
    assert [d["dlhub"]["shorthand_name"] for d in found] == ["alice/adder"]
    assert hub.client().search_by_authors("Roe, Rick")[0]["dlhub"]["name"] == "adder"
    assert hub.client().search_by_authors(["Roe, Rick", "Nobody, X"], match_all=True) == []
    assert hub.client().search_by_input_type("list")[0]["dlhub"]["name"] == "adder"
    assert hub.client().search_by_input_type("ndarray") == []
    assert hub.client().search("Adder")[0]["dlhub"]["name"] == "adder"
    assert hub.client().list_servables() == ["alice/adder"]

    # The recipes are real artefacts: the Dockerfile runs the shim's serve mode.
    recipe = (
        hub.client()
        ._request("GET", f"/api/servables/alice/adder/builds/{build['id']}/Dockerfile")
        .text
    )
    assert "matterhub_shim.py" in recipe and "serve" in recipe
    apptainer = (
        hub.client()
        ._request("GET", f"/api/servables/alice/adder/builds/{build['id']}/apptainer.def")
        .text
    )
    assert apptainer.startswith("Bootstrap: docker")

    # The runtime of issue #8 starts workers from here: the environment and files exist.
    spec = hub.services.servables.runtime(
        hub.services.accounts.identity_for("alice"), "alice/adder"
    )
    assert spec.python.exists() and spec.shim.exists()
    assert (spec.files_dir / "adder.py").exists()
    assert json.loads(spec.document_path.read_text())["dlhub"]["name"] == "adder"


def test_republish_keeps_versions_and_a_failed_build_keeps_the_old_one_live(
    hub: Hub, tmp_path: Path
) -> None:
    first = _publish(hub, "alice", function_servable(tmp_path / "1", "adder"))
    second = _publish(hub, "alice", function_servable(tmp_path / "2", "adder"))
    assert second["version"] > first["version"]

    # Wrong expected output: the build fails at compare and shows both values.
    broken = _publish(
        hub, "alice", function_servable(tmp_path / "3", "adder", expected=7.0), ok=False
    )
    assert broken["status"] == "failed"
    assert broken["step"] == "compare"
    assert "expected: 7.0" in broken["log"] and "received: 6.0" in broken["log"]
    assert broken["artefacts"] == []

    described = hub.client().describe_servable("alice/adder")
    assert described["latest_version"] == second["version"]
    states = {v["version"]: v["state"] for v in described["versions"]}
    assert states == {
        first["version"]: "ready",
        second["version"]: "ready",
        broken["version"]: "failed",
    }
    # Search shows the live version only; every ready version stays addressable.
    found = hub.client().search_by_servable("adder")
    assert [d["dlhub"]["version"] for d in found] == [second["version"]]
    all_versions = hub.client().search_by_servable("adder", only_latest=False)
    assert sorted(d["dlhub"]["version"] for d in all_versions) == sorted(
        [first["version"], second["version"]]
    )
    alice = hub.services.accounts.identity_for("alice")
    assert hub.services.servables.runtime(alice, "alice/adder").version == second["version"]
    assert (
        hub.services.servables.runtime(alice, "alice/adder", version=first["version"]).version
        == first["version"]
    )
    with pytest.raises(NotFound):
        hub.services.servables.runtime(alice, "alice/adder", version=broken["version"])


def test_an_example_that_raises_fails_the_build(hub: Hub, tmp_path: Path) -> None:
    description = function_servable(tmp_path, "adder")
    raising = b"def add(x, offset=0.0):\n    raise ValueError('this sample is out of domain')\n"
    build = hub.client("alice").publish_bundle(description.document, {"adder.py": raising})
    final = hub.client("alice").wait_for_build("alice/adder", build["id"], timeout=300)
    assert final["status"] == "failed"
    assert final["step"] == "example"
    assert "ValueError: this sample is out of domain" in final["log"]
    assert hub.client("alice").describe_servable("alice/adder")["latest_version"] is None
    assert hub.client().search_by_servable("adder") == []


def test_a_requirement_that_does_not_exist_fails_at_environment(hub: Hub, tmp_path: Path) -> None:
    description = function_servable(tmp_path, "adder")
    description.add_requirement("matterhub-no-such-package-zz9", "1.0.0")
    build = _publish(hub, "alice", description, ok=False)
    assert build["step"] == "environment"
    assert "matterhub-no-such-package-zz9" in build["log"]
    assert "installing the requirements failed" in build["log"]


def test_name_taken_by_another_owner_is_a_conflict(hub: Hub, tmp_path: Path) -> None:
    _publish(hub, "alice", function_servable(tmp_path / "a", "adder"))
    with pytest.raises(APIError) as caught:
        hub.client("bob").publish_servable(function_servable(tmp_path / "b", "adder"))
    assert caught.value.status == 409
    assert caught.value.field == "dlhub.name"


def test_bad_documents_get_422_naming_the_path_and_register_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    description = function_servable(tmp_path, "adder")
    source = {"adder.py": (tmp_path / "adder" / "adder.py").read_bytes()}
    cases = {
        "datacite.titles": lambda d: d["datacite"].update(titles=[]),
        "dlhub.name": lambda d: d["dlhub"].update(name="has space"),
        "servable.methods.run.input.item_type": lambda d: d["servable"]["methods"]["run"].update(
            input={"type": "list"}
        ),
        "servable.methods.run.input.shape[1]": lambda d: d["servable"]["methods"]["run"].update(
            input={"type": "ndarray", "shape": [None, 0]}
        ),
        "dlhub.dependencies.python.--index-url": lambda d: d["dlhub"]["dependencies"][
            "python"
        ].update({"--index-url": "x"}),
        "servable.example.input[1]": lambda d: d["servable"].update(
            example={"input": [1.0, "two"]}
        ),
        "dlhub.files.other[0]": lambda d: d["dlhub"]["files"].update(other=["missing.py"]),
    }
    for path, mutate in cases.items():
        document = json.loads(json.dumps(description.document))
        mutate(document)
        with pytest.raises(APIError) as caught:
            hub.client("alice").publish_bundle(document, source)
        assert caught.value.status == 422, path
        assert caught.value.field == path, (path, caught.value.detail)
    with pytest.raises(APIError) as caught:
        hub.client().publish_bundle(description.document, source)
    assert caught.value.status == 401
    with hub.services.catalog.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Servable)) == 0
        assert session.scalar(select(func.count()).select_from(ServableVersion)) == 0
    assert list(hub.services.blobs.list("servables/")) == []


def test_a_bundle_over_the_limit_is_413_and_registers_nothing(hub: Hub, tmp_path: Path) -> None:
    hub.services.servables.max_bundle_bytes = 10_000
    description = function_servable(tmp_path, "adder")
    with pytest.raises(APIError) as caught:
        hub.client("alice").publish_bundle(
            {
                **description.document,
                "dlhub": {
                    **description.document["dlhub"],
                    "files": {"other": ["adder.py", "big.bin"]},
                },
            },
            {"adder.py": b"def add(x): return 0\n", "big.bin": b"\0" * 20_000},
        )
    assert caught.value.status == 413
    # A zip counts its unpacked size, not the compressed one (a zip bomb stops at the limit).
    description.add_file(_zeros(tmp_path / "zeros.bin", 50_000))
    with pytest.raises(APIError) as caught:
        hub.client("alice").publish_servable(description)
    assert caught.value.status == 413
    with hub.services.catalog.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Servable)) == 0


def _zeros(path: Path, size: int) -> Path:
    path.write_bytes(b"\0" * size)
    return path


def test_visible_to_and_runnable_by_are_separate_rights(hub: Hub, tmp_path: Path) -> None:
    public_metadata = function_servable(tmp_path / "a", "lab-runs").set_visibility(
        ["public"], ["group:lab"]
    )
    lab_only = function_servable(tmp_path / "b", "lab-sees").set_visibility(["group:lab"])
    _publish(hub, "alice", public_metadata)
    _publish(hub, "alice", lab_only)
    servables = hub.services.servables
    identities = {
        "anonymous": hub.services.accounts.authenticate(None),
        "owner": hub.services.accounts.identity_for("alice"),
        "member": hub.services.accounts.identity_for("bob"),
        "stranger": hub.services.accounts.identity_for("carol"),
    }
    with hub.services.catalog.transaction() as session:
        rows = {s.name: s for s in session.scalars(select(Servable)).all()}
        session.expunge_all()
    can_run = {who: servables.can_run(i, rows["lab-runs"]) for who, i in identities.items()}
    assert can_run == {"anonymous": False, "owner": True, "member": True, "stranger": False}
    can_run = {who: servables.can_run(i, rows["lab-sees"]) for who, i in identities.items()}
    assert can_run == {"anonymous": False, "owner": True, "member": True, "stranger": False}

    # Seeing: public metadata is visible to all; lab-only metadata is missing for outsiders.
    for who, identity in identities.items():
        assert servables.describe(identity, "alice/lab-runs").name == "lab-runs"
        if who in ("anonymous", "stranger"):
            with pytest.raises(NotFound):
                servables.describe(identity, "alice/lab-sees")
            with pytest.raises(NotFound):
                servables.require_run(identity, "alice/lab-sees")
            with pytest.raises(PermissionDenied):
                servables.require_run(identity, "alice/lab-runs")
        else:
            assert servables.describe(identity, "alice/lab-sees").name == "lab-sees"
            servables.require_run(identity, "alice/lab-runs")

    # Search applies the same rule.
    def names(user: str | None) -> list[str]:
        return sorted(d["dlhub"]["name"] for d in hub.client(user).get_servables())

    assert names(None) == ["lab-runs"]
    assert names("carol") == ["lab-runs"]
    assert names("bob") == ["lab-runs", "lab-sees"]
    assert names("alice") == ["lab-runs", "lab-sees"]
    with pytest.raises(APIError) as caught:
        hub.client("carol").describe_servable("alice/lab-sees")
    assert caught.value.status == 404


def test_malformed_names_are_refused(hub: Hub) -> None:
    with pytest.raises(Exception, match="owner/name"):
        hub.client().describe_servable("no-slash")
    with pytest.raises(APIError) as caught:
        hub.client().describe_servable("alice/none")
    assert caught.value.status == 404

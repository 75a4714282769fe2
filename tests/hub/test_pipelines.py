"""Pipelines: published, built (steps checked), discovered and run server-side with step timings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.client.describe import describe_function
from matterhub.client.errors import APIError
from matterhub.client.runs import RemoteServableError
from matterhub.hub.pipelines import apply_mapping, parse_mapping
from tests.hub.conftest import Hub, hub_settings, import_function, running_hub, write_module

pytestmark = pytest.mark.timeout(300)

STEPS_SOURCE = '''
def featurize(x: list[float]) -> dict:
    """Summarise a list."""
    print("featurizing")
    return {"total": sum(x), "n": len(x), "items": list(x)}


def scale(x: float, factor: float = 2.0) -> float:
    """Multiply; refuse big numbers."""
    if x > 100:
        raise ValueError(f"{x} is too big")
    return x * factor


def shout(x: str) -> str:
    """Upper-case a string."""
    return x.upper()
'''


def publish_function(
    hub: Hub, folder: Path, function: str, example: Any, expected: Any, **rights: Any
) -> None:
    """Publish one function of STEPS_SOURCE as alice, named after it."""
    path = write_module(folder / function, "steps", STEPS_SOURCE)
    description = describe_function(import_function(path, function), function)
    description.set_title(function).set_creators(["Doe, Jane"]).set_example(example, expected)
    if rights:
        description.set_visibility(["public"], runnable_by=rights["runnable_by"])
    build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]


def pipeline_document(name: str, steps: list[dict[str, Any]], **servable: Any) -> dict[str, Any]:
    """A pipeline document: no files, no requirements, just steps."""
    return {
        "datacite": {"titles": [{"title": name}], "creators": [{"creatorName": "Doe, Jane"}]},
        "dlhub": {"name": name, "domains": ["testing"]},
        "servable": {"type": "pipeline", "steps": steps, **servable},
    }


def publish_pipeline(hub: Hub, name: str, steps: list[dict[str, Any]], **servable: Any) -> dict:
    """Publish a pipeline as alice and wait for its build."""
    client = hub.client("alice")
    build = client.publish_bundle(pipeline_document(name, steps, **servable), {})
    result: dict[str, Any] = client.wait_for_build(build["servable"], build["id"], timeout=120)
    return result


@pytest.fixture(scope="module")
def pipe_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """`alice/featurize`, `alice/scale`, `alice/shout`, `alice/locked` (lab only), `alice/gap`."""
    root = tmp_path_factory.mktemp("pipehub")
    with running_hub(hub_settings(root / "hub")) as hub:
        publish_function(hub, root / "src", "featurize", [1.0, 2.0], None)
        publish_function(hub, root / "src", "scale", 1.5, 3.0)
        publish_function(hub, root / "src", "shout", "a", "A")
        path = write_module(root / "src" / "locked", "steps", STEPS_SOURCE)
        locked = describe_function(import_function(path, "scale"), "locked")
        locked.set_title("locked").set_creators(["Doe, Jane"]).set_example(1.0, 2.0)
        locked.set_visibility(["public"], runnable_by=["group:lab"])
        assert hub.client("alice").publish_servable(locked, wait=True)["status"] == "succeeded"
        build = publish_pipeline(
            hub,
            "gap",
            [
                {"servable": "alice/featurize"},
                {"servable": "alice/scale", "input": "$.total", "parameters": {"factor": 10}},
            ],
            example={"input": [1.0, 2.0]},
        )
        assert build["status"] == "succeeded", build["log"]
        yield hub


def test_mappings() -> None:
    assert parse_mapping(None) == () and parse_mapping("$") == ()
    assert parse_mapping("$.a.b[0][-1].c_d") == ("a", "b", 0, -1, "c_d")
    assert parse_mapping(2) == (2,)
    assert apply_mapping({"a": [{"b": 5}]}, ("a", 0, "b")) == 5
    with pytest.raises(KeyError, match=r"\$\.a\[3\]"):
        apply_mapping({"a": [1]}, ("a", 3))


def test_a_pipeline_is_built_discovered_and_described(pipe_hub: Hub) -> None:
    client = pipe_hub.client()
    described = client.describe_servable("alice/gap")
    document = described["document"]
    assert document["dlhub"]["type"] == "pipeline"
    run = document["servable"]["methods"]["run"]  # filled in by the build
    assert run["input"]["type"] == "list" and run["output"]["type"] == "float"
    assert described["versions"][0]["environment_hash"] == "pipeline"
    found = client.search_by_servable(servable_name="gap")
    assert [d["dlhub"]["shorthand_name"] for d in found] == ["alice/gap"]
    log = client.get_builds("alice/gap")[0]["log"]
    assert "steps[1] (alice/scale)" in log


def test_run_sync_debug_timings_memo_and_async(pipe_hub: Hub) -> None:
    client = pipe_hub.client("bob")
    assert client.run("alice/gap", [1.0, 2.0, 3.0]) == 60.0
    assert client.run("alice/gap", [1.0], parameters={"1": {"factor": 3}}) == 3.0
    value, meta = client.run("alice/gap", [2.0, 2.0], debug=True)
    assert value == 40.0 and meta["success"] is True
    steps = meta["steps"]
    assert [s["servable"] for s in steps] == ["alice/featurize", "alice/scale"]
    assert all(s["ok"] and s["total_s"] > 0 and s["run_s"] >= 0 for s in steps)
    assert "featurizing" in meta["stdout"] and "[steps[0] (alice/featurize)]" in meta["stdout"]
    first = client._json("POST", "/api/servables/alice/gap/run", json={"inputs": [5.0]})
    again = client._json("POST", "/api/servables/alice/gap/run", json={"inputs": [5.0]})
    assert first["output"] == again["output"] == 50.0 and again["cached"] is True
    provenance = client.get_provenance(first["task_id"])
    assert provenance["environment_hash"] == "pipeline"
    assert [s["step"] for s in provenance["steps"]] == [0, 1]
    future = client.run("alice/gap", [4.0], asynchronous=True, timeout=60)
    assert future.result(timeout=60) == 40.0
    batch = client.run_batch("alice/gap", [[1.0], [2.0], [3.0]], wait=True, timeout=60)
    assert sorted(t["result"] for t in batch["tasks"].values()) == [10.0, 20.0, 30.0]


def test_a_failing_step_is_named(pipe_hub: Hub) -> None:
    client = pipe_hub.client("alice")
    with pytest.raises(RemoteServableError) as raised:
        client.run("alice/gap", [60.0, 50.0])
    assert raised.value.error_type == "ValueError"
    assert raised.value.message == "steps[1] (alice/scale): 110.0 is too big"
    with pytest.raises(APIError) as bad:
        client.run("alice/gap", ["x"])
    assert bad.value.status == 422  # the pipeline's input is the first step's


def test_rights_are_checked_for_each_step(pipe_hub: Hub) -> None:
    build = publish_pipeline(
        pipe_hub,
        "guarded",
        [{"servable": "alice/featurize"}, {"servable": "alice/locked", "input": "$.n"}],
    )
    assert build["status"] == "succeeded", build["log"]
    assert pipe_hub.client("bob").run("alice/guarded", [1.0, 1.0, 1.0]) == 6.0
    with pytest.raises(APIError) as denied:
        pipe_hub.client("carol").run("alice/guarded", [1.0])
    assert denied.value.status == 403 and "steps[1] (alice/locked)" in denied.value.detail
    with pytest.raises(APIError) as denied_async:
        pipe_hub.client("carol").run("alice/guarded", [1.0], asynchronous=True)
    assert denied_async.value.status == 403


def test_a_missing_or_mismatched_step_fails_the_build(pipe_hub: Hub) -> None:
    missing = publish_pipeline(
        pipe_hub, "broken", [{"servable": "alice/featurize"}, {"servable": "alice/nothing"}]
    )
    assert missing["status"] == "failed" and missing["step"] == "steps"
    assert "steps[1] (alice/nothing)" in missing["log"]
    mismatched = publish_pipeline(
        pipe_hub, "mismatch", [{"servable": "alice/scale"}, {"servable": "alice/shout"}]
    )
    assert mismatched["status"] == "failed"
    assert "steps[1] (alice/shout) cannot follow" in mismatched["log"]
    with pytest.raises(APIError) as nothing_ready:
        pipe_hub.client("alice").run("alice/broken", [1.0])
    assert nothing_ready.value.status == 404


def test_bad_pipeline_documents_are_422(pipe_hub: Hub) -> None:
    client = pipe_hub.client("alice")
    bad_path = pipeline_document("p1", [{"servable": "alice/scale", "input": "total"}])
    with pytest.raises(APIError) as raised:
        client.publish_bundle(bad_path, {})
    assert raised.value.status == 422 and raised.value.field == "servable.steps[0].input"
    itself = pipeline_document("p2", [{"servable": "alice/p2"}])
    with pytest.raises(APIError) as loop:
        client.publish_bundle(itself, {})
    assert loop.value.field == "servable.steps[0].servable"
    with pytest.raises(APIError) as empty:
        client.publish_bundle(pipeline_document("p3", []), {})
    assert empty.value.field == "servable.steps"

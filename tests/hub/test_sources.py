"""Publish a servable from where it lives: a real git daemon and a real HTTP file server on
loopback, the hub's real collectors and guard, real builds and runs."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from matterhub.client import ClientError
from matterhub.client.describe import describe_files, describe_function
from tests.client.conftest import BASE
from tests.hub.conftest import (
    ADD_SOURCE,
    Hub,
    hub_settings,
    import_function,
    running_hub,
    start_hub,
)
from tests.hub.git_server import GitDaemon, GitRepo, free_port

LOOPBACK = ["127.0.0.1/32"]
TIMES_SOURCE = '''
def add(x: list[float], offset: float = 0.0) -> float:
    """Sum the inputs, add an offset, and double it."""
    return 2 * (sum(x) + offset)
'''


def document(name: str) -> dict[str, Any]:
    """A function servable document naming `adder.py` (a file of the source)."""
    return {
        "datacite": {"titles": [{"title": name}], "creators": [{"creatorName": "Doe, Jane"}]},
        "dlhub": {"name": name, "files": {"other": ["adder.py"]}},
        "servable": {
            "shim": "python.PythonStaticMethodServable",
            "type": "python function",
            "methods": {
                "run": {
                    "input": {"type": "list", "item_type": {"type": "float"}},
                    "output": {"type": "float"},
                    "parameters": {"offset": 0.0},
                    "method_details": {
                        "module": "adder", "method_name": "add", "autobatch": False,
                        "unpack": False,
                    },
                }
            },
            "example": {"input": [1.0, 2.0], "output": 3.0, "tolerance": 1e-6},
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A repository served by `git daemon`: v1 (tagged), then main moved on, and a branch."""
    base = tmp_path_factory.mktemp("git")
    repo = GitRepo(base)
    first = repo.commit(
        {"adder.py": ADD_SOURCE, "data/weights.txt": "1 2 3\n", "README.md": "adder\n"}, "v1"
    )
    repo.tag("v1")
    repo.git("checkout", "-q", "-b", "dev")
    dev = repo.commit({"adder.py": TIMES_SOURCE}, "dev doubles")
    repo.git("checkout", "-q", "main")
    second = repo.commit({"data/weights.txt": "4 5 6\n"}, "new weights")
    daemon = GitDaemon(repo.repos)
    yield {"repo": repo, "url": daemon.url(), "v1": first, "main": second, "dev": dev}
    daemon.close()


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    """A hub that may reach loopback (the tests' git daemon and file server)."""
    yield from start_hub(
        hub_settings(tmp_path / "hub", database_url, outbound_allowed_networks=LOOPBACK)
    )


def _post(hub: Hub, body: dict[str, Any], user: str | None = "alice") -> Any:
    """The raw answer to a JSON publish (errors included)."""
    headers = {"Authorization": f"Bearer {hub.tokens[user]}"} if user else {}
    return hub.client(user)._http.post(f"{BASE}/api/servables", json=body, headers=headers)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_git_tag_branch_and_commit_are_pinned_with_checksums(hub: Hub, git: dict[str, Any]) -> None:
    by_tag = _post(hub, {"document": document("adder"), "source": f"git+{git['url']}@v1"})
    assert by_tag.status_code == 202
    described = hub.client("alice").describe_servable("alice/adder")
    source = described["document"]["dlhub"]["source"]
    assert source["type"] == "git" and source["url"] == git["url"] and source["ref"] == "v1"
    assert source["commit"] == git["v1"]
    files = {f["path"]: f for f in source["files"]}
    assert set(files) == {"adder.py", "data/weights.txt", "README.md"}
    assert files["data/weights.txt"] == {
        "path": "data/weights.txt", "sha256": _sha("1 2 3\n"), "size": 6,
    }  # fmt: skip
    assert source["fetched_at"].endswith("Z") and len(source["fingerprint"]) == 64

    # The same commit named by its short id: the same version, not a duplicate.
    again = _post(
        hub, {"document": document("adder"), "source": {"url": git["url"], "ref": git["v1"][:8]}}
    )
    assert again.status_code == 200
    assert again.json()["id"] == by_tag.json()["id"]
    assert len(hub.client("alice").servable_versions("alice/adder")) == 1

    # The branch has moved on: a new commit is a new version.
    by_branch = _post(hub, {"document": document("adder"), "source": f"git+{git['url']}@main"})
    assert by_branch.status_code == 202 and by_branch.json()["id"] != by_tag.json()["id"]
    versions = hub.client("alice").servable_versions("alice/adder")
    assert len(versions) == 2
    newest = hub.client("alice").describe_servable("alice/adder", versions[0]["version"])
    assert newest["document"]["dlhub"]["source"]["commit"] == git["main"]
    weights = next(
        f for f in newest["document"]["dlhub"]["source"]["files"] if f["path"] == "data/weights.txt"
    )
    assert weights["sha256"] == _sha("4 5 6\n")

    # A full commit id of another branch, and only the paths asked for.
    by_commit = _post(
        hub,
        {
            "document": document("adder-dev"),
            "source": {"url": f"git+{git['url']}", "ref": git["dev"], "paths": ["adder.py"]},
        },
    )
    assert by_commit.status_code == 202
    dev = hub.client("alice").describe_servable("alice/adder-dev")["document"]["dlhub"]["source"]
    assert dev["commit"] == git["dev"] and dev["paths"] == ["adder.py"]
    assert [f["path"] for f in dev["files"]] == ["adder.py"]
    assert dev["files"][0]["sha256"] == _sha(TIMES_SOURCE)


def test_a_servable_from_git_builds_runs_and_is_found(
    hub: Hub, git: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "adder.py").write_text(ADD_SOURCE)
    function = import_function(tmp_path / "adder.py", "add")
    description = describe_function(
        function, "git-adder", source=f"{git['url']}@v1", paths=["adder.py", "data"]
    )
    description.set_title("Adder from git").set_creators(["Doe, Jane"])
    description.set_example([1.0, 2.0, 3.0], 6.0)
    assert description.files == {} or description.source is not None
    client = hub.client("alice")
    build = client.publish_servable(description, wait=True, timeout=600)
    assert build["status"] == "succeeded", build["log"]
    assert client.run("alice/git-adder", [1.0, 2.0]) == 3.0
    found = client.search("git-adder")
    assert found and found[0]["dlhub"]["source"]["commit"] == git["v1"]
    assert {f["path"] for f in found[0]["dlhub"]["source"]["files"]} == {
        "adder.py", "data/weights.txt",
    }  # fmt: skip


def test_the_document_can_come_from_the_repository(hub: Hub, tmp_path: Path) -> None:
    import json

    repo = GitRepo(tmp_path / "g", "withdoc")
    commit = repo.commit({"adder.py": ADD_SOURCE, "dlhub.json": json.dumps(document("rooted"))})
    daemon = GitDaemon(repo.repos)
    try:
        build = hub.client("alice").publish_source(daemon.url("withdoc"))
    finally:
        daemon.close()
    assert build["servable"] == "alice/rooted"
    source = hub.client("alice").describe_servable("alice/rooted")["document"]["dlhub"]["source"]
    assert source["commit"] == commit
    assert [f["path"] for f in source["files"]] == ["adder.py"]  # the document is no file


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert "Traceback" not in response.text
    return body


def test_bad_sources_are_clear_4xx_naming_the_source(hub: Hub, git: dict[str, Any]) -> None:
    doc = document("broken")
    cases = {
        "unknown ref": ({"url": git["url"], "ref": "no-such-branch"}, 422, "no-such-branch"),
        "unknown commit": ({"url": git["url"], "ref": "deadbeef"}, 422, "deadbeef"),
        "missing path": (
            {"url": git["url"], "paths": ["adder.py", "nothing/here.pkl"]}, 422, "nothing/here.pkl",
        ),
        "unreachable": (f"git://127.0.0.1:{free_port()}/models.git", 422, "127.0.0.1"),
        "not a source": ("gopher://example.org/x", 422, "gopher://example.org/x"),
        "unsafe path": ({"url": git["url"], "paths": ["../etc/passwd"]}, 422, "../etc/passwd"),
        "no repository": (git["url"].replace("models", "absent"), 422, "absent.git"),
    }  # fmt: skip
    for label, (source, status, named) in cases.items():
        response = _post(hub, {"document": doc, "source": source})
        body = _error(response)
        assert response.status_code == status, (label, body)
        assert body["field"].startswith("source"), (label, body)
        assert named in body["detail"], (label, body)
    missing = _post(hub, {"document": doc, "source": {"url": git["url"], "paths": ["x", "y"]}})
    assert _error(missing)["field"] == "source.paths[0]"
    # A file the document names that the source lacks names the document's key and the source.
    doc_named = document("broken")
    doc_named["dlhub"]["files"]["model"] = "model.pkl"
    named = _post(hub, {"document": doc_named, "source": git["url"]})
    assert named.status_code == 422
    assert named.json()["field"] == "dlhub.files.model" and git["url"] in named.json()["detail"]
    no_doc = _post(hub, {"source": git["url"]})
    assert no_doc.status_code == 422 and "dlhub.json" in no_doc.json()["detail"]
    anonymous = _post(hub, {"document": doc, "source": git["url"]}, user=None)
    assert anonymous.status_code == 401
    assert hub.client("alice").search("broken") == []


def test_too_large_or_too_many_files_is_413_naming_the_source(
    tmp_path: Path, git: dict[str, Any]
) -> None:
    # adder.py fits, the whole repository (adder.py, weights, README) does not.
    limit = len(ADD_SOURCE.encode()) + 4
    settings = hub_settings(
        tmp_path / "small", outbound_allowed_networks=LOOPBACK, hub_max_bundle_bytes=limit
    )
    with running_hub(settings) as small:
        response = _post(small, {"document": document("big"), "source": git["url"]})
        assert response.status_code == 413
        body = _error(response)
        assert body["field"] == "source" and git["url"] in body["detail"]
        assert "MATTERHUB_HUB_MAX_BUNDLE_BYTES" in body["detail"]
        # Only the file it needs fits.
        ok = _post(
            small,
            {"document": document("big"), "source": {"url": git["url"], "paths": ["adder.py"]}},
        )
        assert ok.status_code == 202, ok.text
    settings = hub_settings(
        tmp_path / "few", outbound_allowed_networks=LOOPBACK, hub_source_max_files=2
    )
    with running_hub(settings) as few:
        response = _post(few, {"document": document("many"), "source": git["url"]})
        assert response.status_code == 413 and "MATTERHUB_HUB_SOURCE_MAX_FILES" in response.text


def test_the_guard_refuses_private_addresses_and_local_paths_unless_allowed(
    tmp_path: Path, git: dict[str, Any]
) -> None:
    repo: GitRepo = git["repo"]
    with running_hub(hub_settings(tmp_path / "strict")) as strict:
        refused = _post(strict, {"document": document("guarded"), "source": git["url"]})
        assert refused.status_code == 422
        body = _error(refused)
        assert body["field"] == "source" and "private address" in body["detail"]
        for local in (f"git+file://{repo.bare}", f"file://{repo.work}", str(repo.bare)):
            response = _post(strict, {"document": document("guarded"), "source": local})
            assert response.status_code == 422, local
            assert "MATTERHUB_CONNECT_ALLOWED_ROOTS" in response.json()["detail"], local
    allowed = hub_settings(tmp_path / "roots", connect_allowed_roots=[repo.base])
    with running_hub(allowed) as roots:
        response = _post(
            roots, {"document": document("local"), "source": f"git+file://{repo.bare}@v1"}
        )
        assert response.status_code == 202, response.text
        source = roots.client("alice").describe_servable("alice/local")["document"]["dlhub"]
        assert source["source"]["commit"] == git["v1"]
    no_file = hub_settings(
        tmp_path / "nofile", connect_allowed_roots=[repo.base], connect_git_protocols=["https"]
    )
    with running_hub(no_file) as https_only:
        response = _post(
            https_only, {"document": document("local"), "source": f"git+file://{repo.bare}"}
        )
        assert response.status_code == 422
        assert "MATTERHUB_CONNECT_GIT_PROTOCOLS" in response.json()["detail"]


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A stdlib HTTP server on loopback serving a folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()
    server.server_close()


def test_an_http_archive_source(hub: Hub, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("adder.py", ADD_SOURCE)
        archive.writestr("notes/readme.txt", "hello\n")
    (root / "adder.zip").write_bytes(buffer.getvalue())
    (root / "adder.py").write_text(ADD_SOURCE)
    description = describe_files(
        "http-adder",
        "adder:add",
        ["adder.py"],
        input_type={"type": "list", "item_type": {"type": "float"}},
        output_type={"type": "float"},
        source=f"{base}/adder.zip",
    )
    description.set_title("Adder over http").set_creators(["Doe, Jane"])
    build = hub.client("alice").publish_servable(description)
    assert build["servable"] == "alice/http-adder"
    source = hub.client("alice").describe_servable("alice/http-adder")["document"]["dlhub"]
    assert source["source"]["type"] == "url" and source["source"]["url"] == f"{base}/adder.zip"
    assert "commit" not in source["source"]
    assert {f["path"]: f["sha256"] for f in source["source"]["files"]} == {
        "adder.py": _sha(ADD_SOURCE), "notes/readme.txt": _sha("hello\n"),
    }  # fmt: skip
    # One plain file is a source too; a 404 is a clear error naming it.
    single = _post(hub, {"document": document("one-file"), "source": f"{base}/adder.py"})
    assert single.status_code == 202, single.text
    missing = _post(hub, {"document": document("none"), "source": f"{base}/absent.py"})
    assert missing.status_code == 422 and f"{base}/absent.py" in missing.json()["detail"]


def test_a_multipart_upload_cannot_forge_provenance(hub: Hub) -> None:
    forged = document("forged")
    forged["dlhub"]["source"] = {"url": "https://example.org/trusted.git", "commit": "0" * 40}
    build = hub.client("alice").publish_bundle(forged, {"adder.py": ADD_SOURCE.encode()})
    assert build["servable"] == "alice/forged"
    shown = hub.client("alice").describe_servable("alice/forged")["document"]["dlhub"]
    assert "source" not in shown


def test_client_errors_name_the_source(hub: Hub, git: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        hub.client("alice").publish_source({"url": git["url"], "ref": "nope"}, document("x"))
    assert "nope" in str(caught.value)


def test_zenodo_and_figshare_records_are_sources(tmp_path: Path) -> None:
    """A record of each repository (local fakes of their APIs) holds the servable's file."""
    from tests.fakes.repositories import FakeRepositories

    repos = FakeRepositories()
    repos.files = {"adder.py": ADD_SOURCE.encode(), "notes.txt": b"notes\n"}
    repos.zenodo = {"4242": ["adder.py", "notes.txt"]}
    repos.figshare = {"777": ["adder.py"]}
    settings = hub_settings(
        tmp_path / "hub",
        outbound_allowed_networks=LOOPBACK,
        connect_zenodo_url=repos.url,
        connect_figshare_url=repos.url,
    )
    try:
        with running_hub(settings) as hub:
            for name, source in (("from-zenodo", "zenodo:4242"), ("from-figshare", "figshare:777")):
                response = _post(hub, {"document": document(name), "source": source})
                assert response.status_code == 202, response.text
                recorded = hub.client("alice").describe_servable(f"alice/{name}")
                provenance = recorded["document"]["dlhub"]["source"]
                assert provenance["type"] == "url" and provenance["url"] == source
                files = {f["path"]: f["sha256"] for f in provenance["files"]}
                assert files["adder.py"] == _sha(ADD_SOURCE)
            assert {f["path"] for f in provenance["files"]} == {"adder.py"}
            missing = _post(hub, {"document": document("none"), "source": "zenodo:999"})
            assert missing.status_code == 422 and "zenodo:999" in missing.json()["detail"]
    finally:
        repos.close()

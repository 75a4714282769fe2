"""Every route of the OpenAPI document × six identities × public and private objects: zero leaks.

The rows come from `/openapi.json`; `EXPECT` holds one expectation per route and object, as six
characters for anonymous, an unrelated user, a group member, the owner, a curator and an admin:

    y   allowed: 2xx, or 409 (allowed, but the object's state forbids it now)
    n   refused: 401, 403 or 404 (404 when the caller may not even know it exists)
    .   no status expected (the request cannot succeed for anyone, e.g. no ready version)

Whatever the status, a marker string planted in a private object never appears in a response to
an identity outside that object's audience: not in documents, counts, field names or task lists.
A route without a row fails the test, so a new route needs its access decided here.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.interop.optimade import EntryQuery
from matterhub.settings import Settings
from tests.client.conftest import BASE, transport_for
from tests.hub.conftest import function_servable

WHO = ("anon", "stranger", "member", "owner", "curator", "admin")
USERS = {"stranger": "sam", "member": "gmem", "owner": "olivia", "curator": "cora", "admin": "root"}

# Markers and who may see them (the private dataset's group is `oliv-lab`, gmem's group).
PRIV = "zqprivdatasetmarker"
CUR = "zqcurationmarker"
SERV = "zqprivservablemarker"
ENTRY = "zqprivateentrymarker"
AUDIENCE = {
    PRIV: {"member", "owner", "admin"},
    CUR: {"owner", "curator", "admin"},
    SERV: {"member", "owner", "admin"},
    ENTRY: {"owner", "admin"},
}
REFUSED = {401, 403, 404}
WATER_XYZ = "3\n\nO 0.0 0.0 0.119\nH 0.0 0.763 -0.477\nH 0.0 -0.763 -0.477\n"

# (method, path) → {object: expectation}; objects: "-" (none), "pub", "priv".
EXPECT: dict[tuple[str, str], dict[str, str]] = {
    # runs and tasks: nothing is built here, so no version is ready; hidden stays hidden.
    ("POST", "/servables/{owner}/{name}/run"): {"pub": "......", "priv": "nn..n."},
    ("POST", "/api/servables/{owner}/{name}/run"): {"pub": "......", "priv": "nn..n."},
    ("POST", "/api/servables/{owner}/{name}/batch"): {"pub": "......", "priv": "nn..n."},
    ("GET", "/api/tasks/{task_id}"): {"-": "nnnnnn"},
    ("GET", "/api/tasks/{task_id}/result"): {"-": "nnnnnn"},
    ("GET", "/api/tasks/{task_id}/provenance"): {"-": "nnnnnn"},
    ("GET", "/api/batches/{batch_id}"): {"-": "nnnnnn"},
    ("GET", "/health"): {"-": "yyyyyy"},
    # accounts
    ("GET", "/api/whoami"): {"-": "yyyyyy"},
    ("GET", "/api/users"): {"-": "nnnnny"},
    ("POST", "/api/users"): {"-": "nnnnny"},
    ("GET", "/api/users/{username}"): {"-": "nnnyny"},
    ("GET", "/api/users/{username}/tokens"): {"-": "nnnyny"},
    ("POST", "/api/users/{username}/tokens"): {"-": "nnnyny"},
    ("DELETE", "/api/tokens/{token_id}"): {"-": "nnnyny"},
    ("GET", "/api/groups"): {"-": "yyyyyy"},
    ("POST", "/api/groups"): {"-": "nyyyyy"},
    ("GET", "/api/groups/{name}"): {"pub": "nnyyny", "priv": "nnnnyy"},
    ("PUT", "/api/groups/{name}/members/{username}"): {"pub": "nnnyny", "priv": "nnnnny"},
    # (the owner removes `extra` first, so the admin after her finds nobody to remove)
    ("DELETE", "/api/groups/{name}/members/{username}"): {"pub": "nnnyn.", "priv": "nnnnny"},
    # datasets (pub: public and published; priv: published to group oliv-lab only)
    ("GET", "/api/datasets"): {"-": "yyyyyy"},
    ("POST", "/api/datasets"): {"-": "nyyyyy"},
    ("GET", "/api/datasets/{sid}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("PATCH", "/api/datasets/{sid}"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/api/datasets/{source_name}/versions"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("POST", "/api/datasets/{source_name}/versions"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("POST", "/api/datasets/{sid}/publish"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("POST", "/api/datasets/{sid}/curation"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("POST", "/api/datasets/{sid}/reject"): {"pub": "nnnnyy", "priv": "nnnnny"},
    ("POST", "/api/datasets/{sid}/reopen"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("POST", "/api/datasets/{sid}/withdraw"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/api/datasets/{sid}/cite"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/datasets/{sid}/manifest"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/datasets/{sid}/files"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("POST", "/api/datasets/{sid}/files"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/api/datasets/{sid}/files/{path}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("PUT", "/api/datasets/{sid}/files/{path}"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("DELETE", "/api/datasets/{sid}/files/{path}"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/api/datasets/{sid}/archive.zip"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/datasets/{sid}/archive.tar"): {"pub": "yyyyyy", "priv": "nnyyny"},
    # exports of a published version (interop/exports.py): whoever may read the version
    ("GET", "/api/datasets/{sid}/ro-crate-metadata.json"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/datasets/{sid}/croissant.json"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/datasets/{sid}/schema.org.json"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("POST", "/api/datasets/{sid}/uploads"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/api/datasets/{sid}/uploads/{upload_id}"): {"pub": "nnnnnn", "priv": "nnnnnn"},
    ("PATCH", "/api/datasets/{sid}/uploads/{upload_id}"): {"pub": "nnnnnn", "priv": "nnnnnn"},
    ("DELETE", "/api/datasets/{sid}/uploads/{upload_id}"): {"pub": "nnnnnn", "priv": "nnnnnn"},
    ("GET", "/pid/{pid}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    # Discover (Globus Search): reads are filtered, writes need index writer rights.
    ("GET", "/v1/index/{index_id}/search"): {"-": "yyyyyy"},
    ("POST", "/v1/index/{index_id}/search"): {"-": "yyyyyy"},
    ("POST", "/v1/index/{index_id}/scroll"): {"-": "yyyyyy"},
    ("POST", "/v1/index/{index_id}/ingest"): {"-": "nnnnny"},
    ("POST", "/v1/index/{index_id}/delete_by_query"): {"-": "nnnnny"},
    ("GET", "/v1/index/{index_id}/subject"): {"pub": "yyyyyy", "priv": "nnnyny"},
    ("DELETE", "/v1/index/{index_id}/subject"): {"pub": "nnnnny", "priv": "nnnnny"},
    ("GET", "/v1/index/{index_id}/entry"): {"pub": "yyyyyy", "priv": "nnnyny"},
    ("DELETE", "/v1/index/{index_id}/entry"): {"pub": "nnnnny", "priv": "nnnnny"},
    ("GET", "/v1/task/{task_id}"): {"-": "nnnnny"},
    ("GET", "/v1/task_list/{index_id}"): {"-": "yyyyyy"},
    ("GET", "/v1/index/{index_id}"): {"-": "yyyyyy"},
    ("GET", "/v1/index_list"): {"-": "yyyyyy"},
    ("POST", "/v1/index"): {"-": "nnnnny"},
    ("GET", "/beta/index/{index_id}/mapping"): {"-": "yyyyyy"},
    # Connect (pub: a published submission; priv: one waiting in curation)
    ("POST", "/connect/submit"): {"-": "nyyyyy"},
    ("POST", "/connect/uploads"): {"-": "nyyyyy"},
    ("POST", "/connect/submit/files"): {"-": "nyyyyy"},
    ("POST", "/connect/update/{source_id}"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("POST", "/connect/cancel/{source_id}"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("GET", "/connect/status/{source_id}"): {"pub": "nnnyny", "priv": "nnnyyy"},
    ("POST", "/connect/submissions"): {"-": "nyyyyy"},
    ("GET", "/connect/organizations"): {"-": "yyyyyy"},
    ("GET", "/connect/curation/"): {"-": "nnnnyy"},
    ("GET", "/connect/curate/{source_id}"): {"pub": "nnnnny", "priv": "nnnnyy"},
    ("POST", "/connect/curate/{source_id}"): {"pub": "nnnnny", "priv": "nnnnyy"},
    # Hub servables (pub: visible to all; priv: visible to oliv-lab)
    ("POST", "/api/servables"): {"-": "n....."},
    ("GET", "/api/servables"): {"-": "yyyyyy"},
    ("GET", "/api/servables/{owner}/{name}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/servables/{owner}/{name}/versions"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/servables/{owner}/{name}/builds"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/servables/{owner}/{name}/builds/{build_id}"): {
        "pub": "yyyyyy",
        "priv": "nnyyny",
    },
    ("GET", "/api/servables/{owner}/{name}/builds/{build_id}/{artefact}"): {
        "pub": "......",
        "priv": "nn..n.",
    },
    # Access requests (hub/access.py): asking needs a sign-in and sight of the servable (409:
    # the caller may run it already); reading a listing is filtered to what the caller may read;
    # a request nobody made is 404 for everyone (deciding is covered in tests/hub).
    ("POST", "/api/servables/{owner}/{name}/access-requests"): {
        "pub": "nyyyyy",
        "priv": "nnyyny",
    },
    ("GET", "/api/servables/{owner}/{name}/access-requests"): {
        "pub": "yyyyyy",
        "priv": "nnyyny",
    },
    ("GET", "/api/access-requests"): {"-": "nyyyyy"},
    ("GET", "/api/access-requests/{request_id}"): {"-": "nnnnnn"},
    ("POST", "/api/access-requests/{request_id}/grant"): {"-": "nnnnnn"},
    ("POST", "/api/access-requests/{request_id}/decline"): {"-": "nnnnnn"},
    ("POST", "/api/access-requests/{request_id}/withdraw"): {"-": "nnnnnn"},
    ("POST", "/api/access-requests/{request_id}/revoke"): {"-": "nnnnnn"},
    # Citations of the live version and of one version (issue #15 part 3)
    ("GET", "/api/servables/{owner}/{name}/cite"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/api/servables/{owner}/{name}/versions/{version}/cite"): {
        "pub": "yyyyyy",
        "priv": "nnyyny",
    },
    # Scaling (hub/runtime/scaling.py): the workers view and the bounds are the owner's and the
    # administrators' only (403 to those who see the servable, 404 to those who do not).
    ("GET", "/api/servables/{owner}/{name}/workers"): {"pub": "nnnyny", "priv": "nnnyny"},
    ("PUT", "/api/servables/{owner}/{name}/scaling"): {"pub": "nnnyny", "priv": "nnnyny"},
    # OAI-PMH answers everyone as the anonymous caller (public datasets only; the private one's
    # marker never shows, whoever asks); followed repositories are the administrators'.
    ("GET", "/oai"): {"-": "yyyyyy"},
    ("POST", "/oai"): {"-": "yyyyyy"},
    ("GET", "/api/harvest"): {"-": "nnnnny"},
    ("POST", "/api/harvest"): {"-": "nnnnny"},
    ("GET", "/api/harvest/{name}"): {"-": "nnnnny"},
    ("POST", "/api/harvest/{name}/run"): {"-": "nnnnny"},
    ("DELETE", "/api/harvest/{name}"): {"-": "nnnnny"},
    ("GET", "/schemas/"): {"-": "yyyyyy"},
    ("GET", "/schemas/{name}"): {"-": "yyyyyy"},
    # OPTIMADE (docs/interop.md): listings are filtered; one structure or reference is seen
    # by whoever sees its dataset (pub/priv: a structure file in each Connect dataset).
    ("GET", "/optimade/v1/info"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/links"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/info/structures"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/info/references"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/structures"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/references"): {"-": "yyyyyy"},
    ("GET", "/optimade/v1/structures/{entry_id}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/optimade/v1/references/{entry_id}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/optimade/info"): {"-": "yyyyyy"},
    ("GET", "/optimade/links"): {"-": "yyyyyy"},
    ("GET", "/optimade/info/structures"): {"-": "yyyyyy"},
    ("GET", "/optimade/info/references"): {"-": "yyyyyy"},
    ("GET", "/optimade/structures"): {"-": "yyyyyy"},
    ("GET", "/optimade/references"): {"-": "yyyyyy"},
    ("GET", "/optimade/structures/{entry_id}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/optimade/references/{entry_id}"): {"pub": "yyyyyy", "priv": "nnyyny"},
    ("GET", "/optimade/versions"): {"-": "yyyyyy"},
    ("GET", "/optimade/{version}/{rest}"): {"-": "nnnnnn"},
}
# Routes that change what later rows see run last, in this order.
LAST = [
    ("POST", "/connect/curate/{source_id}"),
    ("POST", "/connect/update/{source_id}"),
    ("POST", "/connect/cancel/{source_id}"),
    ("DELETE", "/v1/index/{index_id}/subject"),
    ("DELETE", "/v1/index/{index_id}/entry"),
    ("POST", "/v1/index/{index_id}/delete_by_query"),
    ("DELETE", "/api/groups/{name}/members/{username}"),
    ("POST", "/api/datasets/{sid}/withdraw"),
    ("DELETE", "/api/harvest/{name}"),
]


@dataclass
class World:
    """The seeded hub: its app client, tokens, and the objects each row is called against."""

    services: Services
    http: httpx.Client
    tokens: dict[str, str]
    objects: dict[str, dict[str, str]]
    counter: Iterator[int]


def _wait_connect(services: Services, sid: str, state: str = "succeeded") -> None:
    status = services.connect.wait(sid, timeout=180)
    assert status["status"]["state"] == state, status


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("matrix")
    incoming = root / "incoming"
    for name, text in (("pub", "open notes\n"), ("priv", f"{PRIV} notes\n"), ("cur", f"{CUR}\n")):
        (incoming / name).mkdir(parents=True)
        (incoming / name / "notes.txt").write_text(text)
    # A molecule in each dataset, for the OPTIMADE rows (the private one's name is the marker).
    (incoming / "pub" / "water.xyz").write_text(WATER_XYZ)
    (incoming / "priv" / f"{PRIV}.xyz").write_text(WATER_XYZ)
    settings = Settings(data_dir=root / "hub", connect_allowed_roots=[incoming])
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    # Search and Connect run; the build worker does not (no servable code runs in this test).
    services.search.start()
    services.connect.start()
    accounts = services.accounts
    tokens: dict[str, str] = {}
    for role, name in USERS.items():
        accounts.create_user(SYSTEM_IDENTITY, name, is_admin=role == "admin")
        tokens[role] = accounts.create_token(SYSTEM_IDENTITY, name).token
    for extra in ("extra", "extra2"):
        accounts.create_user(SYSTEM_IDENTITY, extra)
    accounts.add_member(SYSTEM_IDENTITY, "curators", "cora")
    olivia = accounts.authenticate(tokens["owner"])
    accounts.create_group(olivia, "oliv-lab")
    accounts.add_member(olivia, "oliv-lab", "gmem")
    accounts.add_member(olivia, "oliv-lab", "extra2")
    olivia = accounts.authenticate(tokens["owner"])
    throwaway = accounts.create_token(SYSTEM_IDENTITY, "olivia", name="throwaway")

    def connect(name: str, title: str, **fields: Any) -> str:
        request = SubmissionRequest.model_validate(
            {
                "dc": {"titles": [{"title": title}], "creators": [{"creatorName": "Oh, Olivia"}]},
                "data_sources": [str(incoming / name)],
                "mdf": {"source_name": f"matrix_{name}", **fields.pop("mdf", {})},
                **fields,
            }
        )
        return str(services.connect.submit(olivia, request)["source_id"])

    pub = connect("pub", "An open dataset")
    priv = connect(
        "priv",
        f"A private dataset {PRIV}",
        mdf={"acl": ["group:oliv-lab"]},
        custom={PRIV: "value"},
    )
    cur = connect(
        "cur", f"Waiting for a curator {CUR}", mdf={"acl": ["user:olivia"]}, curation=True
    )
    _wait_connect(services, pub)
    _wait_connect(services, priv)
    _wait_connect(services, cur, "curation")

    app = create_app(settings, services=services)
    transport = transport_for(app)
    http = httpx.Client(transport=transport, base_url=BASE, timeout=120)
    # A private index entry and its write task, both the admin's; the entry is olivia's to see.
    private_entry = {
        "ingest_type": "GMetaEntry",
        "ingest_data": {
            "subject": "matrix-private-entry",
            "visible_to": [f"urn:matterhub:user:{olivia.user_id}"],
            "content": {ENTRY: "value", "note": ENTRY},
        },
    }
    ingest = http.post(
        "/v1/index/mdf/ingest", json=private_entry, headers=_auth(tokens["admin"])
    ).json()
    task_id = ingest["task_id"]
    services.search.wait(task_id)

    builds = {}
    for kind, visible in (("pub", ["public"]), ("priv", ["group:oliv-lab"])):
        description = function_servable(root / "servables", f"matrix-{kind}")
        description.set_visibility(visible)
        if kind == "priv":
            description.set_abstract(f"A private model {SERV}")
        files = {"bundle": ("bundle.zip", description.bundle(), "application/zip")}
        answer = http.post("/api/servables", files=files, headers=_auth(tokens["owner"]))
        assert answer.status_code in (200, 201, 202), answer.text
        builds[kind] = answer.json()["id"]

    live = {}  # live versions have identifiers and citations
    for kind, build_id in builds.items():
        assert services.servables.wait_build(build_id, timeout=300) == "succeeded"
        described = services.servables.describe(SYSTEM_IDENTITY, f"olivia/matrix-{kind}")
        live[kind] = str(described.latest_version)

    pid = {
        k: services.datasets.get(SYSTEM_IDENTITY, sid).pid or ""
        for k, sid in (("pub", pub), ("priv", priv))
    }
    structure = {
        k: services.optimade.search(
            SYSTEM_IDENTITY, "structures", EntryQuery(filter=f'_matterhub_source_name="matrix_{k}"')
        ).data[0]["id"]
        for k in ("pub", "priv")
    }
    objects = {
        "pub": {
            "sid": pub,
            "source_name": "matrix_pub",
            "source_id": pub,
            "path": "notes.txt",
            "pid": pid["pub"],
            "entry_id": structure["pub"],
            "owner": "olivia",
            "name": "matrix-pub",
            "build_id": builds["pub"],
            "version": live["pub"],
            "artefact": "Dockerfile",
            "subject": pub,
            "group": "oliv-lab",
        },
        "priv": {
            "sid": priv,
            "source_name": "matrix_priv",
            "source_id": cur,
            "path": "notes.txt",
            "pid": pid["priv"],
            "entry_id": structure["priv"],
            "owner": "olivia",
            "name": "matrix-priv",
            "build_id": builds["priv"],
            "version": live["priv"],
            "artefact": "Dockerfile",
            "subject": "matrix-private-entry",
            "group": "curators",
        },
        "-": {
            "task_id": task_id,
            "batch_id": "00000000-0000-0000-0000-000000000000",
            "index_id": "mdf",
            "username": "olivia",
            "token_id": throwaway.id,
            "name": "record",
            "incoming": str(incoming / "pub"),
            "version": "v1",
            "rest": "nothing-here",
        },
    }
    yield World(services, http, tokens, objects, itertools.count())
    http.close()
    transport.shutdown()
    services.close()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _operations(world: World) -> list[tuple[str, str]]:
    document = world.http.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]


def _fill(path: str, obj: dict[str, str], world: World) -> str:
    values = {**world.objects["-"], **obj}
    if path.startswith("/api/harvest/"):
        values["name"] = "followed"  # added by the admin's POST /api/harvest row
    if path.startswith("/api/groups/"):
        values["name"] = obj.get("group", "oliv-lab")
        values["username"] = "extra"
    if path.startswith("/api/tasks/"):
        values["task_id"] = "00000000-0000-0000-0000-000000000000"
    if "/uploads/" in path:
        values["upload_id"] = "00000000000000000000000000000000"
    if path.startswith("/optimade") and "/references/" in path:
        values["entry_id"] = obj.get("source_name", "")
    if path.startswith("/api/access-requests/"):
        values["request_id"] = "00000000-0000-0000-0000-000000000000"
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: values[m.group(1)], path)


def _body(method: str, path: str, who: str, obj: str, world: World) -> dict[str, Any]:
    """A request body that is valid for the route, so only access decides the status."""
    n = next(world.counter)
    if path == "/api/users":
        return {"json": {"username": f"made{n}"}}
    if path.endswith("/tokens"):
        return {"json": {"name": f"t{n}"}}
    if path == "/api/groups":
        return {"json": {"name": f"grp{n}"}}
    if path == "/api/datasets":
        dc = {"titles": [{"title": f"Made {n}"}], "creators": [{"creatorName": "Doe, J"}]}
        return {"json": {"dc": dc, "source_name": f"made_{n}"}}
    if path.endswith(("/reject", "/withdraw", "/decline")):
        return {"json": {"reason": "checking access"}}
    if method == "PATCH" and path == "/api/datasets/{sid}":
        return {
            "json": {
                "dc": {
                    "titles": [{"title": f"Renamed {n}"}],
                    "creators": [{"creatorName": "Doe, J"}],
                }
            }
        }
    if method == "POST" and path.endswith("/versions"):
        return {"json": {}}
    if method == "POST" and path in ("/api/datasets/{sid}/files", "/connect/uploads"):
        return {"files": [("files", (f"f{n}.txt", b"bytes"))]}
    if path == "/connect/submit/files":
        title = {"titles": [{"title": f"Uploaded {n}"}], "creators": [{"creatorName": "Doe, J"}]}
        submission = json.dumps({"dc": title, "test": True})
        return {"data": {"submission": submission}, "files": [("files", ("f.txt", b"x"))]}
    if method == "PATCH" and "/uploads/" in path:
        return {"content": b"abc", "headers": {"Upload-Offset": "0"}}
    if method == "PUT" and "/files/" in path:
        return {"content": b"new bytes"}
    if path.endswith("/uploads") and "datasets" in path:
        return {"json": {"path": f"up{n}.txt", "size": 3}}
    if path.endswith("/search") and method == "POST":
        return {"json": {"q": "*", "advanced": True, "limit": 50}}
    if path.endswith("/scroll"):
        return {"json": {"q": "*", "advanced": True}}
    if path.endswith("/ingest"):
        entry = {"subject": f"made-{n}", "visible_to": ["public"], "content": {"n": n}}
        return {"json": {"ingest_type": "GMetaEntry", "ingest_data": entry}}
    if path.endswith("/delete_by_query"):
        return {"json": {"q": 'subject:"nothing-matches"', "advanced": True}}
    if path == "/v1/index":
        return {"json": {"name": f"index{n}"}}
    if path == "/connect/submit":
        title = {"titles": [{"title": f"Submitted {n}"}], "creators": [{"creatorName": "Doe, J"}]}
        source = world.objects["-"]["incoming"]
        return {"json": {"dc": title, "data_sources": [source], "test": True}}
    if path.startswith("/connect/update/"):
        return {
            "json": {
                "dc": {"titles": [{"title": "Upd"}], "creators": [{"creatorName": "D, J"}]},
                "update_metadata_only": True,
            }
        }
    if path == "/connect/submissions":
        return {"json": {}}
    if path == "/oai" and method == "POST":
        return {"data": {"verb": "ListRecords", "metadataPrefix": "oai_datacite"}}
    if path == "/api/harvest":
        # An address the guard refuses: the admin's run is a failed run (200, recorded).
        return {
            "json": {
                "name": "followed" if who == "admin" else f"f{n}",
                "url": "http://127.0.0.1:9/oai",
            }
        }
    if path.startswith("/connect/curate/") and method == "POST":
        return {"json": {"action": "reject", "reason": "checking access"}}
    if path.endswith("/run") or path.endswith("/batch"):
        return {"json": {"inputs": [1.0, 2.0]}}
    if method in ("POST", "PUT", "PATCH"):
        return {"json": {}}
    return {}


def _params(path: str, obj: dict[str, str]) -> dict[str, str]:
    if path == "/oai":
        return {"verb": "ListRecords", "metadataPrefix": "oai_dc"}
    if path.endswith("/search"):
        return {"q": "*", "advanced": "true"}
    if path.endswith("/subject") or path.endswith("/entry"):
        return {"subject": obj.get("subject", "")}
    return {}


def _ordered(operations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    first = [op for op in operations if op not in LAST]
    return first + [op for op in LAST if op in operations]


def test_every_route_has_an_expectation(world: World) -> None:
    missing = [op for op in _operations(world) if op not in EXPECT]
    assert missing == [], f"decide who may call these routes, in EXPECT: {missing}"
    stale = [op for op in EXPECT if op not in _operations(world)]
    assert stale == [], f"EXPECT lists routes the app no longer has: {stale}"


def test_counts_and_fields_cover_only_what_the_caller_sees(world: World) -> None:
    http = world.http
    for who in WHO:
        headers = _auth(world.tokens.get(who))
        seen = http.post(
            "/v1/index/mdf/search", json={"q": "*", "advanced": True, "limit": 0}, headers=headers
        ).json()["total"]
        index = http.get("/v1/index/mdf", headers=headers).json()
        assert index["num_entries"] == seen, who
        listed = next(
            i
            for i in http.get("/v1/index_list", headers=headers).json()["index_list"]
            if i["name"] == "mdf"
        )
        assert listed["num_entries"] == seen, who
        fields = http.get("/beta/index/mdf/mapping", headers=headers).json()["mappings"]
        assert (f"custom.{PRIV}" in fields) == (who in AUDIENCE[PRIV]), who
        assert (ENTRY in fields) == (who in AUDIENCE[ENTRY]), who
    anon = http.get("/v1/index/mdf").json()["num_entries"]
    admin = http.get("/v1/index/mdf", headers=_auth(world.tokens["admin"])).json()["num_entries"]
    assert anon < admin
    tasks = http.get("/v1/task_list/mdf", headers=_auth(world.tokens["stranger"])).json()["tasks"]
    assert tasks == []
    assert http.get("/v1/task_list/mdf", headers=_auth(world.tokens["admin"])).json()["tasks"]


def test_route_identity_matrix(world: World) -> None:
    failures: list[str] = []
    order = ["anon", "stranger", "member", "curator", "owner", "admin"]
    for method, path in _ordered(_operations(world)):
        for obj_kind, cells in EXPECT.get((method, path), {}).items():
            obj = world.objects[obj_kind] if obj_kind != "-" else {}
            url = _fill(path, obj, world)
            for who in order:
                want = cells[WHO.index(who)].lower()
                body = _body(method, path, who, obj_kind, world)
                headers = {**_auth(world.tokens.get(who)), **body.pop("headers", {})}
                if path.startswith("/pid/"):
                    headers["Accept"] = "application/json"  # the API answer, as the bearer
                response = world.http.request(
                    method, url, headers=headers, params=_params(path, obj), **body
                )
                status = response.status_code
                where = f"{method} {path} [{obj_kind}] as {who}: {status}"
                if status >= 500:
                    failures.append(f"{where} (server error) {response.text[:200]}")
                elif want == "y" and not (200 <= status < 300 or status == 409):
                    failures.append(f"{where}, expected allowed: {response.text[:200]}")
                elif want == "n" and status not in REFUSED:
                    failures.append(f"{where}, expected refused: {response.text[:200]}")
                text = response.text
                for marker, audience in AUDIENCE.items():
                    if who not in audience and marker in text:
                        failures.append(f"{where} leaks {marker!r}")
    assert failures == [], "\n".join(failures)

"""Fuzz every operation of the OpenAPI document against a real, seeded server (issue #14, item 6).

A `matterhub` app is served by uvicorn over loopback and seeded with real objects — a public
dataset with records (through Connect), a published servable, a submission in curation, users,
a group and tokens — so that generated requests reach id routes, not only 404s. Schemathesis
generates requests from the document; each answer must be no 5xx and must match the response
schema the document declares. The run is bounded: a few examples per operation, no shrinking.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.core.failures import FailureGroup

from matterhub.core.identity import SYSTEM_IDENTITY
from tests.connect.helpers import CIF, dc, submit
from tests.hub.conftest import Hub, hub_settings, start_hub
from tests.hub.runtime.conftest import publish_noop

pytestmark = pytest.mark.timeout(600)

# Examples per operation and identity; with ~80 operations this is ~4,000 requests.
EXAMPLES = 20
NEGATIVE_EXAMPLES = 10
CHECKS = [st_checks.not_a_server_error, st_checks.response_schema_conformance]


@dataclass
class Seeded:
    """A served hub and the identifiers of the real objects in it."""

    base: str
    token: str
    path_values: dict[str, list[str]] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(hub: Hub, root: Path) -> dict[str, list[str]]:
    services = hub.services
    alice = services.accounts.authenticate(hub.tokens["alice"])
    # A public dataset with records, collected, extracted, published and indexed by Connect.
    incoming = root / "incoming" / "set1"
    incoming.mkdir(parents=True)
    (incoming / "Fe.cif").write_text(CIF)
    (incoming / "table.csv").write_text("a,b\n1,2\n3,4\n")
    public = submit(services, alice, dc=dc("Iron for fuzzing"), data_sources=[str(incoming)])
    status = services.connect.wait(public)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    # A submission waiting in curation (private until accepted).
    held = submit(
        services,
        alice,
        dc=dc("Iron held for curation"),
        data_sources=[str(incoming)],
        curation=True,
    )
    assert services.connect.wait(held)["status"]["status_code"]
    # A published servable (its build ran) and a finished task of it.
    publish_noop(hub, root / "src")
    task = hub.client("alice")._json("POST", "/api/servables/alice/noop/run", json={"inputs": 3})
    builds = hub.client("alice")._json("GET", "/api/servables/alice/noop/builds")
    build_ids = [str(b["id"]) for b in builds]
    spare = services.accounts.create_token(SYSTEM_IDENTITY, "carol")
    version = services.datasets.get(alice, public)
    return {
        "sid": [public, held],
        "source_id": [public, held],
        "source_name": [version.source_name],
        "owner": ["alice"],
        "name": ["noop", "lab"],
        "username": ["alice", "bob"],
        "index_id": ["mdf", "1a57bbe5-5272-477f-9d31-343b8258b7a5", "dlhub"],
        "task_id": [str(task.get("task_id", ""))],
        "build_id": build_ids[:1],
        "token_id": [spare.id],
        "path": ["Fe.cif", "table.csv"],
        "pid": [version.pid or ""],
        "artefact": ["log", "recipe"],
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("fuzz")
    incoming = root / "incoming"
    settings_ = hub_settings(
        root / "hub",
        connect_allowed_roots=[incoming],
        hub_run_timeout_s=5.0,
        max_request_bytes=4 * 1024 * 1024,
    )
    for hub in start_hub(settings_):
        values = _seed(hub, root)
        port = _free_port()
        config = uvicorn.Config(hub.app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield Seeded(f"http://127.0.0.1:{port}", hub.tokens["alice"], values)
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def _fuzz_operation(
    operation: Any,
    seeded: Seeded,
    session: requests.Session,
    *,
    headers: dict[str, str],
    path_parameters: dict[str, str] | None,
    statuses: Counter[tuple[str, int]],
    mode: GenerationMode = GenerationMode.POSITIVE,
    examples: int = EXAMPLES,
) -> list[str]:
    """Run one operation's examples; the failures as text (empty when all passed)."""
    failures: list[str] = []
    strategy = operation.as_strategy(mode, path_parameters=path_parameters)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        # The document declares bearer auth, so cases carry made-up tokens: send ours or none.
        if case.headers:
            case.headers.pop("Authorization", None)
        response = case.call(base_url=seeded.base, session=session, headers=headers, timeout=60)
        statuses[(operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body).
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_fuzz_every_operation_no_5xx_and_no_schema_violation(seeded: Seeded) -> None:
    schema = schemathesis.openapi.from_url(f"{seeded.base}/openapi.json")
    session = requests.Session()
    owner = {"Authorization": f"Bearer {seeded.token}"}
    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    operations = 0
    results: list[Any] = list(schema.get_all_operations())
    for result in results:
        operation = result.ok()
        operations += 1
        names = [p.name for p in operation.path_parameters]
        # As the owner with the seeded identifiers (where the route takes ids) ...
        fixed = {n: seeded.path_values[n][0] for n in names if seeded.path_values.get(n)}
        failures += _fuzz_operation(
            operation,
            seeded,
            session,
            headers=owner,
            path_parameters=fixed or None,
            statuses=statuses,
        )
        # ... with invalid input (wrong types, missing fields, out-of-range values) ...
        failures += _fuzz_operation(
            operation,
            seeded,
            session,
            headers=owner,
            path_parameters=fixed or None,
            statuses=statuses,
            mode=GenerationMode.NEGATIVE,
            examples=NEGATIVE_EXAMPLES,
        )
        # ... and anonymously with generated identifiers.
        failures += _fuzz_operation(
            operation, seeded, session, headers={}, path_parameters=None, statuses=statuses
        )
    by_status: Counter[int] = Counter()
    for (_label, status), count in statuses.items():
        by_status[status] += count
    print(f"fuzzed {operations} operations, {sum(by_status.values())} requests: {by_status}")
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:30])
    assert operations >= 70
    # The seeded objects were reached: id routes answered with real content, not only 404s.
    answered = {label for (label, status), _n in statuses.items() if 200 <= status < 300}
    for label in (
        "GET /api/datasets/{sid}",
        "GET /api/datasets/{sid}/files/{path}",
        "GET /api/servables/{owner}/{name}",
        "GET /connect/status/{source_id}",
        "GET /api/tasks/{task_id}",
        "GET /v1/index/{index_id}/search",
    ):
        assert label in answered, f"{label} never answered 2xx: {sorted(answered)}"

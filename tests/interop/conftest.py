"""Interop fixtures: a hub served over HTTP on loopback whose base URL is its real address."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from argon2 import PasswordHasher

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.settings import Settings
from tests.e2e.test_serve import free_port

DC = {
    "creators": [{"creatorName": "Curie, Marie", "familyName": "Curie", "givenName": "Marie"}],
    "publisher": "MatterHub",
    "publicationYear": "2024",
    "descriptions": [{"description": "Diffraction patterns.", "descriptionType": "Abstract"}],
    "subjects": [{"subject": "XRD"}],
    # (the kernel-4 schema the tests validate with, ETH's copy, wants a rightsList)
    "rightsList": [
        {"rights": "CC-BY 4.0", "rightsURI": "https://creativecommons.org/licenses/by/4.0/"}
    ],
}


@dataclass
class Served:
    """A hub on a loopback port: its URL, services, and users alice (owner) and bob (lab)."""

    base: str
    services: Services
    alice: Identity
    bob: Identity
    tokens: dict[str, str]

    def publish(
        self, name: str, title: str, *, visible_to: tuple[str, ...] = ("public",), **kw: Any
    ) -> str:
        """Create and publish a dataset as alice; its source_id."""
        datasets = self.services.datasets
        version = datasets.create(
            self.alice,
            dc={**DC, "titles": [{"title": title}]},
            source_name=name,
            visible_to=visible_to,
            **kw,
        )
        datasets.put_file(self.alice, version.source_id, "notes.txt", f"{title}\n".encode())
        return datasets.publish(self.alice, version.source_id).source_id


@contextmanager
def serve_hub(data_dir: Path, **extra: Any) -> Iterator[Served]:
    """Serve a fresh hub with uvicorn in this process until the block ends."""
    port = free_port()
    settings = Settings(data_dir=data_dir, base_url=f"http://127.0.0.1:{port}", **extra)
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts = services.accounts
    tokens = {}
    for name in ("alice", "bob", "root"):
        accounts.create_user(SYSTEM_IDENTITY, name, is_admin=name == "root")
        tokens[name] = accounts.create_token(SYSTEM_IDENTITY, name).token
    alice = accounts.authenticate(tokens["alice"])
    accounts.create_group(alice, "lab")
    accounts.add_member(alice, "lab", "bob")
    bob = accounts.authenticate(tokens["bob"])
    config = uvicorn.Config(
        create_app(settings, services=services), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield Served(settings.base_url, services, alice, bob, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        services.close()

"""A hub served on loopback by uvicorn in this process, with users, a group and e-mail addresses.

Used by the tests that talk to a real HTTP server: the CLI, the raw API and the examples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message

import uvicorn
from argon2 import PasswordHasher

from matterhub import Client
from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.e2e.test_serve import free_port
from tests.fakes.smtp import FakeSMTP

USERS = ("alice", "bob", "carol")


@dataclass
class Served:
    """A hub served on loopback: its URL, its services and a token per user."""

    base: str
    services: Services
    tokens: dict[str, str]

    def client(self, user: str) -> Client:
        """An SDK client over HTTP as `user`."""
        return Client(self.base, self.tokens[user], retries=0, backoff=0)


@contextmanager
def serve(settings: Settings) -> Iterator[Served]:
    """Serve a hub with users alice, bob, carol (e-mail `<name>@example.org`) and group lab
    (alice and bob) on a loopback port until the block ends."""
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    tokens = {}
    for name in USERS:
        services.accounts.create_user(SYSTEM_IDENTITY, name, email=f"{name}@example.org")
        tokens[name] = services.accounts.create_token(SYSTEM_IDENTITY, name).token
    services.accounts.create_group(SYSTEM_IDENTITY, "lab")
    for name in ("alice", "bob"):
        services.accounts.add_member(SYSTEM_IDENTITY, "lab", name)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services=services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", services, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        services.close()


def mail(smtp: FakeSMTP, to: str, event: str, timeout: float = 10.0) -> Message:
    """The mail about `event` sent to `to`, waiting for it a little (sent after commit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.messages:
            if message["To"] == to and message["Subject"].endswith(event):
                return message
        time.sleep(0.05)
    raise AssertionError(f"no {event} mail to {to}: {[m['Subject'] for m in smtp.messages]}")


def body(message: Message) -> str:
    """The text of a (non-multipart) mail."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()

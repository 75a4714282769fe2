"""Hub fixtures: a hub whose builds share one package cache across test runs (and environments
within one), users and a group."""

from __future__ import annotations

import contextlib
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.client import Client
from matterhub.client.describe import ServableDescription, describe_function
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.client.conftest import BASE, transport_for

# Builds download wheels once into this cache and hard-link them into every environment after;
# it outlives the test run on purpose (that is what makes a warm rebuild take seconds).
SHARED_CACHE = Path.home() / ".cache" / "matterhub-tests" / "hub"
# The CPU build of torch lies on this machine's disk; never let a build fetch the generic one.
LOCAL_WHEELS = [p for p in ["/opt/wheels"] if Path(p).is_dir()]
# The test hubs of one pytest run share their servable environments (content-addressed, complete
# or absent): a requirement set — torch, say — is built once a run, not once a test hub. A fresh
# folder each run (this process's id), removed when the run ends (tests/conftest.py), so every
# run still builds each environment once. `hub_envs_dir=None` gives a hub its own.
SHARED_ENVS = Path(tempfile.gettempdir()) / f"matterhub-test-envs-{os.getpid()}"


def hub_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    """Settings for a hub in `data_dir` using the shared build cache and environments."""
    kwargs: dict[str, object] = {
        "data_dir": data_dir,
        "hub_cache_dir": SHARED_CACHE,
        "hub_envs_dir": SHARED_ENVS,
        "hub_find_links": LOCAL_WHEELS,
        **extra,
    }
    if database_url:
        kwargs["database_url"] = database_url
    return Settings(**kwargs)  # type: ignore[arg-type]


@dataclass
class Hub:
    """A running in-process hub with users alice (owner), bob (in group lab) and carol."""

    services: Services
    app: FastAPI
    tokens: dict[str, str]
    make_client: Callable[[str | None], Client]

    def client(self, user: str | None = None) -> Client:
        """A client as `user` (None: anonymous)."""
        return self.make_client(self.tokens[user] if user else None)


def start_hub(settings: Settings) -> Iterator[Hub]:
    """Build services and an app, create the users and group, yield, then shut down."""
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    app = create_app(settings, services=services)
    tokens = {}
    for name in ("alice", "bob", "carol", "dave"):
        services.accounts.create_user(SYSTEM_IDENTITY, name)
        tokens[name] = services.accounts.create_token(SYSTEM_IDENTITY, name).token
    services.accounts.create_group(SYSTEM_IDENTITY, "lab")
    services.accounts.add_member(SYSTEM_IDENTITY, "lab", "bob")
    transport = transport_for(app)

    def make(token: str | None) -> Client:
        return Client(BASE, token, transport=transport, backoff=0, retries=0)

    try:
        yield Hub(services, app, tokens, make)
    finally:
        transport.shutdown()
        services.close()


# `with running_hub(settings) as hub:` shuts the hub down even when the body fails (a `for` over
# `start_hub` leaves its threads running until exit, and the test run never ends).
running_hub = contextlib.contextmanager(start_hub)


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    """A fresh hub on each catalog backend."""
    yield from start_hub(hub_settings(tmp_path / "hub", database_url))


def write_module(folder: Path, name: str, source: str) -> Path:
    """Write a Python module for a function servable."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def import_function(path: Path, name: str) -> Callable[..., object]:
    """Import `name` from a module file (as a scientist's own module would be)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[..., object] = getattr(module, name)
    return function


ADD_SOURCE = '''
def add(x: list[float], offset: float = 0.0) -> float:
    """Sum the inputs and add an offset."""
    return sum(x) + offset
'''


def function_servable(tmp_path: Path, name: str, *, expected: float = 6.0) -> ServableDescription:
    """A no-requirement function servable (cheap to build), with an example and its output."""
    path = write_module(tmp_path / name, "adder", ADD_SOURCE)
    description = describe_function(import_function(path, "add"), name)
    description.set_title(f"Adder {name}").set_creators(["Doe, Jane", "Roe, Rick"])
    return description.set_example([1.0, 2.0, 3.0], expected)

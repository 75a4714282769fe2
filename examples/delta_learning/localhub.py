"""A MatterHub served on loopback from a local folder, for running the workflow without a hub.

`local_hub(folder)` builds the services from `Settings` (so every `MATTERHUB_*` variable still
applies, except the data folder and the base URL, which are this folder and this server's
loopback address), creates one user and a token, serves the API with uvicorn on a free loopback
port in a thread, and yields `(url, token)`; the hub stops when the block ends. It is the same
embedded hub `matterhub serve` runs (SQLite, tantivy, a local folder, sandboxed servables).

Servable environments are built into a package cache shared across runs —
`$MATTERHUB_HUB_CACHE_DIR`, else `~/.cache/matterhub/builds` — so a second run does not download
torch and tblite again; the folders of `$PIP_FIND_LINKS` (local wheels, e.g. a CPU build of
torch) are offered to the builds unless `$MATTERHUB_HUB_FIND_LINKS` says otherwise.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["USER", "local_hub"]

USER = "delta"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _defaults(folder: Path, port: int) -> dict[str, object]:
    # base_url: identifiers, citations and file URLs point at this server.
    kwargs: dict[str, object] = {"data_dir": folder, "base_url": f"http://127.0.0.1:{port}"}
    if not os.environ.get("MATTERHUB_HUB_CACHE_DIR"):
        kwargs["hub_cache_dir"] = Path.home() / ".cache" / "matterhub" / "builds"
    links = [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if Path(p).is_dir()]
    if links and not os.environ.get("MATTERHUB_HUB_FIND_LINKS"):
        kwargs["hub_find_links"] = links
    return kwargs


@contextmanager
def local_hub(folder: Path) -> Iterator[tuple[str, str]]:
    """Serve a hub from `folder` on loopback; yield `(url, token of the user "delta")`."""
    import uvicorn

    from matterhub.api import create_app
    from matterhub.bootstrap import build_services, open_sandbox
    from matterhub.core.identity import SYSTEM_IDENTITY
    from matterhub.settings import Settings

    port = _free_port()
    settings = Settings(**_defaults(folder, port))  # type: ignore[arg-type]
    problem = open_sandbox(settings).problem()
    if problem is not None:
        raise SystemExit(
            f"no working sandbox on this machine ({problem}): the hub would refuse to run the "
            "servables. See docs/security.md."
        )
    services = build_services(settings)
    try:
        services.accounts.create_user(SYSTEM_IDENTITY, USER, full_name="Delta Workflow")
        token = services.accounts.create_token(SYSTEM_IDENTITY, USER, name="workflow").token
        app = create_app(settings, services=services)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise SystemExit("the local hub did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{config.port}", token
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        services.close()

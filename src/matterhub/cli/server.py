"""Running the HTTP server and announcing the first administrator."""

from __future__ import annotations

import socket

from rich.console import Console

from matterhub.bootstrap import Services
from matterhub.core.errors import InvalidInput
from matterhub.settings import Settings

__all__ = ["announce_admin", "check_port_free", "run_server"]


def announce_admin(services: Services, console: Console) -> str | None:
    """Create the first administrator if there is none, print its token once, and return it."""
    created = services.accounts.ensure_admin(services.settings.admin_username)
    if created is None:
        return None
    user, token = created
    console.print(
        f"Created administrator [bold]{user.username}[/bold]. Its API token is shown only now:"
    )
    console.print(f"  [bold green]{token.token}[/bold green]", highlight=False, soft_wrap=True)
    return token.token


def check_port_free(host: str, port: int) -> None:
    """Fail early, naming the setting, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another with --port",
                field="port",
            ) from exc


def run_server(settings: Settings, services: Services) -> None:
    """Serve the API with uvicorn until interrupted."""
    import uvicorn

    from matterhub.api import create_app

    check_port_free(settings.host, settings.port)
    app = create_app(settings, services=services)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        server_header=False,
    )

"""MatterHub: a self-hostable data and model hub for materials science."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = ["Client", "Forge", "__version__"]

if TYPE_CHECKING:
    from matterhub.client import Client, Forge


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import matterhub` stays light and server code never loads here.
    if name in ("Client", "Forge"):
        from matterhub import client

        return getattr(client, name)
    raise AttributeError(f"module 'matterhub' has no attribute {name!r}")

"""Dispatchers: tell the rest of the ecosystem about a newly published version.

Built in: signed webhooks (`services.webhook`) and peer MatterHub instances (`services.peer`),
which receive a Connect submission pointing at this hub's zip of the version, so the peer collects
the files over HTTPS and runs its own pipeline. More register under `matterhub.dispatchers`.
Every request goes through the hub's outbound guard (`Dispatcher.guard`): a submitter's webhook
or peer URL cannot reach loopback or private addresses unless the operator allowed them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx

from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import NetGuard, OutboundRefused, UnresolvableHost
from matterhub.plugins import iter_plugins

__all__ = ["Dispatch", "Dispatcher", "load_dispatchers", "sign"]


@dataclass(frozen=True)
class Dispatch:
    """What is being announced."""

    source_id: str
    dataset: dict[str, Any]
    archive_url: str
    landing_url: str | None


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the body, as GitHub-style receivers verify it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Dispatcher(ABC):
    """Sends one announcement; `service` is its key in a submission's `services` block."""

    service: str = ""
    # The hub's guard, set by load_dispatchers; the strictest one until then.
    guard: NetGuard = NetGuard()

    def post(self, url: str, field: str, **kwargs: Any) -> httpx.Response:
        """POST through the guard (no redirects followed: a receiver answers where it is).

        Raises:
            InvalidInput: the guard refused the URL (naming `field`).
            StorageError: it could not be reached.
        """
        try:
            self.guard.check_http_url(url)
            with self.guard.client(timeout=30, follow_redirects=False) as client:
                return client.post(url, **kwargs)
        except OutboundRefused as exc:
            raise InvalidInput(f"{url}: {exc.detail}", field=field) from None
        except (httpx.HTTPError, UnresolvableHost) as exc:
            raise StorageError(f"{url} unreachable: {exc}") from exc

    @abstractmethod
    def send(self, dispatch: Dispatch, params: dict[str, Any], *, secret: str) -> str:
        """Deliver it; returns a short description for the status. Raises StorageError."""


class WebhookDispatcher(Dispatcher):
    """POSTs the event as JSON, signed in `X-MatterHub-Signature`."""

    service = "webhook"

    def send(self, dispatch: Dispatch, params: dict[str, Any], *, secret: str) -> str:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput(
                "services.webhook.url must be an http(s) URL", field="services.webhook.url"
            )
        body = json.dumps(
            {
                "event": "dataset.published",
                "source_id": dispatch.source_id,
                "landing_url": dispatch.landing_url,
                "archive_url": dispatch.archive_url,
                "dataset": dispatch.dataset,
            },
            sort_keys=True,
        ).encode()
        key = str(params.get("secret") or secret)
        headers = {"Content-Type": "application/json", "X-MatterHub-Signature": sign(key, body)}
        response = self.post(url, "services.webhook.url", content=body, headers=headers)
        if response.status_code >= 300:
            raise StorageError(f"webhook {url} answered {response.status_code}")
        return f"webhook {url}: {response.status_code}"


class PeerDispatcher(Dispatcher):
    """Submits the version to another MatterHub's Connect, pointing at this hub's zip."""

    service = "peer"

    def send(self, dispatch: Dispatch, params: dict[str, Any], *, secret: str) -> str:
        url = str(params.get("url") or "").rstrip("/")
        token = params.get("token")
        if not url.startswith(("http://", "https://")) or not token:
            raise InvalidInput("services.peer needs url and token", field="services.peer")
        document = dispatch.dataset
        name = str(document.get("mdf", {}).get("source_name") or dispatch.source_id)
        submission = {
            "dc": document.get("dc", {}),
            "data_sources": [dispatch.archive_url],
            "mdf": {"source_name": str(params.get("source_name") or name)},
            "update": bool(params.get("update", False)),
        }
        response = self.post(
            f"{url}/connect/submit",
            "services.peer.url",
            json=submission,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code >= 300:
            raise StorageError(
                f"peer {url} refused it: {response.status_code} {response.text[:200]}"
            )
        return f"peer {url}: {response.json().get('source_id')}"


def load_dispatchers(guard: NetGuard | None = None) -> dict[str, Dispatcher]:
    """Dispatchers by service key, from the `matterhub.dispatchers` entry points, each sending
    through `guard` (default: the strictest guard)."""
    out: dict[str, Dispatcher] = {}
    for _name, plugin in iter_plugins("matterhub.dispatchers"):
        dispatcher = plugin()
        if guard is not None:
            dispatcher.guard = guard
        out[dispatcher.service] = dispatcher
    return out

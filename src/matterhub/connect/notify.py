"""Telling a submitter what happened: curation decisions and how a submission ended.

Two notifiers ship: a signed webhook (the hub-wide `connect_notify_url`, and the submission's own
`services.webhook.url` if it gave one) and e-mail over SMTP to the submitter's address. A
notification that cannot be delivered is logged and never changes the submission's outcome.
"""

from __future__ import annotations

import json
import logging
import smtplib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

from matterhub.connect.dispatch import sign
from matterhub.netguard import NetGuard, OutboundRefused

__all__ = ["EmailNotifier", "Notice", "Notifier", "WebhookNotifier", "deliver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One event for one person: a submitter, or a servable's owner or requester."""

    # curation.accepted | curation.rejected | submission.succeeded | submission.failed |
    # access.requested | access.granted | access.declined | access.revoked
    event: str
    source_id: str  # the submission's source_id, or the servable's `owner/name`
    submitter: str  # the username of whom it is for
    email: str | None
    reason: str | None
    status_url: str
    # The submission's own `services.webhook` block, if any.
    webhook: dict[str, Any] | None = None
    # The text for people when it is not about a submission (hub access requests).
    summary: str | None = None

    def text(self) -> str:
        """A sentence for people."""
        if self.summary is not None:
            return f"{self.summary}\n{self.status_url}\n"
        what = {
            "curation.accepted": "was accepted by a curator",
            "curation.rejected": "was rejected by a curator",
            "submission.succeeded": "was published",
            "submission.failed": "failed",
        }.get(self.event, self.event)
        because = f": {self.reason}" if self.reason else ""
        return f"Your submission {self.source_id} {what}{because}.\nStatus: {self.status_url}\n"


class Notifier(ABC):
    """Delivers notices one way; raises OSError/httpx.HTTPError when it cannot."""

    @abstractmethod
    def notify(self, notice: Notice, *, secret: str) -> None:
        """Deliver one notice."""


class WebhookNotifier(Notifier):
    """POSTs the notice as JSON signed in `X-MatterHub-Signature` (same scheme as dispatch).

    Both targets go through the outbound guard; the hub-wide URL is the operator's own, so its
    origin may be private (still resolved once and pinned), the submission's may not.
    """

    def __init__(self, url: str | None = None, *, guard: NetGuard | None = None) -> None:
        self._url = url
        self._guard = guard or NetGuard()

    def notify(self, notice: Notice, *, secret: str) -> None:
        """Send to the hub-wide URL and to the submission's own webhook, if each is set."""
        body = {k: v for k, v in asdict(notice).items() if k != "webhook"}
        targets: list[tuple[str, str, NetGuard]] = []
        if self._url:
            targets.append((self._url, secret, self._guard.trusting(self._url)))
        own = notice.webhook or {}
        # The submission's own webhook already hears `dataset.published` from the dispatcher.
        if isinstance(own.get("url"), str) and notice.event != "submission.succeeded":
            targets.append((own["url"], str(own.get("secret") or secret), self._guard))
        payload = json.dumps(body, sort_keys=True).encode()
        for url, key, guard in targets:
            headers = {
                "Content-Type": "application/json",
                "X-MatterHub-Signature": sign(key, payload),
                "X-MatterHub-Event": notice.event,
            }
            try:
                guard.check_http_url(url)
                with guard.client(timeout=15, follow_redirects=False) as client:
                    response = client.post(url, content=payload, headers=headers)
            except OutboundRefused as exc:
                raise OSError(f"{url}: {exc.detail}") from None  # logged by deliver
            response.raise_for_status()


class EmailNotifier(Notifier):
    """Sends a plain-text e-mail through an SMTP server given as `smtp://host:port`."""

    def __init__(self, smtp_url: str, sender: str) -> None:
        parts = urlsplit(smtp_url)
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 25
        self._sender = sender

    def notify(self, notice: Notice, *, secret: str) -> None:
        """Mail the submitter; a submitter without an address gets nothing."""
        if not notice.email:
            return
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = notice.email
        message["Subject"] = f"[MatterHub] {notice.source_id}: {notice.event}"
        message.set_content(notice.text())
        with smtplib.SMTP(self._host, self._port, timeout=15) as smtp:
            smtp.send_message(message)


def deliver(notifiers: list[Notifier], notice: Notice, *, secret: str) -> list[str]:
    """Send through every notifier; returns the failures (logged, never raised)."""
    failures = []
    for notifier in notifiers:
        try:
            notifier.notify(notice, secret=secret)
        except (OSError, httpx.HTTPError, smtplib.SMTPException) as exc:
            log.warning("could not notify about %s: %s", notice.source_id, exc)
            failures.append(f"{type(notifier).__name__}: {exc}")
    return failures

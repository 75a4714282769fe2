"""The client's exception tree: every failure the SDK raises on purpose is a `ClientError`.

```
ClientError
  HubUnreachable            wrong base URL, server down, timeouts (after retries)
  APIError                  the hub answered with an error {error, detail, field?}
    BadRequestError (400) · InvalidInputError (422, names the field)
    AuthenticationError (401; says how to log in) · PermissionDeniedError (403)
    NotFoundError (404) · ConflictError (409) · PayloadTooLargeError (413)
    ServerError (5xx, after retries)
  DownloadError             a download could not finish
    ChecksumMismatch        the bytes on disk are not the manifest's (file removed)
  ConfigError               the user config file is missing a profile or unreadable
```
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatch",
    "ClientError",
    "ConfigError",
    "ConflictError",
    "DownloadError",
    "HubUnreachable",
    "InvalidInputError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ServerError",
    "error_from_response",
]

LOGIN_HINT = "run `matterhub login --url <hub> --token <token>` (or pass token= to Client)"


class ClientError(Exception):
    """Base of every error the MatterHub client raises on purpose."""


class HubUnreachable(ClientError):
    """No answer from the hub: wrong URL, server down or timing out."""


class ConfigError(ClientError):
    """The user config file is unreadable or lacks the requested profile."""


class APIError(ClientError):
    """The hub answered with an error status and a JSON body `{error, detail, field?}`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str = "error",
        field: str | None = None,
        body: Any = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        self.field = field
        self.body = body
        self.method = method
        self.url = url
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status} {self.code}: {self.detail}{where}"


class BadRequestError(APIError):
    """400: the request is malformed (e.g. a query string that does not parse)."""


class InvalidInputError(APIError):
    """422: input failed validation; `field` names the offending value."""


class AuthenticationError(APIError):
    """401: the token is missing, wrong, expired or revoked."""

    def _message(self) -> str:
        return f"{super()._message()}; your token is invalid or expired: {LOGIN_HINT}"


class PermissionDeniedError(APIError):
    """403: the caller is known but not allowed to do this."""


class NotFoundError(APIError):
    """404: no such object (or the caller may not see it)."""


class ConflictError(APIError):
    """409: the object is in a state that forbids this (e.g. already published)."""


class PayloadTooLargeError(APIError):
    """413: the request body is over the hub's limit."""


class ServerError(APIError):
    """5xx: the hub failed; raised once retries are exhausted."""


class DownloadError(ClientError):
    """A download could not be completed."""


class ChecksumMismatch(DownloadError):
    """A downloaded file's SHA-512 differs from the manifest's; the file has been removed."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch for {path}: expected sha512 {expected[:16]}…, "
            f"got {actual[:16]}…; the file was removed"
        )


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidInputError,
}


def error_from_response(response: httpx.Response, *, attempts: int = 1) -> APIError:
    """The `APIError` subclass for an error response, with the hub's detail and field."""
    body: Any = None
    detail = response.reason_phrase or "error"
    code = "error"
    field = None
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            detail = text[:300]
    if isinstance(body, dict):
        raw = body.get("detail", body.get("message", detail))
        detail = raw if isinstance(raw, str) else str(raw)
        code = str(body.get("error", body.get("code", code)))
        field = body.get("field") if isinstance(body.get("field"), str) else None
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    if attempts > 1:
        detail += f" (after {attempts} attempts)"
    return cls(
        status,
        detail,
        code=code,
        field=field,
        body=body,
        method=response.request.method,
        url=str(response.request.url),
    )

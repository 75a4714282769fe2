"""The MatterHub exception tree; the API maps each branch to one HTTP status.

```
MatterHubError
  NotFound (404) · PermissionDenied (403) · Unauthenticated (401)
  InvalidInput (422; field path + reason) → BadRequest (400) · Conflict (409)
  PayloadTooLarge (413)
  BackendError (503): CatalogError · StorageError · SearchError · PIDError · ExecutorError
```
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BadRequest",
    "CatalogError",
    "Conflict",
    "ExecutorError",
    "InvalidInput",
    "MatterHubError",
    "NotFound",
    "PIDError",
    "PayloadTooLarge",
    "PermissionDenied",
    "SearchError",
    "StorageError",
    "Unauthenticated",
]


class MatterHubError(Exception):
    """Base of every error MatterHub raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def to_dict(self) -> dict[str, str]:
        """The JSON error body `{error, detail, field?}`."""
        body = {"error": self.code, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


class NotFound(MatterHubError):
    """The named object does not exist (or the caller may not know that it does)."""

    code = "not_found"
    status = 404


class PermissionDenied(MatterHubError):
    """The caller is known but not allowed to do this."""

    code = "forbidden"
    status = 403


class Unauthenticated(MatterHubError):
    """The credentials sent are wrong, expired or revoked."""

    code = "unauthenticated"
    status = 401


class InvalidInput(MatterHubError):
    """Input failed validation; `field` is the dotted path of the offending value."""

    code = "invalid_input"
    status = 422

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail, field=field)


class BadRequest(InvalidInput):
    """Input that cannot be understood at all (a malformed query); 400 as Globus Search answers."""

    code = "bad_request"
    status = 400


class Conflict(MatterHubError):
    """The request conflicts with the current state (a name taken, a concurrent change)."""

    code = "conflict"
    status = 409


class PayloadTooLarge(MatterHubError):
    """The request body is over the configured limit."""

    code = "payload_too_large"
    status = 413


class BackendError(MatterHubError):
    """A backend (database, storage, index, executor) failed or is unreachable."""

    code = "backend_unavailable"
    status = 503


class CatalogError(BackendError):
    """The catalog database failed or cannot be opened."""

    code = "catalog_unavailable"


class StorageError(BackendError):
    """The blob store failed or cannot be reached."""

    code = "storage_unavailable"


class SearchError(BackendError):
    """The search index failed."""

    code = "search_unavailable"


class PIDError(BackendError):
    """The persistent-identifier provider failed."""

    code = "pid_unavailable"


class ExecutorError(BackendError):
    """The executor could not run the work."""

    code = "executor_unavailable"

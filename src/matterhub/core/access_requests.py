"""Access requests: a user asks for the right to run a servable; its owner grants or declines.

The model the API returns, the states a request goes through and the bounds on what people
write (checked here, so the service, the API and the SDK say the same thing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from matterhub.core.errors import InvalidInput

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_REASON_CHARS",
    "STATUSES",
    "AccessRequestPublic",
    "check_text",
]

STATUSES = ("pending", "granted", "declined", "withdrawn", "revoked")
"""pending → granted | declined | withdrawn (by the requester); granted → revoked (by the owner)."""

MAX_MESSAGE_CHARS = 2000
MAX_REASON_CHARS = 2000


def check_text(value: Any, field: str, *, limit: int, required: bool) -> str:
    """`value` stripped, a string of at most `limit` characters (non-empty when `required`).

    Raises:
        InvalidInput: not a string, empty when required, or too long (`field` names it).
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"{field} is required", field=field)
    if len(text) > limit:
        raise InvalidInput(f"{field} is {len(text)} characters long; at most {limit}", field=field)
    return text


class AccessRequestPublic(BaseModel):
    """One request for the right to run a servable, and the decision on it."""

    id: str
    servable: str = Field(description="`owner/name` of the servable asked for.")
    requester: str = Field(description="The username of who asked.")
    message: str = Field(description="What the requester wrote (may be empty).")
    status: str = Field(description=" | ".join(STATUSES))
    granted_to: str | None = Field(
        None, description="The principal given the right to run (`user:<name>` or `group:<name>`)."
    )
    reason: str | None = Field(None, description="Why it was declined or revoked.")
    decided_by: str | None = Field(None, description="The username of who decided.")
    created_at: datetime
    decided_at: datetime | None = None

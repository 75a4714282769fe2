"""Users, groups and API tokens as the services return them (never secrets, never hashes)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from matterhub.core.errors import InvalidInput

__all__ = [
    "GroupPublic",
    "NewToken",
    "TokenPublic",
    "UserPublic",
    "WhoAmI",
    "check_name",
    "normalise_name",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def normalise_name(value: str, *, field: str) -> str:
    """The NFKC form of a name someone chose; refuses control, format and surrounding space.

    Names are matched by equality, so `admin\\n`, `ad\\u200bmin` or `ａｄｍｉｎ` must not live
    beside `admin`: control (Cc) and format (Cf) characters are refused, and the name is stored
    and compared in its NFKC form (fullwidth letters, ligatures and the like fold to one spelling).

    Raises:
        InvalidInput: naming `field` and the offending character.
    """
    for text in (value, unicodedata.normalize("NFKC", value)):
        for char in text:
            category = unicodedata.category(char)
            if category in ("Cc", "Cf"):
                kind = "control" if category == "Cc" else "format"
                raise InvalidInput(
                    f"{field} may not contain a {kind} character U+{ord(char):04X}", field=field
                )
    normalised = unicodedata.normalize("NFKC", value)
    if normalised != normalised.strip():
        raise InvalidInput(f"{field} may not have surrounding whitespace", field=field)
    return normalised


def check_name(value: str, *, field: str) -> str:
    """A user, group or index name in its normalised form, which callers store and compare.

    1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    """
    name = normalise_name(value, field=field)
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{value!r} is not a valid name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return name


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class UserPublic(_Public):
    """A user account."""

    id: str = Field(description="Stable user id; the principal is urn:matterhub:user:<id>.")
    username: str
    email: str | None = None
    full_name: str | None = None
    is_admin: bool = False
    created_at: datetime
    principal: str = Field(description="The user's principal URN.")


class GroupPublic(_Public):
    """A group of users; its principal can appear in access lists."""

    id: str
    name: str
    description: str | None = None
    created_at: datetime
    principal: str
    members: list[str] = Field(default_factory=list, description="Usernames of the members.")


class TokenPublic(_Public):
    """An API token's metadata; the secret itself is only ever shown at creation."""

    id: str
    name: str
    username: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class NewToken(TokenPublic):
    """A freshly created token, carrying its secret this one time."""

    token: str = Field(description="The bearer token. It is shown once and cannot be recovered.")


class WhoAmI(BaseModel):
    """The identity behind a request."""

    authenticated: bool
    username: str | None = None
    user_id: str | None = None
    is_admin: bool = False
    groups: list[str] = Field(default_factory=list, description="Names of the caller's groups.")
    principals: list[str] = Field(description="Every principal the caller holds.")

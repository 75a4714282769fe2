"""Dataset rules: source_id parsing and formatting, version bumps, states, paths and `dc` checks.

A dataset has a stable `source_name`; each version is `<source_name>_v<major>.<minor>` (MDF's
rule). New data bumps the major number, a metadata-only update the minor one. A version moves
draft → (curation) → published, or ends rejected or withdrawn. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from matterhub.core.errors import Conflict, InvalidInput
from matterhub.core.identity import user_principal

__all__ = [
    "RESERVED_NAMES",
    "STATES",
    "DatasetPublic",
    "FilePublic",
    "ManifestEntry",
    "State",
    "UploadPublic",
    "VersionAccess",
    "VersionPublic",
    "check_dc",
    "check_file_path",
    "check_source_name",
    "check_transition",
    "derive_source_name",
    "format_source_id",
    "next_version",
    "parse_source_id",
    "version_access",
]

State = Literal["draft", "curation", "published", "rejected", "withdrawn"]
STATES: tuple[State, ...] = ("draft", "curation", "published", "rejected", "withdrawn")

# Allowed moves; anything else is a Conflict. A rejected version can be reworked as a draft.
_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"curation", "published"}),
    "curation": frozenset({"published", "rejected", "draft"}),
    "rejected": frozenset({"draft"}),
    "published": frozenset({"withdrawn"}),
    "withdrawn": frozenset(),
}

# MDF marks test submissions with a `_test_` prefix; otherwise names start alphanumeric.
_SOURCE_NAME = re.compile(r"^(_test_)?[a-z0-9][a-z0-9_-]{0,150}$")
_SOURCE_ID = re.compile(r"^(?P<name>.+)_v(?P<major>\d{1,6})\.(?P<minor>\d{1,6})$")
_STOPWORDS = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"]
)

RESERVED_NAMES = frozenset({"manifest.json", "dataset.json", "records.jsonl"})
"""Documents that sit beside `files/` in a version folder."""


def check_source_name(name: str) -> str:
    """Validate a source_name: lowercase letters, digits, `_` and `-`, no `_v<n>.<n>` suffix."""
    if not _SOURCE_NAME.fullmatch(name) or _SOURCE_ID.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a valid source_name: use 1-151 lowercase letters, digits, '_' or "
            "'-', starting with a letter or digit, and no '_v<major>.<minor>' suffix",
            field="source_name",
        )
    return name


def format_source_id(source_name: str, major: int, minor: int) -> str:
    """`<source_name>_v<major>.<minor>`."""
    return f"{source_name}_v{major}.{minor}"


def parse_source_id(source_id: str) -> tuple[str, int, int]:
    """Split a source_id into (source_name, major, minor); raise InvalidInput if it is not one."""
    match = _SOURCE_ID.match(source_id)
    if match is None:
        raise InvalidInput(
            f"{source_id!r} is not a source_id (<source_name>_v<major>.<minor>)", field="source_id"
        )
    return match["name"], int(match["major"]), int(match["minor"])


def next_version(latest: tuple[int, int] | None, *, new_data: bool) -> tuple[int, int]:
    """The version after `latest`: new data bumps major (minor 0), metadata-only bumps minor."""
    if latest is None:
        return (1, 0)
    major, minor = latest
    return (major + 1, 0) if new_data else (major, minor + 1)


def check_transition(current: str, target: str) -> None:
    """Raise Conflict unless a version may move from `current` to `target`."""
    if target not in _TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"a {current} version cannot become {target}", field="state")


def derive_source_name(dc: Mapping[str, Any]) -> str:
    """MDF's rule: the first creator's family name and title words 1, 2 and last (no stopwords)."""
    creators = dc.get("creators") or [{}]
    first = creators[0] if isinstance(creators[0], Mapping) else {}
    family = str(first.get("familyName") or str(first.get("creatorName", "")).split(",")[0])
    titles = dc.get("titles") or [{}]
    title = str(titles[0].get("title", "")) if isinstance(titles[0], Mapping) else ""
    words = [w for w in re.findall(r"[a-z0-9]+", title.lower()) if w not in _STOPWORDS]
    chosen = [*words[:2], words[-1]] if len(words) > 2 else words
    parts = [*re.findall(r"[a-z0-9]+", family.lower())[:1], *chosen]
    return check_source_name("_".join(parts)[:120] or "dataset")


def check_file_path(path: str, *, field: str = "path") -> str:
    """Validate a path inside a version: relative POSIX, no `..`, `.`, empty or reserved parts."""
    if not path or len(path) > 1024 or "\x00" in path or "\\" in path:
        raise InvalidInput(f"{path!r} is not a valid file path", field=field)
    if path.startswith("/"):
        raise InvalidInput(f"file path {path!r} must be relative", field=field)
    for segment in path.split("/"):
        if segment in ("", ".", "..") or segment.startswith(".tmp-"):
            raise InvalidInput(
                f"file path {path!r} has an empty, '.', '..' or reserved segment", field=field
            )
    return path


def _require_list(dc: Mapping[str, Any], key: str) -> list[Any]:
    value = dc.get(key)
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"dc.{key} must be a non-empty list", field=f"dc.{key}")
    return value


def check_dc(dc: Mapping[str, Any], *, year: int) -> dict[str, Any]:
    """Validate an MDF `dc` block (DataCite subset) and fill its defaults; returns a copy."""
    if not isinstance(dc, Mapping):
        raise InvalidInput("dc must be an object", field="dc")
    out = dict(dc)
    for i, creator in enumerate(_require_list(out, "creators")):
        if not isinstance(creator, Mapping) or not str(creator.get("creatorName", "")).strip():
            raise InvalidInput(
                "every creator needs a creatorName", field=f"dc.creators[{i}].creatorName"
            )
    for i, title in enumerate(_require_list(out, "titles")):
        if not isinstance(title, Mapping) or not str(title.get("title", "")).strip():
            raise InvalidInput("every title needs a title", field=f"dc.titles[{i}].title")
    out.setdefault("publisher", "MatterHub")
    out.setdefault("publicationYear", str(year))
    out["publicationYear"] = str(out["publicationYear"])
    if not re.fullmatch(r"\d{4}", out["publicationYear"]):
        raise InvalidInput("dc.publicationYear must be a 4-digit year", field="dc.publicationYear")
    out.setdefault("resourceType", {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"})
    if not isinstance(out["resourceType"], Mapping):
        raise InvalidInput("dc.resourceType must be an object", field="dc.resourceType")
    return out


@dataclass(frozen=True, slots=True)
class VersionAccess:
    """Who may read and manage one version now; what `Policy` checks."""

    visible_to: tuple[str, ...]
    owner_id: str
    managed_by: tuple[str, ...] = ()


def version_access(
    state: str,
    *,
    owner_id: str,
    visible_to: Sequence[str],
    shared_with: Sequence[str],
    curators: Sequence[str],
) -> VersionAccess:
    """Access across a dataset's life: private while draft, curators join during curation, then
    the submitter's `visible_to` once published (the owner and named users always keep access).
    """
    private = (user_principal(owner_id), *shared_with)
    if state in ("draft", "rejected"):
        readers: tuple[str, ...] = private
    elif state == "curation":
        readers = (*private, *curators)
    else:
        readers = (*private, *visible_to)
    managers = tuple(curators) if state == "curation" else ()
    return VersionAccess(
        visible_to=tuple(dict.fromkeys(readers)), owner_id=owner_id, managed_by=managers
    )


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True)


class ManifestEntry(_Public):
    """One file of a version as its manifest lists it."""

    path: str
    size: int
    sha512: str
    mime_type: str
    restricted: bool = Field(
        default=False, description="True when the file has its own, narrower access list."
    )


class FilePublic(ManifestEntry):
    """A file of a version, with its download URL."""

    url: str


class VersionPublic(_Public):
    """One version of a dataset."""

    source_id: str
    source_name: str
    version: str = Field(description="<major>.<minor>")
    state: State
    pid: str | None = None
    pid_url: str | None = Field(default=None, description="Where the identifier resolves.")
    visible_to: list[str]
    shared_with: list[str]
    dc: dict[str, Any]
    document: dict[str, Any] = Field(description="The MDF dataset document (dataset.json).")
    file_count: int
    total_bytes: int
    created_at: datetime
    published_at: datetime | None = None
    manifest_sha512: str | None = None
    reason: str | None = Field(default=None, description="Why it was rejected or withdrawn.")
    is_latest: bool = False


class DatasetPublic(_Public):
    """A dataset: its stable name, owner, latest published version and every version seen."""

    source_name: str
    owner: str
    test: bool
    latest: str | None = Field(description="source_id of the latest published version.")
    versions: list[str]
    created_at: datetime


class UploadPublic(_Public):
    """A resumable upload session: send bytes from `offset` until it reaches `size`."""

    id: str
    source_id: str
    path: str
    size: int
    offset: int
    sha512: str | None = None
    created_at: datetime

"""From entry content to what the index stores: tokens, keyword pairs, field types, limits."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

import orjson

from matterhub.core.errors import BadRequest, PayloadTooLarge
from matterhub.core.identity import group_principal, parse_principal, user_principal

__all__ = [
    "LIMITS",
    "NUMERIC_STRINGS",
    "Prepared",
    "flatten",
    "normalise_principal",
    "numeric_view",
    "parse_date",
    "tokenize",
    "value_type",
]

# Globus Search's documented limits; a violating entry is refused whole.
LIMITS = {
    "entry_bytes": 10 * 1024 * 1024,
    "field_bytes": 32 * 1024,
    "visible_to": 100,
    "subject_bytes": 500,
    "entries_per_subject": 10,
    "depth": 20,
}
_TOKEN = re.compile(r"\w+")
# The same tokens, only whole ones of at most 40 characters (longer ones are not keywords).
_KV_TOKEN = re.compile(r"(?<!\w)\w{1,40}(?!\w)")
# The strings tantivy indexes as dates (RFC 3339 with seconds and an offset), not as text.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_MAX_DEPTH = LIMITS["depth"]
_FIELD_BYTES = LIMITS["field_bytes"]
_GLOBUS_USER = "urn:globus:auth:identity:"
_GLOBUS_GROUP = "urn:globus:groups:id:"
# Keyword pairs for long text would bloat the term dictionary and nobody wildcards a paragraph.
_KV_MAX_CHARS = 256


# Fields that documents spell as digit strings but clients query as numbers: DataCite (and MDF's
# `dc` block) write `publicationYear` as "2024", while Forge's `match_years` sends
# `dc.publicationYear:[2000 TO *]`. The entry keeps its string; the index holds the number.
NUMERIC_STRINGS = (("dc", "publicationYear"), ("datacite", "publicationYear"))
_MAX_NUMERIC_DIGITS = 15  # past this a digit string is an identifier, not a quantity


def numeric_view(content: dict[str, Any]) -> dict[str, Any] | None:
    """`content` with the `NUMERIC_STRINGS` it spells as digits turned into integers, or None
    when there are none (the usual case: two dictionary lookups)."""
    out: dict[str, Any] | None = None
    for block, key in NUMERIC_STRINGS:
        inner = content.get(block)
        if not isinstance(inner, dict):
            continue
        value = inner.get(key)
        if (
            isinstance(value, str)
            and 0 < len(value) <= _MAX_NUMERIC_DIGITS
            and value.isascii()
            and value.isdigit()
        ):
            out = dict(content) if out is None else out
            out[block] = {**inner, key: int(value)}
    return out


def tokenize(text: str) -> list[str]:
    """Split and lowercase like the index's `words` analyzer (runs of word characters, ≤ 40)."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t.encode()) <= 40]


def value_type(value: Any) -> str:
    """The mapping type of a leaf value: string, date, long, double or boolean."""
    if isinstance(value, str):
        # Cheap test first: most strings are not dates.
        if len(value) >= 20 and value[:4].isdigit() and _RFC3339.match(value):
            return "date"
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    return "string"


def flatten(content: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every (dotted path, leaf value) of a document; list items share their parent's path."""
    out: list[tuple[str, Any]] = []

    def walk(path: str, value: Any, depth: int) -> None:
        if depth > LIMITS["depth"]:
            raise BadRequest(f"nesting deeper than {LIMITS['depth']} at {path}", field="content")
        if isinstance(value, dict):
            for key, item in value.items():
                key = str(key)
                if "." in key:
                    key = key.replace(".", "\\.")
                walk(f"{path}.{key}" if path else key, item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(path, item, depth + 1)
        elif value is not None:
            out.append((path, value))

    walk("", content, 0)
    return out


def normalise_principal(principal: str, *, field: str) -> str:
    """Accept ours and Globus's principal URNs; store ours (`urn:globus:groups:id:X` → group X)."""
    if principal.startswith(_GLOBUS_USER):
        return user_principal(principal.removeprefix(_GLOBUS_USER))
    if principal.startswith(_GLOBUS_GROUP):
        return group_principal(principal.removeprefix(_GLOBUS_GROUP))
    try:
        parse_principal(principal)
    except ValueError as exc:
        raise BadRequest(str(exc), field=field) from None
    return principal


@functools.lru_cache(maxsize=4096)
def _normalised(principal: str) -> str | None:
    try:
        return normalise_principal(principal, field="visible_to")
    except BadRequest:
        return None


@functools.lru_cache(maxsize=4096)
def _kv_key(path: str) -> str:
    """A path's prefix in the keyword field; keywords are whitespace-separated, so no spaces."""
    return path.replace(" ", "\x1e") + "\x1f"


def _principal(principal: str, where: str) -> str:
    normal = _normalised(principal)
    if normal is None:
        return normalise_principal(principal, field=f"{where}.visible_to")  # raises, naming it
    return normal


class Prepared:
    """One entry, checked against the limits and ready for any backend."""

    __slots__ = (
        "_where",
        "all_text",
        "entry_id",
        "fields",
        "indexed",
        "keywords",
        "keywords_list",
        "source",
        "subject",
        "texts",
        "visible_to",
    )

    def __init__(self, raw: dict[str, Any], *, position: int) -> None:
        where = f"ingest_data.gmeta[{position}]"
        subject = raw.get("subject")
        if not isinstance(subject, str) or not subject:
            raise BadRequest("every entry needs a non-empty subject", field=f"{where}.subject")
        if len(subject.encode()) > LIMITS["subject_bytes"]:
            raise BadRequest(
                f"subject is longer than {LIMITS['subject_bytes']} bytes", field=f"{where}.subject"
            )
        content = raw.get("content")
        if not isinstance(content, dict):
            raise BadRequest("content must be a JSON object", field=f"{where}.content")
        visible_to = raw.get("visible_to")
        if not isinstance(visible_to, list) or not visible_to:
            raise BadRequest(
                "visible_to must list at least one principal", field=f"{where}.visible_to"
            )
        if len(visible_to) > LIMITS["visible_to"]:
            raise BadRequest(
                f"visible_to holds more than {LIMITS['visible_to']} principals",
                field=f"{where}.visible_to",
            )
        entry_id = raw.get("id")
        if entry_id is not None and not isinstance(entry_id, str):
            raise BadRequest("id must be a string or null", field=f"{where}.id")
        self.subject = subject
        self.entry_id = entry_id
        self.visible_to = sorted({_principal(str(p), where) for p in visible_to})
        # The parsed content is not kept: queued entries would hold millions of objects for the
        # garbage collector to traverse (it ran for a fifth of a large ingest).
        encoded = orjson.dumps(content)
        if len(encoded) > LIMITS["entry_bytes"]:
            raise PayloadTooLarge(
                f"entry is larger than {LIMITS['entry_bytes']} bytes", field=f"{where}.content"
            )
        self.source = encoded.decode()
        # What the field views (`t`, `r`) index: the source, or the source with its numeric
        # strings as numbers (then ranges, sorts and the mapping see a number).
        typed = numeric_view(content)
        if typed is not None:
            content = typed
            self.indexed = orjson.dumps(typed).decode()
        else:
            self.indexed = self.source
        self.texts: list[str] = []
        self.keywords_list: list[str] = []
        self.fields: dict[str, str] = {}
        self._where = where
        # One pass over the content does the validation and builds every derived view.
        self._walk_dict("", content, 0)
        self.all_text = "\n".join(self.texts)
        self.keywords = " ".join(self.keywords_list)
        del self.texts, self.keywords_list, self._where

    # The walk handles leaves inline (no call per leaf): it is the bulk of ingest's Python time.
    # `depth` is the container's; its children sit one deeper, and nothing may go past the limit.

    def _walk_dict(self, path: str, value: dict[Any, Any], depth: int) -> None:
        prefix = path + "." if path else ""
        deep = depth >= _MAX_DEPTH
        for k, item in value.items():
            k = str(k)
            child = prefix + (k.replace(".", "\\.") if "." in k else k)
            if deep:
                self._too_deep(child)
            if isinstance(item, str):
                self._string(child, item)
            elif isinstance(item, dict):
                self._walk_dict(child, item, depth + 1)
            elif isinstance(item, list):
                self._walk_list(child, item, depth + 1)
            elif item is not None:
                self.fields.setdefault(child, value_type(item))
                self.texts.append(str(item).lower())

    def _walk_list(self, path: str, value: list[Any], depth: int) -> None:
        if value and depth >= _MAX_DEPTH:
            self._too_deep(path)
        for item in value:
            if isinstance(item, str):
                self._string(path, item)
            elif isinstance(item, dict):
                self._walk_dict(path, item, depth + 1)
            elif isinstance(item, list):
                self._walk_list(path, item, depth + 1)
            elif item is not None:
                self.fields.setdefault(path, value_type(item))
                self.texts.append(str(item).lower())

    def _string(self, path: str, value: str) -> None:
        if len(value) >= 20 and value[:4].isdigit() and _RFC3339.match(value):
            self.fields.setdefault(path, "date")
            return
        self.fields.setdefault(path, "string")
        if len(value) * 4 > _FIELD_BYTES and len(value.encode()) > _FIELD_BYTES:
            raise BadRequest(
                f"value at {path} is larger than {_FIELD_BYTES} bytes",
                field=f"{self._where}.content.{path}",
            )
        self.texts.append(value)
        if len(value) <= _KV_MAX_CHARS:
            tokens = _KV_TOKEN.findall(value.lower())
            if tokens:
                # The field indexes doc ids only, so repeated keywords cost nothing: no set.
                key = _kv_key(path)
                self.keywords_list.append(key + (" " + key).join(tokens))

    def _too_deep(self, path: str) -> None:
        raise BadRequest(
            f"nesting deeper than {_MAX_DEPTH} at {path}", field=f"{self._where}.content"
        )

    def to_json(self) -> str:
        """The entry as a GMetaEntry JSON object, reusing the already encoded content."""
        head = orjson.dumps(
            {"subject": self.subject, "id": self.entry_id, "visible_to": self.visible_to}
        ).decode()
        return head[:-1] + ',"content":' + self.source + "}"

    @property
    def key(self) -> str:
        """Unique per (subject, entry id): the unit of replacement."""
        return f"{self.subject}\x00{self.entry_id or ''}"


def parse_date(text: str) -> datetime | None:
    """An RFC 3339 or plain `YYYY-MM-DD` date, or None."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

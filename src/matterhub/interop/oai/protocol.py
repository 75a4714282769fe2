"""OAI-PMH 2.0's wire rules: verbs and their arguments, errors, datestamps, resumption tokens, XML.

The XML is written with `xml.etree` using literal prefixed names and explicit `xmlns`
declarations: ElementTree's namespace registry is process-global (and `core.citations` registers
DataCite's namespace as the default one), so relying on it could mix prefixes between threads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DATACITE_NS",
    "OAI_DC_NS",
    "OAI_NS",
    "VERBS",
    "Arguments",
    "OAIError",
    "Since",
    "TokenCodec",
    "date_range",
    "envelope",
    "format_datestamp",
    "literal_names",
    "parse_arguments",
    "parse_datestamp",
    "serialize",
    "sub",
    "xml_text",
]

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
DATACITE_NS = "http://datacite.org/schema/kernel-4"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# verb → (required arguments, optional arguments); `resumptionToken` is exclusive where listed.
VERBS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Identify": (frozenset(), frozenset()),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"})),
    "ListSets": (frozenset(), frozenset({"resumptionToken"})),
    "ListIdentifiers": (
        frozenset({"metadataPrefix"}),
        frozenset({"from", "until", "set", "resumptionToken"}),
    ),
    "ListRecords": (
        frozenset({"metadataPrefix"}),
        frozenset({"from", "until", "set", "resumptionToken"}),
    ),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset()),
}
_MAX_ARGUMENTS = 16
_MAX_VALUE = 1024
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class OAIError(Exception):
    """An OAI-PMH error condition: answered as `<error code=...>` with HTTP 200."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Arguments:
    """A request's verb and its other arguments, checked against the verb's rules."""

    verb: str
    values: Mapping[str, str]

    def get(self, name: str) -> str | None:
        """One argument's value, if given."""
        return self.values.get(name)


def parse_arguments(pairs: Sequence[tuple[str, str]]) -> Arguments:
    """Check a request's arguments (from the query string or a form body).

    Raises:
        OAIError: badVerb (no, repeated or unknown verb), badArgument (a repeated, unknown,
            missing or oversized argument, or `resumptionToken` with others).
    """
    if len(pairs) > _MAX_ARGUMENTS:
        raise OAIError("badArgument", "too many arguments")
    verbs = [v for k, v in pairs if k == "verb"]
    if not verbs:
        raise OAIError("badVerb", "the request names no verb")
    if len(verbs) > 1:
        raise OAIError("badVerb", "the verb is repeated")
    verb = verbs[0]
    if verb not in VERBS:
        raise OAIError("badVerb", f"{verb[:40]!r} is not an OAI-PMH verb")
    required, optional = VERBS[verb]
    values: dict[str, str] = {}
    for key, value in pairs:
        if key == "verb":
            continue
        if key not in required and key not in optional:
            raise OAIError("badArgument", f"{verb} takes no argument {key[:40]!r}")
        if key in values:
            raise OAIError("badArgument", f"the argument {key!r} is repeated")
        if len(value) > _MAX_VALUE:
            raise OAIError("badArgument", f"the argument {key!r} is too long")
        values[key] = value
    if "resumptionToken" in values:
        if len(values) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument")
    else:
        missing = sorted(required - values.keys())
        if missing:
            raise OAIError("badArgument", f"{verb} needs {', '.join(missing)}")
    return Arguments(verb, values)


@dataclass(frozen=True, slots=True)
class Since:
    """A datestamp as given (`from`/`until`) with its granularity."""

    at: datetime
    day: bool


def parse_datestamp(value: str, name: str) -> Since:
    """`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ` (UTC).

    Raises:
        OAIError: badArgument for any other form.
    """
    try:
        if _DAY.match(value):
            return Since(datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC), True)
        if _SECOND.match(value):
            at = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            return Since(at, False)
    except ValueError:
        pass
    raise OAIError(
        "badArgument", f"{name} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, not {value[:40]!r}"
    )


def date_range(
    given_from: str | None, given_until: str | None
) -> tuple[datetime | None, datetime | None]:
    """(from, until-exclusive) of a request's `from`/`until`, both inclusive as the protocol says.

    Raises:
        OAIError: badArgument for bad forms, mixed granularities or `from` after `until`.
    """
    start = parse_datestamp(given_from, "from") if given_from else None
    stop = parse_datestamp(given_until, "until") if given_until else None
    if start and stop and start.day != stop.day:
        raise OAIError("badArgument", "from and until must have the same granularity")
    if start and stop and start.at > stop.at:
        raise OAIError("badArgument", "from is later than until")
    end = None
    if stop is not None:
        end = stop.at + (timedelta(days=1) if stop.day else timedelta(seconds=1))
    return (start.at if start else None), end


def format_datestamp(at: datetime) -> str:
    """A UTC datestamp at the repository's granularity (seconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenCodec:
    """Resumption tokens as signed, expiring cursors: opaque to harvesters, nothing kept here."""

    def __init__(self, secret: str, *, ttl: timedelta) -> None:
        self._key = hmac.new(secret.encode(), b"matterhub.oai.resumption", hashlib.sha256).digest()
        self.ttl = ttl

    def encode(self, state: Mapping[str, Any], *, now: datetime) -> tuple[str, datetime]:
        """(token, expiry) carrying `state`."""
        expires = (now + self.ttl).replace(microsecond=0)
        body = json.dumps({**state, "x": int(expires.timestamp())}, separators=(",", ":"))
        data = base64.urlsafe_b64encode(body.encode()).rstrip(b"=")
        mac = hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]
        return f"{data.decode()}.{mac}", expires

    def decode(self, token: str, *, verb: str, now: datetime) -> dict[str, Any]:
        """The state a token carries.

        Raises:
            OAIError: badResumptionToken when it is malformed, forged, for another verb or expired.
        """
        bad = OAIError("badResumptionToken", "the resumption token is invalid or has expired")
        data, _, mac = token.partition(".")
        if not data or len(mac) != 32:
            raise bad
        want = hmac.new(self._key, data.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(want, mac):
            raise bad
        try:
            state = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        except (binascii.Error, ValueError):
            raise bad from None
        if not isinstance(state, dict) or state.get("v") != verb:
            raise bad
        if not isinstance(state.get("x"), int) or state["x"] < now.timestamp():
            raise bad
        return state


# XML ------------------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 cannot carry (control characters, lone surrogates)
    replaced by U+FFFD: ElementTree would write them as they are, and no parser reads that."""
    return _NOT_XML.sub("\ufffd", text)


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child element with a literal (possibly prefixed) name."""
    child = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        child.text = xml_text(text)
    return child


def envelope(base_url: str, now: datetime, request: Mapping[str, str] | None) -> ET.Element:
    """The `<OAI-PMH>` root with its responseDate and request (attributes only when valid)."""
    root = ET.Element(
        "OAI-PMH",
        {
            "xmlns": OAI_NS,
            "xmlns:xsi": XSI_NS,
            "xsi:schemaLocation": f"{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd",
        },
    )
    sub(root, "responseDate", format_datestamp(now))
    sub(root, "request", base_url, **dict(request or {}))
    return root


def literal_names(element: ET.Element, *, top: bool = True) -> ET.Element:
    """A parsed DataCite tree rewritten with literal names (default namespace on its root)."""
    tag = element.tag
    if tag.startswith(f"{{{DATACITE_NS}}}"):
        tag = tag[len(DATACITE_NS) + 2 :]
    attrs: dict[str, str] = {}
    if top:
        attrs["xmlns"] = DATACITE_NS
    for key, value in element.attrib.items():
        if key.startswith(f"{{{XSI_NS}}}"):
            attrs["xmlns:xsi"] = XSI_NS
            key = "xsi:" + key[len(XSI_NS) + 2 :]
        elif key.startswith(f"{{{_XML_NS}}}"):
            key = "xml:" + key[len(_XML_NS) + 2 :]
        elif key.startswith("{"):
            continue  # an attribute of an unknown namespace: not DataCite's
        attrs[key] = value
    out = ET.Element(tag, attrs)
    out.text, out.tail = element.text, element.tail
    for child in element:
        if isinstance(child.tag, str):
            out.append(literal_names(child, top=False))
    return out


def serialize(root: ET.Element) -> bytes:
    """The document's UTF-8 bytes with an XML declaration."""
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data

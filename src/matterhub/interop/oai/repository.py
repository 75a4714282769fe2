"""The OAI-PMH 2.0 repository: the six verbs over the public datasets, as XML bytes.

Metadata comes from the hub's own DataCite rendering of a version (`DatasetService.cite`, asked
as the anonymous caller, so the object check runs again): `oai_datacite` is the DataCite kernel-4
resource, `oai_dc` is Dublin Core mapped from the same DataCite attributes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from matterhub.catalog import Catalog
from matterhub.core.errors import NotFound
from matterhub.core.identity import ANONYMOUS
from matterhub.core.policy import Policy
from matterhub.interop.oai.items import Item, ItemQuery, Items, org_slug
from matterhub.interop.oai.protocol import (
    DATACITE_NS,
    DC_NS,
    OAI_DC_NS,
    XSI_NS,
    Arguments,
    OAIError,
    TokenCodec,
    date_range,
    envelope,
    format_datestamp,
    literal_names,
    parse_arguments,
    serialize,
    sub,
    xml_text,
)
from matterhub.publish import DatasetService

__all__ = ["FORMATS", "OAIRepository", "RepositoryInfo"]

# metadataPrefix → (schema, namespace)
FORMATS: dict[str, tuple[str, str]] = {
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC_NS),
    "oai_datacite": ("http://schema.datacite.org/meta/kernel-4/metadata.xsd", DATACITE_NS),
}


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    """What Identify tells and how identifiers are formed."""

    name: str
    base_url: str  # the hub's; the endpoint is `<base_url>/oai`
    admin_email: str
    namespace: str = ""
    page_size: int = 100

    @property
    def endpoint(self) -> str:
        """The OAI-PMH base URL."""
        return f"{self.base_url.rstrip('/')}/oai"

    @property
    def prefix(self) -> str:
        """`oai:<namespace>:` (the namespace defaults to the base URL's host name)."""
        return f"oai:{self.namespace or urlsplit(self.base_url).hostname or 'localhost'}:"


class OAIRepository:
    """Answers OAI-PMH requests; every list is a query with the public clause in it."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        datasets: DatasetService,
        tokens: TokenCodec,
        info: RepositoryInfo,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._datasets = datasets
        self._items = Items(policy)
        self._tokens = tokens
        self.info = info
        self._clock = clock

    def handle(self, pairs: Sequence[tuple[str, str]]) -> bytes:
        """The response document to one request (query string or form pairs)."""
        now = self._clock().replace(microsecond=0)
        try:
            args = parse_arguments(pairs)
        except OAIError as error:
            # badVerb/badArgument: the request element carries no attributes.
            root = envelope(self.info.endpoint, now, None)
            sub(root, "error", error.message, code=error.code)
            return serialize(root)
        root = envelope(self.info.endpoint, now, {"verb": args.verb, **args.values})
        try:
            answer = getattr(self, f"_{args.verb}")(args, now)
        except OAIError as error:
            sub(root, "error", error.message, code=error.code)
        else:
            root.append(answer)
        return serialize(root)

    def refuse(self, code: str, message: str) -> bytes:
        """An error document for a request that could not even be read."""
        root = envelope(self.info.endpoint, self._clock().replace(microsecond=0), None)
        sub(root, "error", message, code=code)
        return serialize(root)

    # verbs -------------------------------------------------------------------------------------

    def _Identify(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        with self._catalog.transaction() as session:
            earliest = self._items.earliest(session) or now
        out = ET.Element("Identify")
        sub(out, "repositoryName", self.info.name)
        sub(out, "baseURL", self.info.endpoint)
        sub(out, "protocolVersion", "2.0")
        sub(out, "adminEmail", self.info.admin_email)
        sub(out, "earliestDatestamp", format_datestamp(earliest))
        # Withdrawn and no-longer-public datasets are kept as deleted items, but one removed from
        # the catalog outright (or turned into a test dataset) leaves no trace: transient.
        sub(out, "deletedRecord", "transient")
        sub(out, "granularity", "YYYY-MM-DDThh:mm:ssZ")
        return out

    def _ListMetadataFormats(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        identifier = args.get("identifier")
        if identifier is not None:
            self._item(identifier)
        out = ET.Element("ListMetadataFormats")
        for prefix, (schema, namespace) in FORMATS.items():
            fmt = sub(out, "metadataFormat")
            sub(fmt, "metadataPrefix", prefix)
            sub(fmt, "schema", schema)
            sub(fmt, "metadataNamespace", namespace)
        return out

    def _ListSets(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        offset = 0
        if token := args.get("resumptionToken"):
            offset = int(self._tokens.decode(token, verb="ListSets", now=now).get("o", 0))
        with self._catalog.transaction() as session:
            organizations = self._items.all_organizations(session)
            names = self._items.source_names(session)
        sets: list[tuple[str, str]] = [
            ("org", "Datasets by organisation"),
            ("source", "Datasets by source name"),
        ]
        slugs: dict[str, str] = {}
        for name in organizations:
            slugs.setdefault(org_slug(name), name)
        sets += [(f"org:{slug}", name) for slug, name in sorted(slugs.items()) if slug]
        sets += [(f"source:{name}", name) for name in names]
        out = ET.Element("ListSets")
        page = sets[offset : offset + self.info.page_size]
        for spec, name in page:
            entry = sub(out, "set")
            sub(entry, "setSpec", spec)
            sub(entry, "setName", name)
        if offset + len(page) < len(sets):
            self._resume(out, {"v": "ListSets", "o": offset + len(page)}, now, offset, len(sets))
        elif offset:
            sub(out, "resumptionToken", "", completeListSize=str(len(sets)), cursor=str(offset))
        return out

    def _ListIdentifiers(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        return self._list(args, now, records=False)

    def _ListRecords(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        return self._list(args, now, records=True)

    def _GetRecord(self, args: Arguments, now: datetime) -> ET.Element:  # noqa: N802
        prefix = self._prefix(args.get("metadataPrefix"))
        item = self._item(str(args.get("identifier")))
        out = ET.Element("GetRecord")
        self._record(out, item, prefix)
        return out

    # lists ------------------------------------------------------------------------------------

    def _list(self, args: Arguments, now: datetime, *, records: bool) -> ET.Element:
        verb = "ListRecords" if records else "ListIdentifiers"
        if token := args.get("resumptionToken"):
            state = self._tokens.decode(token, verb=verb, now=now)
            try:
                prefix = self._prefix(state["m"])
                query_args = {k: state.get(k) for k in ("f", "u", "s")}
                after = (datetime.fromisoformat(state["t"]), str(state["i"]))
                cursor = int(state["c"])
            except (KeyError, TypeError, ValueError):
                raise OAIError("badResumptionToken", "the resumption token is invalid") from None
        else:
            prefix = self._prefix(args.get("metadataPrefix"))
            query_args = {"f": args.get("from"), "u": args.get("until"), "s": args.get("set")}
            after, cursor = None, 0
        start, end = date_range(query_args["f"], query_args["u"])
        with self._catalog.transaction() as session:
            query = self._query(session, query_args["s"], start, end, after)
            items = self._items.page(session, query, limit=self.info.page_size + 1)
            more = len(items) > self.info.page_size
            items = items[: self.info.page_size]
            total = self._items.count(session, query) if (more or cursor) else len(items)
        if not items:
            raise OAIError("noRecordsMatch", "no items match the request")
        out = ET.Element(verb)
        for item in items:
            if records:
                self._record(out, item, prefix)
            else:
                self._header(out, item)
        if more:
            last = items[-1]
            state = {
                "v": verb,
                "m": prefix,
                **{k: v for k, v in query_args.items() if v is not None},
                "t": last.updated_at.isoformat(),
                "i": last.dataset_id,
                "c": cursor + len(items),
            }
            self._resume(out, state, now, cursor, total)
        elif cursor:
            # The last page of a resumed list ends it with an empty token.
            sub(out, "resumptionToken", "", completeListSize=str(total), cursor=str(cursor))
        return out

    def _query(
        self,
        session: Any,
        spec: str | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
    ) -> ItemQuery:
        """The item query of a set (`org`, `org:<slug>`, `source`, `source:<name>`)."""
        source_name: str | None = None
        organizations: tuple[str, ...] | None = None
        if spec is not None:
            head, _, tail = spec.partition(":")
            if head == "source" and tail:
                source_name = tail
            elif head == "org":
                known = self._items.all_organizations(session)
                organizations = tuple(n for n in known if not tail or org_slug(n) == tail)
            elif not (head == "source" and not tail):
                organizations = ()  # a set this repository does not have: nothing matches
        return ItemQuery(start, end, source_name, organizations, after)

    def _resume(
        self, out: ET.Element, state: Mapping[str, Any], now: datetime, cursor: int, total: int
    ) -> None:
        token, expires = self._tokens.encode(state, now=now)
        sub(
            out,
            "resumptionToken",
            token,
            expirationDate=format_datestamp(expires),
            completeListSize=str(total),
            cursor=str(cursor),
        )

    # items and records ---------------------------------------------------------------------

    def identifier(self, source_name: str) -> str:
        """The OAI identifier of a dataset."""
        return f"{self.info.prefix}{source_name}"

    def _item(self, identifier: str) -> Item:
        if identifier.startswith(self.info.prefix):
            name = identifier[len(self.info.prefix) :]
            with self._catalog.transaction() as session:
                item = self._items.one(session, name)
            if item is not None:
                return item
        raise OAIError("idDoesNotExist", f"no item {identifier[:200]!r} in this repository")

    @staticmethod
    def _prefix(value: str | None) -> str:
        if value not in FORMATS:
            raise OAIError(
                "cannotDisseminateFormat",
                f"metadataPrefix {str(value)[:40]!r} is not one of {', '.join(FORMATS)}",
            )
        return str(value)

    def _header(self, parent: ET.Element, item: Item) -> None:
        header = sub(parent, "header", **({"status": "deleted"} if item.deleted else {}))
        sub(header, "identifier", self.identifier(item.source_name))
        sub(header, "datestamp", format_datestamp(item.updated_at))
        sub(header, "setSpec", f"source:{item.source_name}")
        for slug in sorted({org_slug(n) for n in item.organizations} - {""}):
            sub(header, "setSpec", f"org:{slug}")

    def _record(self, parent: ET.Element, item: Item, prefix: str) -> None:
        record = sub(parent, "record")
        self._header(record, item)
        if item.deleted:
            return
        try:
            metadata = self._metadata(item, prefix)
        except NotFound:
            # Withdrawn or hidden between the listing and now: its next datestamp will say so.
            parent.remove(record)
            return
        sub(record, "metadata").append(metadata)

    def _metadata(self, item: Item, prefix: str) -> ET.Element:
        if prefix == "oai_datacite":
            _type, text = self._datasets.cite(ANONYMOUS, item.source_id, "datacite-xml")
            return literal_names(ET.fromstring(xml_text(text)))
        _type, text = self._datasets.cite(ANONYMOUS, item.source_id, "datacite-json")
        return oai_dc(json.loads(text)["data"]["attributes"], item.source_id)


def oai_dc(attrs: Mapping[str, Any], source_id: str) -> ET.Element:
    """Dublin Core (`oai_dc`) from a version's DataCite attributes."""
    root = ET.Element(
        "oai_dc:dc",
        {
            "xmlns:oai_dc": OAI_DC_NS,
            "xmlns:dc": DC_NS,
            "xmlns:xsi": XSI_NS,
            "xsi:schemaLocation": f"{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd",
        },
    )
    for title in attrs.get("titles") or []:
        sub(root, "dc:title", str(title.get("title", "")))
    for creator in attrs.get("creators") or []:
        sub(root, "dc:creator", str(creator.get("name", "")))
    for subject in attrs.get("subjects") or []:
        sub(root, "dc:subject", str(subject.get("subject", "")))
    for description in attrs.get("descriptions") or []:
        sub(root, "dc:description", str(description.get("description", "")))
    if attrs.get("publisher"):
        sub(root, "dc:publisher", str(attrs["publisher"]))
    if attrs.get("publicationYear"):
        sub(root, "dc:date", str(attrs["publicationYear"]))
    sub(root, "dc:type", str((attrs.get("types") or {}).get("resourceTypeGeneral") or "Dataset"))
    if attrs.get("doi"):
        sub(root, "dc:identifier", f"https://doi.org/{attrs['doi']}")
    if attrs.get("url"):
        sub(root, "dc:identifier", str(attrs["url"]))
    sub(root, "dc:identifier", source_id)
    for related in attrs.get("relatedIdentifiers") or []:
        sub(root, "dc:relation", str(related.get("relatedIdentifier", "")))
    for rights in attrs.get("rightsList") or []:
        sub(root, "dc:rights", str(rights.get("rightsURI") or rights.get("rights", "")))
    return root

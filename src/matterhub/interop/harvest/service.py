"""Following other repositories: OAI-PMH harvest sources in the catalog, their records indexed.

`add` stores a source (`harvest_sources`); `run` lists its records (`ListRecords`) from where
the last complete list ended (`from` = that list's first responseDate, the remote's clock) and
writes each page to the `mdf` index: a record becomes an external dataset entry (upserted by
its subject, so an updated dataset replaces its entry), a deleted header removes it. A run
reads at most `max_records`; a longer list is continued from its resumption token next time.
Only administrators (and the system) manage sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import or_, select, update

from matterhub.catalog import Catalog
from matterhub.catalog.models import HarvestSource, utcnow
from matterhub.core.errors import Conflict, InvalidInput, NotFound, SearchError
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.policy import Policy
from matterhub.interop.harvest.client import (
    OAI,
    HarvestFailed,
    OAIClient,
    ProtocolError,
    Response,
)
from matterhub.interop.harvest.records import parse_record, subject_of
from matterhub.netguard import OutboundRefused
from matterhub.search.service import SearchService

__all__ = ["HarvestRun", "HarvestService", "HarvestSourceCreate", "HarvestSourcePublic"]

INDEX = "mdf"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SET = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*$")
PREFIXES = ("oai_datacite", "oai_dc")
_OVERLAP = timedelta(seconds=60)
_CLAIM = timedelta(hours=2)
"""How long a run may hold its source before another may take over (a crashed process)."""


class HarvestSourceCreate(BaseModel):
    """A repository to follow."""

    name: str = Field(description="Short name: lowercase letters, digits, `_`, `-`.")
    url: str = Field(max_length=2000, description="The OAI-PMH base URL, e.g. https://x.org/oai")
    set_spec: str | None = Field(default=None, max_length=200, description="Harvest one set.")
    metadata_prefix: str = Field(
        default="oai_datacite", description="`oai_datacite` (DataCite kernel 4) or `oai_dc`."
    )


class HarvestSourcePublic(BaseModel):
    """A followed repository and how its last run went."""

    name: str
    url: str
    set_spec: str | None
    metadata_prefix: str
    created_at: datetime
    harvested_until: str | None = Field(description="`from` of the next run (remote clock).")
    pending: bool = Field(description="A list is half read; the next run continues it.")
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None
    record_count: int = Field(description="Records the last run read.")


class HarvestRun(BaseModel):
    """What one run did."""

    name: str
    status: str = Field(
        default="complete", description="complete · partial (the bound was reached) · failed"
    )
    error: str | None = Field(default=None, description="Why the repository could not be read.")
    records: int = Field(description="Records read.")
    indexed: int = Field(description="Entries written (new or replaced).")
    deleted: int = Field(description="Entries removed (deleted upstream).")
    skipped: int = Field(description="Records without usable metadata.")
    complete: bool = Field(description="The list was read to its end.")
    harvested_until: str | None


def _public(row: HarvestSource) -> HarvestSourcePublic:
    return HarvestSourcePublic(
        name=row.name,
        url=row.url,
        set_spec=row.set_spec,
        metadata_prefix=row.metadata_prefix,
        created_at=row.created_at,
        harvested_until=row.harvested_until,
        pending=row.resumption_token is not None,
        last_run_at=row.last_run_at,
        last_status=row.last_status,
        last_error=row.last_error,
        record_count=row.record_count,
    )


class HarvestService:
    """Harvest sources and runs; every method takes the caller's identity first."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        search: SearchService,
        client: OAIClient,
        *,
        max_records: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._policy = policy
        self._search = search
        self._client = client
        self._max_records = max_records
        self._clock = clock

    # sources ----------------------------------------------------------------------------------

    def add(self, identity: Identity, source: HarvestSourceCreate) -> HarvestSourcePublic:
        """Follow a repository (nothing is fetched until the first run)."""
        self._policy.require_admin(identity)
        if not _NAME.match(source.name):
            raise InvalidInput("a name is 1-64 lowercase letters, digits, '_' or '-'", field="name")
        parts = urlsplit(source.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("the url must be an http(s) URL", field="url")
        if source.metadata_prefix not in PREFIXES:
            raise InvalidInput(
                f"metadata_prefix must be one of {', '.join(PREFIXES)}", field="metadata_prefix"
            )
        if source.set_spec is not None and not _SET.match(source.set_spec):
            raise InvalidInput("not an OAI-PMH setSpec", field="set_spec")
        with self._catalog.transaction() as session:
            if session.scalar(select(HarvestSource.id).where(HarvestSource.name == source.name)):
                raise Conflict(f"a source named {source.name!r} exists", field="name")
            row = HarvestSource(
                name=source.name,
                url=source.url,
                set_spec=source.set_spec,
                metadata_prefix=source.metadata_prefix,
                record_count=0,
            )
            session.add(row)
            session.flush()
            return _public(row)

    def list(self, identity: Identity) -> list[HarvestSourcePublic]:
        """Every followed repository, by name."""
        self._policy.require_admin(identity)
        with self._catalog.transaction() as session:
            rows = session.scalars(select(HarvestSource).order_by(HarvestSource.name))
            return [_public(r) for r in rows]

    def get(self, identity: Identity, name: str) -> HarvestSourcePublic:
        """One followed repository."""
        self._policy.require_admin(identity)
        with self._catalog.transaction() as session:
            return _public(self._row(session, name))

    def remove(self, identity: Identity, name: str) -> None:
        """Stop following a repository and drop its entries from the index."""
        self._policy.require_admin(identity)
        with self._catalog.transaction() as session:
            session.delete(self._row(session, name))
        query = {"q": f'external.repository:"{name}"', "advanced": True}
        self._wait(self._search.delete_by_query(SYSTEM_IDENTITY, INDEX, query).task_id)

    @staticmethod
    def _row(session: Any, name: str) -> HarvestSource:
        row = session.scalar(select(HarvestSource).where(HarvestSource.name == name))
        if row is None:
            raise NotFound(f"no harvest source {name!r}", field="name")
        return row  # type: ignore[no-any-return]

    # runs -------------------------------------------------------------------------------------

    def run(self, identity: Identity, name: str) -> HarvestRun:
        """Harvest what changed since the last complete run (or continue a cut-short list).

        Raises:
            Conflict: another run of this source (in any process) holds its claim.
        """
        self._policy.require_admin(identity)
        now = utcnow()
        with self._catalog.transaction() as session:
            self._row(session, name)
            # The claim: one conditional UPDATE, so two runs (two server processes) never race.
            claimed = session.execute(
                update(HarvestSource)
                .where(
                    HarvestSource.name == name,
                    or_(
                        HarvestSource.claimed_until.is_(None),
                        HarvestSource.claimed_until < now,
                    ),
                )
                .values(claimed_until=now + _CLAIM)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"{name} is being harvested", field="name")
        try:
            return self._run(name)
        finally:
            with self._catalog.transaction() as session:
                session.execute(
                    update(HarvestSource)
                    .where(HarvestSource.name == name)
                    .values(claimed_until=None)
                )

    def _run(self, name: str) -> HarvestRun:
        with self._catalog.transaction() as session:
            row = self._row(session, name)
            source = (row.url, row.set_spec, row.metadata_prefix)
            token, started, until = (
                row.resumption_token,
                row.resumption_started,
                row.harvested_until,
            )
        url, set_spec, prefix = source
        run = HarvestRun(
            name=name,
            records=0,
            indexed=0,
            deleted=0,
            skipped=0,
            complete=False,
            harvested_until=until,
        )
        try:
            try:
                answer = self._first(url, prefix, set_spec, until, token)
            except ProtocolError as exc:
                if exc.error_code != "badResumptionToken" or token is None:
                    raise
                token, started = None, None  # expired meanwhile: list again from `until`
                answer = self._first(url, prefix, set_spec, until, None)
            if answer is None:
                # Nothing changed: the next run asks from the same moment (never our clock).
                run.complete = True
                started = started or until
            else:
                started = started or answer.response_date
                token = self._pages(answer, run, url, prefix)
                run.complete = token is None
        except (HarvestFailed, OutboundRefused) as exc:
            # The other side (or the guard) said no: a result of the run, recorded and returned.
            run.status, run.error = "failed", exc.detail[:2000]
            self._finish(name, run, status="failed", error=run.error)
            return run
        except Exception as exc:
            self._finish(name, run, status="failed", error=str(exc)[:2000])
            raise
        if run.complete:
            run.harvested_until = started
            self._finish(name, run, status="complete", token=None, started=None, until=started)
        else:
            run.status = "partial"
            self._finish(name, run, status="partial", token=token, started=started, until=until)
        return run

    def _first(
        self, url: str, prefix: str, set_spec: str | None, until: str | None, token: str | None
    ) -> Response | None:
        """The first page (None: noRecordsMatch)."""
        if token is not None:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": prefix}
            if set_spec:
                params["set"] = set_spec
            if until:
                params["from"] = self._granular(url, until)
        try:
            return self._client.request(url, params)
        except ProtocolError as exc:
            if exc.error_code == "noRecordsMatch":
                return None
            raise

    def _granular(self, url: str, stamp: str) -> str:
        """`from` for a list after `stamp`, at the repository's granularity.

        A change stamped just before a list started may be committed just after it, so lists
        overlap by `_OVERLAP`: re-reading a record replaces its entry with itself.
        """
        identify = self._client.request(url, {"verb": "Identify"}).verb("Identify")
        granularity = identify.findtext(f"{OAI}granularity") or "YYYY-MM-DD"
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - _OVERLAP
        except ValueError:
            return stamp[:10]
        return at.strftime("%Y-%m-%dT%H:%M:%SZ" if "hh" in granularity else "%Y-%m-%d")

    def _pages(self, answer: Response, run: HarvestRun, url: str, prefix: str) -> str | None:
        """Read pages until the list ends (None) or the bound is reached (the next token)."""
        seen: set[str] = set()
        while True:
            listing = answer.verb("ListRecords")
            self._apply(listing, run, url, prefix)
            token = (listing.findtext(f"{OAI}resumptionToken") or "").strip()
            if not token:
                return None
            if token in seen:
                raise HarvestFailed("the repository repeated a resumption token", field="url")
            seen.add(token)
            if run.records >= self._max_records:
                return token
            answer = self._client.request(url, {"verb": "ListRecords", "resumptionToken": token})

    def _apply(self, listing: Any, run: HarvestRun, url: str, prefix: str) -> None:
        """Index one page: upsert the records, remove the deleted ones."""
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entries: dict[str, dict[str, Any]] = {}  # by subject: a repeated record counts once
        gone: list[str] = []
        for record in listing.iterfind(f"{OAI}record"):
            run.records += 1
            harvested = parse_record(
                record, repository=run.name, endpoint=url, prefix=prefix, harvested_at=now
            )
            if harvested is None:
                run.skipped += 1
            elif harvested.entry is None:
                gone.append(harvested.identifier)
            else:
                entries[harvested.entry["subject"]] = harvested.entry
        if entries:
            self._ingest(list(entries.values()), run)
        for identifier in gone:
            subject = subject_of(run.name, identifier)
            self._wait(self._search.delete_subject(SYSTEM_IDENTITY, INDEX, subject).task_id)
            run.deleted += 1

    def _ingest(self, entries: Sequence[dict[str, Any]], run: HarvestRun) -> None:
        """Write a page's entries; if the index refuses the page, each one alone (a record the
        index cannot take is skipped, not the page)."""
        try:
            self._write(entries)
        except InvalidInput:
            for entry in entries:
                try:
                    self._write([entry])
                except InvalidInput:
                    run.skipped += 1
                    continue
                run.indexed += 1
            return
        run.indexed += len(entries)

    def _write(self, entries: Sequence[dict[str, Any]]) -> None:
        body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": [*entries]}}
        self._wait(self._search.ingest(SYSTEM_IDENTITY, INDEX, body).task_id)

    def _wait(self, task_id: str) -> None:
        done = self._search.wait(task_id, timeout=600)
        if done.state != "SUCCESS":
            raise SearchError(f"writing harvested entries failed: {done.message}")

    def _finish(self, name: str, run: HarvestRun, *, status: str, **values: Any) -> None:
        columns = {"token": "resumption_token", "started": "resumption_started"}
        with self._catalog.transaction() as session:
            row = session.scalar(select(HarvestSource).where(HarvestSource.name == name))
            if row is None:
                return  # removed while it ran
            row.last_run_at = utcnow()
            row.last_status = status
            row.last_error = values.pop("error", None)
            row.record_count = run.records
            if "until" in values:
                row.harvested_until = values.pop("until")
            for key, value in values.items():
                setattr(row, columns[key], value)

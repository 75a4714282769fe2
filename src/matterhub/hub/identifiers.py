"""Identifiers and citations of servable versions, minted by the PID provider Publish uses.

A version gets its identifier when it goes live: `settle` (called by the build worker right
after the version is committed ready) reserves one with the provider, stores it as `reserved`,
registers it with the DataCite metadata of the version (url = the version's landing page) and
only then marks it `registered` and writes it into the document (`datacite.identifier`,
`dlhub.identifier`) and the `dlhub` index. A provider failure never touches the live version: the
row keeps `pid_state` `failed` (nothing reserved) or `reserved` (reserved, not registered), and
the next activation, the next start, or the idle build worker (every `retry_s`) tries again.
Everything runs on the build worker's thread, so index writes of one servable never race.

Related identifiers are computed from the catalog, the same for every reader: the training
dataset (`dlhub.training_data`) as `IsDerivedFrom` — its PID only when the dataset version is
public or readable by everyone who may see the servable, so a private dataset's identifier never
leaks into a wider citation — and the neighbouring live versions as `IsNewVersionOf` /
`IsPreviousVersionOf` (the previous version's registration is updated when the next is minted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import Dataset, DatasetVersion, Servable, ServableVersion, User
from matterhub.core.citations import CitedVersion, cite, datacite_attributes
from matterhub.core.datasets import parse_source_id
from matterhub.core.errors import InvalidInput, NotFound
from matterhub.core.identity import PUBLIC, SYSTEM_IDENTITY, Identity, user_principal
from matterhub.core.policy import Policy
from matterhub.core.servables import is_pipeline, parse_servable_ref
from matterhub.hub.discovery import entry
from matterhub.publish.pid import PIDProvider
from matterhub.search.service import SearchService

__all__ = ["RELATION_TYPES", "CitedServable", "ServableIdentifiers"]

log = logging.getLogger(__name__)

INDEX = "dlhub"
RETRY_BATCH = 5
"""Versions whose identifier is retried per pass; a pass stops at the first provider failure."""

# DataCite kernel-4 vocabularies: a related identifier outside them would make the registration
# (and the XML citation) invalid, so such entries of a document are left out of citations.
RELATION_TYPES = frozenset(
    [
        "IsCitedBy",
        "Cites",
        "IsSupplementTo",
        "IsSupplementedBy",
        "IsContinuedBy",
        "Continues",
        "IsNewVersionOf",
        "IsPreviousVersionOf",
        "IsPartOf",
        "HasPart",
        "IsPublishedIn",
        "IsReferencedBy",
        "References",
        "IsDocumentedBy",
        "Documents",
        "IsCompiledBy",
        "Compiles",
        "IsVariantFormOf",
        "IsOriginalFormOf",
        "IsIdenticalTo",
        "HasMetadata",
        "IsMetadataFor",
        "Reviews",
        "IsReviewedBy",
        "IsDerivedFrom",
        "IsSourceOf",
        "Describes",
        "IsDescribedBy",
        "HasVersion",
        "IsVersionOf",
        "Requires",
        "IsRequiredBy",
        "Obsoletes",
        "IsObsoletedBy",
        "Collects",
        "IsCollectedBy",
        "HasTranslation",
        "IsTranslationOf",
        "Other",
    ]
)
IDENTIFIER_TYPES = frozenset(
    [
        "ARK",
        "arXiv",
        "bibcode",
        "DOI",
        "EAN13",
        "EISSN",
        "Handle",
        "IGSN",
        "ISBN",
        "ISSN",
        "ISTC",
        "LISSN",
        "LSID",
        "PMID",
        "PURL",
        "UPC",
        "URL",
        "URN",
    ]
)
NO_LICENSE = "No license stated (ask the creators)"


@dataclass(frozen=True, slots=True)
class CitedServable:
    """One version as its landing page and citation show it."""

    owner: str
    name: str
    version: str
    state: str
    pid: str | None
    pid_state: str | None
    cited: CitedVersion
    resolver_url: str | None


class ServableIdentifiers:
    """Mints, retries, resolves and cites the identifiers of servable versions."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        search: SearchService,
        pids: PIDProvider,
        *,
        base_url: str,
        publisher: str = "MatterHub",
        retry_s: float = 300.0,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self._kinds = dict(kinds or {})  # shim → "scikit-learn model", from the model adapters
        self._policy = policy
        self._search = search
        self.pids = pids
        self._base_url = base_url.rstrip("/")
        self._publisher = publisher
        self.retry_s = retry_s
        """How long the build worker stays idle before it retries refused identifiers."""
        # One minting at a time in this process: two would reserve two DOIs for one version.
        self._lock = threading.Lock()

    # minting ---------------------------------------------------------------------------------

    def settle(self, version_id: str | None = None) -> None:
        """Mint `version_id`'s identifier, then retry earlier versions still without one.

        Never raises: the version is live whatever the provider says; what failed is kept in
        `pid_state` and retried by the next call.
        """
        try:
            with self._lock:
                ok = self._mint(version_id) if version_id else True
                if ok:
                    for pending in self._pending(exclude=version_id):
                        if not self._mint(pending):
                            break  # the provider is down: do not wait on it once per version
        except Exception:  # a bug here must not fail a build whose version is already live
            log.exception("minting servable identifiers failed")

    def _pending(self, *, exclude: str | None) -> list[str]:
        with self._catalog.transaction() as session:
            ids = session.scalars(
                select(ServableVersion.id)
                .where(
                    ServableVersion.state == "ready",
                    or_(
                        ServableVersion.pid_state.is_(None),
                        ServableVersion.pid_state.in_(("failed", "reserved")),
                    ),
                )
                .order_by(ServableVersion.created_at)
                .limit(RETRY_BATCH + 1)
            ).all()
        return [i for i in ids if i != exclude][:RETRY_BATCH]

    def _mint(self, version_id: str) -> bool:
        """Reserve (if not yet), register, then record; False when the provider failed."""
        with self._catalog.transaction() as session:
            version = session.get(ServableVersion, version_id)
            if version is None or version.state != "ready" or version.pid_state == "registered":
                return True
            pid = version.pid
            cited = self._cited(session, version)
        where = f"{cited.source_id}"
        if pid is None:
            try:
                pid = self.pids.reserve(where, datacite_attributes(cited))
            except Exception as exc:
                log.warning("could not reserve an identifier for %s: %s", where, exc)
                self._mark(version_id, "failed")
                return False
            try:
                with self._catalog.transaction() as session:
                    session.execute(
                        update(ServableVersion)
                        .where(ServableVersion.id == version_id, ServableVersion.pid.is_(None))
                        .values(pid=pid, pid_state="reserved")
                    )
            except IntegrityError:  # a local id already taken (vanishingly rare): next time
                log.warning("identifier %s is taken; %s will get another", pid, where)
                self._mark(version_id, "failed")
                return False
        registered = self._with_pid(cited, pid)
        try:
            self.pids.register(pid, datacite_attributes(registered))
        except Exception as exc:
            log.warning("could not register %s for %s: %s", pid, where, exc)
            return False  # stays `reserved`: the next pass only registers
        with self._catalog.transaction() as session:
            version = session.get(ServableVersion, version_id)
            assert version is not None
            document = {
                **version.document,
                "datacite": {**version.document["datacite"], "identifier": self._dc_id(pid)},
                "dlhub": {**version.document["dlhub"], "identifier": pid},
            }
            version.document = document
            version.pid_state = "registered"
            servable_id = version.servable_id
        log.info("servable %s is %s", where, pid)
        self._reindex(servable_id)
        self._update_previous(version_id)
        return True

    def _mark(self, version_id: str, state: str) -> None:
        with self._catalog.transaction() as session:
            session.execute(
                update(ServableVersion)
                .where(ServableVersion.id == version_id, ServableVersion.pid.is_(None))
                .values(pid_state=state)
            )

    def _reindex(self, servable_id: str) -> None:
        """Re-enter the servable's ready versions (the identifier is now in the document)."""
        with self._catalog.transaction() as session:
            servable = session.get(Servable, servable_id)
            assert servable is not None
            ready = list(
                session.scalars(
                    select(ServableVersion).where(
                        ServableVersion.servable_id == servable_id,
                        ServableVersion.state == "ready",
                    )
                )
            )
            latest = max(ready, key=lambda v: int(v.version)) if ready else None
            entries = [entry(v.document, servable.visible_to, latest=v is latest) for v in ready]
        if not entries:
            return
        body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": entries}}
        task = self._search.ingest(SYSTEM_IDENTITY, INDEX, body)
        done = self._search.wait(task.task_id, timeout=300)
        if done.state != "SUCCESS":
            log.warning("re-indexing servable %s failed: %s", servable_id, done.message)

    def _dc_id(self, pid: str) -> dict[str, str]:
        if self.pids.is_doi:
            return {"identifier": pid, "identifierType": "DOI"}
        return {"identifier": self.pids.resolver_url(pid, self._base_url), "identifierType": "URL"}

    # what a citation says ---------------------------------------------------------------------

    def landing_url(self, owner: str, name: str, version: str) -> str:
        """The version's landing page (what its identifier resolves to)."""
        return f"{self._base_url}/servables/{owner}/{name}/versions/{version}"

    def _with_pid(self, cited: CitedVersion, pid: str) -> CitedVersion:
        return CitedVersion(
            dc=cited.dc,
            source_id=cited.source_id,
            version=cited.version,
            url=cited.url,
            pid=pid,
            pid_is_doi=self.pids.is_doi,
            software=True,
        )

    def _cited(self, session: Session, version: ServableVersion) -> CitedVersion:
        servable = session.get(Servable, version.servable_id)
        assert servable is not None
        owner = session.get(User, servable.owner_id)
        assert owner is not None
        document = version.document
        dc: dict[str, Any] = dict(document.get("datacite") or {})
        kind = (
            "Pipeline"
            if is_pipeline(document)
            else self._kinds.get(str((document.get("servable") or {}).get("shim")), "Servable")
        )
        # Kernel-4 "Software" is a computer program; a pipeline of servables is a "Workflow".
        general = "Workflow" if is_pipeline(document) else "Software"
        dc["resourceType"] = {"resourceTypeGeneral": general, "resourceType": kind}
        dc["publisher"] = str(dc.get("publisher") or self._publisher)
        year = str(dc.get("publicationYear") or "")
        dc["publicationYear"] = year if year.isdigit() else str(version.created_at.year)
        dc["relatedIdentifiers"] = self._related(session, servable, version)
        rights = [
            r for r in dc.get("rightsList") or [] if isinstance(r, Mapping) and r.get("rights")
        ]
        # Kernel-4 as the hub validates it requires rights; say plainly when none were given.
        dc["rightsList"] = rights or [{"rights": NO_LICENSE}]
        registered = version.pid if version.pid_state == "registered" else None
        url = self.landing_url(owner.username, servable.name, version.version)
        if registered and not self.pids.is_doi:  # cite the persistent URL (a DOI says its own)
            url = self.pids.resolver_url(registered, self._base_url)
        return CitedVersion(
            dc=dc,
            source_id=f"{owner.username}/{servable.name}/{version.version}",
            version=version.version,
            url=url,
            pid=registered,
            pid_is_doi=self.pids.is_doi and registered is not None,
            software=True,
        )

    def _related(
        self, session: Session, servable: Servable, version: ServableVersion
    ) -> list[dict[str, str]]:
        """The document's valid related identifiers, the training data's and the previous."""
        document = version.document
        out: list[dict[str, str]] = []

        def add(identifier: str, kind: str, relation: str) -> None:
            if not any(r["relatedIdentifier"].lower() == identifier.lower() for r in out):
                out.append(
                    {
                        "relatedIdentifier": identifier,
                        "relatedIdentifierType": kind,
                        "relationType": relation,
                    }
                )

        for r in (document.get("datacite") or {}).get("relatedIdentifiers") or []:
            if (
                isinstance(r, Mapping)
                and r.get("relatedIdentifier")
                and r.get("relationType") in RELATION_TYPES
                and r.get("relatedIdentifierType") in IDENTIFIER_TYPES
            ):
                add(str(r["relatedIdentifier"]), r["relatedIdentifierType"], r["relationType"])
        training = (document.get("dlhub") or {}).get("training_data") or {}
        if isinstance(training, Mapping):
            if training.get("doi"):
                add(str(training["doi"]), "DOI", "IsDerivedFrom")
            if training.get("source_id"):
                found = self._dataset_pid(session, str(training["source_id"]), servable.visible_to)
                if found:
                    add(*found, "IsDerivedFrom")
        prior, following = self._neighbours(session, version)
        if prior is not None and prior.pid:
            add(*self._identifier(prior.pid), "IsNewVersionOf")
        if following is not None and following.pid:
            add(*self._identifier(following.pid), "IsPreviousVersionOf")
        return out

    @staticmethod
    def _neighbours(
        session: Session, version: ServableVersion
    ) -> tuple[ServableVersion | None, ServableVersion | None]:
        """The nearest older and newer live versions of the same servable with identifiers."""
        others = session.scalars(
            select(ServableVersion).where(
                ServableVersion.servable_id == version.servable_id,
                ServableVersion.state == "ready",
                ServableVersion.pid_state == "registered",
                ServableVersion.id != version.id,
            )
        ).all()
        older = [v for v in others if int(v.version) < int(version.version)]
        newer = [v for v in others if int(v.version) > int(version.version)]
        return (
            max(older, key=lambda v: int(v.version)) if older else None,
            min(newer, key=lambda v: int(v.version)) if newer else None,
        )

    def _update_previous(self, version_id: str) -> None:
        """Re-register the previous version's metadata: it now names this one as its successor.

        Best effort: a refusal leaves the old record as it was (its citations, computed from
        the catalog, already say it).
        """
        with self._catalog.transaction() as session:
            version = session.get(ServableVersion, version_id)
            assert version is not None
            prior, _ = self._neighbours(session, version)
            if prior is None or prior.pid is None:
                return
            pid, metadata = prior.pid, datacite_attributes(self._cited(session, prior))
        try:
            self.pids.register(pid, metadata)
        except Exception as exc:
            log.warning("could not update %s with its next version: %s", pid, exc)

    def _identifier(self, pid: str) -> tuple[str, str]:
        if self.pids.is_doi:
            return pid, "DOI"
        return self.pids.resolver_url(pid, self._base_url), "URL"

    def _dataset_pid(
        self, session: Session, source_id: str, audience: Iterable[str]
    ) -> tuple[str, str] | None:
        """The PID of a dataset version on this hub, if everyone in `audience` may read it."""
        try:
            parse_source_id(source_id)
        except InvalidInput:  # a source_name: its latest published version
            latest = session.scalar(
                select(Dataset.latest_source_id).where(Dataset.source_name == source_id)
            )
            if latest is None:
                return None
            source_id = latest
        row = session.execute(
            select(DatasetVersion, Dataset.owner_id)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(DatasetVersion.source_id == source_id)
        ).first()
        if row is None:
            return None
        ver, owner_id = row
        if ver.state not in ("published", "withdrawn") or ver.pid_state != "registered":
            return None
        readers = {*ver.visible_to, user_principal(owner_id)}
        # Public, or every principal that sees the servable reads the dataset version too.
        if PUBLIC not in readers and not set(audience) <= readers:
            return None
        assert ver.pid is not None
        if self.pids.is_doi:
            return ver.pid, "DOI"
        return self.pids.resolver_url(ver.pid, self._base_url), "URL"

    # reads -----------------------------------------------------------------------------------

    def describe(
        self, identity: Identity, ref: str, *, version: str | None = None
    ) -> CitedServable:
        """A ready version (default: the live one) with its citation, for those who see it.

        Raises:
            NotFound: no such servable or version, it is not live, or the caller cannot see it.
        """
        owner, name = parse_servable_ref(ref)
        with self._catalog.transaction() as session:
            servable = session.scalar(
                select(Servable)
                .join(User, User.id == Servable.owner_id)
                .where(User.username == owner, Servable.name == name)
            )
            if servable is None:
                raise NotFound(f"no servable {owner}/{name}", field="name")
            self._policy.require(identity, servable, "read", what="servable")
            ready = session.scalars(
                select(ServableVersion).where(
                    ServableVersion.servable_id == servable.id, ServableVersion.state == "ready"
                )
            ).all()
            if version is None:
                chosen = max(ready, key=lambda v: int(v.version)) if ready else None
            else:
                chosen = next((v for v in ready if v.version == version), None)
            if chosen is None:
                what = f"version {version!r}" if version else "live version"
                raise NotFound(f"{ref} has no {what} to cite", field="version")
            return self._public(session, owner, name, chosen)

    def _public(
        self, session: Session, owner: str, name: str, version: ServableVersion
    ) -> CitedServable:
        cited = self._cited(session, version)
        registered = version.pid_state == "registered" and version.pid is not None
        return CitedServable(
            owner=owner,
            name=name,
            version=version.version,
            state=version.state,
            pid=version.pid if registered else None,
            pid_state=version.pid_state,
            cited=cited,
            resolver_url=(
                self.pids.resolver_url(version.pid, self._base_url)
                if registered and version.pid
                else None
            ),
        )

    def cite(
        self, identity: Identity, ref: str, fmt: str, *, version: str | None = None
    ) -> tuple[str, str]:
        """(media type, text) of a version's citation in `fmt` (bibtex, ris, datacite-json, …)."""
        return cite(self.describe(identity, ref, version=version).cited, fmt)

    def resolve(self, identity: Identity, pid: str) -> CitedServable:
        """The servable version a registered identifier names (NotFound if unseen)."""
        with self._catalog.transaction() as session:
            row = session.execute(
                select(ServableVersion.version, Servable.name, User.username)
                .join(Servable, Servable.id == ServableVersion.servable_id)
                .join(User, User.id == Servable.owner_id)
                .where(ServableVersion.pid == pid, ServableVersion.pid_state == "registered")
            ).first()
        if row is None:
            raise NotFound(f"no identifier {pid!r}", field="pid")
        version, name, owner = row
        return self.describe(identity, f"{owner}/{name}", version=version)

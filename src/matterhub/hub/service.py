"""The servable registry: publish a bundle, build it in the background, describe and discover.

Publishing checks everything first (document schema, types, requirements, bundle files, name
ownership), then writes the files to the blob store and the servable, version and build rows in
one transaction; if the transaction fails the files are removed, so nothing is half-registered.
The build runs on a worker thread (pending builds resume on start). A version becomes live only
when its build passed every step; a failed build leaves the previous version live and runnable.
`visible_to` decides who sees a servable, `runnable_by` who may run it (`can_run`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matterhub.blobs import BlobStore
from matterhub.catalog.database import Catalog
from matterhub.catalog.models import Build, Servable, ServableVersion, User, new_id, utcnow
from matterhub.catalog.principals import resolve_principals
from matterhub.catalog.repositories import UserRepository
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from matterhub.core.identity import (
    PUBLIC,
    SYSTEM_IDENTITY,
    Identity,
    user_principal,
)
from matterhub.core.policy import Policy
from matterhub.core.servables import (
    BuildPublic,
    ServablePublic,
    ServableVersionPublic,
    check_document,
    document_files,
    is_pipeline,
    parse_servable_ref,
    requirements,
    usage,
)
from matterhub.hub.access import run_refused, with_grants
from matterhub.hub.adapters import ModelAdapters
from matterhub.hub.builds import ARTEFACTS, Builder, BuildInput
from matterhub.hub.bundle import StagedBundle
from matterhub.hub.discovery import SearchQuery, entry, search_request
from matterhub.hub.environments import SHIM_NAME, BuildStepFailed, EnvironmentBuilder
from matterhub.hub.identifiers import ServableIdentifiers
from matterhub.hub.sources import SourceFetcher, SourceSpec, fingerprint
from matterhub.search.service import SearchService

__all__ = ["RuntimeSpec", "ServableService"]

log = logging.getLogger(__name__)
_LOG_LIMIT = 200_000
INDEX = "dlhub"
_SETTLE = "settle-identifiers"  # a build-queue item: mint identifiers left unminted


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """Everything a runtime needs to start a warm worker for one ready version."""

    servable_id: str
    version_id: str
    version: str
    environment_hash: str
    python: Path
    shim: Path
    files_dir: Path
    document_path: Path
    document: dict[str, Any]
    scaling: dict[str, Any] | None = None  # the owner's replica bounds (Servable.scaling)


class ServableService:
    """Publish, build, describe and search servables; every method takes the caller first."""

    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        policy: Policy,
        search: SearchService,
        envs: EnvironmentBuilder,
        *,
        hub_dir: Path,
        max_bundle_bytes: int,
        example_timeout_s: float = 300.0,
        sources: SourceFetcher | None = None,
        identifiers: ServableIdentifiers | None = None,
        adapters: ModelAdapters | None = None,
    ) -> None:
        self._catalog = catalog
        # The kinds of servable this hub runs; None: whatever the schema allows (no adapters
        # known, as in the SDK).
        self.adapters = adapters
        self.identifiers = identifiers
        self._blobs = blobs
        self._policy = policy
        self._search = search
        self.envs = envs
        self.hub_dir = hub_dir
        self.max_bundle_bytes = max_bundle_bytes
        self.sources = sources
        self.builder = Builder(
            blobs, envs, hub_dir=hub_dir, example_timeout_s=example_timeout_s, sandbox=envs.sandbox
        )
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._done = threading.Condition()
        # Bumped after a version goes live (its rights with it): run-time caches of resolved
        # versions and rights (RunService.resolve) compare it and drop what they kept.
        self.generation = 0

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the build worker and re-queue builds a stop interrupted."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="hub-builds", daemon=True)
            self._worker.start()
        with self._catalog.transaction() as session:
            unfinished = session.scalars(
                select(Build.id).where(Build.status.in_(("pending", "running")))
            ).all()
        for build_id in unfinished:
            self._queue.put(build_id)
        self._queue.put(_SETTLE)  # on the build thread, so index writes never race

    def stop(self) -> None:
        """Stop after the build in progress (an interrupted one resumes on the next start)."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def new_bundle(self) -> StagedBundle:
        """An empty bundle to stage an upload into, limited to `max_bundle_bytes`."""
        return StagedBundle(self.max_bundle_bytes, parent=self.hub_dir / "incoming")

    # publish ---------------------------------------------------------------------------------

    def publish(
        self, identity: Identity, bundle: StagedBundle, *, source: dict[str, Any] | None = None
    ) -> BuildPublic:
        """Register a new version from a staged bundle and queue its build.

        `dlhub.source` (provenance) is the hub's record of what it fetched (`publish_source`);
        one sent in an uploaded document is not kept.

        Raises:
            Unauthenticated: anonymous callers cannot publish.
            InvalidInput: the document or bundle is invalid (the field names the path).
            Conflict: another owner has a servable of this name.
        """
        if identity.user_id is None:
            raise Unauthenticated("publishing a servable needs a token")
        document = bundle.document
        if document is None:
            raise InvalidInput("the bundle has no document", field="document")
        if isinstance(document.get("dlhub"), dict):
            document = json.loads(json.dumps(document))
            document["dlhub"].pop("source", None)
            if source is not None:
                document["dlhub"]["source"] = source
        adapters = self.adapters
        check_document(
            document, bundle_files=bundle.files, shims=None if adapters is None else adapters.shims
        )
        if adapters is not None:
            adapters.check(document)
        requirements(document)
        name = document["dlhub"]["name"]
        version_id = new_id()
        written: list[str] = []
        try:
            with self._catalog.transaction() as session:
                owner = session.get(User, identity.user_id)
                if owner is None:
                    raise Unauthenticated("the caller's account no longer exists")
                servable = self._claim(session, owner, name, document)
                version = self._next_version(session, servable)
                prefix = f"servables/{servable.id}/{version}/"
                final = self._finalise(session, document, owner, servable, version, version_id)
                for rel in sorted(bundle.files):
                    key = f"{prefix}files/{rel}"
                    with bundle.path(rel).open("rb") as handle:
                        self._blobs.put(key, handle)
                    written.append(key)
                row = ServableVersion(
                    id=version_id,
                    servable_id=servable.id,
                    version=version,
                    state="building",
                    document=final,
                    environment_hash=self.envs.environment_hash(requirements(final)),
                    storage_prefix=prefix,
                )
                session.add(row)
                session.flush()  # the build row refers to it
                build = Build(servable_version_id=version_id, status="pending", log="")
                session.add(build)
                session.flush()
                public = self._build_public(build, owner.username, name, version)
        except BaseException:
            for key in written:
                try:
                    self._blobs.delete(key)
                except Exception:  # best effort: an orphan blob is harmless, a half row is not
                    log.warning("could not remove %s after a failed publish", key)
            raise
        self._queue.put(public.id)
        return public

    def publish_source(
        self,
        identity: Identity,
        document: dict[str, Any] | None,
        source: Any,
    ) -> tuple[BuildPublic, bool]:
        """Fetch a servable's files from a git repository or URLs and publish them (blocking:
        call it off the event loop); (the build, whether a new version was made).

        The document comes from the request or, when it has none, from a root `dlhub.json` /
        `document.json` of the source. Publishing the same document from the same source and
        commit again answers the version made the first time (unless its build failed).

        Raises:
            Unauthenticated / InvalidInput / Conflict: as `publish`; source errors name `source`.
            PayloadTooLarge: the source is over the bundle limit or the file-count limit.
        """
        if identity.user_id is None:
            raise Unauthenticated("publishing a servable needs a token")
        if self.sources is None:
            raise InvalidInput("this hub does not fetch servable sources", field="source")
        spec = SourceSpec.parse(source)
        with self.new_bundle() as bundle:
            if document is not None:
                if not isinstance(document, dict):
                    raise InvalidInput("the document is a JSON object", field="document")
                bundle.document = document
            provenance = self.sources.fetch(spec, bundle)
            document = bundle.document
            if document is None:
                raise InvalidInput(
                    f"no document given, and {spec.label} has no dlhub.json or document.json "
                    "at its root",
                    field="document",
                )
            for key, path in document_files(document):
                if path not in bundle.files:
                    raise InvalidInput(
                        f"file {path!r} is named at {key} but {spec.label} has no such file"
                        + (" among the paths asked for" if spec.paths else ""),
                        field=key,
                    )
            provenance["fingerprint"] = fingerprint(document, provenance)
            existing = self._same_source(identity, document, provenance["fingerprint"])
            if existing is not None:
                return existing, False
            return self.publish(identity, bundle, source=provenance), True

    def _same_source(
        self, identity: Identity, document: dict[str, Any], digest: str
    ) -> BuildPublic | None:
        """The build of a version this caller made from the same source, document and commit."""
        name = (document.get("dlhub") or {}).get("name")
        if not isinstance(name, str):
            return None
        with self._catalog.transaction() as session:
            servable = session.scalar(
                select(Servable).where(Servable.name == name, Servable.owner_id == identity.user_id)
            )
            if servable is None:
                return None
            owner = session.get(User, servable.owner_id)
            assert owner is not None
            for version in self._versions(session, servable):
                recorded = (version.document.get("dlhub") or {}).get("source") or {}
                if version.state == "failed" or recorded.get("fingerprint") != digest:
                    continue
                build = session.scalar(
                    select(Build)
                    .where(Build.servable_version_id == version.id)
                    .order_by(Build.started_at.desc())
                )
                if build is not None:
                    return self._build_public(build, owner.username, name, version.version)
        return None

    def _claim(
        self, session: Session, owner: User, name: str, document: dict[str, Any]
    ) -> Servable:
        servable = session.scalar(select(Servable).where(Servable.name == name))
        if servable is not None and servable.owner_id != owner.id:
            raise Conflict(f"the name {name!r} belongs to another owner", field="dlhub.name")
        if servable is not None:
            return servable
        visible, runnable = self._rights(session, document, owner)
        servable = Servable(owner_id=owner.id, name=name, visible_to=visible, runnable_by=runnable)
        try:
            with session.begin_nested():
                session.add(servable)
                session.flush()
        except IntegrityError as exc:  # a concurrent publish of the same name won
            raise Conflict(f"the name {name!r} is taken", field="dlhub.name") from exc
        return servable

    def _rights(
        self, session: Session, document: dict[str, Any], owner: User
    ) -> tuple[list[str], list[str]]:
        dlhub = document["dlhub"]
        mine = user_principal(owner.id)
        # Absent means DLHub's default (public); an empty list means the owner only.
        raw_visible = dlhub.get("visible_to")
        visible = self._principals(
            session, [PUBLIC] if raw_visible is None else raw_visible, "dlhub.visible_to"
        )
        raw_run = dlhub.get("runnable_by")
        runnable = (
            self._principals(session, raw_run, "dlhub.runnable_by")
            if raw_run is not None
            else list(visible)
        )
        return list(dict.fromkeys([*visible, mine])), list(dict.fromkeys([*runnable, mine]))

    @staticmethod
    def _principals(session: Session, values: list[str], field: str) -> list[str]:
        """`public`, principal URNs, or the shorthands `user:<name>` / `group:<name>`."""
        return resolve_principals(session, values, field=field)

    @staticmethod
    def _next_version(session: Session, servable: Servable) -> str:
        """The publication time in ms (DLHub's version), strictly after every earlier version."""
        now = int(time.time() * 1000)
        last = session.scalars(
            select(ServableVersion.version).where(ServableVersion.servable_id == servable.id)
        ).all()
        newest = max((int(v) for v in last if v.isdigit()), default=0)
        return str(max(now, newest + 1))

    def _finalise(
        self,
        session: Session,
        document: dict[str, Any],
        owner: User,
        servable: Servable,
        version: str,
        version_id: str,
    ) -> dict[str, Any]:
        final: dict[str, Any] = json.loads(json.dumps(document))
        visible, runnable = self._rights(session, document, owner)
        final["dlhub"].update(
            owner=owner.username,
            shorthand_name=f"{owner.username}/{servable.name}",
            id=version_id,
            user_id=owner.id,
            publication_date=int(version),
            version=version,
            type="pipeline" if is_pipeline(document) else "servable",
            visible_to=visible,
            runnable_by=runnable,
        )
        final["dlhub"].setdefault("domains", [])
        # The hub mints these when the version goes live (hub/identifiers.py); never the caller.
        final["dlhub"].pop("identifier", None)
        final["datacite"].pop("identifier", None)
        final["datacite"].setdefault("resourceType", {"resourceTypeGeneral": "InteractiveResource"})
        final["datacite"].setdefault(
            "publicationYear", str(time.gmtime(int(version) / 1000).tm_year)
        )
        return final

    # reads -----------------------------------------------------------------------------------

    def _servable(self, session: Session, identity: Identity, owner: str, name: str) -> Servable:
        servable = session.scalar(
            select(Servable)
            .join(User, User.id == Servable.owner_id)
            .where(User.username == owner, Servable.name == name)
        )
        if servable is None:
            raise NotFound(f"no servable {owner}/{name}", field="name")
        self._policy.require(identity, servable, "read", what="servable")
        return servable

    @staticmethod
    def _versions(session: Session, servable: Servable) -> list[ServableVersion]:
        return list(
            session.scalars(
                select(ServableVersion)
                .where(ServableVersion.servable_id == servable.id)
                .order_by(ServableVersion.created_at.desc(), ServableVersion.version.desc())
            ).all()
        )

    @staticmethod
    def _live(versions: list[ServableVersion]) -> ServableVersion | None:
        ready = [v for v in versions if v.state == "ready"]
        return max(ready, key=lambda v: int(v.version)) if ready else None

    def describe(
        self, identity: Identity, ref: str, *, version: str | None = None
    ) -> ServablePublic:
        """The document (latest ready version, or `version`), rights, versions and usage."""
        owner, name = parse_servable_ref(ref)
        with self._catalog.transaction() as session:
            servable = self._servable(session, identity, owner, name)
            versions = self._versions(session, servable)
            live = self._live(versions)
            shown = live
            if version is not None:
                shown = next((v for v in versions if v.version == version), None)
                if shown is None:
                    raise NotFound(f"{ref} has no version {version!r}", field="version")
            elif shown is None and versions:
                shown = versions[0]  # nothing ready yet: show the newest attempt to its viewers
            builds = self._builds_by_version(session, [v.id for v in versions])
            return ServablePublic(
                owner=owner,
                name=name,
                shorthand_name=f"{owner}/{name}",
                visible_to=list(servable.visible_to),
                runnable_by=list(servable.runnable_by),
                latest_version=live.version if live else None,
                document=shown.document if shown else {},
                versions=[
                    ServableVersionPublic(
                        version=v.version,
                        state=v.state,
                        created_at=v.created_at,
                        build_id=builds.get(v.id),
                        environment_hash=v.environment_hash,
                        latest=live is not None and v.id == live.id,
                        identifier=v.pid if v.pid_state == "registered" else None,
                    )
                    for v in versions
                ],
                usage=usage(shown.document) if shown else {},
            )

    @staticmethod
    def _builds_by_version(session: Session, version_ids: list[str]) -> dict[str, str]:
        rows = session.execute(
            select(Build.servable_version_id, Build.id, Build.started_at).where(
                Build.servable_version_id.in_(version_ids)
            )
        ).all()
        return {vid: bid for vid, bid, _ in sorted(rows, key=lambda r: str(r[2] or ""))}

    def can_run(self, identity: Identity, servable: Servable) -> bool:
        """Whether `identity` may run `servable` (it must also be able to see it)."""
        return self._policy.allows(identity, servable, "run")

    def require_run(self, identity: Identity, ref: str) -> Servable:
        """The servable, if `identity` may run it; NotFound when unseen, 403 when only seen."""
        owner, name = parse_servable_ref(ref)
        with self._catalog.transaction() as session:
            servable = self._servable(session, identity, owner, name)
            try:
                self._policy.require(identity, servable, "run", what="servable")
            except PermissionDenied as exc:
                raise PermissionDenied(run_refused(identity, f"{owner}/{name}")) from exc
            session.expunge(servable)
            return servable

    def runtime(self, identity: Identity, ref: str, *, version: str | None = None) -> RuntimeSpec:
        """Where the environment and files of a ready version are (for the runtime, issue #8)."""
        servable = self.require_run(identity, ref)
        with self._catalog.transaction() as session:
            versions = [v for v in self._versions(session, servable) if v.state == "ready"]
            chosen = (
                next((v for v in versions if v.version == version), None)
                if version
                else self._live(versions)
            )
            if chosen is None or chosen.environment_hash is None:
                raise NotFound(
                    f"{ref} has no ready version {version or ''}".strip(), field="version"
                )
            where = self.builder.version_dir(chosen.id)
            return RuntimeSpec(
                servable_id=servable.id,
                version_id=chosen.id,
                version=chosen.version,
                environment_hash=chosen.environment_hash,
                python=self.envs.interpreter(chosen.environment_hash),
                shim=self.envs.path(chosen.environment_hash) / SHIM_NAME,
                files_dir=where / "files",
                document_path=where / "document.json",
                document=chosen.document,
                scaling=dict(servable.scaling or {}),
            )

    def search(self, identity: Identity, query: SearchQuery) -> tuple[int, list[dict[str, Any]]]:
        """Servable documents matching `query` that `identity` may see: (total, documents)."""
        page = self._search.search(identity, INDEX, search_request(query))
        return page.total, [json.loads(hit.source) for hit in page.hits]

    def get_build(self, identity: Identity, ref: str, build_id: str) -> BuildPublic:
        """A build's status, step, log and artefacts (for those who may see the servable)."""
        owner, name = parse_servable_ref(ref)
        with self._catalog.transaction() as session:
            servable = self._servable(session, identity, owner, name)
            row = session.execute(
                select(Build, ServableVersion.version)
                .join(ServableVersion, ServableVersion.id == Build.servable_version_id)
                .where(Build.id == build_id, ServableVersion.servable_id == servable.id)
            ).first()
            if row is None:
                raise NotFound(f"{ref} has no build {build_id!r}", field="build_id")
            return self._build_public(row[0], owner, name, row[1])

    def list_builds(self, identity: Identity, ref: str) -> list[BuildPublic]:
        """Every build of a servable, newest first."""
        owner, name = parse_servable_ref(ref)
        with self._catalog.transaction() as session:
            servable = self._servable(session, identity, owner, name)
            rows = session.execute(
                select(Build, ServableVersion.version)
                .join(ServableVersion, ServableVersion.id == Build.servable_version_id)
                .where(ServableVersion.servable_id == servable.id)
                .order_by(ServableVersion.version.desc())
            ).all()
            return [self._build_public(b, owner, name, v) for b, v in rows]

    def artefact(self, identity: Identity, ref: str, build_id: str, name: str) -> str:
        """The text of a container recipe a successful build wrote."""
        if name not in ARTEFACTS:
            raise NotFound(f"no artefact {name!r}; try {', '.join(ARTEFACTS)}", field="artefact")
        build = self.get_build(identity, ref, build_id)
        if name not in build.artefacts:
            raise NotFound(f"build {build_id} has no artefact {name!r}", field="artefact")
        with self._catalog.transaction() as session:
            row = session.get(Build, build_id)
            assert row is not None
            version = session.get(ServableVersion, row.servable_version_id)
            assert version is not None and version.storage_prefix is not None
            prefix = version.storage_prefix
        return self._blobs.get(f"{prefix}build/{name}").decode()

    @staticmethod
    def _build_public(build: Build, owner: str, name: str, version: str) -> BuildPublic:
        return BuildPublic(
            id=build.id,
            servable=f"{owner}/{name}",
            version=version,
            status=build.status,
            step=build.step,
            log=build.log or "",
            started_at=build.started_at,
            finished_at=build.finished_at,
            artefacts=list(ARTEFACTS) if build.status == "succeeded" else [],
        )

    def wait_build(self, build_id: str, *, timeout: float = 600.0) -> str:
        """Block until a build finishes; returns its status (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._catalog.transaction() as session:
                build = session.get(Build, build_id)
                if build is None:
                    raise NotFound(f"no build {build_id!r}", field="build_id")
                if build.status in ("succeeded", "failed"):
                    return build.status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"build {build_id} still running after {timeout} s")
            with self._done:
                self._done.wait(min(remaining, 0.5))

    # the build worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            retry_s = self.identifiers.retry_s if self.identifiers is not None else None
            try:
                build_id = self._queue.get(timeout=retry_s)
            except queue.Empty:  # idle: retry identifiers the PID registry refused earlier
                build_id = _SETTLE
            if build_id is None:
                return
            try:
                if build_id == _SETTLE:
                    if self.identifiers is not None:
                        self.identifiers.settle()
                    continue
                self._build(build_id)
            except Exception:  # never let the worker die; the build row says what failed
                log.exception("build %s failed unexpectedly", build_id)
            with self._done:
                self._done.notify_all()

    def _build(self, build_id: str) -> None:
        with self._catalog.transaction() as session:
            build = session.get(Build, build_id)
            if build is None or build.status in ("succeeded", "failed"):
                return
            version = session.get(ServableVersion, build.servable_version_id)
            assert version is not None and version.storage_prefix is not None
            job = BuildInput(version.id, version.storage_prefix, version.document)
            build.status, build.started_at, build.log = "running", utcnow(), ""
        lines: list[str] = []

        def step(name: str) -> None:
            lines.append(f"== {name}")
            self._update(build_id, step=name, log="\n".join(lines))

        def note(text: str) -> None:
            lines.append(text)

        try:
            if is_pipeline(job.document):
                job, env_hash = self._build_pipeline(job, step, note)
            else:
                env_hash = self.builder.run(job, step, note)
            self._activate(job, env_hash)
        except BuildStepFailed as exc:
            lines.append(f"FAILED at {exc.step}: {exc}")
            self._finish(build_id, job.version_id, "failed", exc.step, "\n".join(lines))
            return
        except Exception as exc:
            lines.append(f"FAILED: {type(exc).__name__}: {exc}")
            self._finish(build_id, job.version_id, "failed", None, "\n".join(lines))
            raise
        lines.append("== done: the version is live")
        self._finish(build_id, job.version_id, "succeeded", "done", "\n".join(lines))

    def _build_pipeline(
        self, job: BuildInput, step: Callable[[str], None], note: Callable[[str], None]
    ) -> tuple[BuildInput, str]:
        """A pipeline's build: its steps checked as the publisher (hub/pipelines.py), no env."""
        from matterhub.hub.pipelines import PIPELINE_ENV, check_steps

        with self._catalog.transaction() as session:
            owner = session.scalar(
                select(User)
                .join(Servable, Servable.owner_id == User.id)
                .join(ServableVersion, ServableVersion.servable_id == Servable.id)
                .where(ServableVersion.id == job.version_id)
            )
            assert owner is not None
            publisher = Identity(
                user_id=owner.id,
                username=owner.username,
                group_ids=UserRepository(session).group_ids(owner.id),
                is_admin=owner.is_admin,
            )
        step("steps")

        def lookup(ref: str, version: str | None) -> dict[str, Any]:
            return self.runtime(publisher, ref, version=version).document

        document = check_steps(job.document, lookup, note)
        where = self.builder.version_dir(job.version_id)
        where.mkdir(parents=True, exist_ok=True)
        (where / "document.json").write_text(json.dumps(document, indent=1))
        return BuildInput(job.version_id, job.storage_prefix, document), PIPELINE_ENV

    def _update(self, build_id: str, *, step: str, log: str) -> None:
        with self._catalog.transaction() as session:
            build = session.get(Build, build_id)
            if build is not None:
                build.step, build.log = step, log[-_LOG_LIMIT:]

    def _finish(
        self, build_id: str, version_id: str, status: str, step: str | None, text: str
    ) -> None:
        with self._catalog.transaction() as session:
            build = session.get(Build, build_id)
            version = session.get(ServableVersion, version_id)
            if build is not None:
                build.status, build.finished_at, build.log = status, utcnow(), text[-_LOG_LIMIT:]
                if step is not None:
                    build.step = step
            if version is not None and status == "failed":
                version.state = "failed"

    def _activate(self, job: BuildInput, env_hash: str) -> None:
        """Make the version live: rights from its document, then the index (old latest demoted)."""
        with self._catalog.transaction() as session:
            version = session.get(ServableVersion, job.version_id)
            assert version is not None
            servable = session.get(Servable, version.servable_id)
            assert servable is not None
            version.environment_hash = env_hash
            version.state = "ready"
            if version.document != job.document:  # a pipeline's build fills in methods.run
                version.document = job.document
            servable.visible_to = list(job.document["dlhub"]["visible_to"])
            declared = job.document["dlhub"]["runnable_by"]
            servable.runnable_by = with_grants(session, servable.id, declared)  # outlive versions
            session.flush()
            versions = self._versions(session, servable)
            latest = self._live(versions)
            # Every ready version is re-entered: rights and the latest flag change together.
            entries = [
                entry(v.document, servable.visible_to, latest=v is latest)
                for v in versions
                if v.state == "ready"
            ]
        self.generation += 1  # committed: the new version and rights are what runs now
        body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": entries}}
        task = self._search.ingest(SYSTEM_IDENTITY, INDEX, body)
        done = self._search.wait(task.task_id, timeout=300)
        if done.state != "SUCCESS":
            raise BuildStepFailed("register", f"indexing failed: {done.message}")
        if self.identifiers is not None:  # live and indexed: now its identifier (never raises)
            self.identifiers.settle(job.version_id)

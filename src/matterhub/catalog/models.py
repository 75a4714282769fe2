"""SQLAlchemy 2 table models. Alembic migrations in `migrations/` must match them exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AccessRequest",
    "ApiToken",
    "Base",
    "Build",
    "Dataset",
    "DatasetFile",
    "DatasetVersion",
    "Group",
    "GroupMember",
    "HarvestSource",
    "SearchIndex",
    "SearchTask",
    "Servable",
    "ServableVersion",
    "Submission",
    "SubmissionStep",
    "Task",
    "UploadSession",
    "User",
    "UserSession",
    "new_id",
    "utcnow",
]


def new_id() -> str:
    """A new random object id (UUID4 text), safe to show in URLs and principals."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores no zone, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")

# Deterministic constraint names let Alembic alter SQLite tables in batch mode.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention and type map."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDoc, list[str]: JSONDoc}


class User(Base):
    """A person (or robot) who can hold tokens and own things."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    # argon2id hash for web sign-in; None means the account signs in with tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(255))

    memberships: Mapped[list[GroupMember]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Group(Base):
    """A named set of users whose principal can be granted access."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[GroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class GroupMember(Base):
    """Membership of a user in a group; managers may add and remove members."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="member")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    group: Mapped[Group] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class ApiToken(Base):
    """A bearer token: only its argon2 hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A signed-in web session: the browser's cookie holds a random id, the catalog its hash.

    Signing out deletes the row; a password change deletes all of the user's rows; a session
    started with an API token names it, so revoking the token ends the session too.
    """

    __tablename__ = "user_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Dataset(Base):
    """A dataset: a stable `source_name` with a series of versions."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_name: Mapped[str] = mapped_column(String(200), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    latest_source_id: Mapped[str | None] = mapped_column(String(220))


class DatasetVersion(Base):
    """One version `<source_name>_v<major>.<minor>`; immutable once published."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "major", "minor", name="uq_dataset_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[str] = mapped_column(String(220), unique=True)
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    visible_to: Mapped[list[str]] = mapped_column(default=list)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pid: Mapped[str | None] = mapped_column(String(255), unique=True)
    storage_prefix: Mapped[str | None] = mapped_column(String(512))
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    # Publish (revision 0003): draft readers, reasons, the publish claim, the frozen manifest.
    shared_with: Mapped[list[str]] = mapped_column(default=list)
    pid_state: Mapped[str | None] = mapped_column(String(16))
    manifest_sha512: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    publish_lock_until: Mapped[datetime | None]


class Submission(Base):
    """A Connect submission: durable before it is acknowledged."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(String(220), index=True)
    dataset_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL")
    )
    submitter_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    steps: Mapped[list[SubmissionStep]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        order_by="SubmissionStep.position",
    )


class SubmissionStep(Base):
    """One pipeline step's state, with MDF's one-letter status code."""

    __tablename__ = "submission_steps"

    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(1), default="z")
    detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="steps")


class Servable(Base):
    """A published model or function, `owner/name`, with a series of versions."""

    __tablename__ = "servables"
    # Names are unique hub-wide (revision 0005): `name` alone finds a servable, as in DLHub's
    # index, and a name taken by one owner answers 409 to every other owner.
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_servable_owner_name"),
        UniqueConstraint("name", name="uq_servables_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    visible_to: Mapped[list[str]] = mapped_column(default=list)
    runnable_by: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Revision 0007: the owner's replica bounds and autoscaling target, set while serving
    # ({"min_replicas", "max_replicas", "target_queue", "target_latency_ms"}; empty = defaults).
    scaling: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ServableVersion(Base):
    """One published version of a servable; its document follows DLHub's schema."""

    __tablename__ = "servable_versions"
    __table_args__ = (UniqueConstraint("servable_id", "version", name="uq_servable_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    servable_id: Mapped[str] = mapped_column(
        ForeignKey("servables.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="building", index=True)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment_hash: Mapped[str | None] = mapped_column(String(128))
    storage_prefix: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Revision 0007: the identifier minted when the version went live (local PID or DOI).
    pid: Mapped[str | None] = mapped_column(String(255), unique=True)
    pid_state: Mapped[str | None] = mapped_column(String(16))


class AccessRequest(Base):
    """A user's request for the right to run a servable, and the owner's recorded decision."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_servable_status", "servable_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    servable_id: Mapped[str] = mapped_column(
        ForeignKey("servables.id", ondelete="CASCADE"), index=True
    )
    requester_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    granted_to: Mapped[str | None] = mapped_column(String(128))  # the principal given the right
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Build(Base):
    """A build of a servable version's environment, with its log."""

    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    servable_version_id: Mapped[str] = mapped_column(
        ForeignKey("servable_versions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    step: Mapped[str | None] = mapped_column(String(32))
    log: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Task(Base):
    """A durable unit of background work (an async run, a pipeline step, a build)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_queue", "status", "kind", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="received")
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    servable_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("servable_versions.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class SearchIndex(Base):
    """A Discover index (`mdf`, `mdf-test`, `dlhub`, …); its entries live in the search backend."""

    __tablename__ = "search_indexes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    writers: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchTask(Base):
    """A durable index write (ingest or delete): recorded before it is acknowledged, replayable."""

    __tablename__ = "search_tasks"

    # SQLite only auto-increments INTEGER PRIMARY KEY; `seq` orders replays on every backend.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    index_id: Mapped[str] = mapped_column(
        ForeignKey("search_indexes.id", ondelete="CASCADE"), index=True
    )
    task_type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # JSON text, written as received: re-encoding a million entries would dominate ingest time.
    payload: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    additional_details: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class DatasetFile(Base):
    """One file of a dataset version; `blob_key` may sit in an older version's folder."""

    __tablename__ = "dataset_files"

    version_id: Mapped[str] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(1400))
    size: Mapped[int] = mapped_column(BigInteger)
    sha512: Mapped[str] = mapped_column(String(128))
    mime_type: Mapped[str] = mapped_column(String(255))
    visible_to: Mapped[list[str] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UploadSession(Base):
    """A resumable upload into a draft: chunks are kept as blobs until the last one arrives."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    version_id: Mapped[str] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    sha512: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HarvestSource(Base):
    """A repository this hub follows: an OAI-PMH endpoint harvested into the search index."""

    __tablename__ = "harvest_sources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    set_spec: Mapped[str | None] = mapped_column(String(200))
    metadata_prefix: Mapped[str] = mapped_column(String(64), default="oai_datacite")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # `from` of the next run: the responseDate of the last complete harvest (the server's clock).
    harvested_until: Mapped[str | None] = mapped_column(String(32))
    # A run cut short by its record bound goes on from here next time.
    resumption_token: Mapped[str | None] = mapped_column(Text)
    resumption_started: Mapped[str | None] = mapped_column(String(32))  # that list's responseDate
    last_run_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None]  # a run in progress holds the source until then

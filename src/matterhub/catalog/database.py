"""Opening the catalog database, keeping its schema current, and units of work."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from matterhub.core.errors import CatalogError, InvalidInput

__all__ = ["Catalog", "open_catalog"]

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every process migrating one database.
_PG_MIGRATION_LOCK = 0x6D617474
# Alembic keeps its running environment in module globals, so one migration per process at a time.
_ALEMBIC_LOCK = threading.Lock()


def _normalise_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, the stdlib module for SQLite."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def open_catalog(url: str, *, migrate: bool = True, echo: bool = False) -> Catalog:
    """Open the database at `url`, check it answers, and (by default) migrate it to head.

    Raises:
        CatalogError: the database cannot be opened; the message names `database_url`.
    """
    try:
        parsed = make_url(_normalise_url(url))
    except ArgumentError as exc:
        raise InvalidInput(
            f"database_url {url!r} is not a database URL: {exc}", field="database_url"
        ) from exc
    kwargs: dict[str, Any] = {
        "echo": echo,
        "pool_pre_ping": True,
        # JSON columns through orjson: several times faster than the stdlib both ways (run
        # records carry outputs); numpy values, if any reach a column, as plain numbers.
        "json_serializer": _json_text,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InvalidInput(
                "database_url: an in-memory SQLite database cannot be shared; give a file path",
                field="database_url",
            )
        try:
            _private_sqlite_file(Path(parsed.database))
        except OSError as exc:
            raise CatalogError(
                f"database_url {url!r}: cannot create {Path(parsed.database).parent}: {exc}",
                field="database_url",
            ) from exc
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        hint = " (install matterhub[postgres])" if "postgres" in parsed.drivername else ""
        raise CatalogError(
            f"database_url {url!r} cannot be used: {exc}{hint}", field="database_url"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    catalog = Catalog(engine, url=url)
    catalog.ping()
    if migrate:
        catalog.upgrade()
    return catalog


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 (in a 0700 folder) before SQLite does, or tighten ours.

    SQLite gives its -wal and -shm files the mode of the database file, so all three stay
    readable by the server's user alone whatever the process umask.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    # A catalog written by an older version was created 0644: close it and its companions.
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        try:
            info = (path.parent / name).stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            (path.parent / name).chmod(stat.S_IMODE(info.st_mode) & 0o700)


class Catalog:
    """The catalog database: an engine, a session factory and the migration chain."""

    def __init__(self, engine: Engine, *, url: str) -> None:
        self.engine = engine
        self.url = url
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: committed on clean exit, rolled back on any exception."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, OSError):
                raise CatalogError(f"catalog database unavailable: {exc.orig}") from exc
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Check the database answers.

        Raises:
            CatalogError: it does not; the message names `database_url`.
        """
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise CatalogError(
                f"database_url {_redact(self.url)!r} cannot be opened: {reason}",
                field="database_url",
            ) from exc

    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to `revision`; safe when several processes start at once."""
        if revision == "head" and self.current_revision() == self.head_revision():
            return
        cfg = self._alembic_config()
        with _ALEMBIC_LOCK, self.engine.begin() as conn:
            if self.backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to `revision` (`base` empties the database)."""
        cfg = self._alembic_config()
        with _ALEMBIC_LOCK, self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None for an empty database."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision this code knows."""
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def _redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url

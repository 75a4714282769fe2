"""The catalog contract: the same suite on every database backend present."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.models import Base, Dataset, DatasetVersion, GroupMember, Task, User
from matterhub.core.errors import CatalogError, Conflict, InvalidInput

TABLES = {
    "users", "groups", "group_members", "api_tokens", "datasets", "dataset_versions",
    "dataset_files", "upload_sessions",
    "submissions", "submission_steps", "servables", "servable_versions", "builds", "tasks",
    "search_indexes", "search_tasks",
}  # fmt: skip


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(database_url)
    yield catalog
    catalog.close()


def test_migrates_to_head_with_every_table(catalog: Catalog) -> None:
    assert catalog.current_revision() == catalog.head_revision() is not None
    assert set(inspect(catalog.engine).get_table_names()) >= TABLES


def test_migrations_match_the_models_exactly(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_and_back(catalog: Catalog) -> None:
    catalog.downgrade("base")
    assert catalog.current_revision() is None
    assert not TABLES & set(inspect(catalog.engine).get_table_names())
    catalog.upgrade()
    assert catalog.current_revision() == catalog.head_revision()


def test_upgrade_is_idempotent_and_concurrent_safe(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_catalog(database_url).close()
        except BaseException as exc:
            errors.append(exc)

    first = open_catalog(database_url)  # the schema exists before the race for SQLite's sake
    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert first.current_revision() == first.head_revision()
    first.close()


def test_foreign_keys_are_enforced(catalog: Catalog) -> None:
    with pytest.raises(IntegrityError), catalog.transaction() as session:
        session.add(GroupMember(group_id="no-such-group", user_id="no-such-user"))


def test_deleting_a_user_cascades_to_memberships(catalog: Catalog) -> None:
    from matterhub.catalog.models import Group

    with catalog.transaction() as session:
        user, group = User(username="ann"), Group(name="lab")
        session.add_all([user, group])
        session.flush()
        session.add(GroupMember(group_id=group.id, user_id=user.id))
    with catalog.transaction() as session:
        session.execute(text("DELETE FROM users WHERE username = 'ann'"))
    with catalog.transaction() as session:
        assert session.scalars(select(GroupMember)).all() == []


def test_unique_source_id(catalog: Catalog) -> None:
    with catalog.transaction() as session:
        owner = User(username="owner")
        session.add(owner)
        session.flush()
        ds = Dataset(source_name="foo", owner_id=owner.id)
        session.add(ds)
        session.flush()
        session.add(DatasetVersion(dataset_id=ds.id, source_id="foo_v1.1", major=1, minor=1))
    with pytest.raises(IntegrityError), catalog.transaction() as session:
        ds_id = session.scalar(select(Dataset.id))
        session.add(DatasetVersion(dataset_id=ds_id, source_id="foo_v1.1", major=1, minor=2))


def test_datetimes_come_back_aware_utc(catalog: Catalog) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    with catalog.transaction() as session:
        session.add(User(username="tz", created_at=moment.astimezone()))
    with catalog.transaction() as session:
        stored = session.scalar(select(User.created_at).where(User.username == "tz"))
    assert stored == moment
    assert stored is not None and stored.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(catalog: Catalog) -> None:
    with pytest.raises(Exception, match="naive"), catalog.transaction() as session:
        session.add(User(username="naive", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_json_documents_round_trip(catalog: Catalog) -> None:
    doc = {
        "dc": {"titles": [{"title": "Ωmega – 铁"}]},
        "n": [1, 2.5, None, True],
        "nested": {"a": {}},
    }
    with catalog.transaction() as session:
        session.add(Task(kind="run", payload=doc))
    with catalog.transaction() as session:
        assert session.scalar(select(Task.payload)) == doc


def test_failed_unit_of_work_leaves_nothing(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.transaction() as session:
        session.add(User(username="ghost"))
        session.flush()
        raise RuntimeError("crash mid-transaction")
    with catalog.transaction() as session:
        assert session.scalar(select(User).where(User.username == "ghost")) is None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(catalog: Catalog) -> None:
    if catalog.backend != "sqlite":
        assert catalog.backend == "postgresql"
        return
    with catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_unopenable_database_names_the_setting() -> None:
    with pytest.raises(CatalogError) as caught:
        open_catalog("postgresql://nobody:secret@127.0.0.1:1/none")
    assert caught.value.field == "database_url"
    assert "secret" not in caught.value.detail  # passwords never reach messages


@pytest.mark.parametrize("url", ["not a url", "sqlite://", "sqlite:///:memory:"])
def test_bad_database_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_catalog(url)
    assert caught.value.field == "database_url"


def test_conflict_on_duplicate_username(catalog: Catalog) -> None:
    from matterhub.catalog.repositories import UserRepository

    with catalog.transaction() as session:
        UserRepository(session).add(User(username="dup"))
    with pytest.raises(Conflict) as caught, catalog.transaction() as session:
        UserRepository(session).add(User(username="dup"))
    assert caught.value.field == "username"

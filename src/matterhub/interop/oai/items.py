"""The OAI-PMH items: one per public dataset, selected in SQL with the version policy's clause.

An item is a dataset (`source_name`) shown through its latest published version. The item's
datestamp is `datasets.updated_at`, which moves whenever `latest_source_id` does: a publish, a
metadata update (a new minor version) or the withdrawal of the latest version. A dataset that
once had a public version but whose latest is withdrawn (none left published) or no longer
public stays as a deleted item (`status="deleted"`), so harvesters drop their copy.

Which versions count is decided by `Policy.versions().condition(ANONYMOUS)` compiled to SQL —
drafts, versions in curation, private and group-only versions never reach Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, false, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from matterhub.catalog.models import Dataset, DatasetVersion
from matterhub.catalog.repositories import sql_clause
from matterhub.core.identity import ANONYMOUS
from matterhub.core.policy import Policy

__all__ = ["Item", "ItemQuery", "Items", "org_slug"]

_SLUG = re.compile(r"[^a-z0-9._-]+")


def org_slug(name: str) -> str:
    """An organisation's name as a setSpec part (`Center for X` → `center-for-x`)."""
    return _SLUG.sub("-", name.strip().lower()).strip("-")


class _HasOrganization(FunctionElement[bool]):
    """A version document's `mdf.organizations` holds one of the given names."""

    name = "matterhub_has_organization"
    type = Boolean()
    inherit_cache = True


@compiles(_HasOrganization, "postgresql")
def _has_organization_postgresql(
    element: _HasOrganization, compiler: SQLCompiler, **kw: Any
) -> str:
    column, *values = list(element.clauses)
    doc = compiler.process(column, **kw)
    items = ", ".join(compiler.process(v, **kw) for v in values)
    path = f"({doc} -> 'mdf' -> 'organizations')"
    return (
        f"(CASE WHEN jsonb_typeof({path}) = 'array' THEN EXISTS (SELECT 1 FROM "
        f"jsonb_array_elements_text({path}) AS org(name) WHERE org.name IN ({items})) "
        "ELSE false END)"
    )


@compiles(_HasOrganization)
def _has_organization_sqlite(element: _HasOrganization, compiler: SQLCompiler, **kw: Any) -> str:
    column, *values = list(element.clauses)
    doc = compiler.process(column, **kw)
    items = ", ".join(compiler.process(v, **kw) for v in values)
    return (
        f"EXISTS (SELECT 1 FROM json_each({doc}, '$.mdf.organizations') AS org "
        f"WHERE org.value IN ({items}))"
    )


@dataclass(frozen=True, slots=True)
class Item:
    """One item: a dataset and the version it is shown through (withdrawn: deleted)."""

    dataset_id: str
    source_name: str
    source_id: str
    updated_at: datetime
    deleted: bool
    organizations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """What a list request selects: a datestamp range, a set and a cursor."""

    start: datetime | None = None
    end: datetime | None = None  # exclusive
    source_name: str | None = None
    organizations: tuple[str, ...] | None = None  # None: any item; (): items with no match
    after: tuple[datetime, str] | None = None


class Items:
    """Queries over the public items (anonymous view: OAI-PMH serves the public catalogue)."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def _public(self, version: Any) -> ColumnElement[bool]:
        """Versions an anonymous caller may read (the version policy's clause, in SQL)."""
        columns = SimpleNamespace(
            owner_id=Dataset.owner_id,
            shared_with=version.shared_with,
            visible_to=version.visible_to,
            state=version.state,
        )
        # The curators group cannot hold the anonymous identity, so it is not needed here.
        return sql_clause(self._policy.versions().condition(ANONYMOUS, "read"), columns)

    def _shown(self) -> Any:
        """Per dataset: `live_id`, its latest version when that is public and published, and
        `version_id`, the live one or else its newest public version (withdrawn, or older than
        a latest that is no longer public: the item is then deleted); NULL: not an item."""
        live = aliased(DatasetVersion)
        once = aliased(DatasetVersion)
        live_id = (
            select(live.id)
            .where(
                live.source_id == Dataset.latest_source_id,
                live.state == "published",
                self._public(live),
            )
            .scalar_subquery()
        )
        once_id = (
            select(once.id)
            .where(
                once.dataset_id == Dataset.id,
                once.state.in_(("published", "withdrawn")),
                self._public(once),
            )
            .order_by(once.major.desc(), once.minor.desc())
            .limit(1)
            .scalar_subquery()
        )
        return (
            select(
                Dataset.id.label("dataset_id"),
                Dataset.source_name.label("source_name"),
                Dataset.updated_at.label("updated_at"),
                live_id.label("live_id"),
                func.coalesce(live_id, once_id).label("version_id"),
            )
            .where(Dataset.test.is_(False))
            .subquery("items")
        )

    def _select(self, query: ItemQuery) -> tuple[Any, list[ColumnElement[bool]]]:
        items = self._shown()
        where: list[ColumnElement[bool]] = []
        if query.start is not None:
            where.append(items.c.updated_at >= query.start)
        if query.end is not None:
            where.append(items.c.updated_at < query.end)
        if query.source_name is not None:
            where.append(items.c.source_name == query.source_name)
        if query.organizations is not None:
            if query.organizations:
                names = [literal(n) for n in query.organizations]
                where.append(
                    and_(
                        items.c.live_id.is_not(None),
                        _HasOrganization(DatasetVersion.document, *names),
                    )
                )
            else:
                where.append(false())
        if query.after is not None:
            at, dataset_id = query.after
            where.append(
                or_(
                    items.c.updated_at > at,
                    and_(items.c.updated_at == at, items.c.dataset_id > dataset_id),
                )
            )
        return items, where

    def page(self, session: Session, query: ItemQuery, *, limit: int) -> list[Item]:
        """Up to `limit` items after the cursor, in (datestamp, id) order."""
        items, where = self._select(query)
        organizations = DatasetVersion.document[("mdf", "organizations")]
        rows = session.execute(
            select(
                items.c.dataset_id,
                items.c.source_name,
                items.c.updated_at,
                DatasetVersion.source_id,
                items.c.live_id,
                organizations,
            )
            .join(DatasetVersion, DatasetVersion.id == items.c.version_id)
            .where(*where)
            .order_by(items.c.updated_at, items.c.dataset_id)
            .limit(limit)
        ).all()
        return [_item(row) for row in rows]

    def count(self, session: Session, query: ItemQuery) -> int:
        """How many items the query selects, cursor aside."""
        items, where = self._select(
            ItemQuery(query.start, query.end, query.source_name, query.organizations)
        )
        total = session.scalar(
            select(func.count())
            .select_from(items)
            .join(DatasetVersion, DatasetVersion.id == items.c.version_id)
            .where(*where)
        )
        return int(total or 0)

    def one(self, session: Session, source_name: str) -> Item | None:
        """The item of one dataset, if it is one."""
        found = self.page(session, ItemQuery(source_name=source_name), limit=1)
        return found[0] if found else None

    def all_organizations(self, session: Session) -> list[str]:
        """Every organisation a live item names."""
        names: set[str] = set()
        for item in self._every(session):
            if not item.deleted:
                names.update(item.organizations)
        return sorted(names)

    def source_names(self, session: Session) -> list[str]:
        """Every item's source name."""
        return sorted(item.source_name for item in self._every(session))

    def _every(self, session: Session) -> Sequence[Item]:
        out: list[Item] = []
        query = ItemQuery()
        while True:
            batch = self.page(session, query, limit=1000)
            out.extend(batch)
            if len(batch) < 1000:
                return out
            last = batch[-1]
            query = ItemQuery(after=(last.updated_at, last.dataset_id))

    def earliest(self, session: Session) -> datetime | None:
        """The oldest item datestamp (items only: a private dataset's dates stay unsaid)."""
        items = self._shown()
        return session.scalar(
            select(func.min(items.c.updated_at)).where(items.c.version_id.is_not(None))
        )


def _item(row: Any) -> Item:
    dataset_id, source_name, updated_at, source_id, live_id, organizations = row
    if isinstance(organizations, str):
        organizations = [organizations]
    names = tuple(str(o) for o in organizations or () if isinstance(o, str | int | float))
    return Item(
        dataset_id=dataset_id,
        source_name=source_name,
        source_id=source_id,
        updated_at=updated_at,
        deleted=live_id is None,
        organizations=names,
    )

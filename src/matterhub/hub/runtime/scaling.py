"""ScalingService: read a servable's workers and set its replica bounds while it serves.

Owners and admins only (the servable policy's `manage` action): others get 403 when they can
see the servable and 404 when they cannot. Bounds are stored in `Servable.scaling` and applied
to the running pools at once — existing workers keep running; the autoscaler starts or retires
workers within the new bounds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import Servable, ServableVersion, User
from matterhub.core.errors import NotFound
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.policy import Policy
from matterhub.core.servables import parse_servable_ref
from matterhub.hub.runtime.service import RunService

__all__ = ["ScalingService"]


class ScalingService:
    """The workers view and the bounds of servables, for their owners and admins."""

    def __init__(self, catalog: Catalog, policy: Policy, runs: RunService) -> None:
        self._catalog = catalog
        self._policy = policy
        self._runs = runs

    def _managed(self, session: Session, identity: Identity, ref: str) -> Servable:
        owner, name = parse_servable_ref(ref)
        servable = session.scalar(
            select(Servable)
            .join(User, User.id == Servable.owner_id)
            .where(User.username == owner, Servable.name == name)
        )
        if servable is None:
            raise NotFound(f"no servable {ref}", field="name")
        self._policy.require(identity, servable, "manage", what="servable")
        return servable

    @staticmethod
    def _versions(session: Session, servable: Servable) -> dict[str, str]:
        rows = session.execute(
            select(ServableVersion.id, ServableVersion.version).where(
                ServableVersion.servable_id == servable.id, ServableVersion.state == "ready"
            )
        ).all()
        return {str(vid): str(version) for vid, version in rows}

    def workers(self, identity: Identity, ref: str) -> dict[str, Any]:
        """Bounds (stored and in force) and, per running version, its pool and workers."""
        with self._catalog.transaction() as session:
            servable = self._managed(session, identity, ref)
            stored = dict(servable.scaling or {})
            versions = self._versions(session, servable)
        effective = None
        if versions:
            target = self._runs.resolve(SYSTEM_IDENTITY, ref)
            effective = target.worker.scaling.public()
        pools = []
        for view in self._runs.executor.workers(list(versions)):
            row = view.public()
            row["version"] = versions.get(view.version_id)
            pools.append(row)
        pools.sort(key=lambda p: int(p["version"] or 0), reverse=True)
        return {
            "servable": ref,
            "executor": self._runs.executor.name,
            "scaling": stored,
            "bounds": effective,
            "max_replicas_cap": self._runs.limits.scaling.max_replicas_cap,
            "pools": pools,
        }

    def scale(self, identity: Identity, ref: str, values: dict[str, Any]) -> dict[str, Any]:
        """Store new bounds (validated: 422 naming the field) and apply them while serving.

        `values` replaces what was stored; fields left out take the document's or the hub's
        defaults. `max_replicas` above the hub's cap is refused, not lowered.
        """
        defaults = self._runs.limits.scaling
        with self._catalog.transaction() as session:
            servable = self._managed(session, identity, ref)  # 404 / 403 before validating
            live = bool(self._versions(session, servable))
        base = defaults.bounds()
        if live:
            document = self._runs.resolve(SYSTEM_IDENTITY, ref).runtime.document
            base = defaults.bounds(document["servable"].get("options"))
        checked = defaults.check({**base.public(), **values})  # InvalidInput naming the field
        stored = {k: v for k, v in checked.public().items() if k in values and v is not None}
        with self._catalog.transaction() as session:
            self._managed(session, identity, ref).scaling = stored
        self._runs.refresh()  # kept targets hold the old bounds
        if live:
            self._runs.executor.apply(self._runs.resolve(SYSTEM_IDENTITY, ref).worker)
        return self.workers(identity, ref)

"""Client methods for a servable's workers and replica bounds (owners and admins)."""

from __future__ import annotations

from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.core.servables import parse_servable_ref

__all__ = ["ScalingMethods"]


class ScalingMethods(HTTPCore):
    """`servable_workers` and `scale_servable`."""

    def servable_workers(self, name: str) -> dict[str, Any]:
        """`owner/name` → its bounds and, per running version, its pool and workers."""
        owner, servable = parse_servable_ref(name)
        result: dict[str, Any] = self._json("GET", f"/api/servables/{owner}/{servable}/workers")
        return result

    def scale_servable(
        self,
        name: str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        target_queue: float | None = None,
        target_p50_ms: float | None = None,
        target_p99_ms: float | None = None,
    ) -> dict[str, Any]:
        """Set `owner/name`'s replica bounds (those given; the rest take the defaults)."""
        owner, servable = parse_servable_ref(name)
        given = {
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "target_queue": target_queue,
            "target_p50_ms": target_p50_ms,
            "target_p99_ms": target_p99_ms,
        }
        body = {key: value for key, value in given.items() if value is not None}
        result: dict[str, Any] = self._json(
            "PUT", f"/api/servables/{owner}/{servable}/scaling", json=body
        )
        return result

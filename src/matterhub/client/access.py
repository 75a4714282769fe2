"""Client methods over access requests: ask for the right to run a servable, grant, decline."""

from __future__ import annotations

from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.core.servables import parse_servable_ref

__all__ = ["AccessMethods"]


class AccessMethods(HTTPCore):
    """Request access to a servable you can see but not run; decide on requests for yours."""

    def request_access(self, name: str, message: str = "") -> dict[str, Any]:
        """Ask the owner of `owner/name` for the right to run it; returns the request."""
        owner, servable = parse_servable_ref(name)
        path = f"/api/servables/{owner}/{servable}/access-requests"
        result: dict[str, Any] = self._json("POST", path, json={"message": message})
        return result

    def access_requests(
        self,
        name: str | None = None,
        *,
        status: str | None = None,
        role: str = "requester",
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Requests on `owner/name` (all of them if it is yours), or without a name your own
        (`role="requester"`) or those on your servables (`role="owner"`); newest first."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if name is None:
            path = "/api/access-requests"
            params["role"] = role
        else:
            owner, servable = parse_servable_ref(name)
            path = f"/api/servables/{owner}/{servable}/access-requests"
        result: list[dict[str, Any]] = self._json("GET", path, params=params)
        return result

    def access_request(self, request_id: str) -> dict[str, Any]:
        """One request by id."""
        result: dict[str, Any] = self._json("GET", f"/api/access-requests/{request_id}")
        return result

    def grant_access(self, request_id: str, to: str | None = None) -> dict[str, Any]:
        """Grant a request: to the requester (default) or `to="group:<name>"`."""
        body = {"to": to} if to else {}
        result: dict[str, Any] = self._json(
            "POST", f"/api/access-requests/{request_id}/grant", json=body
        )
        return result

    def decline_access(self, request_id: str, reason: str) -> dict[str, Any]:
        """Decline a request; the requester is told `reason`."""
        result: dict[str, Any] = self._json(
            "POST", f"/api/access-requests/{request_id}/decline", json={"reason": reason}
        )
        return result

    def withdraw_access_request(self, request_id: str) -> dict[str, Any]:
        """Take back your own pending request."""
        result: dict[str, Any] = self._json("POST", f"/api/access-requests/{request_id}/withdraw")
        return result

    def revoke_access(self, request_id: str, reason: str | None = None) -> dict[str, Any]:
        """Take back a right you granted."""
        body = {"reason": reason} if reason else {}
        result: dict[str, Any] = self._json(
            "POST", f"/api/access-requests/{request_id}/revoke", json=body
        )
        return result

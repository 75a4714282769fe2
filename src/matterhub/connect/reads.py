"""Reading submissions: MDF's status document, the submissions list with filters, waiting."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from matterhub.catalog.models import Submission
from matterhub.catalog.repositories import sql_clause
from matterhub.connect.base import ConnectBase
from matterhub.connect.documents import status_document
from matterhub.core.datasets import parse_source_id
from matterhub.core.errors import InvalidInput, Unauthenticated
from matterhub.core.identity import SYSTEM_IDENTITY, Identity

__all__ = ["ConnectReads"]

SETTLED = ("succeeded", "failed", "curation", "cancelled")


class ConnectReads(ConnectBase):
    """status, submissions and wait."""

    def status(self, identity: Identity, source_id: str) -> dict[str, Any]:
        """GET /status/<source_id>."""
        return status_document(self._block(*self._load(identity, source_id)))

    def submissions(
        self, identity: Identity, filters: Sequence[Sequence[Any]] = ()
    ) -> list[dict[str, Any]]:
        """The caller's submissions (every submission for administrators), MDF filters applied."""
        if identity.is_anonymous:
            raise Unauthenticated("sign in to list your submissions")
        rule = self._policy.policy("submission").condition(identity)
        with self._catalog.transaction() as session:
            query = (
                select(Submission.id, Submission.source_id)
                .where(sql_clause(rule, Submission))
                .order_by(Submission.created_at)
            )
            rows = session.execute(query).all()
        blocks = [
            self._block(*self._load(identity, sid, submission_id=sub_id)) for sub_id, sid in rows
        ]
        return [b for b in blocks if all(_matches(b, f) for f in filters)]

    def organizations(self, identity: Identity) -> list[dict[str, Any]]:
        """The organisations submissions may name, with their rules (every submitter needs them)."""
        del identity  # the rules are what every submitter must know before submitting
        return [o.model_dump() for o in self._organizations]

    def wait(
        self, source_id: str, *, timeout: float = 120.0, until: Sequence[str] = SETTLED
    ) -> dict[str, Any]:
        """Block until a submission settles (for the CLI, the demo and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            sub, steps, submitter = self._load(SYSTEM_IDENTITY, source_id)
            if sub.status in until:
                return status_document(self._block(sub, steps, submitter))
            if time.monotonic() > deadline:
                raise TimeoutError(f"submission {source_id} still {sub.status}")
            time.sleep(0.05)


def _matches(block: dict[str, Any], flt: Sequence[Any]) -> bool:
    """MDF's (field, op, value) filters over a status block."""
    if len(flt) != 3:
        raise InvalidInput("a filter is [field, operator, value]", field="filters")
    field, op, value = flt
    have = block.get(field)
    if field == "source_name":
        have = parse_source_id(block["source_id"])[0]
    if op not in _OPERATORS:
        raise InvalidInput(f"unknown filter operator {op!r}", field="filters")
    if op in ("==", "!="):
        return bool((have == value) == (op == "=="))
    return have is not None and bool(_OPERATORS[op](have, value))


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}

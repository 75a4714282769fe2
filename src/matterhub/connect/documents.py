"""Connect's answers in MDF Connect's wire shapes (status, submissions, curation tasks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from matterhub.core.connect import (
    CODES,
    STEPS,
    StepStatus,
    display_status,
    overall_state,
)

__all__ = ["status_block", "status_document"]


def status_block(
    *,
    source_id: str,
    submitter: str,
    submitted: datetime,
    steps: list[StepStatus],
    test: bool,
    request: dict[str, Any],
    state: str,
) -> dict[str, Any]:
    """MDF v1's per-submission status block (what /submissions lists)."""
    names = dict(STEPS)
    return {
        "source_id": source_id,
        "submitter": submitter,
        "submission_time": submitted.isoformat().replace("+00:00", "Z"),
        "status_code": "".join(s.code for s in steps),
        "status_message": display_status(source_id, submitter, submitted, steps),
        "status_list": [
            {
                "step": s.step,
                "description": names.get(s.step, s.step),
                "code": s.code,
                "meaning": CODES[s.code],
                "detail": s.detail,
            }
            for s in steps
        ],
        "active": overall_state(steps) == "ACTIVE" and state not in ("failed", "cancelled"),
        "state": state,
        "test": test,
        "original_submission": request,
    }


def status_document(block: dict[str, Any]) -> dict[str, Any]:
    """GET /status/<sid>: v1's `status`, plus `flow_status` and `display_status` for v2 clients."""
    steps = [
        StepStatus(step=s["step"], code=s["code"], detail=s["detail"]) for s in block["status_list"]
    ]
    flow = overall_state(steps)
    if block["state"] in ("failed", "cancelled"):
        flow = "FAILED"
    return {
        "success": True,
        "status": block,
        "flow_status": {"status": flow},
        "display_status": block["status_message"],
    }

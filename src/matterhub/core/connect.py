"""MDF Connect's submission document and status vocabulary (pure rules, no I/O).

The request fields are MDF Connect's (connect_submission.json); the twelve status steps and
their one-letter codes are MDF Connect v1's, so existing clients and dashboards read them as-is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matterhub.core.errors import InvalidInput

__all__ = [
    "CODES",
    "KNOWN_SERVICES",
    "STEPS",
    "STEP_NAMES",
    "MetadataUpdateRequest",
    "StepStatus",
    "SubmissionRequest",
    "check_acl",
    "display_status",
    "merge_blocks",
    "overall_state",
    "sandbox_source_name",
]

# The most data sources one submission may name (a client splits a large upload into parts of
# at most 1,000 files, each its own `upload://` source).
MAX_DATA_SOURCES = 2000

# (step, what it does) in pipeline order, as MDF Connect v1 reports them.
STEPS: tuple[tuple[str, str], ...] = (
    ("sub_start", "Submission initialization"),
    ("old_cancel", "Cancellation of previous submissions"),
    ("data_download", "Connect data download"),
    ("data_transfer", "Data transfer to primary destination"),
    ("extracting", "Metadata extraction"),
    ("curation", "Dataset curation"),
    ("ingest_search", "MDF Search ingestion"),
    ("ingest_backup", "Data transfer to secondary destinations"),
    ("ingest_publish", "MDF Publish publication"),
    ("ingest_citrine", "Citrine upload"),
    ("ingest_mrr", "Materials Resource Registration"),
    ("ingest_cleanup", "Post-processing cleanup"),
)
STEP_NAMES = tuple(name for name, _ in STEPS)

CODES: dict[str, str] = {
    "z": "Not started",
    "P": "Processing",
    "S": "Succeeded",
    "M": "Succeeded with message",
    "L": "Succeeded, see link",
    "F": "Failed",
    "R": "Failed, but processing continues",
    "H": "Failed, see link",
    "N": "Not requested or not applicable",
    "T": "Retrying",
    "X": "Cancelled",
}
_DONE = frozenset("SMLNRH")
_FAILED = frozenset("FX")


class StepStatus(BaseModel):
    """One step's state."""

    step: str
    code: Literal["z", "P", "S", "M", "L", "F", "R", "H", "N", "T", "X"] = "z"
    detail: str | None = None


class SubmissionRequest(BaseModel):
    """A submission, exactly the fields MDF Connect (and mdf-connect-client) send."""

    model_config = ConfigDict(extra="forbid")

    dc: dict[str, Any] = Field(
        default_factory=dict, description="DataCite block (titles, creators…)."
    )
    data_sources: list[str] = Field(
        default_factory=list,
        max_length=MAX_DATA_SOURCES,
        description="Where the files are.",
    )
    mdf: dict[str, Any] = Field(
        default_factory=dict, description="acl, source_name, organizations…"
    )
    mrr: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)
    custom_desc: dict[str, str] = Field(default_factory=dict)
    projects: dict[str, Any] = Field(default_factory=dict)
    index: dict[str, Any] = Field(default_factory=dict, description="Field mappings per data type.")
    services: dict[str, Any] = Field(default_factory=dict)
    data_destinations: list[str] = Field(default_factory=list)
    external_uri: str | None = None
    extraction_config: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    links: dict[str, Any] | list[Any] = Field(default_factory=dict)
    curation: bool = False
    test: bool = False
    update: bool = False
    incremental_update: bool = False
    update_metadata_only: bool = False
    no_extract: bool = False
    dataset_acl: list[str] = Field(default_factory=list)

    @field_validator("custom")
    @classmethod
    def _at_most_ten_custom_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 10:
            raise ValueError("at most 10 custom fields per dataset")
        return value

    @field_validator("index")
    @classmethod
    def _units_are_named_strings(cls, value: dict[str, Any]) -> dict[str, Any]:
        # `index.<kind>.units` = {"mdf.field": "unit"}, flat or nested: a refusal now beats a
        # file whose records would all be lost at extraction.
        for kind, options in value.items():
            units = options.get("units") if isinstance(options, dict) else None
            if units is None:
                continue
            if not isinstance(units, dict):
                raise ValueError(f"index.{kind}.units must be an object {{field: unit}}")
            stack = [(f"index.{kind}.units", units)]
            while stack:
                path, node = stack.pop()
                for key, unit in node.items():
                    if isinstance(unit, dict):
                        stack.append((f"{path}.{key}", unit))
                    elif not isinstance(unit, str) or not unit.strip():
                        raise ValueError(f"{path}.{key}: a unit is a non-empty string")
        return value

    @model_validator(mode="after")
    def _needs_dc_and_data(self) -> SubmissionRequest:
        if not self.update_metadata_only:
            if not self.dc:
                raise ValueError("dc is required (titles, creators)")
            if not self.data_sources:
                raise ValueError("data_sources is required (where the files are)")
        unknown = set(self.services) - KNOWN_SERVICES
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}")
        return self


class MetadataUpdateRequest(SubmissionRequest):
    """An `/update/<source_id>` body: new metadata for the same data, so no `data_sources`.

    mdf-connect-client's `submit_dataset_metadata_update` strips `data_sources`, `test`,
    `update` and `update_metadata_only` from what it sends; the route implies the last.
    """

    update_metadata_only: bool = True

    @model_validator(mode="before")
    @classmethod
    def _metadata_only(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**value, "update_metadata_only": True}
        return value


KNOWN_SERVICES = frozenset({"mdf_search", "mdf_publish", "citrine", "mrr", "webhook", "peer"})


def sandbox_source_name(source_name: str, test: bool) -> str:
    """Test submissions live under `_test_<name>`, as in MDF, so they never collide."""
    if test and not source_name.startswith("_test_"):
        return f"_test_{source_name}"
    return source_name


def overall_state(steps: Sequence[StepStatus]) -> Literal["ACTIVE", "SUCCEEDED", "FAILED"]:
    """One word for a submission: still running, finished, or failed."""
    codes = [s.code for s in steps]
    if any(code in _FAILED for code in codes):
        return "FAILED"
    if all(code in _DONE for code in codes):
        return "SUCCEEDED"
    return "ACTIVE"


def display_status(
    source_id: str, submitter: str, submitted: datetime, steps: Sequence[StepStatus]
) -> str:
    """The human summary mdf-connect-client prints, one line per step."""
    names = dict(STEPS)
    lines = [f"Status of {source_id} (submitted by {submitter} on {submitted:%Y-%m-%d %H:%M} UTC)"]
    for step in steps:
        text = CODES[step.code]
        if step.detail:
            text = f"{text}: {step.detail}"
        lines.append(f"{names.get(step.step, step.step)}: {text}")
    return "\n".join(lines)


def check_acl(values: Sequence[str], *, field: str) -> list[str]:
    """MDF ACLs: `public` or principal URNs / bare ids; at least one entry."""
    if not values:
        raise InvalidInput("an ACL needs at least one entry", field=field)
    return [str(v) for v in values]


def merge_blocks(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge record blocks: dicts merge, everything else from `extra` wins."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_blocks(out[key], value)
        else:
            out[key] = value
    return out

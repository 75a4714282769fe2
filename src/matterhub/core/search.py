"""Globus Search v1 documents: requests, results, ingest and tasks (shared by server and client)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MAX_RESULTS",
    "GBoost",
    "GFacet",
    "GFilter",
    "GIngest",
    "GMetaEntry",
    "GScrollRequest",
    "GSearchRequest",
    "GSort",
    "GTask",
    "HistogramRange",
]

# Globus caps offset + limit at 10,000; beyond that, clients must scroll.
MAX_RESULTS = 10_000


class _Doc(BaseModel):
    # Globus ignores keys it does not know (e.g. "@datatype", "@version"); so do we.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class GFilter(_Doc):
    """A filter on one field; `exists` and `not` are MatterHub extensions."""

    type: Literal["match_any", "match_all", "range", "exists", "not"]
    field_name: str | None = None
    values: list[Any] = Field(default_factory=list)
    filter: GFilter | None = Field(default=None, description="The negated filter, for type 'not'.")
    post_filter: bool = False


class HistogramRange(_Doc):
    """Bounds of a numeric or date histogram."""

    low: Any
    high: Any


class GFacet(_Doc):
    """A facet: term counts, histograms or a single statistic."""

    name: str | None = None
    field_name: str
    type: Literal["terms", "date_histogram", "numeric_histogram", "sum", "avg"] = "terms"
    size: int = Field(default=10, ge=1, le=1000)
    date_interval: str | None = None
    histogram_range: HistogramRange | None = None
    missing: Any = None


class GBoost(_Doc):
    """Multiply scores of entries with a value at `field_name`."""

    field_name: str
    factor: float = Field(gt=0, le=10)


class GSort(_Doc):
    """Sort by a field instead of relevance."""

    field_name: str
    order: Literal["asc", "desc"] = "asc"


class GSearchRequest(_Doc):
    """The body of POST /v1/index/<id>/search."""

    q: str | None = None
    advanced: bool = False
    limit: int = Field(default=10, ge=0)
    offset: int = Field(default=0, ge=0)
    filters: list[GFilter] = Field(default_factory=list)
    post_facet_filters: list[GFilter] = Field(default_factory=list)
    facets: list[GFacet] = Field(default_factory=list)
    boosts: list[GBoost] = Field(default_factory=list)
    sort: list[GSort] = Field(default_factory=list)
    bypass_visible_to: bool = False
    result_format_version: str = "2019-08-27"

    @field_validator("sort", mode="before")
    @classmethod
    def _one_sort(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class GScrollRequest(_Doc):
    """The body of POST /v1/index/<id>/scroll."""

    q: str | None = None
    advanced: bool = False
    limit: int = Field(default=10, ge=1, le=MAX_RESULTS)
    marker: str | None = None
    filters: list[GFilter] = Field(default_factory=list)
    bypass_visible_to: bool = False


class GMetaEntry(_Doc):
    """One entry to ingest: a subject, an optional entry id, who may see it, and the content."""

    subject: str = Field(min_length=1)
    id: str | None = Field(default=None, description="The entry id; null is the default entry.")
    visible_to: list[str] = Field(min_length=1)
    content: dict[str, Any]


class GMetaList(_Doc):
    """Many entries."""

    gmeta: list[GMetaEntry]


class GIngest(_Doc):
    """The body of POST /v1/index/<id>/ingest."""

    ingest_type: Literal["GMetaEntry", "GMetaList"]
    ingest_data: dict[str, Any]


class GTask(_Doc):
    """A Globus Search task document."""

    task_id: str
    state: Literal["CREATING", "PENDING", "PROGRESS", "SUCCESS", "FAILED"]
    task_type: str
    index_id: str
    state_description: str
    message: str | None = None
    additional_details: dict[str, Any] | None = None
    creation_date: str
    completion_date: str | None = None

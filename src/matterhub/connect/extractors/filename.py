"""MDF's `filename` index: fields taken from file names with the submission's regexes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
)
from matterhub.connect.extractors.mapping import index_options, map_item

__all__ = ["FilenameExtractor", "compile_patterns"]

_MAX_PATTERN = 1000


def compile_patterns(mapping: Mapping[str, str]) -> tuple[dict[str, re.Pattern[str]], list[str]]:
    """The mapping's regexes compiled; a bad one is reported by field, the others still run."""
    patterns: dict[str, re.Pattern[str]] = {}
    problems: list[str] = []
    for field, pattern in mapping.items():
        if len(pattern) > _MAX_PATTERN:
            problems.append(f"index.filename.mapping.{field}: pattern longer than {_MAX_PATTERN}")
            continue
        try:
            patterns[field] = re.compile(pattern)
        except re.error as exc:
            problems.append(f"index.filename.mapping.{field}: bad regex: {exc}")
    return patterns, problems


def _value(match: re.Match[str]) -> Any:
    """MDF keeps the whole match; a group named `value` (or a single group) narrows it."""
    if "value" in match.re.groupindex:
        return match.group("value")
    if match.re.groups == 1:
        return match.group(1)
    return match.group()


class FilenameExtractor(Extractor):
    """Every file's name (or, with `match_path`, its path in the dataset) against
    `index.filename.mapping` = `{"mdf.field": "regex"}`; runs only when that index is given."""

    name = "filename"
    version = "0.1.0"
    extra = ""
    priority = 1  # the file's content says more than its name: every other extractor wins
    needs_index = "filename"

    def accepts(self, file: StagedFile) -> bool:
        """Every file (the pipeline only runs this extractor when a filename index is set)."""
        return True

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """The mapped fields, numbers cast; N/A values and non-matching patterns left out."""
        mapping, na, options = index_options(context.index, "filename")
        patterns, problems = compile_patterns(mapping)
        file = group.files[0]
        subject = file.relpath if options.get("match_path") else file.name
        found: dict[str, Any] = {}
        for field, pattern in patterns.items():
            match = pattern.search(subject)
            if match is not None and _value(match) is not None:
                found[field] = _value(match)
        record = map_item(found, {field: field for field in found}, na)
        if problems:
            record[WARNINGS_KEY] = problems
        return record

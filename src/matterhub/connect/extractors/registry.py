"""Load extractor plugins and run them over a dataset's files: group, extract, merge."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    DerivedFile,
    ExtractionContext,
    Extractor,
    Record,
    StagedFile,
    clean,
    dict_merge,
)
from matterhub.connect.extractors.generic import GenericExtractor
from matterhub.connect.extractors.pool import ExtractorPool, Outcome, Task, default_pool
from matterhub.core.errors import InvalidInput

__all__ = ["ENTRY_POINT_GROUP", "ExtractionResult", "load_extractors", "run_extractors"]

ENTRY_POINT_GROUP = "matterhub.extractors"
log = logging.getLogger(__name__)


@dataclass
class ExtractionResult:
    """Merged MDF record blocks (one per group or per row), per-file warnings and citations."""

    records: list[Record] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    citations: dict[str, list[str]] = field(default_factory=dict)
    derived: list[DerivedFile] = field(default_factory=list)


def load_extractors(names: Iterable[str] | None = None) -> list[Extractor]:
    """Instantiate the plugins of the `matterhub.extractors` entry point group (all, or `names`)."""
    wanted = None if names is None else set(names)
    found: dict[str, Extractor] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            found[ep.name] = ep.load()()
        except Exception as exc:  # one broken plugin must not disable the others
            log.warning("extractor plugin %s failed to load: %s", ep.name, exc)
    missing = (wanted or set()) - set(found)
    if missing:
        raise InvalidInput(
            f"unknown extractor(s): {', '.join(sorted(missing))}",
            field="extraction_config.extractors",
        )
    return [found[name] for name in sorted(found, key=lambda n: (n != "generic", n))]


class _Groups:
    """Union-find over relpaths: files that any extractor groups together share one record."""

    def __init__(self, files: Sequence[StagedFile]) -> None:
        self.parent = {f.relpath: f.relpath for f in files}

    def find(self, item: str) -> str:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, items: Sequence[str]) -> None:
        roots = [self.find(i) for i in items]
        for root in roots[1:]:
            self.parent[root] = roots[0]


def _plan(
    files: Sequence[StagedFile], extractors: Sequence[Extractor], context: ExtractionContext
) -> tuple[list[Task], dict[str, list[str]], list[dict[str, str]]]:
    """The extractor calls to make and the record groups (root → relpaths) they belong to."""
    tasks: list[Task] = []
    warns: list[dict[str, str]] = []
    groups = _Groups(files)
    derive = bool(context.config.get("previews", False))
    for extractor in extractors:
        if extractor.needs_index and extractor.needs_index not in context.index:
            continue
        try:
            found = list(extractor.group(files))
        except Exception as exc:
            warns.append({"path": "", "extractor": extractor.name, "message": f"group: {exc}"})
            continue
        for group in found:
            tasks.append(Task(extractor, group, context, derive))
            if not context.config.get("group_by_dir"):
                groups.union([f.relpath for f in group.files])
    if context.config.get("group_by_dir"):
        by_dir: dict[str, list[str]] = defaultdict(list)
        for f in files:
            by_dir[f.parent].append(f.relpath)
        for folder in by_dir.values():
            groups.union(folder)
    members: dict[str, list[str]] = defaultdict(list)
    for f in files:
        members[groups.find(f.relpath)].append(f.relpath)
    return tasks, members, warns


def _records(base: Record, lists: list[list[Record]], files: list[dict[str, Any]]) -> list[Record]:
    rows = [row for rows in lists for row in rows]
    if not rows:
        return [dict_merge(base, {"files": files})]
    return [dict_merge(dict_merge(base, row), {"files": files}) for row in rows]


def run_extractors(
    files: Sequence[StagedFile],
    context: ExtractionContext,
    *,
    extractors: Sequence[Extractor] | None = None,
    pool: ExtractorPool | None = None,
) -> ExtractionResult:
    """Group the files, run every applicable extractor under the time limit and merge per group.

    Never raises for a bad file or a broken plugin: those become `warnings` entries.
    """
    if extractors is None:
        extractors = load_extractors(context.config.get("extractors"))
    generic = next((e for e in extractors if isinstance(e, GenericExtractor)), GenericExtractor())
    science = [e for e in extractors if not isinstance(e, GenericExtractor)]
    result = ExtractionResult()
    by_path = {f.relpath: f for f in files}
    tasks, members, result.warnings = _plan(files, science, context)
    if pool is None:
        pool = default_pool(str(context.config.get("isolation", "process")))
    outcomes = pool.run(tasks)

    root_of = {path: root for root, paths in members.items() for path in paths}
    per_root: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        per_root[root_of[outcome.task.group.files[0].relpath]].append(outcome)
    used: dict[str, Extractor] = {}
    for root, paths in members.items():
        try:
            infos = generic.extract_files([by_path[p] for p in sorted(paths)])
        except OSError as exc:
            result.warnings.append({"path": root, "extractor": "generic", "message": str(exc)})
            infos = [
                {"filename": by_path[p].name, "path": p, "data_type": "unreadable"} for p in paths
            ]
        base: Record = {}
        lists: list[list[Record]] = []
        ordered = sorted(per_root.get(root, []), key=lambda o: o.task.extractor.priority)
        for outcome in ordered:
            task = outcome.task
            if outcome.error is not None:
                result.warnings.append(
                    {
                        "path": task.group.key,
                        "extractor": task.extractor.name,
                        "message": outcome.error,
                    }
                )
                continue
            used[task.extractor.name] = task.extractor
            seen = {(d.source, d.name) for d in result.derived}
            result.derived.extend(d for d in outcome.derived if (d.source, d.name) not in seen)
            value = outcome.result
            notes = list(outcome.notes)
            if isinstance(value, dict) and WARNINGS_KEY in value:
                value = dict(value)
                notes = list(value.pop(WARNINGS_KEY) or []) + notes
            name = task.extractor.name
            for message in notes:
                result.warnings.append(
                    {"path": task.group.key, "extractor": name, "message": str(message)}
                )
            value = clean(value)
            if isinstance(value, list):
                lists.append([v for v in value if isinstance(v, dict)])
            elif isinstance(value, dict):
                base = dict_merge(base, value)
        result.records.extend(_records(base, lists, infos))
    result.citations = {name: ext.citations() for name, ext in sorted(used.items())}
    return result

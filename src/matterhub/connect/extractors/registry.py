"""Load extractor plugins and run them over a dataset's files: group, extract, merge."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    DerivedFile,
    ExtractionContext,
    Extractor,
    Record,
    StagedFile,
    StagedTree,
    clean,
    dict_merge,
)
from matterhub.connect.extractors.generic import GenericExtractor
from matterhub.connect.extractors.pool import ExtractorPool, Outcome, Task, default_pool
from matterhub.core.errors import InvalidInput
from matterhub.plugins import iter_plugins

__all__ = [
    "ENTRY_POINT_GROUP",
    "GROUPS_PER_PART",
    "ExtractionResult",
    "iter_extractors",
    "load_extractors",
    "run_extractors",
]

ENTRY_POINT_GROUP = "matterhub.extractors"
# Record groups extracted, merged and handed on at a time (`iter_extractors`).
GROUPS_PER_PART = 2000
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
    for name, plugin in iter_plugins(ENTRY_POINT_GROUP):  # a broken one is logged and skipped
        if wanted is not None and name not in wanted:
            continue
        try:
            found[name] = plugin()
        except Exception as exc:  # one broken plugin must not disable the others
            log.warning("extractor plugin %s failed to start: %s", name, exc)
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
    files: Sequence[StagedFile] | StagedTree,
    context: ExtractionContext,
    *,
    extractors: Sequence[Extractor] | None = None,
    pool: ExtractorPool | None = None,
) -> ExtractionResult:
    """Group the files, run every applicable extractor under the time limit and merge per group.

    Never raises for a bad file or a broken plugin: those become `warnings` entries. All the
    results at once; `iter_extractors` gives them in parts (what Connect's pipeline uses).
    """
    result = ExtractionResult()
    for part in iter_extractors(files, context, extractors=extractors, pool=pool):
        result.records.extend(part.records)
        result.warnings.extend(part.warnings)
        result.derived.extend(part.derived)
        result.citations = part.citations
    return result


def iter_extractors(
    files: Sequence[StagedFile] | StagedTree,
    context: ExtractionContext,
    *,
    extractors: Sequence[Extractor] | None = None,
    pool: ExtractorPool | None = None,
    chunk: int = GROUPS_PER_PART,
) -> Iterator[ExtractionResult]:
    """`run_extractors` in parts of at most `chunk` record groups, in order: each part holds the
    records, warnings and derived files of its groups (the citations so far), and its extractor
    calls run only when the part is asked for.

    A `StagedTree` is planned a chunk of whole folders at a time when every extractor groups
    within folders (`Extractor.folder_local`), so memory stays flat in the number of files; a
    list is planned whole. Each part carries the grouping warnings of its chunk.
    """
    if extractors is None:
        extractors = load_extractors(context.config.get("extractors"))
    generic = next((e for e in extractors if isinstance(e, GenericExtractor)), GenericExtractor())
    science = [e for e in extractors if not isinstance(e, GenericExtractor)]
    if pool is None:
        pool = default_pool(str(context.config.get("isolation", "process")))
    if not isinstance(files, StagedTree):
        chunks: Iterable[Sequence[StagedFile]] = [files]
    elif all(e.folder_local for e in science):
        chunks = files.chunks()
    else:
        chunks = [list(files)]
    used: dict[str, Extractor] = {}
    for files_chunk in chunks:
        yield from _parts(files_chunk, context, science, generic, pool, used, chunk)


def _parts(
    files: Sequence[StagedFile],
    context: ExtractionContext,
    science: Sequence[Extractor],
    generic: GenericExtractor,
    pool: ExtractorPool,
    used: dict[str, Extractor],
    chunk: int,
) -> Iterator[ExtractionResult]:
    """The parts of one planned set of files (all of a list, or a chunk of whole folders)."""
    by_path = {f.relpath: f for f in files}
    tasks, members, first_warnings = _plan(files, science, context)
    root_of = {path: root for root, paths in members.items() for path in paths}
    tasks_of: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        tasks_of[root_of[task.group.files[0].relpath]].append(task)
    del tasks, root_of
    roots = list(members)
    for start in range(0, max(len(roots), 1), max(chunk, 1)):
        part = ExtractionResult(warnings=first_warnings if start == 0 else [])
        batch = roots[start : start + chunk]
        owners = [(root, t) for root in batch for t in tasks_of.pop(root, [])]
        outcomes = pool.run([t for _root, t in owners])
        per_root: dict[str, list[Outcome]] = defaultdict(list)
        for (root, _task), outcome in zip(owners, outcomes, strict=True):
            per_root[root].append(outcome)
        del owners, outcomes
        for root in batch:
            _merge_group(
                root, members.pop(root), per_root.pop(root, []), by_path, generic, part, used
            )
        part.citations = {name: ext.citations() for name, ext in sorted(used.items())}
        yield part


def _merge_group(
    root: str,
    paths: list[str],
    outcomes: list[Outcome],
    by_path: dict[str, StagedFile],
    generic: GenericExtractor,
    result: ExtractionResult,
    used: dict[str, Extractor],
) -> None:
    """One record group's outcomes merged into its records (added to `result`)."""
    try:
        infos = generic.extract_files([by_path[p] for p in sorted(paths)])
    except OSError as exc:
        result.warnings.append({"path": root, "extractor": "generic", "message": str(exc)})
        infos = [{"filename": by_path[p].name, "path": p, "data_type": "unreadable"} for p in paths]
    base: Record = {}
    lists: list[list[Record]] = []
    for outcome in sorted(outcomes, key=lambda o: o.task.extractor.priority):
        task = outcome.task
        if outcome.error is not None:
            result.warnings.append(
                {"path": task.group.key, "extractor": task.extractor.name, "message": outcome.error}
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

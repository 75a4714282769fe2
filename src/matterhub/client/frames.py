"""ML-ready loading: search results as DataFrames, and whole datasets with keys and splits.

`load_dataset` reads a dataset's records once and keeps them under the cache folder keyed by
hub and versioned source_id (published versions never change), so later loads are local.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.client.execute import SearchMethods, get_path
from matterhub.client.query import QueryBuilder

__all__ = ["cache_dir", "dataset_records", "load_dataset", "to_dataframe"]


def _pandas() -> Any:
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("DataFrames need pandas: pip install 'matterhub[ml]' or pandas") from None
    return pandas


def to_dataframe(results: Any) -> Any:
    """Records (a list, one record, or `(results, info)`) as a DataFrame with dotted columns."""
    if isinstance(results, tuple):
        results = results[0]
    if isinstance(results, dict):
        results = [results]
    return _pandas().json_normalize(list(results), sep=".")


def cache_dir() -> Path:
    """`$MATTERHUB_CACHE_DIR`, else `$XDG_CACHE_HOME/matterhub`, else `~/.cache/matterhub`."""
    explicit = os.environ.get("MATTERHUB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "matterhub"


class _Finder(SearchMethods):
    """A bare query runner over a client (no Forge helpers needed here)."""

    def __init__(self, client: HTTPCore, index: str) -> None:
        QueryBuilder.__init__(self)
        self.client = client  # type: ignore[assignment]
        self.index = self.index_uuid = index
        self.scroll_field = "mdf.scroll_id"


def dataset_records(
    client: HTTPCore, source_id: str, *, index: str = "mdf", refresh: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the version document, its records sorted by scroll_id), cached by versioned source_id."""
    version: dict[str, Any] = client._json("GET", f"/api/datasets/{source_id}")
    sid = str(version["source_id"])
    hub = hashlib.sha256(client.base_url.encode()).hexdigest()[:12]
    folder = cache_dir() / "datasets" / hub / sid
    cached = folder / "records.jsonl"
    if cached.exists() and not refresh:
        records = [json.loads(line) for line in cached.read_text("utf-8").splitlines() if line]
        return version, records
    finder = _Finder(client, index)
    finder.match_field("mdf.source_id", sid).match_field("mdf.resource_type", "record")
    records = sorted(finder.aggregate(), key=lambda r: r.get("mdf", {}).get("scroll_id", 0))
    if version.get("state") == "published":  # drafts change; only frozen versions are cached
        folder.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
        os.replace(tmp, cached)
    return version, records


def _foundry(version: dict[str, Any]) -> dict[str, Any]:
    block = (version.get("document") or {}).get("projects", {}).get("foundry") or {}
    return block if isinstance(block, dict) else {}


def _declared_keys(foundry: dict[str, Any]) -> tuple[list[str], list[str]]:
    inputs: list[str] = []
    targets: list[str] = []
    for entry in foundry.get("keys") or []:
        names = entry.get("key") or []
        names = [names] if isinstance(names, str) else list(names)
        (targets if entry.get("type") == "target" else inputs).extend(names)
    return inputs, targets


def _split_of(record: dict[str, Any], splits: list[dict[str, Any]]) -> str | None:
    paths = [str(f.get("path") or f.get("filename") or "") for f in record.get("files", [])]
    for split in splits:
        where = str(split.get("path") or "").strip("/")
        if where and any(p == where or p.startswith(where + "/") for p in paths):
            return str(split.get("label") or split.get("type"))
    return None


def load_dataset(
    client: HTTPCore,
    source_id: str,
    *,
    keys: list[str] | None = None,
    split: str | None = None,
    as_arrays: bool = False,
    index: str = "mdf",
    refresh: bool = False,
) -> Any:
    """A dataset's records as a DataFrame: one row per record, one column per key.

    `keys` defaults to the Foundry block's input and target keys (else every field). When the
    dataset declares splits (`projects.foundry.splits`: files or folders per split) a `split`
    column says which each record is in, and `split="train"` keeps only that one.
    `as_arrays=True` returns `(inputs, targets)` NumPy arrays of the declared keys instead.
    """
    version, records = dataset_records(client, source_id, index=index, refresh=refresh)
    foundry = _foundry(version)
    inputs, targets = _declared_keys(foundry)
    chosen = keys if keys is not None else (inputs + targets or None)
    splits = list(foundry.get("splits") or [])
    if split is not None:
        if not splits:
            raise ValueError(f"{version['source_id']} declares no splits")
        labels = {str(s.get("label") or s.get("type")) for s in splits}
        if split not in labels:
            raise ValueError(f"no split {split!r}; {version['source_id']} has {sorted(labels)}")
    pandas = _pandas()
    if chosen is None:
        frame = to_dataframe(records)
    else:
        frame = pandas.DataFrame(
            [{key: get_path(r, key) for key in chosen} for r in records], columns=chosen
        )
    if splits:
        frame["split"] = [_split_of(r, splits) for r in records]
        if split is not None:
            frame = frame[frame["split"] == split].reset_index(drop=True)
    frame.attrs["source_id"] = version["source_id"]
    if as_arrays:
        if not inputs and keys is None:
            raise ValueError("as_arrays needs keys= or declared input keys")
        x_keys = inputs if keys is None else [k for k in keys if k not in targets]
        return frame[x_keys].to_numpy(), frame[targets].to_numpy() if targets else None
    return frame

"""The embedded search backend: one tantivy index on disk per MatterHub index."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import tantivy
from pydantic import Field
from tantivy import Index, Occur, Query, SchemaBuilder

from matterhub.core.errors import BadRequest, MatterHubError, SearchError
from matterhub.core.search import GFacet, GSort
from matterhub.plugins import PluginSettings
from matterhub.search.backend import Hit, Page, SearchBackend, SearchSpec
from matterhub.search.documents import Prepared, numeric_view
from matterhub.search.translate import Translator

__all__ = ["TantivyIndex", "TantivySettings"]

_NUMERIC = {"long", "double"}
_SORTABLE = {"long", "double", "date", "boolean"}  # what top_hits sorts (text it ignores)
_FIXED_INTERVALS = {"second": "1s", "minute": "1m", "hour": "1h", "day": "1d", "week": "7d"}
_CALENDAR = {"month": 7, "year": 4, "quarter": 7}


def _schema() -> tantivy.Schema:
    sb = SchemaBuilder()
    sb.add_text_field("key", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("subject", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field(
        "entry_id", stored=True, fast=True, tokenizer_name="raw", index_option="basic"
    )
    sb.add_text_field("visible_to", tokenizer_name="raw", index_option="basic")
    sb.add_unsigned_field("seq", indexed=True, fast=True)
    sb.add_bytes_field("source", stored=True, indexed=False)
    sb.add_text_field("all", tokenizer_name="words")
    sb.add_json_field("t", tokenizer_name="words")
    sb.add_json_field("r", fast=True, tokenizer_name="raw", index_option="basic")
    # One whitespace-separated text per entry: a single call instead of one per keyword.
    sb.add_text_field("kv", tokenizer_name="keywords", index_option="basic")
    return sb.build()


class TantivySettings(PluginSettings):
    """The tantivy backend's settings (`MATTERHUB_SEARCH_TANTIVY_<FIELD>`)."""

    heap_mb: int = Field(
        default=128,
        ge=16,
        le=64 * 1024,
        description=(
            "Memory of each index's writer in MiB, shared by its threads: more holds more "
            "entries between segment flushes during a large ingest; it is also the ceiling of "
            "what indexing adds to the server's memory."
        ),
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Indexing threads of each index's writer.",
    )


class TantivyIndex(SearchBackend):
    """A tantivy index in `path`; the process holding it is its only writer (tantivy's rule)."""

    settings_model = TantivySettings
    text_sort_limit = 10_000
    """Most matches a sort on a text field orders (it reads every match's values)."""

    @classmethod
    def open(cls, location: Path, settings: PluginSettings) -> TantivyIndex:
        """The index in folder `location`, with the writer's memory and threads of `settings`."""
        assert isinstance(settings, TantivySettings)
        return cls(location, heap_bytes=settings.heap_mb * 1024 * 1024, threads=settings.threads)

    def __init__(
        self, path: Path, *, heap_bytes: int = 128 * 1024 * 1024, threads: int = 2
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._index = Index(_schema(), path=str(path), reuse=True)
        except (OSError, ValueError) as exc:
            raise SearchError(f"cannot open search index at {path}: {exc}") from exc
        keywords = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
        self._index.register_tokenizer("keywords", keywords)
        # Word characters with underscores kept, like Elasticsearch's standard analyzer keeps
        # `src_017_simulation` one token; `documents.tokenize` mirrors it for the keyword field.
        words = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"\w+"))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.remove_long(40))
            .build()
        )
        self._index.register_tokenizer("words", words)
        self._heap = heap_bytes
        self._threads = threads
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()
        self._fields_file = path / "fields.json"
        self._fields: dict[str, set[str]] = self._load_fields()
        self._pending_fields: dict[str, set[str]] = defaultdict(set)
        self._added: set[str] = set()  # keys added since the last commit
        self._next_seq = self._max_seq() + 1
        self._translator = Translator(self._index, lambda: self._fields)

    # writes ----------------------------------------------------------------------------------

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(self._heap, self._threads)
            except ValueError as exc:
                raise SearchError(
                    f"the search index {self.path} is locked by another process"
                ) from exc
        return self._writer

    def upsert(self, entries: Sequence[Prepared]) -> None:
        writer = self._w()
        present = self._maybe_present([entry.key for entry in entries])
        for entry in entries:
            key = entry.key
            # A delete per entry costs as much as a third of indexing it: skip it when the key
            # is certainly absent (neither committed nor added since the last commit).
            if present is None or key in present or key in self._added:
                writer.delete_documents_by_term("key", key)
            self._added.add(key)
            # One JSON text per document: tantivy parses it with the GIL released, instead of
            # a dozen Python calls building a Document field by field.
            head = orjson.dumps(
                {
                    "key": key,
                    "subject": entry.subject,
                    "entry_id": entry.entry_id or "",
                    "visible_to": entry.visible_to,
                    "seq": self._next_seq,
                    "source": base64.b64encode(entry.source.encode()).decode(),
                    "all": entry.all_text,
                    **({"kv": entry.keywords} if entry.keywords else {}),
                }
            ).decode()
            self._next_seq += 1
            writer.add_json(f'{head[:-1]},"t":{entry.indexed},"r":{entry.indexed}}}')
            for path, kind in entry.fields.items():
                self._pending_fields[path].add(kind)

    def _maybe_present(self, keys: list[str]) -> set[str] | None:
        """Of these keys, those that may be in the committed index; None: any of them may be."""
        searcher = self._index.searcher()
        if searcher.num_docs == 0 or not keys:
            return set()
        query = Query.term_set_query(self._index.schema, "key", keys)
        if _count(searcher.search(query, 1, count=True)) == 0:
            return set()
        return None

    def delete_subject(self, subject: str) -> None:
        self._w().delete_documents_by_term("subject", subject)

    def delete_entry(self, subject: str, entry_id: str | None) -> None:
        self._w().delete_documents_by_term("key", f"{subject}\x00{entry_id or ''}")

    def delete_matching(self, spec: SearchSpec) -> int:
        query = self._query(spec, post=False)
        count = _count(self._index.searcher().search(query, 1, count=True))
        self._w().delete_documents_by_query(query)
        return count

    def commit(self) -> None:
        with self._lock:
            self._w().commit()
            self._index.reload()
            self._added.clear()
            if self._pending_fields:
                for path, kinds in self._pending_fields.items():
                    self._fields.setdefault(path, set()).update(kinds)
                self._pending_fields.clear()
                self._save_fields()

    def rollback(self) -> None:
        if self._writer is not None:
            self._writer.rollback()
        self._pending_fields.clear()
        self._added.clear()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    # reads -----------------------------------------------------------------------------------

    def _query(self, spec: SearchSpec, *, post: bool) -> Query:
        clauses: list[tuple[Occur, Query]] = [(Occur.Must, self._translator.node(spec.tree))]
        for i, flt in enumerate(spec.filters):
            clauses.append((Occur.Must, self._translator.filter(flt, position=i)))
        if post:
            for i, flt in enumerate(spec.post_filters):
                clauses.append((Occur.Must, self._translator.filter(flt, position=i)))
        for boost in spec.boosts:
            exists = Query.exists_query(f"r.{boost.field_name}", json_subpaths=True)
            clauses.append((Occur.Should, Query.boost_query(exists, boost.factor)))
        if spec.principals is not None:
            clauses.append((Occur.Must, self._translator.principals(spec.principals)))
        return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)

    def search(self, spec: SearchSpec) -> Page:
        query = self._query(spec, post=True)
        searcher = self._index.searcher()
        try:
            if spec.sort:
                hits, total = self._sorted(searcher, query, spec)
            else:
                # tantivy refuses a limit of 0; a count-only search asks for one hit and drops it.
                result = searcher.search(query, max(spec.limit, 1), count=True, offset=spec.offset)
                total = _count(result)
                pairs = result.hits[: spec.limit]
                hits = [self._hit(searcher.doc(address)) for _score, address in pairs]
            facets = self._facets(searcher, spec) if spec.facets else []
        except ValueError as exc:
            raise BadRequest(f"search failed: {exc}", field="q") from None
        except (KeyboardInterrupt, SystemExit, MatterHubError):
            raise
        except BaseException as exc:  # a panic inside tantivy surfaces as a BaseException
            raise SearchError(f"the search engine failed on this query: {exc}") from None
        return Page(total=total, hits=hits, facets=facets, has_next=spec.offset + len(hits) < total)

    def scroll(self, spec: SearchSpec, marker: str | None) -> Page:
        after = _decode_marker(marker) if marker else -1
        window = Query.range_query(
            self._index.schema, "seq", tantivy.FieldType.Unsigned, after + 1, 2**63
        )
        query = Query.boolean_query(
            [(Occur.Must, self._query(spec, post=True)), (Occur.Must, window)]
        )
        searcher = self._index.searcher()
        result = searcher.search(
            query, spec.limit, count=True, order_by_field="seq", order=tantivy.Order.Asc
        )
        hits = []
        last = after
        for seq, address in result.hits:
            hits.append(self._hit(searcher.doc(address)))
            last = int(seq)
        remaining = _count(result)
        more = remaining > len(hits)
        return Page(
            total=remaining,
            hits=hits,
            marker=_encode_marker(last) if more else None,
            has_next=more,
        )

    def entries(self, subject: str, principals: frozenset[str] | None) -> list[Hit]:
        query = Query.term_query(self._index.schema, "subject", subject)
        if principals is not None:
            query = Query.boolean_query(
                [(Occur.Must, query), (Occur.Must, self._translator.principals(principals))]
            )
        searcher = self._index.searcher()
        result = searcher.search(query, 100, count=False)
        return [self._hit(searcher.doc(address)) for _score, address in result.hits]

    def mapping(self) -> dict[str, str]:
        out = {}
        for path, kinds in sorted(self._fields.items()):
            if kinds <= _NUMERIC:
                out[path] = "double" if "double" in kinds else "long"
            else:
                out[path] = next(iter(kinds)) if len(kinds) == 1 else "string"
        return out

    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    # helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _hit(doc: tantivy.Document) -> Hit:
        subject = str(doc.get_first("subject"))
        entry_id = doc.get_first("entry_id") or None
        source: Any = doc.get_first("source")
        return Hit(subject, entry_id, bytes(source).decode())

    def _sorted(
        self, searcher: tantivy.Searcher, query: Query, spec: SearchSpec
    ) -> tuple[list[Hit], int]:
        if any(self._fields.get(s.field_name, set()) - _SORTABLE for s in spec.sort):
            return self._sorted_here(searcher, query, spec)
        total = _count(searcher.search(query, 1, count=True))
        if spec.limit == 0 or spec.offset >= total:
            # top_hits panics on a `from` past the last hit (tantivy slices its hits with it);
            # a page past the end is empty, as it is for unsorted searches.
            return [], total
        return self._by_keys(searcher, query, spec.sort, spec.offset, spec.limit), total

    def _by_keys(
        self,
        searcher: tantivy.Searcher,
        query: Query,
        sort: Sequence[GSort],
        offset: int,
        limit: int,
    ) -> list[Hit]:
        """`limit` hits from `offset` of `query` in the order of `sort` (numbers and dates).

        top_hits orders the entries that have the first key (it would put those without it
        first); the entries without it follow, ordered by the other keys, then by ingest.
        """
        if not sort:
            result = searcher.search(
                query,
                limit,
                count=False,
                order_by_field="seq",
                order=tantivy.Order.Asc,
                offset=offset,
            )
            return [self._hit(searcher.doc(address)) for _seq, address in result.hits]
        has = Query.exists_query(f"r.{sort[0].field_name}", json_subpaths=False)
        having = Query.boolean_query([(Occur.Must, query), (Occur.Must, has)])
        present = _count(searcher.search(having, 1, count=True))
        hits: list[Hit] = []
        if offset < present:
            hits = self._top_hits(searcher, having, sort, offset, min(limit, present - offset))
        if offset + limit > present:
            lacking = Query.boolean_query([(Occur.Must, query), (Occur.MustNot, has)])
            start = max(0, offset - present)
            hits += self._by_keys(searcher, lacking, sort[1:], start, limit - len(hits))
        return hits

    def _top_hits(
        self,
        searcher: tantivy.Searcher,
        query: Query,
        sort: Sequence[GSort],
        offset: int,
        limit: int,
    ) -> list[Hit]:
        # tantivy sorts on JSON paths only inside aggregations: top_hits gives the page's keys.
        aggs = {
            "page": {
                "top_hits": {
                    "size": limit,
                    "from": offset,
                    "sort": [{f"r.{s.field_name}": s.order} for s in sort],
                    "docvalue_fields": ["subject", "entry_id"],
                }
            }
        }
        rows = searcher.aggregate(query, aggs)["page"]["hits"]
        hits = []
        for row in rows:
            values = row["docvalue_fields"]
            key = f"{values['subject'][0]}\x00{(values.get('entry_id') or [''])[0]}"
            found = searcher.search(
                Query.term_query(self._index.schema, "key", key), 1, count=False
            )
            if found.hits:
                hits.append(self._hit(searcher.doc(found.hits[0][1])))
        return hits

    def _sorted_here(
        self, searcher: tantivy.Searcher, query: Query, spec: SearchSpec
    ) -> tuple[list[Hit], int]:
        """A sort on a text field, which tantivy's top_hits ignores: every match's sort values
        are read (in ingest order) and ordered here, as Elasticsearch orders them — a list by
        its least value ascending and its greatest descending, entries without the field
        last. At most `text_sort_limit` matches."""
        total = _count(searcher.search(query, 1, count=True))
        if spec.limit == 0 or spec.offset >= total:
            return [], total
        if total > self.text_sort_limit:
            position, name = next(
                (i, s.field_name)
                for i, s in enumerate(spec.sort)
                if self._fields.get(s.field_name, set()) - _SORTABLE
            )
            raise BadRequest(
                f"a sort on the text field {name} takes at most {self.text_sort_limit} matches "
                f"and this search has {total}: narrow it, or sort on a number or a date",
                field=f"sort[{position}].field_name",
            )
        # Read from the stored entries: top_hits' doc values would fail on any segment that
        # lacks a sort field's column (tantivy checks them per segment).
        result = searcher.search(
            query, total, count=False, order_by_field="seq", order=tantivy.Order.Asc
        )
        paths = [_path(s.field_name) for s in spec.sort]
        rows = []
        for _seq, address in result.hits:
            doc = searcher.doc(address)
            content = orjson.loads(bytes(doc.get_first("source")))  # type: ignore[arg-type]
            content = numeric_view(content) or content  # as the `r` view indexed it
            rows.append((doc, [_values_at(content, path) for path in paths]))
        # One stable pass per key, the last key first, leaves the rows in the keys' order.
        for position in reversed(range(len(spec.sort))):
            descending = spec.sort[position].order == "desc"
            pick = max if descending else min
            present = [
                (row, pick(_sort_value(v) for v in row[1][position]))
                for row in rows
                if row[1][position]
            ]
            present.sort(key=lambda pair: pair[1], reverse=descending)
            rows = [row for row, _ in present] + [row for row in rows if not row[1][position]]
        return [self._hit(doc) for doc, _ in rows[spec.offset : spec.offset + spec.limit]], total

    def _facets(self, searcher: tantivy.Searcher, spec: SearchSpec) -> list[dict[str, Any]]:
        query = self._query(spec, post=False)
        aggs: dict[str, Any] = {}
        for i, facet in enumerate(spec.facets):
            aggs[f"f{i}"] = self._facet_agg(facet, i)
        raw = searcher.aggregate(query, aggs)
        return [self._facet_result(f, raw.get(f"f{i}", {})) for i, f in enumerate(spec.facets)]

    def _field_kinds(self, facet: GFacet, position: int) -> set[str]:
        kinds = self._fields.get(facet.field_name, set())
        needs = {
            "numeric_histogram": _NUMERIC,
            "sum": _NUMERIC,
            "avg": _NUMERIC,
            "date_histogram": {"date"},
        }
        wanted = needs.get(facet.type)
        if wanted and kinds and not kinds & wanted:
            needed = "date" if facet.type == "date_histogram" else "numeric"
            held = ", ".join(sorted(kinds))
            raise BadRequest(
                f"facet {facet.type} needs a {needed} field; {facet.field_name} holds {held}",
                field=f"facets[{position}].field_name",
            )
        return kinds

    def _facet_agg(self, facet: GFacet, position: int) -> dict[str, Any]:
        self._field_kinds(facet, position)
        field = f"r.{facet.field_name}"
        where = f"facets[{position}]"
        if facet.type == "terms":
            return {"terms": {"field": field, "size": facet.size}}
        if facet.type in ("sum", "avg"):
            return {facet.type: {"field": field}}
        if facet.type == "numeric_histogram":
            if facet.histogram_range is None:
                raise BadRequest(
                    "numeric_histogram needs histogram_range", field=f"{where}.histogram_range"
                )
            low, high = float(facet.histogram_range.low), float(facet.histogram_range.high)
            if not high > low:
                raise BadRequest(
                    "histogram_range.high must exceed low", field=f"{where}.histogram_range"
                )
            width = (high - low) / facet.size
            return {
                "histogram": {
                    "field": field,
                    "interval": width,
                    "offset": low % width,
                    "hard_bounds": {"min": low, "max": high},
                    "extended_bounds": {"min": low, "max": high - width / 2},
                    "min_doc_count": 0,
                }
            }
        interval = facet.date_interval or "year"
        if interval not in _FIXED_INTERVALS and interval not in _CALENDAR:
            raise BadRequest(
                f"date_interval must be one of {', '.join([*_FIXED_INTERVALS, *_CALENDAR])}",
                field=f"{where}.date_interval",
            )
        fixed = _FIXED_INTERVALS.get(interval, "1d")
        return {"date_histogram": {"field": field, "fixed_interval": fixed}}

    @staticmethod
    def _facet_result(facet: GFacet, raw: dict[str, Any]) -> dict[str, Any]:
        name = facet.name or facet.field_name
        if facet.type in ("sum", "avg"):
            return {"name": name, "value": raw.get("value")}
        buckets = raw.get("buckets", [])
        if facet.type == "terms":
            return {
                "name": name,
                "buckets": [{"value": b["key"], "count": b["doc_count"]} for b in buckets],
            }
        if facet.type == "numeric_histogram":
            assert facet.histogram_range is not None
            high = float(facet.histogram_range.high)
            width = (high - float(facet.histogram_range.low)) / facet.size
            out: list[dict[str, Any]] = []
            for b in buckets:
                if b["key"] >= high - width / 2 and out:
                    # Values equal to `high` land in a bucket of their own; they close the last one.
                    out[-1]["count"] += b["doc_count"]
                    continue
                out.append(
                    {"value": {"from": b["key"], "to": b["key"] + width}, "count": b["doc_count"]}
                )
            return {"name": name, "buckets": out}
        interval = facet.date_interval or "year"
        counts: dict[str, int] = {}
        for b in buckets:
            if not b["doc_count"]:
                continue
            start = datetime.fromtimestamp(b["key"] / 1000, UTC)
            label = _calendar_label(start, interval)
            counts[label] = counts.get(label, 0) + b["doc_count"]
        return {
            "name": name,
            "buckets": [{"value": k, "count": v} for k, v in sorted(counts.items())],
        }

    def _max_seq(self) -> int:
        searcher = self._index.searcher()
        if searcher.num_docs == 0:
            return 0
        result = searcher.search(
            Query.all_query(), 1, order_by_field="seq", order=tantivy.Order.Desc
        )
        return int(result.hits[0][0]) if result.hits else 0

    def _load_fields(self) -> dict[str, set[str]]:
        try:
            data = json.loads(self._fields_file.read_text())
        except FileNotFoundError:
            return {}
        return {path: set(kinds) for path, kinds in data.items()}

    def _save_fields(self) -> None:
        tmp = self._fields_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({p: sorted(k) for p, k in self._fields.items()}))
        os.replace(tmp, self._fields_file)


def _path(field_name: str) -> list[str]:
    """A field path's keys (`a.b` → a, b; a dot inside a key is written `\\.`)."""
    return [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", field_name)]


def _values_at(value: Any, path: list[str]) -> list[Any]:
    """The leaf values at `path`, lists flattened as the index flattens them."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in _values_at(item, path)]
    if not path:
        return [] if value is None or isinstance(value, dict) else [value]
    if isinstance(value, dict) and path[0] in value:
        return _values_at(value[path[0]], path[1:])
    return []


def _sort_value(value: Any) -> tuple[int, Any]:
    """Numbers before text when a field holds both, so values of one field always compare."""
    return (1, value) if isinstance(value, str) else (0, value)


def _count(result: tantivy.SearchResult) -> int:
    """The match count of a search run with count=True."""
    found: Any = result
    return int(found.count or 0)


def _calendar_label(start: datetime, interval: str) -> str:
    if interval == "year":
        start = start.replace(month=1, day=1, hour=0, minute=0, second=0)
    elif interval == "quarter":
        start = start.replace(
            month=(start.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0
        )
    elif interval == "month":
        start = start.replace(day=1, hour=0, minute=0, second=0)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_marker(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _decode_marker(marker: str) -> int:
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "seq":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("marker is not one this index gave out", field="marker") from None

"""What is particular to the tantivy backend (the behaviour every backend shares is in
tests/contract/test_search_backend.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from matterhub.core.errors import BadRequest
from matterhub.core.search import GSort
from matterhub.search.backend import SearchSpec
from matterhub.search.documents import Prepared
from matterhub.search.tantivy import TantivyIndex
from matterhub.search.tree import MatchAll


def test_a_text_sort_over_too_many_matches_is_refused_naming_the_key(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path / "i")
    try:
        index.text_sort_limit = 5  # (10,000 by default) every match's values are read to sort
        index.upsert(
            [
                Prepared(
                    {
                        "subject": f"s{i}",
                        "visible_to": ["public"],
                        "content": {"n": i, "t": f"w{i}"},
                    },
                    position=i,
                )
                for i in range(6)
            ]
        )
        index.commit()
        sort = [GSort(field_name="n"), GSort(field_name="t", order="desc")]
        spec = SearchSpec(tree=MatchAll(), principals=None, sort=sort, limit=3)
        with pytest.raises(BadRequest) as caught:
            index.search(spec)
        assert caught.value.field == "sort[1].field_name" and "at most 5" in caught.value.detail
        numeric = SearchSpec(tree=MatchAll(), principals=None, sort=sort[:1], limit=3)
        assert [h.subject for h in index.search(numeric).hits] == ["s0", "s1", "s2"]
        index.text_sort_limit = 6
        assert [h.subject for h in index.search(spec).hits] == ["s0", "s1", "s2"]
    finally:
        index.close()

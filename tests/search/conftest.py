"""A search service over a real catalog and real tantivy indexes, plus deterministic records."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.search import GTask
from matterhub.settings import Settings

ELEMENTS = ["H", "C", "N", "O", "Fe", "Cu", "Al", "Si", "Ti", "Ni"]
WORDS = ["oxide", "nitride", "alloy", "crystal", "perovskite", "catalyst", "battery", "steel"]


def make_records(n: int, *, seed: int = 7, source: str = "demo_src") -> list[dict[str, Any]]:
    """GMetaEntry dicts shaped like MDF records, all public."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        elements = sorted(set(rng.sample(ELEMENTS, rng.randint(1, 3))))
        out.append(
            {
                "subject": f"{source}.{i + 1}",
                "id": None,
                "visible_to": ["public"],
                "content": {
                    "mdf": {
                        "source_name": f"{source}_{i % 3}",
                        "resource_type": "record",
                        "scroll_id": i + 1,
                        "ingest_date": f"20{10 + i % 12:02d}-0{1 + i % 9}-15T12:00:00Z",
                    },
                    "dc": {"titles": [{"title": " ".join(rng.sample(WORDS, 3)).capitalize()}]},
                    "material": {"elements": elements, "composition": "".join(elements)},
                    "band_gap": round(rng.uniform(0, 8), 3),
                    "n_atoms": rng.randint(1, 200),
                },
            }
        )
    return out


def ingest(services: Services, records: list[dict[str, Any]], index: str = "mdf") -> GTask:
    """Ingest as the system and wait until searchable."""
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": records}}
    task = services.search.ingest(SYSTEM_IDENTITY, index, body)
    done = services.search.wait(task.task_id, timeout=120)
    assert done.state == "SUCCESS", done
    return done


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """Services on each catalog backend, with the ingest worker running."""
    services = build_services(Settings(data_dir=tmp_path / "hub", database_url=database_url))
    services.start()
    yield services
    services.close()

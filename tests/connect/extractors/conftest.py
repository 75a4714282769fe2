"""Fixtures for the extractor tests: the shared sample files and their expected facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matterhub.connect.extractors import ExtractionContext, Extractor, FileGroup, StagedFile

# shared/ sits beside the repository root, in development and in CI alike.
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "samples"

if not (SAMPLES / "expected.json").is_file():  # pragma: no cover - only without shared/
    pytest.skip(f"sample files not found at {SAMPLES}", allow_module_level=True)


def staged(path: Path, root: Path = SAMPLES) -> StagedFile:
    """A StagedFile for a file under `root`."""
    return StagedFile(path, path.relative_to(root).as_posix(), path.stat().st_size)


def sample(relpath: str) -> StagedFile:
    """A StagedFile for one sample."""
    return staged(SAMPLES / relpath)


def extract_one(extractor: Extractor, relpath: str, **context: Any) -> Any:
    """Run one extractor in-process on one sample (after checking it accepts the file)."""
    file = sample(relpath)
    assert extractor.accepts(file), relpath
    return extractor.extract(FileGroup(relpath, (file,)), ExtractionContext(**context))


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    """expected.json: per sample, the facts taken with the reference libraries."""
    facts: dict[str, Any] = json.loads((SAMPLES / "expected.json").read_text())
    return {path: entry["expected"] for path, entry in facts.items()}

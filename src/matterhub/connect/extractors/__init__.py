"""Extractors: what a dataset's files say, as MDF record blocks."""

from matterhub.connect.extractors.base import (
    DerivedFile,
    ExtractionContext,
    Extractor,
    ExtractorUnavailable,
    FileGroup,
    StagedFile,
    StagedTree,
)
from matterhub.connect.extractors.registry import (
    ExtractionResult,
    iter_extractors,
    load_extractors,
    run_extractors,
)

__all__ = [
    "DerivedFile",
    "ExtractionContext",
    "ExtractionResult",
    "Extractor",
    "ExtractorUnavailable",
    "FileGroup",
    "StagedFile",
    "StagedTree",
    "iter_extractors",
    "load_extractors",
    "run_extractors",
]

"""HDF5 and NeXus with h5py: groups, datasets (shapes, dtypes, units) and small values."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from matterhub.connect.extractors.base import (
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    clean,
    head,
    require,
)

__all__ = ["Hdf5Extractor"]

_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_LISTED = 200  # datasets listed by name; a file with a million stays a small record
_MAX_VALUE_SIZE = 8  # datasets this small have their values read (headers, settings)
H5PY_BIBTEX = """@book{collette2013h5py,
  title={Python and HDF5}, author={Collette, Andrew}, publisher={O'Reilly}, year={2013}
}"""


def _decode(value: Any) -> Any:
    value = clean(value)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _attr(attrs: Any, name: str) -> Any:
    value = attrs.get(name)
    return None if value is None else _decode(value)


class Hdf5Extractor(Extractor):
    """HDF5 files (also NeXus, EMD, h5ebsd) → `hdf5` summary block; h5ebsd SEM facts too."""

    name = "hdf5"
    version = "0.1.0"
    priority = 5

    def accepts(self, file: StagedFile) -> bool:
        """Files starting with the HDF5 signature (offset 0; user blocks are not searched)."""
        return head(file, 8) == _MAGIC

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """Group/dataset counts, top-level names, listed datasets and NeXus definitions."""
        h5py = require("h5py", "materials")
        datasets: list[Record] = []
        values: dict[str, Any] = {}
        counts = {"groups": 0, "datasets": 0}
        definitions: set[str] = set()
        nx_classes: set[str] = set()

        def visit(name: str, obj: Any) -> None:
            nx_class = _attr(obj.attrs, "NX_class")
            if nx_class:
                nx_classes.add(str(nx_class))
            if isinstance(obj, h5py.Group):
                counts["groups"] += 1
                return
            counts["datasets"] += 1
            if name.rsplit("/", 1)[-1] == "definition" and obj.size == 1:
                definitions.add(str(_decode(obj[()])))
            if len(datasets) < _MAX_LISTED:
                entry: Record = {"name": name, "shape": list(obj.shape), "dtype": str(obj.dtype)}
                if units := _attr(obj.attrs, "units"):
                    entry["units"] = units
                datasets.append(entry)
            if obj.size <= _MAX_VALUE_SIZE and obj.dtype.kind in "biufSUO" and len(values) < 500:
                # vlen or odd types fail to read: the listing is enough for them.
                with contextlib.suppress(Exception):
                    values[name] = _decode(obj[()])

        with h5py.File(group.files[0].path, "r") as fh:
            top = sorted(fh.keys())
            root_attrs = {k: _decode(v) for k, v in list(fh.attrs.items())[:50]}
            fh.visititems(visit)
        summary: Record = {
            "group_count": counts["groups"],
            "dataset_count": counts["datasets"],
            "top_level": top,
            "datasets": datasets,
            "attributes": root_attrs,
            "values": values,
        }
        if nx_classes:
            summary["nexus_classes"] = sorted(nx_classes)
        if definitions:
            summary["nexus_definition"] = sorted(definitions)
        out: Record = {"hdf5": summary}
        out.update(_h5ebsd(values))
        return out

    def citations(self) -> list[str]:
        """h5py."""
        return [H5PY_BIBTEX]


def _h5ebsd(values: Mapping[str, Any]) -> Record:
    """SEM facts of an h5ebsd file (kikuchipy, EDAX, Bruker layouts share `<scan>/SEM/Header`)."""
    sem = {
        k.split("/SEM/Header/")[1]: v
        for k, v in values.items()
        if "/SEM/Header/" in k and "/" not in k.split("/SEM/Header/")[1]
    }
    if not sem:
        return {}
    em: Record = {"instrument_type": "SEM", "acquisition_mode": "EBSD"}
    for key in ("beam_energy", "magnification", "microscope", "working_distance"):
        if key in sem:
            em[key] = sem[key]
    return {"electron_microscopy": em}

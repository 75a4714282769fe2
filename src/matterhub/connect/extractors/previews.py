"""Derived files of structures: CIF and extended XYZ copies and a small rendered PNG view."""

from __future__ import annotations

import io
import warnings
from typing import Any

from matterhub.connect.extractors.base import DerivedFile, StagedFile, require

__all__ = ["MATPLOTLIB_BIBTEX", "RENDER_MAX_ATOMS", "structure_files"]

RENDER_MAX_ATOMS = 2000  # a larger cell renders slowly, as a blur of spheres
THUMBNAIL = 256
MATPLOTLIB_BIBTEX = """@article{hunter2007matplotlib,
  title={Matplotlib: A 2D graphics environment}, author={Hunter, John D.},
  journal={Computing in Science \\& Engineering}, volume={9}, number={3}, pages={90--95},
  year={2007}, doi={10.1109/MCSE.2007.55}
}"""


def _is_structure(obj: Any) -> bool:
    return hasattr(obj, "lattice") and hasattr(obj, "sites")


def _periodic(atoms: Any) -> bool:
    return bool(len(atoms) and atoms.pbc.all() and atoms.cell.rank == 3)


def _atoms(obj: Any) -> Any:
    """ASE Atoms of a Structure; a disordered site shows its majority species (for viewing)."""
    if not _is_structure(obj):
        return obj
    ase = require("ase", "materials")
    symbols = [max(site.species.items(), key=lambda kv: kv[1])[0].symbol for site in obj]
    return ase.Atoms(symbols, positions=obj.cart_coords, cell=obj.lattice.matrix, pbc=True)


def _structure(obj: Any) -> Any:
    if _is_structure(obj):
        return obj
    adaptor = require("pymatgen.io.ase", "materials").AseAtomsAdaptor
    return adaptor.get_structure(obj)


def _cif(obj: Any) -> bytes:
    writer = require("pymatgen.io.cif", "materials").CifWriter
    return str(writer(_structure(obj))).encode()


def _extxyz(atoms: Any) -> bytes:
    ase_io = require("ase.io", "materials")
    buffer = io.StringIO()
    ase_io.write(buffer, atoms, format="extxyz")
    return buffer.getvalue().encode()


def _png(atoms: Any) -> bytes:
    """ASE's PNG writer (matplotlib's Agg renderer), slightly turned, shrunk to ≤ 256 px."""
    ase_io = require("ase.io", "materials")
    pil = require("PIL.Image", "materials")
    raw = io.BytesIO()
    ase_io.write(
        raw,
        atoms,
        format="png",
        rotation="-20x,25y",
        show_unit_cell=2 if _periodic(atoms) else 0,
        maxwidth=THUMBNAIL,
    )
    with pil.open(io.BytesIO(raw.getvalue())) as image:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        out = io.BytesIO()
        image.save(out, format="PNG")
    return out.getvalue()


def structure_files(file: StagedFile, obj: Any, source_kind: str) -> list[DerivedFile]:
    """CIF (periodic) and extended XYZ (ordered) copies, unless the file already is one,
    and a rendered PNG of at most `RENDER_MAX_ATOMS` atoms (when matplotlib is installed)."""
    out: list[DerivedFile] = []

    def add(suffix: str, media_type: str, data: bytes) -> None:
        out.append(DerivedFile(file.relpath, f"{file.name}.{suffix}", media_type, data))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms = _atoms(obj)
        periodic = _is_structure(obj) or _periodic(atoms)
        ordered = not _is_structure(obj) or obj.is_ordered
        if periodic and source_kind != "cif":
            add("cif", "chemical/x-cif", _cif(obj))
        if ordered and source_kind != "xyz":
            add("extxyz", "chemical/x-xyz", _extxyz(atoms))
        if 0 < len(atoms) <= RENDER_MAX_ATOMS:
            try:
                require("matplotlib", "materials")
            except Exception:
                return out  # no renderer here: the copies still stand
            add("preview.png", "image/png", _png(atoms))
    return out

"""The Δ-model as a servable: a molecule and its GFN2-xTB atomization energy → the corrected one.

Published as `delta_atomization` with `model.py`, `weights.pt`, `config.json` and
`xtb_atomization.py` (its structure reader) beside this module: the hub unpacks a bundle's files
into one folder, which is on the import path. Input:
`{"structure": <extended XYZ or ASE JSON text>, "cheap": <GFN2-xTB De, kcal/mol>}` — exactly what
`xtb_atomization.annotate` answers, so the pipeline `delta_pipeline` chains the two and a user
sends only a structure. Output: the corrected De, kcal/mol (cheap + the model's Δ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import model as delta_model
import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers
from xtb_atomization import read_molecule

# One thread: a servable replica owns one core (two threads collapse when the cores are busy).
torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent
# The column layout ASE writes for a bare molecule; any other layout takes ASE's own reader.
_PLAIN_PROPERTIES = "Properties=species:S:1:pos:R:3"
_MAX_ATOMS = 500


def molecule(structure: str) -> Atoms:
    """A molecule for the model, which needs only its elements and positions.

    Plain XYZ and extended XYZ as ASE writes a molecule are read here directly (ASE's general
    extended-XYZ reader is a third of a batch's time for small molecules); anything else — a
    lattice, other columns, ASE JSON, a malformed text — goes through `read_molecule`, which
    checks it and names what is wrong.
    """
    lines = structure.strip().splitlines()
    head = lines[0].strip() if lines else ""
    comment = lines[1] if len(lines) > 1 else ""
    plain = "Properties=" not in comment or _PLAIN_PROPERTIES in comment.split()
    if not head.isdigit() or "Lattice=" in comment or not plain:
        return read_molecule(structure)
    count = int(head)
    rows = [line.split() for line in lines[2 : 2 + count]]
    if not 0 < count <= _MAX_ATOMS or len(rows) != count or len(lines) != count + 2:
        return read_molecule(structure)
    try:
        numbers = [atomic_numbers[row[0]] for row in rows]
        positions = np.array([row[1:4] for row in rows], dtype=float)
    except (KeyError, ValueError, IndexError):
        return read_molecule(structure)
    if 0 in numbers or positions.shape != (count, 3) or not np.isfinite(positions).all():
        return read_molecule(structure)
    return Atoms(numbers=numbers, positions=positions)


def correct(item: dict[str, Any]) -> float:
    """`{"structure", "cheap"}` → the corrected atomization energy, kcal/mol."""
    (value,) = delta_model.predict(HERE, [molecule(item["structure"])], [float(item["cheap"])])
    return round(float(value), 6)


def correct_many(items: list[dict[str, Any]]) -> list[float]:
    """Many molecules in one model call (one batch through the network)."""
    atoms = [molecule(item["structure"]) for item in items]
    values = delta_model.predict(HERE, atoms, [float(item["cheap"]) for item in items])
    return [round(float(v), 6) for v in values]

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
import torch
from xtb_atomization import read_molecule

# One thread: a servable replica owns one core (two threads collapse when the cores are busy).
torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent


def correct(item: dict[str, Any]) -> float:
    """`{"structure", "cheap"}` → the corrected atomization energy, kcal/mol."""
    (value,) = delta_model.predict(HERE, [read_molecule(item["structure"])], [float(item["cheap"])])
    return round(float(value), 6)


def correct_many(items: list[dict[str, Any]]) -> list[float]:
    """Many molecules in one model call (one batch through the network)."""
    atoms = [read_molecule(item["structure"]) for item in items]
    values = delta_model.predict(HERE, atoms, [float(item["cheap"]) for item in items])
    return [round(float(v), 6) for v in values]

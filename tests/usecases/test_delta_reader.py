"""The Δ servable's own molecule reader: the same atoms as ASE's reader, or ASE's reader itself."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from types import ModuleType

import ase.io
import numpy as np
import pytest
from examples.delta_learning import data

HERE = Path(data.__file__).parent


@pytest.fixture(scope="module")
def servable() -> ModuleType:
    """`delta_atomization` imported as the hub imports it (its folder on the path)."""
    sys.path.insert(0, str(HERE))
    try:
        import delta_atomization

        return delta_atomization
    finally:
        sys.path.remove(str(HERE))


def _text(atoms: ase.Atoms, fmt: str) -> str:
    out = io.StringIO()
    ase.io.write(out, atoms, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["extxyz", "xyz"])
def test_every_g2_molecule_reads_as_ase_reads_it(servable: ModuleType, fmt: str) -> None:
    molecules, _ = data.load()
    for original in molecules:
        text = _text(original, fmt)
        fast = servable.molecule(text)
        slow = servable.read_molecule(text)
        assert list(fast.numbers) == list(slow.numbers), original.info["name"]
        np.testing.assert_allclose(fast.positions, slow.positions, atol=1e-12)
        np.testing.assert_allclose(fast.positions, original.positions, atol=1e-6)


def test_other_texts_take_ases_reader_and_its_checks(servable: ModuleType) -> None:
    water = ase.Atoms("H2O", positions=[[0, 0.76, -0.48], [0, -0.76, -0.48], [0, 0, 0.12]])
    crystal = water.copy()
    crystal.cell, crystal.pbc = np.eye(3) * 5.0, True
    with pytest.raises(ValueError, match="not periodic"):
        servable.molecule(_text(crystal, "extxyz"))  # a lattice line: ASE's reader, refused
    # Other columns (forces here) are read by ASE, positions still right.
    columns = '3\nProperties=pos:R:3:species:S:1 pbc="F F F"\n'
    columns += "".join(
        f"{x} {y} {z} {s}\n" for s, (x, y, z) in zip("HHO", water.positions, strict=True)
    )
    read = servable.molecule(columns)
    assert read.get_chemical_symbols() == ["H", "H", "O"]
    np.testing.assert_allclose(read.positions, water.positions)
    # A dummy atom is ASE's to read; a count that does not match is refused, never guessed.
    dummy = "2\n\nX 0 0 0\nH 0 0 1\n"
    assert list(servable.molecule(dummy).numbers) == list(servable.read_molecule(dummy).numbers)
    with pytest.raises(Exception):  # noqa: B017 - ASE's own error, whatever its type
        servable.molecule("4\n\nH 0 0 0\nH 0 0 1\n")
    json_text = water.copy()
    assert servable.molecule(_text(json_text, "json")).get_chemical_formula() == "H2O"

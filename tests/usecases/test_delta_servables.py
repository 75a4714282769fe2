"""The Δ-learning use case's cheap level as a servable: `xtb_atomization` (structure → GFN2-xTB
atomization energy) published to a real hub, built with tblite in its own sandboxed environment,
and run on molecules the committed table holds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import ase.io
import pytest
from examples.delta_learning import data, xtb_atomization

from matterhub.client.describe import describe_files
from tests.hub.conftest import Hub, hub_settings, running_hub

MODULE = Path(xtb_atomization.__file__)
pytestmark = pytest.mark.timeout(900)


def _xyz(atoms: ase.Atoms) -> str:
    out = io.StringIO()
    ase.io.write(out, atoms, format="extxyz")
    return out.getvalue()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(hub_settings(tmp_path_factory.mktemp("delta") / "hub")) as served:
        yield served


def test_the_xtb_servable_answers_as_the_table(hub: Hub) -> None:
    molecules, table = data.load()
    by_name = {m.info["name"]: m for m in molecules}
    expected = table.set_index("name")["xtb_De_kcal_mol"]
    description = describe_files(
        "xtb_atomization",
        "xtb_atomization:atomization",
        [MODULE],
        input_type={"type": "structure", "description": "a molecule (extended XYZ or ASE JSON)"},
        output_type={"type": "float", "description": "GFN2-xTB atomization energy De, kcal/mol"},
    )
    description.add_requirements({"tblite": "0.8.0", "ase": "3.29.0", "numpy": "2.4.6"})
    description.set_title("GFN2-xTB atomization energy").set_creators(["Delta, Use Case"])
    description.set_example(_xyz(by_name["H2O"]), float(expected["H2O"]), tolerance=0.01)
    client = hub.client("alice")
    build = client.publish_servable(description, wait=True, timeout=900)
    assert build["status"] == "succeeded", build["log"]

    # An open-shell molecule keeps its multiplicity through extended XYZ; a closed-shell one.
    for name in ("CH4", "CH2_s3B1d", "C6H6"):
        answer = client.run("alice/xtb_atomization", _xyz(by_name[name]))
        assert answer == pytest.approx(float(expected[name]), abs=0.01), name
    # Not a structure: refused before it reaches the worker, naming the input.
    with pytest.raises(Exception, match="input"):
        client.run("alice/xtb_atomization", "not a molecule")


def test_the_module_and_the_table_share_the_atom_multiplicities() -> None:
    for symbol, mult in data.ATOM_MULTIPLICITY.items():
        assert xtb_atomization.ATOM_MULTIPLICITY[symbol] == mult, symbol

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


def test_delta_servable_and_pipeline_answer_as_the_model(hub: Hub, tmp_path: Path) -> None:
    """A Δ-model trained briefly here, served as `delta_atomization`, chained after
    `xtb_annotate` in `delta_pipeline`: a user sends a structure, the hub answers what the model
    answers in-process."""
    from examples.delta_learning import model as delta_model

    molecules, table = data.load()
    names = ["CH4", "NH3", "H2O", "HF", "C2H2", "C2H4", "C2H6", "HCN", "CO", "N2", "CH3OH"]
    by_name = {m.info["name"]: m for m in molecules}
    rows = table.set_index("name")
    train = [by_name[n] for n in names]
    cheap = rows.loc[names, "xtb_De_kcal_mol"].to_numpy()
    reference = rows.loc[names, "reference_De_kcal_mol"].to_numpy()
    trained = delta_model.fit(train, cheap, reference, epochs=3, seed=0, val_fraction=0.0)
    folder = delta_model.save(trained, tmp_path / "trained")
    here = MODULE.parent
    files = [here / "delta_atomization.py", here / "model.py", MODULE]
    files += [folder / "weights.pt", folder / "config.json"]
    pair = {
        "type": "dict",
        "properties": {
            "structure": {"type": "structure", "description": "the molecule"},
            "cheap": {"type": "float", "description": "its GFN2-xTB De, kcal/mol"},
        },
    }
    energy = {"type": "float", "description": "atomization energy De, kcal/mol"}
    client = hub.client("alice")
    ethanol = by_name["CH3CH2OH"]
    ethanol_cheap = float(rows.loc["CH3CH2OH", "xtb_De_kcal_mol"])
    expected = delta_model.predict(folder, [ethanol], [ethanol_cheap])[0]

    delta = describe_files(
        "delta_atomization", "delta_atomization:correct", files, input_type=pair,
        output_type=energy, batch_function="correct_many",
    )  # fmt: skip
    delta.add_requirements({"torch": "2.13.0", "ase": "3.29.0", "numpy": "2.4.6"})
    delta.set_title("Δ-model: GFN2-xTB → experimental De").set_creators(["Delta, Use Case"])
    delta.set_example(
        {"structure": _xyz(ethanol), "cheap": ethanol_cheap}, expected, tolerance=1e-3
    )
    annotate = describe_files(
        "xtb_annotate", "xtb_atomization:annotate", [MODULE],
        input_type={"type": "structure"}, output_type=pair,
    )  # fmt: skip
    annotate.add_requirements({"tblite": "0.8.0", "ase": "3.29.0", "numpy": "2.4.6"})
    annotate.set_title("A molecule and its GFN2-xTB De").set_creators(["Delta, Use Case"])
    for description in (delta, annotate):
        build = client.publish_servable(description, wait=True, timeout=900)
        assert build["status"] == "succeeded", build["log"]

    pipeline = {
        "datacite": {
            "titles": [{"title": "Corrected atomization energy from a structure"}],
            "creators": [{"creatorName": "Delta, Use Case"}],
        },
        "dlhub": {"name": "delta_pipeline"},
        "servable": {
            "type": "pipeline",
            "steps": [{"servable": "alice/xtb_annotate"}, {"servable": "alice/delta_atomization"}],
        },
    }
    build = client.publish_bundle(pipeline, {})
    build = client.wait_for_build(build["servable"], build["id"], timeout=300)
    assert build["status"] == "succeeded", build["log"]

    answer = client.run("alice/delta_pipeline", _xyz(ethanol))
    assert answer == pytest.approx(expected, abs=1e-3)
    direct = client.run("alice/delta_atomization", {"structure": _xyz(ethanol), "cheap": 0.0})
    assert direct == pytest.approx(expected - ethanol_cheap, abs=0.05)  # Δ alone on cheap = 0
    # The model learned something over the cheap level: it moved the answer.
    assert abs(expected - ethanol_cheap) > 0.01

    # A batch goes through `correct_many` in one call (folded by the worker): the same answers.
    some = [by_name[n] for n in ("CH4", "C6H6", "CH3OH", "SiH4", "CH2_s3B1d")]  # none run yet
    cheap_some = [float(rows.loc[m.info["name"], "xtb_De_kcal_mol"]) for m in some]
    queued = client.run_batch(
        "alice/delta_atomization",
        [{"structure": _xyz(m), "cheap": c} for m, c in zip(some, cheap_some, strict=True)],
    )
    done = client.wait_for_batch(queued["batch_id"], timeout=300)
    answers = [done["tasks"][i]["result"] for i in queued["task_ids"]]
    direct_some = delta_model.predict(folder, some, cheap_some)
    assert answers == pytest.approx(direct_some, abs=1e-3)
    assert client.get_provenance(queued["task_ids"][0])["timings"]["batched"] == len(some)


def test_the_module_and_the_table_share_the_atom_multiplicities() -> None:
    for symbol, mult in data.ATOM_MULTIPLICITY.items():
        assert xtb_atomization.ATOM_MULTIPLICITY[symbol] == mult, symbol

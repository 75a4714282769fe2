"""The Δ-learning use case end to end on a hub: data → Connect → Forge → train → publish → use.

    python -m examples.delta_learning.workflow                 # its own hub, in a temporary folder
    python -m examples.delta_learning.workflow --quick         # 12 molecules, one epoch
    python -m examples.delta_learning.workflow --url http://hub:8000 --token mh_…
    MATTERHUB_URL=… MATTERHUB_TOKEN=… python -m examples.delta_learning.workflow

With no hub given (`--url`/`$MATTERHUB_URL`), it serves its own on loopback from `--hub-dir`
(default: a temporary folder, removed at the end) — see `localhub.py`. Steps:

1. **Data.** The committed G2 table (`data.load()`; `--recompute-xtb` recomputes GFN2-xTB) is
   written as one folder per molecule (`<name>.extxyz` + a one-row `energies.csv`, De in
   kcal/mol) and submitted through Connect with field mappings and units: each molecule becomes a
   record with its structure facts (`material`, `molecule`) and `custom.reference_De`,
   `custom.xtb_De`, `dft.atomization_energy` (B3LYP/6-31G*), each with `<field>_units`, under a
   published dataset with an identifier.
2. **Find and load.** `matterhub.Forge` by source, by elements and by an energy range;
   `load_dataset` as a DataFrame, and the structures as ASE atoms from the dataset's files.
3. **Train and publish.** The SchNet Δ-model (`model.fit`: documented defaults; `--quick`: one
   epoch) on what was loaded minus a held-out 20 %; servables `xtb_atomization`, `xtb_annotate`,
   `delta_atomization` (linked to the dataset) and the pipeline `delta_pipeline`, each with its
   identifier and citation.
4. **Use.** A batch of held-out molecules through the Python client, the same through the CLI
   (`matterhub run … --upload mol.xyz`), and the served model's MAE against the reference.

`--out` keeps the work files (dataset folder, trained model, `summary.json`, `parity.png`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms
from examples._hubtools import hub_arguments, publish_built, run_on_a_hub, submit_and_wait
from examples.delta_learning import data
from examples.delta_learning import model as delta_model
from examples.delta_learning.localhub import USER

from matterhub import Client, Forge
from matterhub.client.connect import ConnectClient
from matterhub.client.describe import describe_files

__all__ = [
    "QUICK_MOLECULES",
    "find",
    "load",
    "publish",
    "split",
    "submit",
    "train",
    "use",
    "write_dataset",
    "xyz",
]

HERE = Path(__file__).resolve().parent
SOURCE_NAME = "delta_g2_atomization"
QUICK_MOLECULES = [
    "CH4", "NH3", "H2O", "HF", "C2H2", "C2H4", "C2H6", "HCN", "CO", "N2", "CH3OH", "CH3CH2OH",
]  # fmt: skip
UNITS = "kcal/mol"
# energies.csv column → record field (the submission's `index.csv.mapping`).
MAPPING = {
    "custom.name": "name",
    "custom.multiplicity": "multiplicity",
    "custom.reference_De": "reference_De_kcal_mol",
    "custom.xtb_De": "xtb_De_kcal_mol",
    "dft.atomization_energy": "b3lyp_De_kcal_mol",
    "dft.exchange_correlation_functional": "b3lyp_functional",
    "dft.basis_set": "b3lyp_basis",
    "dft.code": "b3lyp_code",
}
ENERGY_FIELDS = ["custom.reference_De", "custom.xtb_De", "dft.atomization_energy"]
XTB_REQUIREMENTS = {"tblite": "0.8.0", "ase": "3.29.0", "numpy": "2.4.6"}
TORCH_REQUIREMENTS = {"torch": "2.13.0", "ase": "3.29.0", "numpy": "2.4.6"}
CREATORS = ["MatterHub, Δ-learning workflow"]


def xyz(atoms: Atoms) -> str:
    """A molecule as extended XYZ text (keeps `multiplicity` for open shells)."""
    out = io.StringIO()
    ase.io.write(out, atoms, format="extxyz")
    return out.getvalue()


# 1. data ------------------------------------------------------------------------------------


def write_dataset(molecules: list[Atoms], table: pd.DataFrame, folder: Path) -> Path:
    """One folder per molecule: `<name>.extxyz` and `energies.csv` (one row, De in kcal/mol)."""
    versions = json.loads((data.DATA_DIR / "b3lyp.json").read_text())
    code = f"PySCF {versions.get('versions', {}).get('pyscf', '')}".strip()
    rows = table.set_index("name")
    for atoms in molecules:
        name = atoms.info["name"]
        where = folder / "molecules" / name
        where.mkdir(parents=True, exist_ok=True)
        (where / f"{name}.extxyz").write_text(xyz(atoms))
        row = rows.loc[name]
        pd.DataFrame(
            [
                {
                    "name": name,
                    "formula": row["formula"],
                    "multiplicity": int(atoms.info.get("multiplicity", 1)),
                    "reference_De_kcal_mol": f"{row['reference_De_kcal_mol']:.6f}",
                    "xtb_De_kcal_mol": f"{row['xtb_De_kcal_mol']:.6f}",
                    "b3lyp_De_kcal_mol": f"{row['b3lyp_De_kcal_mol']:.6f}",
                    "b3lyp_functional": "B3LYP",
                    "b3lyp_basis": "6-31G*",
                    "b3lyp_code": code,
                }
            ]
        ).to_csv(where / "energies.csv", index=False)
    return folder


def submit(
    client: Client, folder: Path, *, source_name: str = SOURCE_NAME, previews: bool = True
) -> dict[str, Any]:
    """Submit the folder through Connect with the field mappings; wait until it is published.

    Returns the dataset version: `source_id`, `pid` (its identifier), `pid_url`, `records`.
    """
    connect = ConnectClient(client)
    connect.create_dc_block(
        title="G2 molecules: experimental, GFN2-xTB and B3LYP/6-31G* atomization energies",
        authors=CREATORS,
        description=(
            "148 G2-1/G2-2 molecules (ASE geometries) with experimental atomization energies De "
            "(from ASE's G2 enthalpies of formation, ZPEs and thermal corrections), GFN2-xTB "
            "(tblite 0.8.0) and B3LYP/6-31G* (PySCF) De, kcal/mol; one record per molecule."
        ),
        subjects=["atomization energy", "delta learning", "GFN2-xTB", "B3LYP", "G2"],
    )
    connect.set_source_name(source_name)
    connect.add_data_source(str(folder))
    connect.add_index("csv", MAPPING, units=dict.fromkeys(ENERGY_FIELDS, UNITS))
    # Each molecule's folder (structure + its energies) is one record.
    connect.set_extraction_config({"group_by_dir": True, "previews": previews})
    connect.set_custom_block(
        {
            "reference": "experimental De (ASE G2 tables)",
            "cheap_level": "GFN2-xTB (tblite 0.8.0)",
        }
    )
    return submit_and_wait(client, connect, timeout=900)


# 2. find and load ---------------------------------------------------------------------------


def find(client: Client, source_id: str, *, lo: float = 300.0, hi: float = 500.0) -> dict[str, int]:
    """Record counts of three Forge searches: the dataset, C+O molecules, xTB De in [lo, hi]."""
    forge = Forge(client=client)
    source = forge.match_source_names(source_id).match_resource_types("record").aggregate()
    with_co = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_elements(["C", "O"]).aggregate()
    )  # fmt: skip
    in_range = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_range("custom.xtb_De", lo, hi).aggregate()
    )  # fmt: skip
    return {
        "records": len(source),
        "with C and O": len(with_co),
        f"xtb_De {lo:g}-{hi:g} kcal/mol": len(in_range),
    }


def load(client: Client, source_id: str, folder: Path) -> tuple[list[Atoms], pd.DataFrame]:
    """The dataset's records as a DataFrame (`load_dataset`) and its structures as ASE atoms."""
    keys = ["custom.name", "material.elements", *ENERGY_FIELDS, "custom.xtb_De_units"]
    frame = client.load_dataset(source_id, keys=keys)
    client.download(source_id, folder, progress=False)
    by_name = {}
    for path in sorted(folder.rglob("*.extxyz")):
        if ".derived" in path.parts:  # the hub's previews and open-format copies
            continue
        atoms = ase.io.read(path, format="extxyz")
        assert isinstance(atoms, Atoms)
        by_name[atoms.info["name"]] = atoms
    order = [n for n in data.molecule_names() if n in set(frame["custom.name"])]
    frame = frame.set_index("custom.name").loc[order].reset_index()
    return [by_name[name] for name in order], frame


def split(n: int, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: a seeded permutation, the held-out share at least 2."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(2, round(test_fraction * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# 3. train and publish -----------------------------------------------------------------------


def train(
    molecules: list[Atoms], frame: pd.DataFrame, out: Path, *, quick: bool, source_id: str
) -> Path:
    """Fit the Δ-model (GFN2-xTB → experimental De) and save it under `out`."""
    settings: dict[str, Any] = {"epochs": 1, "val_fraction": 0.0} if quick else {}
    trained = delta_model.fit(
        molecules,
        frame["custom.xtb_De"].to_numpy(float),
        frame["custom.reference_De"].to_numpy(float),
        seed=0,
        **settings,
    )
    metadata = {"dataset": source_id, "molecules": len(molecules), **settings}
    return delta_model.save(trained, out, metadata=metadata)


def publish(
    client: Client, trained: Path, version: dict[str, Any], example: tuple[Atoms, float, float]
) -> dict[str, dict[str, str]]:
    """Publish the three servables and the pipeline; `{name: {ref, identifier, bibtex}}`."""
    me = client.whoami()["username"]
    atoms, cheap, expected = example
    pair = {
        "type": "dict",
        "properties": {
            "structure": {"type": "structure", "description": "the molecule (extended XYZ)"},
            "cheap": {"type": "float", "description": "its GFN2-xTB De, kcal/mol"},
        },
    }
    molecule = {"type": "structure", "description": "a molecule (extended XYZ or ASE JSON)"}
    energy = {"type": "float", "description": "atomization energy De, kcal/mol"}
    module = HERE / "xtb_atomization.py"

    xtb = describe_files(
        "xtb_atomization", "xtb_atomization:atomization", [module],
        input_type=molecule,
        output_type={"type": "float", "description": "GFN2-xTB atomization energy De, kcal/mol"},
    )  # fmt: skip
    xtb.add_requirements(XTB_REQUIREMENTS)
    xtb.set_title("GFN2-xTB atomization energy").set_creators(CREATORS)
    xtb.set_example(xyz(atoms), cheap, tolerance=0.01)
    annotate = describe_files(
        "xtb_annotate", "xtb_atomization:annotate", [module],
        input_type=molecule, output_type=pair,
    )  # fmt: skip
    annotate.add_requirements(XTB_REQUIREMENTS)
    annotate.set_title("A molecule and its GFN2-xTB De").set_creators(CREATORS)
    files = [HERE / "delta_atomization.py", HERE / "model.py", module]
    files += [trained / "weights.pt", trained / "config.json"]
    delta = describe_files(
        "delta_atomization", "delta_atomization:correct", files,
        input_type=pair, output_type=energy, batch_function="correct_many",
    )  # fmt: skip
    delta.add_requirements(TORCH_REQUIREMENTS)
    delta.set_title("Δ-model: GFN2-xTB → experimental De").set_creators(CREATORS)
    delta.set_example({"structure": xyz(atoms), "cheap": cheap}, expected, tolerance=1e-3)
    pid = str(version.get("pid") or "")
    delta.link_dataset(source_id=version["source_id"], doi=pid if pid.startswith("10.") else None)
    for description in (xtb, annotate, delta):
        publish_built(client, description)

    pipeline = {
        "datacite": {
            "titles": [{"title": "Corrected atomization energy from a structure"}],
            "creators": [{"creatorName": CREATORS[0]}],
        },
        "dlhub": {"name": "delta_pipeline"},
        "servable": {
            "type": "pipeline",
            "steps": [{"servable": f"{me}/xtb_annotate"}, {"servable": f"{me}/delta_atomization"}],
        },
    }
    build = client.publish_bundle(pipeline, {})
    build = client.wait_for_build(build["servable"], build["id"], timeout=600)
    if build["status"] != "succeeded":
        raise RuntimeError(f"delta_pipeline: {build['log']}")
    out: dict[str, dict[str, str]] = {}
    for name in ("xtb_atomization", "xtb_annotate", "delta_atomization", "delta_pipeline"):
        ref = f"{me}/{name}"
        out[name] = {
            "ref": ref,
            "identifier": client.servable_identifier(ref) or "",
            "bibtex": client.cite_servable(ref, format="bibtex"),
        }
    out["delta_atomization"]["datacite_xml"] = client.cite_servable(
        f"{me}/delta_atomization", format="datacite-xml"
    )
    return out


# 4. use -------------------------------------------------------------------------------------


def _cli(url: str, token: str, *args: str) -> Any:
    env = {**os.environ, "MATTERHUB_URL": url, "MATTERHUB_TOKEN": token}
    with tempfile.TemporaryDirectory() as home:
        env["MATTERHUB_CLIENT_CONFIG"] = str(Path(home) / "client.json")  # no saved login
        done = subprocess.run(
            [sys.executable, "-m", "matterhub.cli", *args],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"matterhub {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def use(client: Client, url: str, token: str, held_out: list[Atoms], work: Path) -> dict[str, Any]:
    """The held-out molecules through the pipeline: Python client (batch) and the CLI."""
    me = client.whoami()["username"]
    pipeline = f"{me}/delta_pipeline"
    # -- the three lines a user writes --------------------------------------------------------
    structures = [xyz(m) for m in held_out]
    done = client.run_batch(pipeline, structures, wait=True, timeout=1800)
    corrected = [task.get("result") for task in done["tasks"].values()]
    # ------------------------------------------------------------------------------------------
    paths = []
    for atoms in held_out[:3]:
        path = work / f"{atoms.info['name']}.xyz"
        path.write_text(xyz(atoms))
        paths.append(path)
    one = _cli(url, token, "run", pipeline, "--upload", str(paths[0]))
    many = _cli(url, token, "run", pipeline, "--batch", *[f"-u{p}" for p in paths])
    return {
        "pipeline": pipeline,
        "counts": done["counts"],
        "corrected": corrected,
        "cli_one": {"file": paths[0].name, "answer": one},
        "cli_batch": {"files": [p.name for p in paths], "answers": many},
    }


def _parity(path: Path, reference: np.ndarray, cheap: np.ndarray, served: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(reference, cheap, s=14, label="GFN2-xTB", alpha=0.7)
    ax.scatter(reference, served, s=14, label="served Δ-model", alpha=0.7)
    line = [float(reference.min()), float(reference.max())]
    ax.plot(line, line, color="grey", lw=0.8)
    ax.set_xlabel("experimental De (kcal/mol)")
    ax.set_ylabel("predicted De (kcal/mol)")
    ax.set_title(f"held-out molecules (n = {len(reference)})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# the whole run ------------------------------------------------------------------------------


def run(url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1–4 against the hub at `url`; prints as it goes and returns the summary."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"quick": args.quick}
    started = time.monotonic()
    molecules, table = data.load()
    if args.quick:
        molecules = [m for m in molecules if m.info["name"] in QUICK_MOLECULES]
    if args.recompute_xtb:
        table = table.set_index("name")
        for atoms in molecules:
            table.loc[atoms.info["name"], "xtb_De_kcal_mol"] = data.xtb_de(atoms)
        table = table.reset_index()
    with Client(url, token, timeout=120) as client:
        print(f"== 1. data: {len(molecules)} molecules → Connect ({url})")
        t0 = time.monotonic()
        folder = write_dataset(molecules, table, out / "dataset")
        source_name = SOURCE_NAME + ("_quick" if args.quick else "")
        version = submit(client, folder, source_name=source_name, previews=not args.quick)
        submit_s = time.monotonic() - t0
        sid = version["source_id"]
        summary["dataset"] = {k: version.get(k) for k in ("source_id", "pid", "pid_url")}
        summary["dataset"]["submit_s"] = round(submit_s, 1)
        print(f"published {sid}: identifier {version.get('pid')} ({version.get('pid_url')})")
        extracting = next(s for s in version["status"]["status_list"] if s["step"] == "extracting")
        print(f"  {extracting['detail']}; submitted and published in {submit_s:.0f} s")
        print(client.cite(sid, format="bibtex").strip())

        print("== 2. find (Forge) and load (load_dataset)")
        counts = find(client, sid)
        for label, count in counts.items():
            print(f"  {label}: {count}")
        loaded, frame = load(client, sid, out / "download")
        print(f"  loaded {len(frame)} records, {len(loaded)} ASE molecules; columns:")
        print("  " + ", ".join(frame.columns))
        print(frame.head(3).to_string(index=False))
        summary["found"] = counts
        summary["loaded"] = len(loaded)

        print("== 3. train and publish")
        train_idx, test_idx = split(len(loaded))
        training = [loaded[i] for i in train_idx]
        held_out = [loaded[i] for i in test_idx]
        t0 = time.monotonic()
        trained = train(
            training, frame.iloc[train_idx], out / "trained", quick=args.quick, source_id=sid
        )
        fit_s = time.monotonic() - t0
        cheap = frame["custom.xtb_De"].to_numpy(float)
        reference = frame["custom.reference_De"].to_numpy(float)
        in_process = delta_model.predict(trained, held_out, cheap[test_idx])
        print(f"  trained on {len(training)} molecules in {fit_s:.1f} s; {len(held_out)} held out")
        t0 = time.monotonic()
        example = (held_out[0], float(cheap[test_idx][0]), float(in_process[0]))
        servables = publish(client, trained, version, example)
        publish_s = time.monotonic() - t0
        print(f"  published and built in {publish_s:.0f} s:")
        for entry in servables.values():
            print(f"  {entry['ref']}: identifier {entry['identifier']}")
        print(servables["delta_atomization"]["bibtex"].strip())
        derived = re.findall(
            r'relationType="IsDerivedFrom">([^<]+)<', servables["delta_atomization"]["datacite_xml"]
        )
        print(f"  delta_atomization IsDerivedFrom {', '.join(derived)} (DataCite XML)")
        summary["servables"] = servables
        summary["train"] = {"molecules": len(training), "fit_s": round(fit_s, 1)}
        summary["publish_s"] = round(publish_s, 1)

        print("== 4. use: held-out molecules through the pipeline")
        t0 = time.monotonic()
        used = use(client, url, token, held_out, out)
        use_s = time.monotonic() - t0
        served = np.asarray(used["corrected"], dtype=float)
        names = [m.info["name"] for m in held_out]
        for name, c, s, r in zip(names, cheap[test_idx], served, reference[test_idx], strict=True):
            print(f"  {name:>12}: GFN2-xTB {c:8.2f}  served {s:8.2f}  experiment {r:8.2f}")
        print(f"  CLI, {used['cli_one']['file']}: {used['cli_one']['answer']}")
        batch = used["cli_batch"]
        print(f"  CLI --batch {' '.join(batch['files'])}: {batch['answers']}")
        mae_cheap = float(np.mean(np.abs(cheap[test_idx] - reference[test_idx])))
        mae_served = float(np.mean(np.abs(served - reference[test_idx])))
        gap = float(np.max(np.abs(served - np.asarray(in_process))))
        print(
            f"  held-out MAE vs experiment: GFN2-xTB {mae_cheap:.2f}, served Δ-model "
            f"{mae_served:.2f} kcal/mol (n = {len(held_out)}); served − in-process ≤ {gap:.1e}"
        )
        print(f"  (batch and CLI runs: {use_s:.0f} s)")
        _parity(out / "parity.png", reference[test_idx], cheap[test_idx], served)
        summary["use"] = {
            **used,
            "names": names,
            "in_process": [float(v) for v in in_process],
            "reference": reference[test_idx].tolist(),
            "cheap": cheap[test_idx].tolist(),
            "mae_cheap": mae_cheap,
            "mae_served": mae_served,
            "max_served_minus_in_process": gap,
            "use_s": round(use_s, 1),
        }
    summary["wall_s"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"== done in {summary['wall_s']:.0f} s; {out / 'summary.json'}, {out / 'parity.png'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = hub_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--quick", action="store_true", help="12 molecules, one epoch")
    parser.add_argument("--recompute-xtb", action="store_true", help="GFN2-xTB again (seconds)")
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token (or MATTERHUB_TOKEN)")
    return run_on_a_hub(args, run, prefix="delta-", user=USER, full_name="Delta Workflow")


if __name__ == "__main__":
    sys.exit(main())

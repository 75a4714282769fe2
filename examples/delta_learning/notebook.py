"""Write `delta_learning.ipynb`: the workflow's steps as notebook cells, executed, with outputs.

    python -m examples.delta_learning.notebook            # all 148 molecules (minutes)
    python -m examples.delta_learning.notebook --quick    # 12 molecules, one epoch

The cells below are the notebook. They run here, in order, in one namespace — as a Jupyter
kernel would run them, but in this process, so no Jupyter packages are needed — and each cell's
printed output, its last expression (a DataFrame as a table, a matplotlib figure as a PNG) and
any error are stored as nbformat 4.5 outputs. A cell that raises stops the run; nothing is written.
The hub: `$MATTERHUB_URL`/`$MATTERHUB_TOKEN`, else a hub of its own on loopback (`localhub.py`).
Opening the notebook in Jupyter and running all cells does the same again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from examples._notebook import execute

from examples import _notebook

__all__ = ["CELLS", "execute", "notebook"]

NOTEBOOK = Path(__file__).resolve().parent / "delta_learning.ipynb"

# (kind, source). "{quick}" in a code cell becomes the run's setting.
CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """# Δ-learning on MatterHub, end to end

A SchNet model learns the difference between a cheap (GFN2-xTB) and an accurate (experimental)
atomization energy of the 148 G2 molecules — the third use case of the MDF/DLHub paper, on data
this repository generates (`docs/usecases/delta-learning.md`). This notebook runs the same steps
as `python -m examples.delta_learning.workflow` and was executed by
`python -m examples.delta_learning.notebook`; every output below is what that run printed.

1. the data go through **Connect** with field mappings: one searchable record per molecule;
2. **Forge** finds them and `load_dataset` loads them;
3. the Δ-model is trained and published with two servables and a pipeline, each with an
   identifier and a citation;
4. held-out molecules are corrected through the Python client and the CLI.""",
    ),
    (
        "code",
        """import sys
from pathlib import Path

# The repository root (where examples/ is) on the import path, wherever Jupyter started.
here = Path.cwd().resolve()
sys.path.insert(0, str(next(p for p in [here, *here.parents] if (p / "examples").is_dir())))""",
    ),
    (
        "code",
        """import json
import os
import subprocess
import tempfile
from contextlib import ExitStack

import matplotlib.pyplot as plt
import numpy as np
from examples.delta_learning import data, workflow
from examples.delta_learning import model as delta_model

from matterhub import Client, Forge

QUICK = {quick}  # True: 12 molecules and one epoch of training
work = Path(tempfile.mkdtemp(prefix="delta-"))
stack = ExitStack()
url, token = os.environ.get("MATTERHUB_URL"), os.environ.get("MATTERHUB_TOKEN")
if not url:  # no hub given: serve one from a temporary folder, on loopback
    from examples.delta_learning.localhub import local_hub

    url, token = stack.enter_context(local_hub(work / "hub"))
client = stack.enter_context(Client(url, token, timeout=120))
print("hub:", url, "as", client.whoami()["username"])""",
    ),
    (
        "markdown",
        """## 1. The data, through Connect

Each molecule becomes a folder with its structure (`<name>.extxyz`) and a one-row
`energies.csv` (De in kcal/mol). The submission maps the CSV's columns onto record fields and
states their units (`index.csv.units`); `group_by_dir` makes each folder one record, so the
structure extractor's `material`/`molecule` facts and the energies land together.""",
    ),
    (
        "code",
        """molecules, table = data.load()
if QUICK:
    molecules = [m for m in molecules if m.info["name"] in workflow.QUICK_MOLECULES]
folder = workflow.write_dataset(molecules, table, work / "dataset")
ch4 = folder / "molecules" / "CH4"
print(len(molecules), "molecules; CH4's folder:", sorted(p.name for p in ch4.iterdir()))
print((ch4 / "energies.csv").read_text())
print("mapping:", json.dumps(workflow.MAPPING, indent=1))""",
    ),
    (
        "code",
        """name = workflow.SOURCE_NAME + ("_quick" if QUICK else "")
version = workflow.submit(client, folder, source_name=name, previews=not QUICK)
sid = version["source_id"]
for step in version["status"]["status_list"]:
    print(step["code"], step["step"], step["detail"] or "")
print("identifier:", version["pid"])
print(client.cite(sid, format="bibtex"))""",
    ),
    ("markdown", "## 2. Find it with Forge, load it with `load_dataset`"),
    (
        "code",
        """forge = Forge(client=client)
records = forge.match_source_names(sid).match_resource_types("record").aggregate()
with_c_and_o = forge.match_source_names(sid).match_elements(["C", "O"]).aggregate()
in_range = forge.match_source_names(sid).match_range("custom.xtb_De", 300, 500).aggregate()
print(f"{len(records)} records; {len(with_c_and_o)} with C and O;", end=" ")
print(f"{len(in_range)} with a GFN2-xTB De of 300-500 kcal/mol")
one = next(r for r in records if r["custom"]["name"] == "CH3OH")
{k: one.get(k) for k in ("custom", "dft", "material", "molecule")}""",
    ),
    (
        "code",
        """loaded, frame = workflow.load(client, sid, work / "download")
print(len(loaded), "ASE molecules, e.g.", loaded[0])
frame.head()""",
    ),
    (
        "markdown",
        """## 3. Train the Δ-model, publish the servables

The documented defaults (200 epochs, seed 0; `model.py`) on 80 % of what was loaded; the other
20 % are held out for step 4. `delta_atomization` is linked to the dataset's identifier.""",
    ),
    (
        "code",
        """train_idx, test_idx = workflow.split(len(loaded))
held_out = [loaded[i] for i in test_idx]
training = [loaded[i] for i in train_idx]
trained = workflow.train(
    training, frame.iloc[train_idx], work / "trained", quick=QUICK, source_id=sid
)
cheap = frame["custom.xtb_De"].to_numpy(float)
reference = frame["custom.reference_De"].to_numpy(float)
in_process = delta_model.predict(trained, held_out, cheap[test_idx])
print(len(train_idx), "training molecules,", len(held_out), "held out")""",
    ),
    (
        "code",
        """example = (held_out[0], float(cheap[test_idx][0]), float(in_process[0]))
servables = workflow.publish(client, trained, version, example)
for entry in servables.values():
    print(entry["ref"], "→", entry["identifier"])
print(client.cite_servable(servables["delta_pipeline"]["ref"], format="bibtex"))""",
    ),
    ("markdown", "## 4. Use: a batch of held-out molecules, from Python and from the CLI"),
    (
        "code",
        """structures = [workflow.xyz(m) for m in held_out]
done = client.run_batch(servables["delta_pipeline"]["ref"], structures, wait=True)
corrected = [task["result"] for task in done["tasks"].values()]
for m, c, r in zip(held_out[:5], corrected, reference[test_idx], strict=False):
    print(f"{m.info['name']:>10}: corrected {c:8.2f}  experiment {r:8.2f} kcal/mol")""",
    ),
    (
        "code",
        """(work / "mol.xyz").write_text(structures[0])
pipeline = servables["delta_pipeline"]["ref"]
command = ["matterhub", "run", pipeline, "--upload", str(work / "mol.xyz")]
env = {**os.environ, "MATTERHUB_URL": url, "MATTERHUB_TOKEN": token}
env["MATTERHUB_CLIENT_CONFIG"] = str(work / "client.json")  # not a saved login
run = [sys.executable, "-m", "matterhub.cli", *command[1:]]
cli = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
print("$", " ".join(command[:3]), "--upload mol.xyz")
print(cli.stdout)""",
    ),
    (
        "code",
        """served = np.asarray(corrected)
mae_cheap = np.mean(np.abs(cheap[test_idx] - reference[test_idx]))
mae_served = np.mean(np.abs(served - reference[test_idx]))
gap = np.max(np.abs(served - np.asarray(in_process)))
print(f"held-out MAE vs experiment (n = {len(served)}): GFN2-xTB {mae_cheap:.2f},", end=" ")
print(f"served Δ-model {mae_served:.2f} kcal/mol; served − in-process ≤ {gap:.1e}")
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(reference[test_idx], cheap[test_idx], s=14, alpha=0.7, label="GFN2-xTB")
ax.scatter(reference[test_idx], served, s=14, alpha=0.7, label="served Δ-model")
ax.plot([reference.min(), reference.max()], [reference.min(), reference.max()], c="grey", lw=0.8)
ax.set_xlabel("experimental De (kcal/mol)")
ax.set_ylabel("predicted De (kcal/mol)")
ax.legend()
fig.tight_layout()
plt.close(fig)
fig""",
    ),
    ("code", "stack.close()  # the client, and the hub if this notebook started one"),
]


def notebook(quick: bool) -> dict[str, Any]:
    """The executed notebook (nbformat 4.5)."""
    return _notebook.notebook(CELLS, quick)


if __name__ == "__main__":
    sys.exit(_notebook.main(CELLS, NOTEBOOK, __doc__.splitlines()[0]))

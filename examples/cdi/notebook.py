"""Write `cdi.ipynb`: the CDI workflow's steps as notebook cells, executed, with outputs.

    python -m examples.cdi.notebook            # the documented sets (reuses trained/ if there)
    python -m examples.cdi.notebook --quick    # tiny sets, one epoch

The cells below are the notebook; `examples/_notebook.py` runs them in this process, in one
namespace, and stores their outputs (no Jupyter needed). The hub: `$MATTERHUB_URL` /
`$MATTERHUB_TOKEN`, else a hub of its own on loopback. Opening the notebook in Jupyter and
running all cells does the same again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from examples import _notebook

__all__ = ["CELLS", "NOTEBOOK"]

NOTEBOOK = Path(__file__).resolve().parent / "cdi.ipynb"

# (kind, source). "{quick}" in a code cell becomes the run's setting.
CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """# Crystal shape and strain from coherent diffraction images, on MatterHub

The second use case of the MDF/DLHub paper (Cherukara et al., *Sci. Rep.* 8, 16520, 2018): a
convolutional network predicts a crystal's shape and strain phase from its 32×32 diffraction
intensity. Here on data this repository simulates (`docs/usecases/cdi.md`). This notebook runs
the steps of `python -m examples.cdi.workflow` and was executed by
`python -m examples.cdi.notebook`; every output below is what that run printed.

1. the simulated test images go through **Connect**: one searchable record per image;
2. the network is pushed to a **git repository** (served on loopback) and published from there;
   the phase-retrieval servable is published too — both with identifiers;
3. **Forge** finds test images, the client runs them through both servables;
4. the answers are scored against the truth and drawn as in the paper's Figure 5.""",
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
        """import os
import tempfile
from contextlib import ExitStack

os.environ.setdefault("KERAS_BACKEND", "torch")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from examples.cdi import evaluate, phase_retrieval, simulate, workflow
from examples.cdi import model as cnn

from matterhub import Client, Forge

QUICK = {quick}  # True: tiny sets and one epoch of training
work = Path(tempfile.mkdtemp(prefix="cdi-"))
stack = ExitStack()
url, token = os.environ.get("MATTERHUB_URL"), os.environ.get("MATTERHUB_TOKEN")
if not url:  # no hub given: serve one from a temporary folder, allowed to fetch from loopback
    from examples._hubtools import local_hub

    hub = local_hub(work / "hub", user="cdi", outbound_allowed_networks=["127.0.0.1/32"])
    url, token = stack.enter_context(hub)
client = stack.enter_context(Client(url, token, timeout=300))
me = client.whoami()["username"]
print("hub:", url, "as", me)""",
    ),
    (
        "markdown",
        """## 1. The test images, through Connect

Each test image becomes a folder: `intensity.h5` (the photon counts), `truth.h5` (amplitude,
phase and support, in a file of its own) and `parameters.csv` (one row: the simulation
parameters). The submission maps the CSV's columns onto `custom.*` fields with units;
`group_by_dir` makes each folder one record.""",
    ),
    (
        "code",
        """data_dir = work / "data" if QUICK else simulate.DATA_DIR  # reused when already simulated
data = workflow.sets(data_dir, quick=QUICK)
test = data["test"]
n_test = workflow.QUICK_TEST if QUICK else len(test["intensity"])
folder = workflow.write_dataset(test, work / "dataset", n_test)
first = folder / "images" / "test_0000"
print(n_test, "test images; the first one's folder:", sorted(p.name for p in first.iterdir()))
pd.read_csv(first / "parameters.csv").T""",
    ),
    (
        "code",
        """name = workflow.SOURCE_NAME + ("_quick" if QUICK else "")
version = workflow.submit(client, folder, source_name=name)
sid = version["source_id"]
for step in version["status"]["status_list"]:
    print(step["code"], step["step"], step["detail"] or "")
print("identifier:", version["pid"])
print(client.cite(sid, format="bibtex"))""",
    ),
    (
        "markdown",
        """## 2. The network, published from a git location

The network is `model.py`'s (full: its defaults, 20 epochs on 8,000 images — reused from
`examples/cdi/trained/` when `python -m examples.cdi.model` already made it; quick: one epoch on
256 images). Its architecture JSON and weights, with `cdi_structure/README.md` and `LICENSE`,
are committed to a git repository; a `git daemon` serves it on loopback while the hub fetches
it, pins the commit, builds a Keras-on-PyTorch environment and serves it.""",
    ),
    (
        "code",
        """trained = workflow.HERE / "trained"
if not QUICK and (trained / cnn.WEIGHTS).exists():
    model_dir, net = trained, cnn.load(trained)
    print("reusing", model_dir)
else:
    net, model_dir = workflow.train(data, work / "trained", quick=QUICK)
example = cnn.prepare(test["intensity"][:1])
published = workflow.publish_cnn(client, model_dir, work / "git", example)
workflow.publish_phase_retrieval(client, test["intensity"][0])
source = client.describe_servable(f"{me}/cdi_structure")["document"]["dlhub"]["source"]
print("pushed", published["commit"], "- the hub pinned", source["commit"])
for servable in ("cdi_structure", "cdi_phase_retrieval"):
    print(f"{me}/{servable} →", client.servable_identifier(f"{me}/{servable}"))
print(client.cite_servable(f"{me}/cdi_structure", format="bibtex"))""",
    ),
    ("markdown", "## 3. Find test images with Forge, run them through both servables"),
    (
        "code",
        """forge = Forge(client=client)
records = forge.match_source_names(sid).match_resource_types("record").aggregate()
mid_sized = forge.match_source_names(sid).match_range("custom.area_px", 200, 400).aggregate()
faceted = forge.match_source_names(sid).match_field("custom.family", "faceted").aggregate()
print(f"{len(records)} records; {len(mid_sized)} with a crystal area of 200-400 fine px;", end="")
print(f" {len(faceted)} faceted")
shown = ["index", "family", "area_px", "phase_max_rad"]
pd.DataFrame([r["custom"] for r in mid_sized])[shown].head()""",
    ),
    (
        "code",
        """chosen = sorted(int(r["custom"]["index"]) for r in mid_sized)
found = workflow.load_found(client, sid, work / "download", chosen)
# The three lines that run the model on the images found:
X = cnn.prepare(found["intensity"])
amplitude, phase = client.run(f"{me}/cdi_structure", X.tolist())
amplitude, phase = np.asarray(amplitude)[..., 0], np.asarray(phase)[..., 0]
ref = f"{me}/cdi_phase_retrieval"
reconstructed = workflow.run_phase_retrieval(client, ref, found["intensity"])
print(len(chosen), "images; CNN:", amplitude.shape, "phase retrieval:", reconstructed.shape)""",
    ),
    (
        "code",
        """scores = {
    "CNN": workflow.score(found, amplitude, phase),
    "phase retrieval": workflow.score(found, reconstructed[:, 0], reconstructed[:, 1]),
}
local_amplitude, local_phase = cnn.predict(net, found["intensity"])
local_pr = np.stack([phase_retrieval.retrieve_phase(i) for i in found["intensity"][:5]])
print("served − in-process: CNN ≤", np.abs(amplitude - local_amplitude).max(), end="; ")
print("phase retrieval (5 images) ≤", np.abs(reconstructed[:5] - local_pr).max())
columns = ["shape_mean", "shape_median", "phase_mean", "phase_median", "twin"]
pd.DataFrame(scores).T[columns].rename_axis(f"{len(chosen)} found test images")""",
    ),
    ("markdown", "## 4. Figure 5, from the served answers"),
    (
        "code",
        """pr_amplitude, pr_phase = reconstructed[:, 0], reconstructed[:, 1]
served = {"CNN": (amplitude, phase), "phase retrieval": (pr_amplitude, pr_phase)}
result = {"rows": scores, "predictions": served}
evaluate.figure(found, result, work / "figure5.png", [0, 1, 2, 3])
fig, ax = plt.subplots(figsize=(11.2, 7.2))
ax.imshow(plt.imread(work / "figure5.png"))
ax.set_axis_off()
fig.tight_layout()
plt.close(fig)
fig""",
    ),
    ("code", "stack.close()  # the client, and the hub if this notebook started one"),
]


if __name__ == "__main__":
    sys.exit(_notebook.main(CELLS, NOTEBOOK, __doc__.splitlines()[0]))

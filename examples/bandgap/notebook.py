"""Write `bandgap.ipynb`: the band-gap workflow's steps as notebook cells, executed, with outputs.

    python -m examples.bandgap.notebook --quick    # 2,000 samples (the committed notebook)
    python -m examples.bandgap.notebook            # the paper's 180,902 samples

Both train with `models.py`'s full settings (seconds at 2,000 samples).

The cells below are the notebook; `examples/_notebook.py` runs them in this process, in one
namespace, and stores their outputs (no Jupyter needed). They call the functions of
`workflow.py` (the steps) and `evaluate.py` (the figures). The hub: `$MATTERHUB_URL` /
`$MATTERHUB_TOKEN`, else a hub of its own on loopback. Opening the notebook in Jupyter and
running all cells does the same again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from examples import _notebook

__all__ = ["CELLS", "NOTEBOOK"]

NOTEBOOK = Path(__file__).resolve().parent / "bandgap.ipynb"

# (kind, source). "{quick}" in a code cell becomes the run's setting.
CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """# Band gaps from optical images of oxide films, on MatterHub

The first use case of the MDF/DLHub paper (Stein et al., *Chem. Sci.* 10, 47, 2019): images of
metal-oxide films printed at high throughput go to MDF as records, training and test sets are
cut by query, three models (a VAE, an autoencoder, a colour-clustering model) are published to
DLHub, and each predicts an absorption spectrum whose Tauc fit gives the band gap. Here on films
this repository simulates from physics (`docs/usecases/bandgap.md`). This notebook runs the steps
of `python -m examples.bandgap.workflow` and was executed by
`python -m examples.bandgap.notebook --quick` (2,000 samples; the full training, which takes
seconds at this size); every output below is what that run printed.

1. the samples (image + spectrum each) go through **Connect** as one submission: one searchable
   record per sample, with its composition and elements;
2. **Forge** cuts the training set and a held-out composition region by query; `load_dataset`
   checks the cuts;
3. the models are trained and **published** as servables linked to the dataset, each with its
   own identifier, with a pipeline image → band gap;
4. the test images go through the hub in **binary batches**; MAE against the simulator's truth
   and a trivial baseline; the paper's Figure 4 from the served latents.""",
    ),
    (
        "code",
        """import sys
from pathlib import Path

# The repository root (where examples/ is) on the import path, wherever Jupyter started.
here = Path.cwd().resolve()
sys.path.insert(0, str(next(p for p in [here, *here.parents] if (p / "examples").is_dir())))
print("Python", sys.version.split()[0])""",
    ),
    (
        "code",
        """import json
import os
import resource
import shutil
import tempfile
import time
from contextlib import ExitStack

os.environ.setdefault("OMP_NUM_THREADS", "1")
import matplotlib

matplotlib.use("Agg")  # figures as PNG outputs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from examples.bandgap import dataset, evaluate, servables, simulate, workflow

from matterhub import Client
from matterhub.client.frames import load_dataset

QUICK = {quick}  # True: 2,000 samples; False: the paper's 180,902
SIZE = workflow.QUICK_SIZE if QUICK else simulate.FULL_SIZE
work = Path(tempfile.mkdtemp(prefix="bandgap-"))
stack = ExitStack()
url, token = os.environ.get("MATTERHUB_URL"), os.environ.get("MATTERHUB_TOKEN")
if not url:  # no hub given: serve one from a temporary folder, in this process
    from examples._hubtools import local_hub

    url, token = stack.enter_context(local_hub(work / "hub", user="bandgap"))
client = stack.enter_context(Client(url, token, timeout=600))
me = client.whoami()["username"]
print("hub:", url, "as", me)""",
    ),
    (
        "markdown",
        """## 1. The samples, through Connect

`simulate.simulate(SIZE, seed)` makes each film: a composition on the Bi–V–Fe–Ce oxide simplex,
its band gap (end members with bowing), a thickness field, the absorbance spectrum (direct Tauc
edge with an Urbach tail, noise) and the 16×16 sRGB image of D65 light through the film.
`workflow.write` stores each sample as a folder, `image.png` + `spectrum.json` (the spectrum and
the sample's facts); the folders are zipped and submitted as ONE Connect submission whose
`index.json` mapping turns each `spectrum.json` into record fields (with units) and whose
`group_by_dir` makes each folder one record.""",
    ),
    (
        "code",
        """started = time.monotonic()
films = workflow.write(work / "films", SIZE)
print(f"{SIZE} samples written in {time.monotonic() - started:.1f} s")
first = films / dataset.sample_dir(0)
print("the first sample's folder:", sorted(p.name for p in first.iterdir()))
pd.Series(json.loads((first / "spectrum.json").read_text())["sample"]).to_frame("sample 0")""",
    ),
    (
        "code",
        """name = workflow.SOURCE_NAME + ("_quick" if QUICK else f"_{SIZE}")
started = time.monotonic()
version = workflow.submit(client, films, source_name=name, size=SIZE)
submit_s = time.monotonic() - started
sid = version["source_id"]
for step in version["status"]["status_list"]:
    print(step["code"], step["step"], step["detail"] or "")
print(f"zip, upload, submit → searchable: {submit_s:.1f} s; identifier: {version['pid']}")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"peak RSS of this process so far (the hub runs in it): {peak:.0f} MiB")""",
    ),
    (
        "markdown",
        """## 2. Training and test sets with Forge

The test set is a composition **region**, the Bi-rich corner (`custom.x_Bi` in [0.5, 1]) — no
composition near a test film is seen in training — asked for with a numeric range and an
element query (`material.elements` holding Bi and O); the training set is every other film
(`custom.x_Bi` in [0, 0.49]; the grid's step is 0.01). `workflow.cut` aggregates both;
`load_dataset` gives the whole dataset as a table, which the cuts are checked against; the
images and spectra of exactly the records found are downloaded from the hub.""",
    ),
    (
        "code",
        """cuts = workflow.cut(client, sid)
table = load_dataset(client, sid)
indices = workflow.check_cuts(table, cuts)
print(f"{len(table)} records; train {len(indices['train'])}, test {len(indices['test'])}")
data = {k: workflow.load_cut(client, v, work / "download" / k) for k, v in cuts.items()}
print({k: v["image"].shape for k, v in data.items()})
shown = ["custom.index", "material.composition", "custom.x_Bi", "custom.gap_ev"]
table.set_index("custom.index").loc[indices["test"][:5]].reset_index()[shown]""",
    ),
    (
        "markdown",
        """## 3. Train, and publish with identifiers

`models.fit_autoencoder` trains the VAE and the autoencoder on the training images (here with
`models.py`'s full settings, unlike the workflow's `--quick` CI run), then a regressor from each
latent space to the spectrum; `models.fit_colour` clusters pixel colours in
CIELAB (k-means) and maps an image's cluster fractions to the spectrum. `workflow.publish`
publishes the VAE encoder (image → 8 latent means), the three image → spectrum models, the Tauc
fit (spectrum → gap) and the pipeline image → band gap (`bandgap_vae` then `bandgap_tauc`),
each linked to the dataset; the hub gives each live version its own identifier.""",
    ),
    (
        "code",
        """# models.py's full training (20 epochs, 40 for the regressor): seconds at 2,000 samples.
trained = workflow.train(data["train"], work / "trained", quick=False)
published = workflow.publish(client, work / "trained", version)
print(client.cite_servable(f"{me}/{servables.MODEL_NAMES['vae']}", format="bibtex"))
pd.DataFrame(published).T""",
    ),
    (
        "markdown",
        """## 4. The test images through the hub

Each model gets the held-out images as one batch of binary tasks (`client.run_batch(ref, …,
binary=True)`, 500 images a task, arrays as `.npy`), compared with the same model in-process;
the served spectra become gaps by the Tauc fit, and the pipeline answers the gaps of all test
images in one binary call. The rates include each servable worker's cold start on its first
call (`bench/bench_bandgap_throughput.py` measures warm ones). The MAE is against the
simulator's true gaps, beside the trivial baseline that predicts the training set's mean gap for
every film.""",
    ),
    (
        "code",
        """baseline = float(np.mean(data["train"]["gap_ev"]))
test = data["test"]
served, mae = workflow.predict_test(
    client, published, trained, work / "trained", test, baseline=baseline
)
print(f"baseline: the training set's mean gap, {baseline:.3f} eV, for every test film")
columns = ["images_per_s", "largest_difference"]
pd.DataFrame(published).T[columns].dropna().rename_axis(f"{len(test['index'])} test images")""",
    ),
    (
        "code",
        """label = f"MAE (eV), {len(test['index'])} held-out films (x_Bi ≥ 0.5)"
pd.Series(mae).to_frame(label).round(3)""",
    ),
    (
        "markdown",
        """## 5. Figure 4, from the trained models and the served latents

Left in the paper: original images with their AE and VAE reconstructions (the decoders stay
in-process; the hub serves the encoders), ten held-out films from the lowest gap to the
highest. Right: a t-SNE of the VAE latent means **as the hub's encoder served them**, each film
in its image's mean colour and sized by its true band gap.""",
    ),
    (
        "code",
        """title = "Held-out test films (x_Bi ≥ 0.5): originals and reconstructions"
fig = evaluate.figure_reconstructions(test["image"], test["gap_ev"], trained, title)
plt.close(fig)
fig""",
    ),
    (
        "code",
        """latent = served[servables.ENCODER]
fig = evaluate.figure_tsne(latent, test["image"], test["gap_ev"], workflow.SEED)
plt.close(fig)
fig""",
    ),
    (
        "code",
        """stack.close()  # the client, and the hub if this notebook started one
shutil.rmtree(work)  # the work files: samples, downloads, models, the hub's folder
print("closed; removed the work folder", work.name)""",
    ),
]


if __name__ == "__main__":
    sys.exit(_notebook.main(CELLS, NOTEBOOK, __doc__.splitlines()[0]))

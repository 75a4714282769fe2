"""The band-gap use case end to end on a hub: simulate → Connect → Forge → train → publish → encode.

    python -m examples.bandgap.workflow                  # the paper's scale: 180,902 samples
    python -m examples.bandgap.workflow --size 20000     # any size
    python -m examples.bandgap.workflow --quick          # 2,000 samples, short training (CI)
    python -m examples.bandgap.workflow --url http://hub:8000 --token mh_…

With no hub given (`--url`/`$MATTERHUB_URL`) it serves its own on loopback from `--hub-dir`
(default: a temporary folder; `examples/_hubtools.py`). Steps:

1. **Data → Connect.** `simulate.simulate(size, SEED)` in chunks, written by `dataset.py` as a
   folder per sample (`image.png` + `spectrum.json`), zipped, and submitted through Connect as ONE
   submission with the `index.json` mapping and `group_by_dir`: every sample becomes a searchable
   record with `material.composition`, `material.elements`, thickness, true gap (with units),
   index, print and the cation fractions `custom.x_<El>`. The time from submit to searchable is
   printed (it includes zipping and the upload).
2. **Forge.** The training set and the held-out test set are cut by query: the test set is a
   composition *region*, `evaluate.py`'s Bi-rich corner (`custom.x_Bi` in [0.5, 1], a numeric
   range, and `material.elements` holding Bi and O — implied by the range here, asked for to
   show the element query), the training set every other film (`custom.x_Bi` in [0, 0.49]: the
   grid's step is 0.01); both are aggregated, the files (images and spectra) of exactly those
   records downloaded from the hub, and `load_dataset` gives the whole dataset's table, which
   the cuts are checked against.
3. **Train and publish.** `models.fit_autoencoder` (VAE and AE) and `models.fit_colour` on the
   training images and spectra (quick: 2 epochs, 5 regressor epochs); the VAE encoder
   (`bandgap_vae_encoder`: image → 8 latent means) and the three image → spectrum models
   (`bandgap_vae`, `bandgap_ae`, `bandgap_colour`) are published with `describe_torch` from
   `models.py` (`servables.py`), each with its own identifier and linked to the dataset; so
   are the Tauc fit (`bandgap_tauc`) and the pipeline image → band gap (`bandgap_pipeline`:
   `bandgap_vae` then `bandgap_tauc`).
4. **Encode and predict through the hub.** The test images go through the servables with
   `client.run_batch(name, arrays, binary=True, wait=True)` (`CHUNK` images a task); the served
   latents and spectra are compared with the same models in-process; band gaps from the served
   spectra by the Tauc fit (`bandgap.tauc_gap`), and from the pipeline in one call; MAE in eV
   against the simulator's truth, beside a trivial baseline (the training set's mean gap).

`--out` keeps the work files (`films/` the dataset folders, `trained/` the models, `served.npz`
the served answers, `summary.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from examples._hubtools import hub_arguments, publish_built, run_on_a_hub, submit_and_wait
from examples.bandgap import bandgap, dataset, models, servables, simulate

from matterhub import Client, Forge
from matterhub.client.connect import ConnectClient
from matterhub.client.frames import load_dataset

__all__ = [
    "QUICK_SIZE",
    "SEED",
    "TEST_ELEMENTS",
    "TEST_REGION",
    "TRAIN_REGION",
    "check_cuts",
    "cut",
    "encode",
    "load_cut",
    "predict_test",
    "publish",
    "submit",
    "train",
    "write",
]

HERE = Path(__file__).resolve().parent
SOURCE_NAME = "bandgap_simulated_films"
SEED = 1
QUICK_SIZE = 2000
CHUNK = 500  # images per batch task
WRITE_CHUNK = 5000  # samples simulated and written at a time
# evaluate.py's held-out region, the Bi-rich corner (x_Bi >= 0.5), and the rest of the grid.
TEST_REGION = ("custom.x_Bi", 0.5, 1.0)
TRAIN_REGION = ("custom.x_Bi", 0.0, 0.49)  # the grid's step is 0.01
TEST_ELEMENTS = ["Bi", "O"]
ELEMENTS = list(simulate.ELEMENTS)


# 1. data → Connect ------------------------------------------------------------------------------


def write(folder: Path, size: int) -> Path:
    """`size` samples of seed `SEED` as sample folders under `folder` (simulated in chunks)."""
    for start in range(0, size, WRITE_CHUNK):
        dataset.write(simulate.simulate(min(WRITE_CHUNK, size - start), SEED, start=start), folder)
    return folder


def submit(client: Client, folder: Path, *, source_name: str, size: int) -> dict[str, Any]:
    """Zip the sample folders (a zip per ~30 MiB, one upload request each), submit them through
    Connect as one submission, wait until the records are searchable; the version with
    `status`."""
    zips = dataset.archives(folder, folder.with_name(folder.name + "-zips"))
    connect = ConnectClient(client)
    sources = [str(z) for z in zips]
    dataset.submission(connect, sources, ELEMENTS, source_name=source_name, n=size)
    return submit_and_wait(client, connect, timeout=6 * 3600)


# 2. Forge ---------------------------------------------------------------------------------------


def cut(client: Client, source_id: str) -> dict[str, list[dict[str, Any]]]:
    """The training and test records, cut by composition range and elements, aggregated."""
    forge = Forge(client=client)
    field, lo, hi = TEST_REGION
    test = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_range(field, lo, hi).match_elements(TEST_ELEMENTS).aggregate()
    )  # fmt: skip
    field, lo, hi = TRAIN_REGION
    train = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_range(field, lo, hi).aggregate()
    )  # fmt: skip
    key = lambda r: r["custom"]["index"]  # noqa: E731
    return {"train": sorted(train, key=key), "test": sorted(test, key=key)}


def check_cuts(table: Any, cuts: dict[str, list[dict[str, Any]]]) -> dict[str, list[int]]:
    """The sample indices of each cut, checked against `load_dataset`'s table (the whole
    dataset, one row per record): every found record's fraction lies in its cut's range."""
    indices = {k: [int(r["custom"]["index"]) for r in v] for k, v in cuts.items()}
    by_index = table.set_index("custom.index")
    for name, found in indices.items():
        rows = by_index.loc[found]
        field, lo, hi = TEST_REGION if name == "test" else TRAIN_REGION
        if not rows[field].between(lo, hi).all():
            raise AssertionError(f"the {name} cut holds records outside {field} in [{lo}, {hi}]")
    return indices


def load_cut(client: Client, records: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    """The records' images and spectra, from their files as the hub serves them."""
    client.download(records, folder, progress=False)
    by_sample = {name: (image, spectrum) for name, image, spectrum in _read(folder)}
    images, spectra, gaps, index = [], [], [], []
    for record in records:
        image, spectrum = by_sample[record["custom"]["sample"]]
        images.append(image)
        spectra.append(spectrum["absorbance"])
        gaps.append(spectrum["sample"]["gap_ev"])
        index.append(record["custom"]["index"])
    return {
        "image": np.stack(images),
        "absorbance": np.asarray(spectra, dtype=np.float32),
        "gap_ev": np.asarray(gaps),
        "index": np.asarray(index),
    }


def _read(folder: Path) -> Any:
    from PIL import Image

    for path in folder.rglob("spectrum.json"):
        with Image.open(path.parent / "image.png") as img:
            image = np.asarray(img.convert("RGB"))
        yield path.parent.name, image, json.loads(path.read_text())


# 3. train and publish ---------------------------------------------------------------------------


def train(data: dict[str, np.ndarray], folder: Path, *, quick: bool) -> dict[str, models.Trained]:
    """VAE, AE and the colour model on the training set, saved under `folder`."""
    settings: dict[str, Any] = {"epochs": 2, "regressor_epochs": 5} if quick else {}
    trained = {}
    for kind in ("vae", "ae"):
        trained[kind] = models.fit_autoencoder(
            data["image"], data["absorbance"], kind=kind, seed=SEED, **settings
        )
    trained["colour"] = models.fit_colour(data["image"], data["absorbance"], seed=SEED)
    for kind, fitted in trained.items():
        models.save(fitted, folder)
        print(f"  {kind}: {fitted.log[-1]} ({fitted.seconds:.0f} s)")
    return trained


def publish(client: Client, folder: Path, version: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The encoder, the three spectrum models and the Tauc fit (`servables.py`, linked to the
    dataset), then the pipeline image → band gap; ref and identifier of each."""
    dataset = {"source_id": version["source_id"], "doi": version.get("pid") or ""}
    descriptions = [servables.model_description(folder, "vae", encoder=True, dataset=dataset)]
    descriptions += [
        servables.model_description(folder, kind, dataset=dataset)
        for kind in ("vae", "ae", "colour")
    ]
    descriptions.append(servables.tauc_description())
    for description in descriptions:
        publish_built(client, description)
    me = client.whoami()["username"]
    build = client.publish_bundle(servables.pipeline_document(me), {})
    build = client.wait_for_build(build["servable"], build["id"], timeout=600)
    if build["status"] != "succeeded":
        raise RuntimeError(f"{servables.PIPELINE}: {build['log']}")
    out = {}
    names = [servables.ENCODER, *servables.MODEL_NAMES.values(), servables.TAUC, servables.PIPELINE]
    for name in names:
        ref = f"{me}/{name}"
        out[name] = {"ref": ref, "identifier": client.servable_identifier(ref) or ""}
        print(f"  {ref}: identifier {out[name]['identifier']}")
    return out


# 4. encode through the hub ----------------------------------------------------------------------


def encode(client: Client, ref: str, images: np.ndarray) -> np.ndarray:
    """`images` through a servable as one batch of binary tasks (`CHUNK` images each)."""
    x = images.astype(np.float32)
    tasks = [x[i : i + CHUNK] for i in range(0, len(x), CHUNK)]
    queued = client.run_batch(ref, tasks, binary=True)
    done = client.wait_for_batch(queued["batch_id"], timeout=3600, binary=True)
    results = [done["tasks"][t] for t in queued["task_ids"]]
    failed = [r for r in results if r["status"] != "success"]
    if failed:
        raise RuntimeError(f"{ref}: {len(failed)} task(s) failed, e.g. {failed[0]}")
    return np.concatenate([np.asarray(r["result"]) for r in results])


def predict_test(
    client: Client,
    published: dict[str, dict[str, Any]],
    trained: dict[str, models.Trained],
    folder: Path,
    test: dict[str, np.ndarray],
    *,
    baseline: float,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The test images through the published servables (`publish`'s answer, whose entries get
    `images_per_s` and `largest_difference` to the same model in-process): the served answers
    by servable name (and `index`), and the MAE in eV of each model's Tauc gaps, the
    pipeline's gaps and the trivial `baseline` gap against the simulator's truth."""
    served: dict[str, np.ndarray] = {"index": test["index"]}
    gaps: dict[str, float] = {}
    x = test["image"].astype(np.float32)
    local = {
        servables.ENCODER: models.load(folder, "vae", output="latent").model,
        **{name: trained[kind].model for kind, name in servables.MODEL_NAMES.items()},
    }
    for name, model in local.items():
        entry = published[name]
        started = time.monotonic()
        answer = encode(client, entry["ref"], x)
        entry["images_per_s"] = round(len(answer) / (time.monotonic() - started), 1)
        entry["largest_difference"] = float(np.max(np.abs(answer - models.predict(model, x))))
        served[name] = answer
        if name != servables.ENCODER:
            predicted = bandgap.tauc_gap(answer, simulate.WAVELENGTH_NM)
            gaps[name] = float(np.mean(np.abs(predicted - test["gap_ev"])))
        worst = entry["largest_difference"]
        print(f"  {name}: {len(answer)} images, {entry['images_per_s']} images/s, "
              f"largest difference to in-process {worst:.1e}")  # fmt: skip
    # The pipeline: image → VAE spectrum → Tauc gap, one call with the images as bytes.
    entry = published[servables.PIPELINE]
    started = time.monotonic()
    served[servables.PIPELINE] = np.asarray(client.run(entry["ref"], x, binary=True))
    entry["images_per_s"] = round(len(x) / (time.monotonic() - started), 1)
    expected = bandgap.tauc_gap(served["bandgap_vae"], simulate.WAVELENGTH_NM)
    entry["largest_difference"] = float(np.max(np.abs(served[servables.PIPELINE] - expected)))
    gaps[servables.PIPELINE] = float(np.mean(np.abs(served[servables.PIPELINE] - test["gap_ev"])))
    gaps["baseline (training mean)"] = float(np.mean(np.abs(baseline - test["gap_ev"])))
    return served, gaps


def run(url: str, token: str, args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = QUICK_SIZE if args.quick else args.size
    source_name = SOURCE_NAME + ("_quick" if args.quick else f"_{size}")
    summary: dict[str, Any] = {"size": size}
    with Client(url, token, timeout=600.0) as client:
        print(f"== 1. {size} samples → Connect")
        started = time.monotonic()
        films = write(out / "films", size)
        summary["write_s"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        version = submit(client, films, source_name=source_name, size=size)
        submit_s = time.monotonic() - started
        extracting = next(s for s in version["status"]["status_list"] if s["step"] == "extracting")
        summary["dataset"] = {
            "source_id": version["source_id"],
            "pid": version.get("pid"),
            "submit_to_searchable_s": round(submit_s, 1),
            "extracting": extracting.get("detail"),
        }
        print(f"  {version['source_id']}: {extracting.get('detail')}; {submit_s:.0f} s")

        print("== 2. Forge: training and test sets by composition and elements")
        cuts = cut(client, version["source_id"])
        table = load_dataset(client, version["source_id"])
        indices = check_cuts(table, cuts)
        summary["found"] = {k: len(v) for k, v in indices.items()} | {"records": len(table)}
        print(f"  {len(table)} records; train {len(indices['train'])}, test {len(indices['test'])}")
        data = {k: load_cut(client, v, out / "download" / k) for k, v in cuts.items()}

        print("== 3. train and publish")
        trained = train(data["train"], out / "trained", quick=args.quick)
        summary["trained_on"] = len(data["train"]["index"])
        summary["servables"] = publish(client, out / "trained", version)

        print("== 4. encode and predict the test images through the hub")
        served, gaps = predict_test(
            client, summary["servables"], trained, out / "trained", data["test"],
            baseline=float(np.mean(data["train"]["gap_ev"])),
        )  # fmt: skip
        summary["mae_ev"] = gaps
        for name, mae in gaps.items():
            print(f"  MAE {name}: {mae:.3f} eV")
        np.savez(out / "served.npz", **served)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = hub_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--size", type=int, default=simulate.FULL_SIZE, help="samples")
    parser.add_argument("--quick", action="store_true", help="2,000 samples, short training")
    args = parser.parse_args(argv)
    return run_on_a_hub(args, run, prefix="bandgap-", user="bandgap")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())

"""The CDI use case end to end on a hub: data → Connect → train → publish from git → Forge → run.

    python -m examples.cdi.workflow              # the documented sets, model.py's defaults
    python -m examples.cdi.workflow --quick      # tiny sets, one epoch (what CI runs)
    python -m examples.cdi.workflow --url http://hub:8000 --token mh_…

With no hub given (`--url`/`$MATTERHUB_URL`) it serves its own on loopback from `--hub-dir`
(default: a temporary folder), allowed to fetch from 127.0.0.1 (`examples/_hubtools.py`). A hub
given with `--url` must run on this machine and allow 127.0.0.1 as an outbound network
(`MATTERHUB_OUTBOUND_ALLOWED_NETWORKS='["127.0.0.1/32"]'`) to fetch the model from step 2's git
daemon. Steps:

1. **Data.** The sets of `simulate.py` (made, or reused from `--data`); the test images go
   through Connect, one folder per image: `intensity.h5` (the counts), `truth.h5` (amplitude,
   phase, support — a file of its own) and `parameters.csv` (one row, the simulation
   parameters), which the submission maps onto `custom.*` fields with units; `group_by_dir` makes
   each folder one searchable record. Published with an identifier.
2. **Train and publish.** `model.train` (full: its defaults, 20 epochs on 8,000 images; quick:
   one epoch on 256; `--model DIR` reuses a model `model.py` saved), then the architecture JSON,
   the weights, `cdi_structure/README.md` and `LICENSE` are committed to a git repository that a
   `git daemon` serves on loopback for the time of the publication; the servable `cdi_structure`
   is published from that git location (the hub fetches it, pins the commit, builds and serves
   it), crediting Cherukara, Nashed and Harder (2018); so is `cdi_phase_retrieval`. Both
   identifiers and citations are printed.
3. **Find and run.** `matterhub.Forge` finds the test images by source and by a range of crystal
   size; the found images (their files downloaded from the hub) go through `cdi_structure` in
   three lines of client code and through `cdi_phase_retrieval` as a batch; the served answers are
   scored against the truth (`metrics.py`) and compared with the same code run in-process.
4. **Figure.** The Figure-5-like PNG (`evaluate.figure`) drawn from the served answers.

`--out` keeps the work files (the dataset folders, the git repository, the trained model,
`served.npz` with the served answers, `summary.json`, the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is first imported

import h5py
import numpy as np
import pandas as pd
from examples._hubtools import (
    GitDaemon,
    GitRepo,
    hub_arguments,
    publish_built,
    run_on_a_hub,
    submit_and_wait,
)
from examples.cdi import evaluate, metrics, phase_retrieval, servables
from examples.cdi import simulate as sim

from matterhub import Client, Forge
from matterhub.client.connect import ConnectClient
from matterhub.client.describe import describe_keras

__all__ = [
    "AUTHORS",
    "MAPPING",
    "QUICK_TEST",
    "SIZE_RANGE",
    "find",
    "load_found",
    "publish_cnn",
    "publish_phase_retrieval",
    "run_cnn",
    "run_phase_retrieval",
    "score",
    "sets",
    "submit",
    "train",
    "write_dataset",
]

HERE = Path(__file__).resolve().parent
SOURCE_NAME = "cdi_simulated_test"
QUICK_TEST = 12  # test images submitted in a quick run
SIZE_RANGE = (200.0, 400.0)  # crystal area, fine-grid pixels (50-100 output px): Forge range
AUTHORS = ["Cherukara, Mathew J.", "Nashed, Youssef S. G.", "Harder, Ross J."]
CREATORS = ["MatterHub, CDI use case"]
# parameters.csv column → record field (the submission's `index.csv.mapping`).
COLUMNS = [
    "index", "family", "n_facets", "rotation_deg", "radius_px", "aspect", "scale", "area_px",
    "max_radius_px", "n_sources", "phase_scale", "phase_min_rad", "phase_max_rad",
    "twin_flipped", "photons", "total_counts",
]  # fmt: skip
MAPPING = {f"custom.{c}": c for c in COLUMNS} | {"custom.set": "set", "custom.seed": "seed"}
UNITS = {
    "custom.rotation_deg": "deg",
    "custom.radius_px": "fine-grid pixels (1/2 output pixel)",
    "custom.max_radius_px": "fine-grid pixels (1/2 output pixel)",
    "custom.area_px": "fine-grid pixels (1/4 output pixel)",
    "custom.phase_min_rad": "rad",
    "custom.phase_max_rad": "rad",
    "custom.photons": "photons",
    "custom.total_counts": "photon counts",
}
CHUNK = 100  # images per CNN request


# 1. data ----------------------------------------------------------------------------------------


def sets(data: Path, *, quick: bool) -> dict[str, dict[str, Any]]:
    """The train, validation and test sets from `data/<set>.h5`, simulated first if missing."""
    sizes = sim.SMALL if quick else sim.SETS
    out = {}
    for name, (seed, n) in sizes.items():
        path = data / f"{name}.h5"
        if path.exists() and sim.load(path)["attrs"].get("n_images") == n:
            print(f"  {name}: reusing {path}")
        else:
            started = time.monotonic()
            sim.write(path, sim.simulate_set(seed, n), name=name, seed=seed)
            print(f"  {name}: {n} images (seed {seed}) in {time.monotonic() - started:.0f} s")
        out[name] = sim.load(path)
    return out


def write_dataset(test: dict[str, Any], folder: Path, n: int) -> Path:
    """One folder per test image: `intensity.h5`, `truth.h5`, `parameters.csv` (one row)."""
    attrs = {k: v for k, v in test["attrs"].items() if np.ndim(v) == 0}
    for i in range(n):
        where = folder / "images" / f"test_{i:04d}"
        where.mkdir(parents=True, exist_ok=True)
        with h5py.File(where / "intensity.h5", "w") as f:
            f.attrs.update(attrs)
            f.attrs["index"] = i
            f.create_dataset("intensity", data=test["intensity"][i])
            f["intensity"].attrs["units"] = "photon counts (Poisson), q centred, 32x32"
        with h5py.File(where / "truth.h5", "w") as f:
            f.attrs["index"] = i
            f.create_dataset("amplitude", data=test["amplitude"][i])
            f.create_dataset("phase", data=test["phase"][i])
            f["phase"].attrs["units"] = "rad, 0 outside the support"
            f.create_dataset("support", data=test["support"][i].astype("u1"))
        p = test["params"][i]
        row = {c: p.get(c) for c in COLUMNS} | {"index": i, "n_sources": len(p["sources"])}
        row |= {"set": "test", "seed": f"{p['seed'][0]}-{p['seed'][1]}"}
        pd.DataFrame([row]).to_csv(where / "parameters.csv", index=False)
    return folder


def submit(client: Client, folder: Path, *, source_name: str) -> dict[str, Any]:
    """Submit the image folders through Connect (as one zip); wait until published; the
    dataset version."""
    connect = ConnectClient(client)
    connect.create_dc_block(
        title="Simulated coherent diffraction images of strained 2D crystals (test set)",
        authors=CREATORS,
        description=(
            "32x32 far-field intensities (10^6 photons, Poisson) of 2D crystals with a smooth "
            "strain phase, simulated by MatterHub's examples/cdi/simulate.py (test set, seed 3); "
            "one record per image with its simulation parameters; the true amplitude, phase and "
            "support in a separate file per image."
        ),
        subjects=["coherent diffraction imaging", "phase retrieval", "strain", "simulation"],
    )
    connect.set_source_name(source_name)
    # One zip: an upload request takes at most 1,000 files, and Connect unpacks archives.
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
    connect.add_data_source(archive)
    connect.add_index("csv", MAPPING, units=UNITS)
    connect.set_extraction_config({"group_by_dir": True, "previews": False})
    connect.set_custom_block({"generator": "examples/cdi/simulate.py", "set_seed": 3})
    return submit_and_wait(client, connect, timeout=1800)


# 2. train and publish ---------------------------------------------------------------------------


def train(data: dict[str, dict[str, Any]], out: Path, *, quick: bool) -> tuple[Any, Path]:
    """`model.train` (quick: one epoch) saved under `out`; the model and its folder."""
    from examples.cdi import model as cnn

    keys = ("intensity", "amplitude", "phase")
    train_set = {k: data["train"][k] for k in keys}
    validation_set = {k: data["validation"][k] for k in keys}
    settings = {"epochs": 1} if quick else {}
    trained, history = cnn.train(train_set, validation_set, folder=out, verbose=0, **settings)
    cnn.save(trained, out)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    print(
        f"  trained {history['parameters']} parameters on {history['n_train']} images, "
        f"{history['epochs']} epochs in {history['seconds']:.0f} s (best epoch "
        f"{history['best_epoch']}, val_loss {min(history['val_loss']):.4f})"
    )
    return trained, out


def publish_cnn(client: Client, folder: Path, git_dir: Path, example: np.ndarray) -> dict[str, Any]:
    """Commit the model with its README and licence to a git repository, serve it with
    `git daemon` on loopback, publish `cdi_structure` from there; the build and the commit."""
    from examples.cdi import model as cnn

    here = HERE / "cdi_structure"
    files: dict[str, str | bytes] = {
        "README.md": (here / "README.md").read_text(),
        "LICENSE": (here / "LICENSE").read_text(),
        cnn.ARCH: (folder / cnn.ARCH).read_text(),
        cnn.WEIGHTS: (folder / cnn.WEIGHTS).read_bytes(),
    }
    repo = GitRepo(git_dir, name=cnn.NAME)
    commit = repo.commit(files, f"{cnn.NAME}: the trained network")
    repo.tag("v1")
    with GitDaemon(repo.repos) as daemon:
        location = daemon.url(cnn.NAME)
        print(f"  pushed {commit[:12]} ({', '.join(files)}) to {location}, tag v1")
        description = describe_keras(folder / cnn.WEIGHTS, cnn.NAME, arch=folder / cnn.ARCH)
        description.set_source(location, ref="v1", paths=list(files))
        description.set_title("CDI: crystal shape and strain phase from a 32x32 intensity")
        description.set_creators(AUTHORS)
        description.set_abstract(
            "Encoder-decoder CNN after Cherukara, Nashed and Harder (Sci. Rep. 8, 16520, 2018), "
            "retrained on MatterHub's simulated CDI data: input log(1+counts)/max (N, 32, 32, 1), "
            "outputs amplitude and phase (N, 32, 32, 1)."
        )
        description.set_domains(["coherent diffraction imaging", "deep learning"])
        description.add_related_identifier(servables.CHERUKARA_2018, "IsDescribedBy")
        description.set_license("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
        description.set_example(example.tolist())
        build = publish_built(client, description)
    return {"build": build, "commit": commit, "files": sorted(files), "location": location}


def publish_phase_retrieval(client: Client, example: np.ndarray) -> dict[str, Any]:
    """Publish `cdi_phase_retrieval` (`servables.phase_retrieval_description`); its build."""
    return publish_built(client, servables.phase_retrieval_description(example.tolist()))


def _citation(client: Client, ref: str) -> dict[str, str]:
    return {
        "ref": ref,
        "identifier": client.servable_identifier(ref) or "",
        "bibtex": client.cite_servable(ref, format="bibtex"),
    }


# 3. find and run --------------------------------------------------------------------------------


def find(client: Client, source_id: str) -> dict[str, list[int]]:
    """Test-image indices Forge finds: all of the dataset, those with a crystal area in
    `SIZE_RANGE`, the faceted crystals."""
    forge = Forge(client=client)
    everything = forge.match_source_names(source_id).match_resource_types("record").aggregate()
    lo, hi = SIZE_RANGE
    in_range = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_range("custom.area_px", lo, hi).aggregate()
    )  # fmt: skip
    faceted = (
        forge.match_source_names(source_id).match_resource_types("record")
        .match_field("custom.family", "faceted").aggregate()
    )  # fmt: skip
    return {
        "records": sorted(int(r["custom"]["index"]) for r in everything),
        "in_range": sorted(int(r["custom"]["index"]) for r in in_range),
        "faceted": sorted(int(r["custom"]["index"]) for r in faceted),
    }


def load_found(client: Client, source_id: str, folder: Path, indices: list[int]) -> dict[str, Any]:
    """The found images' intensities and truth, from the dataset's files as the hub serves them."""
    client.download(source_id, folder, progress=False)
    paths = {p.parent.name: p.parent for p in folder.rglob("intensity.h5")}
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("intensity", "amplitude", "phase")}
    out["support"] = []
    for i in indices:
        where = paths[f"test_{i:04d}"]
        with h5py.File(where / "intensity.h5", "r") as f:
            out["intensity"].append(f["intensity"][()])
        with h5py.File(where / "truth.h5", "r") as f:
            for key in ("amplitude", "phase"):
                out[key].append(f[key][()])
            out["support"].append(f["support"][()].astype(bool))
    return {k: np.stack(v) for k, v in out.items()}


def run_cnn(client: Client, ref: str, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The served CNN on counts (N, 32, 32): amplitude and phase (N, 32, 32)."""
    from examples.cdi import model as cnn

    amplitudes, phases = [], []
    for start in range(0, len(intensity), CHUNK):
        x = cnn.prepare(intensity[start : start + CHUNK])
        amplitude, phase = client.run(ref, x.tolist())  # ← the one line that runs the model
        amplitudes.append(np.asarray(amplitude, dtype=np.float32)[..., 0])
        phases.append(np.asarray(phase, dtype=np.float32)[..., 0])
    return np.concatenate(amplitudes), np.concatenate(phases)


def run_phase_retrieval(client: Client, ref: str, intensity: np.ndarray) -> np.ndarray:
    """The served phase retrieval on every image, one task each: (N, 2, 32, 32)."""
    queued = client.run_batch(ref, [im.tolist() for im in intensity])
    done = client.wait_for_batch(queued["batch_id"], timeout=3600)
    tasks = done["tasks"]
    failed = [t for t in tasks.values() if t.get("status") != "success"]
    if failed:
        raise RuntimeError(f"{ref}: {len(failed)} tasks failed, e.g. {failed[0]}")
    return np.asarray([tasks[t]["result"] for t in queued["task_ids"]], dtype=float)


def score(found: dict[str, Any], amplitude: np.ndarray, phase: np.ndarray) -> dict[str, Any]:
    """Per-image shape and phase errors (`metrics.score`, twin forgiven) and their summary."""
    scores = [
        metrics.score(amplitude[i], phase[i], found["support"][i], found["phase"][i])
        for i in range(len(amplitude))
    ]
    shape = [s.shape_error for s in scores]
    phase_err = [s.phase_error for s in scores]
    return {
        "shape": shape,
        "phase": phase_err,
        "twin": sum(s.twin for s in scores),
        "shape_mean": statistics.fmean(shape),
        "shape_median": statistics.median(shape),
        "phase_mean": statistics.fmean(phase_err),
        "phase_median": statistics.median(phase_err),
    }


def _history(folder: Path) -> dict[str, Any]:
    """What `model.py` recorded of the training in `folder/history.json`: when it finished
    (`model.train`'s history) or while it ran (its best epoch so far, `_SaveBest`)."""
    saved = json.loads((folder / "history.json").read_text())
    if "log" in saved:  # written after the best epoch so far, while training went on
        losses = [e["val_loss"] for e in saved["log"]]
        return {"epochs": saved["epochs_done"], "best_epoch": saved["best_epoch"],
                "min_val_loss": min(losses), "finished": False}  # fmt: skip
    keys = ("n_train", "n_validation", "epochs", "best_epoch", "seconds")
    return {k: saved[k] for k in keys} | {"min_val_loss": min(saved["val_loss"]), "finished": True}


def _gap(served: Any, local: Any) -> float:
    """The largest absolute difference between served and in-process arrays, pairwise."""
    return max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(served, local, strict=True)
    )


# the whole run ----------------------------------------------------------------------------------


def run(url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1–4 against the hub at `url`; prints as it goes and returns the summary."""
    import torch
    from examples.cdi import model as cnn

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data) if args.data else (out / "data" if args.quick else sim.DATA_DIR)
    summary: dict[str, Any] = {"quick": args.quick}
    started = time.monotonic()
    print(f"== 1. data: simulated sets in {data_dir}")
    data = sets(data_dir, quick=args.quick)
    test = data["test"]
    n_test = min(QUICK_TEST, len(test["intensity"])) if args.quick else len(test["intensity"])
    with Client(url, token, timeout=300) as client:
        me = client.whoami()["username"]
        t0 = time.monotonic()
        folder = write_dataset(test, out / "dataset", n_test)
        source_name = SOURCE_NAME + ("_quick" if args.quick else "")
        version = submit(client, folder, source_name=source_name)
        sid = version["source_id"]
        submit_s = time.monotonic() - t0
        summary["dataset"] = {k: version.get(k) for k in ("source_id", "pid", "pid_url")}
        summary["dataset"] |= {"images": n_test, "submit_s": round(submit_s, 1)}
        print(f"published {sid}: identifier {version.get('pid')} ({version.get('pid_url')})")
        extracting = next(s for s in version["status"]["status_list"] if s["step"] == "extracting")
        print(f"  {n_test} test images; {extracting['detail']}; {submit_s:.0f} s")
        print(client.cite(sid, format="bibtex").strip())

        print("== 2. train and publish")
        t0 = time.monotonic()
        if args.model:
            model_dir = Path(args.model)
            net = cnn.load(model_dir)
            history = _history(model_dir)
            print(
                f"  reusing the model in {model_dir} (model.py: best of {history['epochs']} "
                f"epochs, epoch {history['best_epoch']}, val_loss {history['min_val_loss']:.4f})"
            )
        else:
            net, model_dir = train(data, out / "trained", quick=args.quick)
            history = _history(model_dir)
        fit_s = time.monotonic() - t0
        summary["train"] = history | {"reused": bool(args.model), "s": round(fit_s, 1)}
        example = cnn.prepare(test["intensity"][:1])
        t0 = time.monotonic()
        published = publish_cnn(client, model_dir, out / "git", example)
        publish_phase_retrieval(client, test["intensity"][0])
        publish_s = time.monotonic() - t0
        ref_cnn, ref_pr = f"{me}/{cnn.NAME}", f"{me}/{servables.PHASE_RETRIEVAL}"
        described = client.describe_servable(ref_cnn)["document"]["dlhub"]["source"]
        summary["servables"] = {
            cnn.NAME: _citation(client, ref_cnn)
            | {
                "commit_pushed": published["commit"],
                "commit_pinned": described["commit"],
                "files": sorted(f["path"] for f in described["files"]),
                "location": published["location"],
            },
            servables.PHASE_RETRIEVAL: _citation(client, ref_pr),
        }
        summary["publish_s"] = round(publish_s, 1)
        print(f"  published and built in {publish_s:.0f} s (model: {fit_s:.0f} s)")
        print(f"  {ref_cnn}: the hub pinned commit {described['commit']}")
        for entry in summary["servables"].values():
            print(f"  {entry['ref']}: identifier {entry['identifier']}")
            print("  " + entry["bibtex"].strip().replace("\n", "\n  "))

        print("== 3. find (Forge) and run")
        ids = find(client, sid)
        lo, hi = SIZE_RANGE
        print(f"  {len(ids['records'])} records in {sid}; ", end="")
        print(f"{len(ids['in_range'])} with a crystal area of {lo:g}-{hi:g} fine px; ", end="")
        print(f"{len(ids['faceted'])} faceted")
        summary["found"] = ids
        indices = ids["records"]
        found = load_found(client, sid, out / "download", indices)
        t0 = time.monotonic()
        # -- the three lines a user writes (run_cnn sends them in chunks of CHUNK images) --------
        #   client = Client(url, token)
        #   X = model.prepare(intensities)
        #   amplitude, phase = client.run(f"{me}/cdi_structure", X.tolist())
        cnn_amp, cnn_phase = run_cnn(client, ref_cnn, found["intensity"])
        cnn_s = time.monotonic() - t0
        t0 = time.monotonic()
        pr_served = run_phase_retrieval(client, ref_pr, found["intensity"])
        pr_s = time.monotonic() - t0
    pr_amp, pr_phase = pr_served[:, 0], pr_served[:, 1]

    local_amp, local_phase = cnn.predict(net, found["intensity"])
    n_check = len(indices) if args.quick else min(len(indices), args.check)
    local_pr = np.stack(
        [phase_retrieval.retrieve_phase(found["intensity"][i]) for i in range(n_check)]
    )
    scores = {
        "CNN": score(found, cnn_amp, cnn_phase),
        "phase retrieval": score(found, pr_amp, pr_phase),
    }
    checked = {k: v[:n_check] for k, v in found.items()}
    local_scores = {
        "CNN": score(found, local_amp, local_phase),
        "phase retrieval": score(checked, local_pr[:, 0], local_pr[:, 1]),
    }
    gaps = {
        "CNN answers": _gap((cnn_amp, cnn_phase), (local_amp, local_phase)),
        "phase retrieval answers": _gap((pr_served[:n_check],), (local_pr,)),
    }
    for name in scores:
        served = [scores[name][k][: len(local_scores[name][k])] for k in ("shape", "phase")]
        local = [local_scores[name][k] for k in ("shape", "phase")]
        gaps[f"{name} metrics"] = _gap(served, local)
    n = len(indices)
    print(f"  served on {n} found test images (CNN {cnn_s:.1f} s, phase retrieval {pr_s:.1f} s):")
    print("  | method | 1 − IoU mean (median) | phase error, rad: mean (median) | twin |")
    for name, s in scores.items():
        print(
            f"  | {name} | {s['shape_mean']:.3f} ({s['shape_median']:.3f}) | "
            f"{s['phase_mean']:.3f} ({s['phase_median']:.3f}) | {s['twin']} |"
        )
    print(f"  served − in-process (CNN on {n}, phase retrieval on {n_check} images):")
    for what, gap in gaps.items():
        print(f"    {what}: ≤ {gap:.1e}")
    summary["use"] = {
        "indices": indices,
        "cnn_s": round(cnn_s, 2),
        "phase_retrieval_s": round(pr_s, 2),
        "checked_in_process": {"CNN": n, "phase retrieval": n_check},
        "scores": scores,
        "in_process_scores": local_scores,
        "gaps": gaps,
    }

    np.savez_compressed(
        out / "served.npz", indices=np.asarray(indices), cnn_amplitude=cnn_amp,
        cnn_phase=cnn_phase, phase_retrieval=pr_served,
    )  # fmt: skip

    print("== 4. figure from the served answers")
    figure = Path(args.figure) if args.figure else out / "figure5.png"
    picks = [p for p in (0, 1, 2, 3) if p < n]
    result = {
        "rows": scores,
        "predictions": {"CNN": (cnn_amp, cnn_phase), "phase retrieval": (pr_amp, pr_phase)},
    }
    evaluate.figure(found, result, figure, picks)
    print(f"  {figure}")
    summary["figure"] = str(figure)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"== done in {summary['wall_s']:.0f} s; {out / 'summary.json'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = hub_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--quick", action="store_true", help="tiny sets, one epoch")
    parser.add_argument("--data", help="the sets' folder (default: data/, quick: OUT/data)")
    parser.add_argument("--model", help="a model folder model.py saved, instead of training")
    parser.add_argument("--check", type=int, default=50, help="phase retrievals redone locally")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--figure", help="the PNG (default: OUT/figure5.png)")
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token (or MATTERHUB_TOKEN)")
    # Its own hub fetches the model from the git daemon on 127.0.0.1.
    return run_on_a_hub(
        args, run, prefix="cdi-", user="cdi", full_name="CDI Workflow",
        outbound_allowed_networks=["127.0.0.1/32"],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

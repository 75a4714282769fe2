"""Publish from git: time from the request to a live servable, next to uploading the same bundle.

    .venv/bin/python bench/bench_publish_git.py            # about 3 minutes on 2 cores
    .venv/bin/python bench/bench_publish_git.py --trials 3 # quicker

A small PyTorch model (TorchScript, 3 → 2) and a small Keras model (architecture JSON + HDF5
weights, Keras 3 on torch) are described with the SDK and committed, with their `dlhub.json`,
to a git repository served by a real `git daemon` on loopback. A hub (SQLite, the bubblewrap
sandbox when installed, the shared package cache ~/.cache/matterhub-tests/hub warm, torch from
/opt/wheels) then publishes each kind:

- `git`: `publish_source` (clone through the outbound guard, pin the commit, checksum the files,
  stage) then the build (unpack, environment, example, compare, recipes) until the version is
  live. Each trial is a new commit (new weights), hence a new version.
- `upload`: the same bundle as a zip upload (`publish` of a staged bundle), the baseline, on a
  second hub (its own data folder) so that it, too, builds its first environment.

The first version of each kind builds its environment (from the warm cache); later versions
with the same requirements reuse it. Both are reported: median and p95 over the trials.
Writes bench/results/publish_git.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.hub.git_server import GitDaemon, GitRepo  # noqa: E402

from matterhub.bootstrap import build_services  # noqa: E402
from matterhub.core.identity import SYSTEM_IDENTITY  # noqa: E402
from matterhub.settings import Settings  # noqa: E402

CACHE = Path.home() / ".cache" / "matterhub-tests" / "hub"
WHEELS = [p for p in ["/opt/wheels"] if Path(p).is_dir()]
X = [[0.2, 0.3, 0.5]]


def torch_bundle(work: Path, seed: int) -> bytes:
    """A TorchScript 3 → 2 linear model, described; its bundle zip."""
    import torch

    from matterhub.client.describe import describe_torch

    torch.manual_seed(seed)
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(),
                                                 torch.nn.Linear(8, 2)))  # fmt: skip
    path = work / "model.pt"
    model.save(str(path))
    expected = model(torch.tensor(X)).tolist()
    description = describe_torch(path, "torch-git", input_shape=[None, 3], output_shape=[None, 2])
    description.set_title("Linear 3 → 2 (PyTorch)").set_creators(["Bench, Mark"])
    description.set_example(X, expected, tolerance=1e-4)
    return description.bundle()


def keras_bundle(work: Path, seed: int) -> bytes:
    """A Keras 3 → 2 model saved as architecture JSON + HDF5 weights, described; its zip."""
    import keras

    from matterhub.client.describe import describe_keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(3,), name="x")
    outputs = keras.layers.Dense(2)(keras.layers.Dense(8, activation="tanh")(inputs))
    model = keras.Model(inputs, outputs)
    arch, weights = work / "model.json", work / "model.weights.h5"
    arch.write_text(model.to_json())
    model.save_weights(weights)
    expected = model.predict(keras.ops.convert_to_numpy(X), verbose=0).tolist()
    description = describe_keras(weights, "keras-git", arch=arch)
    description.set_title("Dense 3 → 2 (Keras)").set_creators(["Bench, Mark"])
    description.set_example(X, expected, tolerance=1e-4)
    return description.bundle()


def write_tree(repo: GitRepo, bundle: bytes, message: str) -> str:
    """Put a bundle's files and dlhub.json at the repository root and commit; the commit."""
    files: dict[str, str | bytes] = {}
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        for name in archive.namelist():
            files[name] = archive.read(name)
    return repo.commit(files, message)


def until_live(services: Any, identity: Any, build: Any, timeout: float = 900) -> None:
    """Poll the build until it ends; raise if it failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = services.servables.get_build(identity, build.servable, build.id)
        if current.status == "succeeded":
            return
        if current.status == "failed":
            raise RuntimeError(f"build failed at {current.step}:\n{current.log}")
        time.sleep(0.05)
    raise TimeoutError(build.servable)


def start_hub(data_dir: Path) -> tuple[Any, Any]:
    """Services over `data_dir` (SQLite, the shared cache, loopback allowed) and a user."""
    settings = Settings(
        data_dir=data_dir,
        hub_cache_dir=CACHE,
        hub_find_links=WHEELS,
        outbound_allowed_networks=["127.0.0.1/32"],
    )
    services = build_services(settings)
    services.start()
    services.accounts.create_user(SYSTEM_IDENTITY, "bench")
    token = services.accounts.create_token(SYSTEM_IDENTITY, "bench").token
    return services, services.accounts.authenticate(token)


def publish_git(services: Any, identity: Any, url: str, commit: str) -> float:
    started = time.perf_counter()
    build, created = services.servables.publish_source(identity, None, {"url": url, "ref": commit})
    assert created, "a new commit is a new version"
    until_live(services, identity, build)
    return time.perf_counter() - started


def publish_upload(services: Any, identity: Any, bundle: bytes) -> float:
    started = time.perf_counter()
    with services.servables.new_bundle() as staged:
        staged.add_zip(io.BytesIO(bundle))
        build = services.servables.publish(identity, staged)
    until_live(services, identity, build)
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="versions after the first, per kind")
    args = parser.parse_args()
    kinds = {"PyTorch (TorchScript)": torch_bundle, "Keras (JSON + weights .h5)": keras_bundle}
    rows: list[tuple[str, str, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-git-") as tmp:
        work = Path(tmp)
        # Two hubs, one per way of publishing, so each builds its own first environment.
        hubs = {way: start_hub(work / f"hub-{way}") for way in ("git", "upload")}
        try:
            for label, make in kinds.items():
                slug = label.split()[0].lower()
                repo = GitRepo(work / slug)
                daemon = GitDaemon(repo.repos)
                try:
                    first: dict[str, list[float]] = {"git": [], "upload": []}
                    later: dict[str, list[float]] = {"git": [], "upload": []}
                    for trial in range(args.trials + 1):
                        scratch = work / f"model-{slug}-{trial}"
                        scratch.mkdir()
                        bundle = make(scratch, seed=trial)
                        commit = write_tree(repo, bundle, f"weights {trial}")
                        into = first if trial == 0 else later
                        into["git"].append(publish_git(*hubs["git"], daemon.url(), commit))
                        into["upload"].append(publish_upload(*hubs["upload"], bundle))
                        print(f"{label} trial {trial}: git {into['git'][-1]:.2f} s, "
                              f"upload {into['upload'][-1]:.2f} s", file=sys.stderr)  # fmt: skip
                    rows.append((label, "first version (environment built)", first["git"],
                                 first["upload"]))  # fmt: skip
                    rows.append((label, f"next versions (n={args.trials})", later["git"],
                                 later["upload"]))  # fmt: skip
                finally:
                    daemon.close()
        finally:
            for services, _identity in hubs.values():
                services.close()
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "publish_git.json").write_text(
        json.dumps([{"model": m, "versions": v, "git_s": g, "upload_s": u} for m, v, g, u in rows])
    )
    print("\n| model | versions | from git: median s | p95 s | upload (baseline): median s "
          "| p95 s | git / upload |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, what, git, upload in rows:
        ratio = statistics.median(git) / statistics.median(upload)
        print(f"| {label} | {what} | {statistics.median(git):.2f} | {p95(git):.2f} | "
              f"{statistics.median(upload):.2f} | {p95(upload):.2f} | {ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()

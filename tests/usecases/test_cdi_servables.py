"""The CDI servables on a real hub. Phase retrieval (`examples/cdi/servables.py`): built in its
own sandboxed environment (numpy + scipy), it answers what `phase_retrieval.py` answers in-process
on simulated test images; a wrong-sized intensity is refused naming the input. The CNN: a
briefly trained network, pushed with `cdi_structure/`'s README and licence to a git repository
served on loopback, published from that location and run as in-process Keras runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from examples.cdi import metrics as met
from examples.cdi import phase_retrieval as pr
from examples.cdi import servables
from examples.cdi import simulate as sim

from matterhub.client.describe import describe_keras
from tests.hub.conftest import Hub, hub_settings, running_hub
from tests.hub.git_server import GitDaemon, GitRepo
from tests.hub.test_sources import LOOPBACK

pytestmark = [
    pytest.mark.timeout(900),
    # Keras's own variables (fit's restore_best_weights) call np.array(variable) under numpy 2.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = hub_settings(
        tmp_path_factory.mktemp("cdi") / "hub", outbound_allowed_networks=LOOPBACK
    )
    with running_hub(settings) as served:
        yield served


def test_the_phase_retrieval_servable_answers_as_the_module(hub: Hub) -> None:
    images = [sim.simulate(3, i) for i in range(3)]
    description = servables.phase_retrieval_description(images[0].intensity.tolist())
    document = description.to_dict()
    assert document["dlhub"]["name"] == "cdi_phase_retrieval"
    assert {r["rightsURI"] for r in document["datacite"]["rightsList"]}
    with hub.client("alice") as client:
        build = client.publish_servable(description, wait=True, timeout=900)
        assert build["status"] == "succeeded", build["log"]
        for im in images[1:]:
            answer = np.asarray(client.run("alice/cdi_phase_retrieval", im.intensity.tolist()))
            assert answer.shape == (2, 32, 32)
            local = pr.retrieve_phase(im.intensity)
            # Same code, same numpy and scipy, same seed: the same reconstruction.
            assert np.allclose(answer, local, atol=1e-4)
            score = met.score(answer[0], answer[1], im.support, im.phase)
            assert score.shape_error < 0.5  # a crystal, not noise
        with pytest.raises(Exception, match="input"):
            client.run("alice/cdi_phase_retrieval", np.ones((16, 16)).tolist())


def test_the_cnn_published_from_a_git_location_answers_as_keras(hub: Hub, tmp_path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from examples.cdi import model as cnn

    def as_set(images: list[sim.Image]) -> dict[str, np.ndarray]:
        return {
            "intensity": np.stack([im.intensity for im in images]),
            "amplitude": np.stack([im.amplitude for im in images]),
            "phase": np.stack([im.phase for im in images]),
        }

    trained, _ = cnn.train(
        as_set(sim.simulate_set(41, 32)), as_set(sim.simulate_set(42, 8)), epochs=1, verbose=0
    )
    folder = tmp_path / "model"
    cnn.save(trained, folder)
    here = Path(servables.__file__).resolve().parent / "cdi_structure"
    files: dict[str, str | bytes] = {
        "README.md": (here / "README.md").read_text(),
        "LICENSE": (here / "LICENSE").read_text(),
        cnn.ARCH: (folder / cnn.ARCH).read_text(),
        cnn.WEIGHTS: (folder / cnn.WEIGHTS).read_bytes(),
    }
    repo = GitRepo(tmp_path / "git", name="cdi_structure")
    commit = repo.commit(files, "cdi_structure: a briefly trained network")
    repo.tag("v1")
    daemon = GitDaemon(repo.repos)
    try:
        x = cnn.prepare(np.stack([im.intensity for im in sim.simulate_set(3, 3)]))
        expected = trained.predict(x, verbose=0)
        description = describe_keras(folder / cnn.WEIGHTS, "cdi_structure", arch=folder / cnn.ARCH)
        description.set_source(daemon.url("cdi_structure"), ref="v1", paths=list(files))
        description.set_title("CDI: crystal shape and strain phase from a 32x32 intensity")
        description.set_creators(
            ["Cherukara, Mathew J.", "Nashed, Youssef S. G.", "Harder, Ross J."]
        )
        description.add_related_identifier(servables.CHERUKARA_2018, "IsDescribedBy")
        description.set_license("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
        description.set_example(x[:1].tolist())
        with hub.client("alice") as client:
            build = client.publish_servable(description, wait=True, timeout=900)
            assert build["status"] == "succeeded", build["log"]
            described = client.describe_servable("alice/cdi_structure", build["version"])
            source = described["document"]["dlhub"]["source"]
            assert source["commit"] == commit
            assert {f["path"] for f in source["files"]} == set(files)
            # Three lines for a user: a client, the servable, the prepared intensities.
            amplitude, phase = client.run("alice/cdi_structure", x.tolist())
        assert np.allclose(np.asarray(amplitude), expected[0], atol=1e-4)
        assert np.allclose(np.asarray(phase), expected[1], atol=1e-4)
    finally:
        daemon.close()

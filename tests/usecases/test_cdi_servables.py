"""The CDI phase-retrieval servable (`examples/cdi/servables.py`) published to a real hub: built
in its own sandboxed environment (numpy + scipy), it answers what `phase_retrieval.py` answers
in-process on simulated test images, and a wrong-sized intensity is refused naming the input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from examples.cdi import metrics as met
from examples.cdi import phase_retrieval as pr
from examples.cdi import servables
from examples.cdi import simulate as sim

from tests.hub.conftest import Hub, hub_settings, running_hub

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(hub_settings(tmp_path_factory.mktemp("cdi") / "hub")) as served:
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

"""The band-gap servables on a real hub: briefly trained VAE (and colour model) published as
torch servables linked to a published dataset, the Tauc fit as a python servable, the pipeline
image → band gap; images sent as arrays in a binary batch; answers equal the in-process ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from examples.bandgap import bandgap, models, servables
from examples.bandgap import simulate as sim

from matterhub.core.identity import PUBLIC
from tests.hub.conftest import Hub, hub_settings, running_hub
from tests.publish.conftest import DC

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(hub_settings(tmp_path_factory.mktemp("bandgap") / "hub")) as served:
        yield served


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = sim.simulate(600, 3)
    folder = tmp_path_factory.mktemp("bandgap-models")
    vae = models.fit_autoencoder(
        data["image"], data["absorbance"], kind="vae", epochs=2, regressor_epochs=3
    )
    models.save(vae, folder)
    models.save(models.fit_colour(data["image"], data["absorbance"], k=8), folder)
    return folder


def _dataset(hub: Hub) -> tuple[str, str]:
    alice = hub.services.accounts.identity_for("alice")
    draft = hub.services.datasets.create(
        alice, dc=DC, source_name="bandgap_films", visible_to=[PUBLIC]
    )
    published = hub.services.datasets.publish(alice, draft.source_id)
    assert published.pid is not None
    return published.source_id, published.pid


def test_encoder_models_and_pipeline_answer_as_in_process(hub: Hub, trained: Path) -> None:
    source_id, dataset_pid = _dataset(hub)
    dataset = {"source_id": source_id, "doi": dataset_pid}
    test = sim.simulate(40, 4)
    images = test["image"].astype(np.float32)
    example = images[:2]
    vae = models.load(trained, "vae")
    encoder = models.load(trained, "vae", output="latent")
    expected_latent = models.predict(encoder.model, example)
    expected_spectrum = models.predict(vae.model, example)
    descriptions = [
        servables.model_description(
            trained, "vae", encoder=True, dataset=dataset, example=example.tolist(),
            expected=expected_latent.tolist(),
        ),
        servables.model_description(
            trained, "vae", dataset=dataset, example=example.tolist(),
            expected=expected_spectrum.tolist(),
        ),
        servables.tauc_description(
            expected_spectrum.tolist(), bandgap.gaps(expected_spectrum).tolist()
        ),
    ]  # fmt: skip
    base = hub.services.settings.base_url.rstrip("/")
    with hub.client("alice") as client:
        for description in descriptions:
            build = client.publish_servable(description, wait=True, timeout=900)
            assert build["status"] == "succeeded", build["log"]
        pipeline = servables.pipeline_document("alice")
        build = client.publish_bundle(pipeline, {})
        build = client.wait_for_build(build["servable"], build["id"], timeout=300)
        assert build["status"] == "succeeded", build["log"]

        # Each model has its own identifier and cites the dataset it was trained on.
        ids = set()
        for name in (servables.ENCODER, servables.MODEL_NAMES["vae"]):
            document = client.describe_servable(f"alice/{name}")["document"]
            ids.add(document["dlhub"]["identifier"])
            assert document["dlhub"]["training_data"]["source_id"] == source_id
            cited = json.loads(client.cite_servable(f"alice/{name}", format="schema.org"))
            assert cited["identifier"] == document["dlhub"]["identifier"]
            assert cited["isBasedOn"] == [f"{base}/pid/{dataset_pid}"]  # derived from the data
        assert len(ids) == 2 and all(ids)

        # A binary batch of one image per call: latents as the in-process encoder gives them.
        one_each = [images[i : i + 1] for i in range(12)]
        queued = client.run_batch(f"alice/{servables.ENCODER}", one_each, binary=True)
        done = client.wait_for_batch(queued["batch_id"], timeout=300, binary=True)
        assert done["counts"] == {"success": 12}
        results = [done["tasks"][i]["result"] for i in queued["task_ids"]]
        assert all(isinstance(r, np.ndarray) for r in results)  # arrays came back as bytes
        latents = np.concatenate(results)
        assert np.allclose(latents, models.predict(encoder.model, images[:12]), atol=1e-4)

        # The pipeline: image → spectrum → Tauc gap, as in-process.
        local_gaps = bandgap.gaps(models.predict(vae.model, images))
        # The simulator's uint8 images go as they are (the torch servable casts to float32).
        raw = test["image"]
        assert raw.dtype == np.uint8
        answer = np.asarray(client.run(f"alice/{servables.PIPELINE}", raw, binary=True))
        assert answer.shape == (40,)
        assert np.allclose(answer, local_gaps, atol=1e-3)
        assert np.all((answer > 1.0) & (answer < 4.5))
        # A wrong image size is refused naming the input.
        with pytest.raises(Exception, match="input"):
            client.run(
                f"alice/{servables.ENCODER}", np.zeros((1, 8, 8, 3), np.float32), binary=True
            )


def test_colour_model_description_is_a_torch_servable(trained: Path) -> None:
    description = servables.model_description(
        trained, "colour", dataset={"source_id": "bandgap_films_v1.1", "doi": "10.5555/x"}
    )
    document = description.to_dict()
    details = description.run_method["method_details"]
    assert document["dlhub"]["name"] == "bandgap_colour"
    assert details["class_name"] == "ColourModel" and details["init_kwargs"] == {"k": 8}
    assert details["fold_rows"] is True
    assert document["dlhub"]["training_data"] == {
        "source_id": "bandgap_films_v1.1",
        "doi": "10.5555/x",
    }
    # What the hub will build: the class from the shipped module, the weights loaded.
    loaded = models.load(trained, "colour")
    spectra = models.predict(loaded.model, sim.simulate(5, 9)["image"])
    assert spectra.shape == (5, sim.WAVELENGTH_NM.size)

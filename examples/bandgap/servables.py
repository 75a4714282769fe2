"""The band-gap servables: three image → spectrum models, the VAE encoder, the Tauc fit, a pipeline.

Each model servable is the trained torch module of ``models.py`` (``describe_torch``: weights +
``models.py`` + class + keyword arguments) in an environment of torch and numpy, declared
``fold_rows`` (a row's answer does not depend on the others), so a batch of many one-image
calls is one forward pass. Inputs are images ``(n, 16, 16, 3)``, sRGB values 0–255: the
simulator's uint8 arrays as they are (the servable casts to float32), sent with ``binary=True``.

- ``bandgap_vae_encoder``: images (n, 16, 16, 3) → VAE latent means (n, 8);
- ``bandgap_vae``, ``bandgap_ae``, ``bandgap_colour``: images → absorbance (n, 101), 300–800 nm;
- ``bandgap_tauc``: absorbance (n, 101) → band gaps (n,) in eV (``bandgap.gaps``; batch
  function ``gaps_many``), numpy only;
- ``bandgap_pipeline``: images → band gaps (n,): ``bandgap_vae`` then ``bandgap_tauc``.

Every description links the training dataset (``link_dataset``: its ``source_id`` and, when it
has one, its DOI as ``IsDerivedFrom``); the hub mints each servable version its own identifier
when it goes live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.bandgap import models

from matterhub.client.describe import describe_files, describe_torch
from matterhub.client.describe.base import ServableDescription

__all__ = [
    "ENCODER",
    "MODEL_NAMES",
    "PIPELINE",
    "TAUC",
    "model_description",
    "pipeline_document",
    "tauc_description",
]

HERE = Path(__file__).resolve().parent
MODEL_NAMES = {"vae": "bandgap_vae", "ae": "bandgap_ae", "colour": "bandgap_colour"}
ENCODER = "bandgap_vae_encoder"
TAUC = "bandgap_tauc"
PIPELINE = "bandgap_pipeline"
CREATORS = ["MatterHub, band-gap use case"]
STEIN_2019 = "10.1039/C8SC03077D"  # Stein et al., Chem. Sci. 10, 47 (2019): the paper's models
LICENSE = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
ABSTRACTS = {
    "vae": "A convolutional variational autoencoder's encoder and a regressor from its latent "
    "mean to the absorption spectrum, trained on simulated oxide films.",
    "ae": "A convolutional autoencoder's encoder and a regressor from its code to the "
    "absorption spectrum, trained on simulated oxide films.",
    "colour": "k-means colour clusters in CIELAB: an image's fractions of pixels per cluster, "
    "mapped to the absorption spectrum by ridge regression.",
}


def _dataset(description: ServableDescription, dataset: dict[str, str] | None) -> None:
    if dataset:
        doi = dataset.get("doi")
        description.link_dataset(
            source_id=dataset.get("source_id"),
            doi=doi if doi and doi.startswith("10.") else None,
        )


def model_description(
    folder: Path,
    kind: str,
    *,
    encoder: bool = False,
    dataset: dict[str, str] | None = None,
    example: Any = None,
    expected: Any = None,
) -> ServableDescription:
    """A saved model (``models.save`` into ``folder``) as a servable; ``encoder=True`` for the
    VAE's latent means (``bandgap_vae_encoder``)."""
    trained = models.load(folder, kind)
    output = "latent" if encoder else "spectrum"
    name = ENCODER if encoder else MODEL_NAMES[kind]
    description = describe_torch(
        folder / f"{kind}.pt", name,
        input_shape=[None, models.SIZE, models.SIZE, 3],
        output_shape=[None, models.LATENT if encoder else models.N_WAVELENGTHS],
        module=HERE / "models.py",
        class_name="ColourModel" if kind == "colour" else "SpectrumModel",
        init_kwargs=models.init_kwargs(trained, output),
    )  # fmt: skip
    description.set_fold_rows()
    what = "VAE latent means" if encoder else "absorption spectrum (300–800 nm)"
    description.set_title(f"Band gap use case: {kind.upper()} image → {what}")
    description.set_creators(CREATORS)
    description.set_abstract(ABSTRACTS[kind])
    description.set_domains(["optical imaging", "band gap", "metal oxides"])
    description.set_license(*LICENSE)
    description.add_related_identifier(STEIN_2019, "IsDocumentedBy")
    _dataset(description, dataset)
    if example is not None:
        description.set_example(example, expected, tolerance=1e-3)
    return description


def tauc_description(example: Any = None, expected: Any = None) -> ServableDescription:
    """``bandgap.gaps``: the Tauc fit of absorbance spectra, numpy only, batched."""
    description = describe_files(
        TAUC, "bandgap:gaps", [HERE / "bandgap.py"],
        input_type={"type": "ndarray", "shape": [None, models.N_WAVELENGTHS],
                    "item_type": {"type": "float"},
                    "description": "decadic absorbance, 300–800 nm every 5 nm"},
        output_type={"type": "ndarray", "shape": [None], "item_type": {"type": "float"},
                     "description": "band gap (eV), direct Tauc fit"},
        batch_function="gaps_many",
    )  # fmt: skip
    description.add_requirements({"numpy": "2.4.6"})
    description.set_title("Band gap from an absorption spectrum (direct Tauc fit)")
    description.set_creators(CREATORS)
    description.set_abstract(
        "The straight part of the Tauc plot (A·E)² against E (0.15–0.7 of its maximum) fitted "
        "by least squares; the gap is its intercept."
    )
    description.set_license(*LICENSE)
    if example is not None:
        description.set_example(example, expected, tolerance=1e-6)
    return description


def pipeline_document(owner: str, *, model: str = MODEL_NAMES["vae"]) -> dict[str, Any]:
    """image → band gap: ``<owner>/<model>`` then ``<owner>/bandgap_tauc``."""
    return {
        "datacite": {
            "titles": [{"title": "Band gap from an optical image of an oxide film"}],
            "creators": [{"creatorName": CREATORS[0]}],
        },
        "dlhub": {"name": PIPELINE},
        "servable": {
            "type": "pipeline",
            "steps": [{"servable": f"{owner}/{model}"}, {"servable": f"{owner}/{TAUC}"}],
        },
    }

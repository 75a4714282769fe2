"""The band-gap models (`examples/bandgap/models.py`), the Tauc servable's functions and the
evaluation script at a small size: shapes, save/load, Lab conversion against colour-science,
the held-out region, the baselines and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from examples.bandgap import bandgap, evaluate, models
from examples.bandgap import simulate as sim

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return sim.simulate(700, 5)


def test_lab_matches_colour_science() -> None:
    import colour

    rgb = np.array([[255, 128, 0], [10, 200, 250], [255, 255, 255], [0, 0, 0], [90, 90, 30]])
    ours = models.srgb_to_lab(torch.tensor(rgb, dtype=torch.float64)).numpy()
    xyz = colour.sRGB_to_XYZ(rgb / 255.0)
    reference = colour.XYZ_to_Lab(
        xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    )
    assert np.allclose(ours, reference, atol=0.05)


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_autoencoders_train_save_and_load(data, kind: str, tmp_path: Path) -> None:
    trained = models.fit_autoencoder(
        data["image"], data["absorbance"], kind=kind, epochs=2, regressor_epochs=2, seed=1
    )
    spectra = models.predict(trained.model, data["image"][:20])
    assert spectra.shape == (20, sim.WAVELENGTH_NM.size) and np.all(np.isfinite(spectra))
    assert models.reconstruct(trained, data["image"][:3]).shape == (3, 16, 16, 3)
    models.save(trained, tmp_path)
    again = models.load(tmp_path, kind)
    assert np.array_equal(models.predict(again.model, data["image"][:20]), spectra)
    latent = models.predict(models.load(tmp_path, kind, output="latent").model, data["image"][:5])
    assert latent.shape == (5, models.LATENT)
    # Rows are independent (fold_rows): one image alone answers as in a batch.
    alone = models.predict(again.model, data["image"][7:8])
    assert np.allclose(alone, spectra[7:8], atol=1e-5)
    with pytest.raises(ValueError):
        models.SpectrumModel("pca")


def test_colour_model_clusters_pixels_and_regresses(data) -> None:
    trained = models.fit_colour(data["image"], data["absorbance"], k=6, seed=0)
    model = trained.model
    assert isinstance(model, models.ColourModel)
    feats = model.features(torch.as_tensor(data["image"][:30], dtype=torch.float32))
    assert feats.shape == (30, 6)
    assert torch.allclose(feats.sum(dim=1), torch.ones(30))
    spectra = models.predict(model, data["image"])
    # The regression explains most of the spectra's variance on its training images.
    resid = ((spectra - data["absorbance"]) ** 2).mean()
    assert resid < 0.5 * data["absorbance"].var(axis=0).mean()


def test_gaps_servable_functions(data) -> None:
    a = data["absorbance"][:30]
    assert np.allclose(bandgap.gaps(a), bandgap.tauc_gap(a, sim.WAVELENGTH_NM))
    parts = bandgap.gaps_many([a[:10], a[10:11], a[11:]])
    assert [len(p) for p in parts] == [10, 1, 19]
    assert np.allclose(np.concatenate(parts), bandgap.gaps(a))
    assert np.array_equal(bandgap.WAVELENGTH_NM, sim.WAVELENGTH_NM)
    with pytest.raises(ValueError, match="input"):
        bandgap.gaps(a[:, :50])


def test_evaluation_holds_out_a_region(tmp_path: Path, capsys) -> None:
    args = ["--n", "1500", "--epochs", "2", "--regressor-epochs", "3", "--out", str(tmp_path)]
    args += ["--hold-out", "Ce"]
    result = evaluate.main([*args, "--docs", str(tmp_path / "docs")])
    out = capsys.readouterr().out
    assert "| VAE → spectrum → Tauc |" in out and "training-set mean gap" in out
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["n_train"] + saved["n_test"] == 1500
    assert np.all(result["_test"]["composition"][:, 3] >= evaluate.HOLDOUT_BI)  # the CeO2 corner
    assert saved["held_out"] == "x_Ce >= 0.5"
    # Part of the corner's gaps lie above every training gap: the extrapolation column.
    assert saved["n_test_beyond_train_gaps"] > 0
    assert saved["test_gap_range_ev"][1] > saved["train_gap_range_ev"][1]
    assert np.isfinite(saved["rows"]["VAE → spectrum → Tauc"]["mae_beyond_ev"])
    rows = saved["rows"]
    assert set(rows) >= {
        "VAE → spectrum → Tauc",
        "AE → spectrum → Tauc",
        "colour clusters (Lab k-means) → spectrum → Tauc",
        "training-set mean gap",
        "nearest colour (1-NN, mean Lab)",
    }
    # The colour of a film says much about its gap: a lookup beats knowing nothing.
    mean = rows["training-set mean gap"]["mae_ev"]
    assert rows["nearest colour (1-NN, mean Lab)"]["mae_ev"] < 0.5 * mean
    assert rows["reference: Tauc fit of the measured spectrum"]["mae_ev"] < 0.02
    for name in ("bandgap-figure4a.png", "bandgap-figure4b.png", "bandgap-parity.png"):
        assert (tmp_path / "docs" / name).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "models" / "vae.pt").exists()

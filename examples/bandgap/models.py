"""Three image → absorption-spectrum models (PyTorch), as in the MDF/DLHub paper's first use case.

Every model takes images (n, 16, 16, 3) as float32 sRGB values in 0–255 (``simulate.py``'s uint8
images cast to float) and answers the decadic absorbance spectrum (n, 101) on 300–800 nm; the
band gap follows from that spectrum by a Tauc fit (``bandgap.py``).

- **Autoencoder** (``kind="ae"``): a convolutional encoder (16×16×3 → conv 3→16 stride 2 →
  conv 16→32 stride 2 → dense 64 → ``LATENT`` = 8) and a mirrored decoder, trained on pixel MSE;
  then a regressor (dense 8 → 64 → 64 → 101) from the latent vector to the spectrum.
- **Variational autoencoder** (``kind="vae"``): the same layers, the encoder giving a mean and a
  log-variance; trained on the pixel squared error summed per image + ``BETA`` × KL; the
  regressor reads the latent mean.
- **Colour clustering** (``ColourModel``): k-means (scikit-learn, ``K_COLOURS`` = 24 clusters) of
  pixel colours in CIELAB (D65 white); an image's features are the fractions of its pixels in
  each cluster; a ridge regression maps them to the spectrum. Inference (sRGB → Lab, nearest
  centroid, histogram, linear map) is written in torch so the fitted model is one torch module.

The regressors predict the spectrum standardised per wavelength (means and scales are buffers of
the module). Only the encoders and regressors are served; the decoders make the reconstructions
of the figures. Training uses one CPU thread (``torch.set_num_threads(1)``), seeded.

This file is also the servables' module: it imports torch and numpy only (scikit-learn inside
``fit_colour``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "BETA",
    "K_COLOURS",
    "LATENT",
    "ColourModel",
    "Decoder",
    "Encoder",
    "SpectrumModel",
    "Trained",
    "fit_autoencoder",
    "fit_colour",
    "init_kwargs",
    "load",
    "predict",
    "reconstruct",
    "save",
    "srgb_to_lab",
    "train_all",
]

LATENT = 8
BETA = 1.0
K_COLOURS = 24
N_WAVELENGTHS = 101
SIZE = 16
# sRGB (D65) linear RGB → XYZ (IEC 61966-2-1) and the D65 white point (Y = 1).
_RGB_TO_XYZ = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
_WHITE = [0.95047, 1.0, 1.08883]


def _to_tensor(images: torch.Tensor) -> torch.Tensor:
    """(n, 16, 16, 3) values 0–255 → (n, 3, 16, 16) in [0, 1]."""
    return images.permute(0, 3, 1, 2) / 255.0


class Encoder(nn.Module):
    """Images (n, 16, 16, 3) 0–255 → (n, out) (out = LATENT, or 2·LATENT for a VAE)."""

    def __init__(self, out: int = LATENT) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, out),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(_to_tensor(images))


class Decoder(nn.Module):
    """Latent (n, LATENT) → images (n, 16, 16, 3) in 0–255."""

    def __init__(self, latent: int = LATENT) -> None:
        super().__init__()
        self.dense = nn.Sequential(
            nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 32 * 4 * 4), nn.ReLU()
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.deconv(self.dense(z).view(-1, 32, 4, 4))
        return x.permute(0, 2, 3, 1) * 255.0


def _regressor(n_in: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, N_WAVELENGTHS)
    )


class SpectrumModel(nn.Module):
    """An AE/VAE encoder and its latent → spectrum regressor (the served model).

    ``output="spectrum"`` answers absorbance (n, 101); ``output="latent"`` the latent vector
    (the VAE's mean) (n, LATENT), for the encoder servable.
    """

    def __init__(self, kind: str = "vae", output: str = "spectrum") -> None:
        super().__init__()
        if kind not in ("ae", "vae") or output not in ("spectrum", "latent"):
            raise ValueError(f"kind {kind!r} / output {output!r}")
        self.kind, self.output = kind, output
        self.encoder = Encoder(2 * LATENT if kind == "vae" else LATENT)
        self.regressor = _regressor(LATENT)
        self.register_buffer("mean", torch.zeros(N_WAVELENGTHS))
        self.register_buffer("scale", torch.ones(N_WAVELENGTHS))

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[:, :LATENT]  # the VAE's mean, or the AE's code

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.latent(images)
        if self.output == "latent":
            return z
        return self.regressor(z) * self.scale + self.mean


def srgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """sRGB values 0–255 (..., 3) → CIELAB (..., 3), D65 white."""
    c = images / 255.0
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ torch.tensor(_RGB_TO_XYZ, dtype=images.dtype).T
    t = xyz / torch.tensor(_WHITE, dtype=images.dtype)
    delta = 6.0 / 29.0
    f = torch.where(t > delta**3, t.clamp_min(1e-12) ** (1 / 3), t / (3 * delta**2) + 4 / 29)
    return torch.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        dim=-1,
    )


class ColourModel(nn.Module):
    """Images → pixel colours in Lab → nearest of K centroids → cluster fractions → spectrum."""

    def __init__(self, k: int = K_COLOURS) -> None:
        super().__init__()
        self.register_buffer("centroids", torch.zeros(k, 3))
        self.linear = nn.Linear(k, N_WAVELENGTHS)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        lab = srgb_to_lab(images).reshape(images.shape[0], -1, 3)
        nearest = torch.cdist(lab, self.centroids.expand(images.shape[0], -1, -1)).argmin(-1)
        counts = torch.nn.functional.one_hot(nearest, self.centroids.shape[0])
        return counts.to(images.dtype).mean(dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(images))


@dataclass
class Trained:
    """A fitted model, its decoder (AE/VAE) and what training printed."""

    model: nn.Module
    decoder: Decoder | None
    kind: str
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _batches(n: int, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    return list(torch.randperm(n, generator=gen).split(size))


def fit_autoencoder(
    images: np.ndarray,
    absorbance: np.ndarray,
    *,
    kind: str = "vae",
    epochs: int = 20,
    regressor_epochs: int = 40,
    batch: int = 256,
    seed: int = 0,
) -> Trained:
    """Train the (V)AE on the images, then the latent → spectrum regressor on its codes."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    x = torch.as_tensor(images, dtype=torch.float32)
    model = SpectrumModel(kind)
    decoder = Decoder()
    params = list(model.encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    log: list[str] = []
    for epoch in range(epochs):
        total = 0.0
        for idx in _batches(len(x), batch, gen):
            xb = x[idx]
            code = model.encoder(xb)
            target = xb / 255.0
            if kind == "vae":
                mu, logvar = code[:, :LATENT], code[:, LATENT:].clamp(-10, 10)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                recon = decoder(z) / 255.0
                sse = ((recon - target) ** 2).sum(dim=(1, 2, 3))
                kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)
                # Pixel errors of σ ≈ 0.1 (so the KL term does not wash colour out): 1/(2σ²) = 50.
                loss = (50.0 * sse + BETA * kl).mean()
            else:
                loss = ((decoder(code) / 255.0 - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log.append(f"{kind} epoch {epoch + 1}: loss {total / len(x):.5f}")
    _fit_regressor(model, x, absorbance, regressor_epochs, batch, gen)
    model.eval()
    decoder.eval()
    log.append(f"{kind} regressor trained ({regressor_epochs} epochs)")
    return Trained(model, decoder, kind, log, time.perf_counter() - t0)


def _fit_regressor(
    model: SpectrumModel,
    x: torch.Tensor,
    absorbance: np.ndarray,
    epochs: int,
    batch: int,
    gen: torch.Generator,
) -> None:
    y = torch.as_tensor(absorbance, dtype=torch.float32)
    mean, scale = y.mean(0), y.std(0).clamp_min(1e-3)
    model.mean.copy_(mean)
    model.scale.copy_(scale)
    with torch.no_grad():
        z = torch.cat([model.latent(c) for c in x.split(4096)])
    z_mean, z_std = z.mean(0), z.std(0).clamp_min(1e-6)
    target = (y - mean) / scale
    reg = model.regressor
    first = reg[0]
    assert isinstance(first, nn.Linear)
    opt = torch.optim.Adam(reg.parameters(), lr=2e-3)
    zn = (z - z_mean) / z_std
    for _ in range(epochs):
        for idx in _batches(len(z), batch, gen):
            loss = ((reg(zn[idx]) - target[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    # Fold the latent standardisation into the first layer: reg(z) = reg'((z − μ)/σ).
    with torch.no_grad():
        w = first.weight / z_std
        first.bias -= (w * z_mean).sum(dim=1)
        first.weight.copy_(w)


def fit_colour(
    images: np.ndarray, absorbance: np.ndarray, *, k: int = K_COLOURS, seed: int = 0
) -> Trained:
    """k-means of pixel colours in Lab (on up to 200,000 pixels), then ridge to the spectrum."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import Ridge

    t0 = time.perf_counter()
    x = torch.as_tensor(images, dtype=torch.float32)
    lab = srgb_to_lab(x).reshape(-1, 3).numpy()
    rng = np.random.default_rng(seed)
    sample = lab[rng.choice(len(lab), min(len(lab), 200_000), replace=False)]
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(sample)
    model = ColourModel(k)
    model.centroids.copy_(torch.as_tensor(km.cluster_centers_, dtype=torch.float32))
    with torch.no_grad():
        feats = torch.cat([model.features(c) for c in x.split(4096)]).numpy()
    ridge = Ridge(alpha=1e-3, solver="svd").fit(feats, absorbance)  # fractions sum to 1
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(ridge.coef_, dtype=torch.float32))
        model.linear.bias.copy_(torch.as_tensor(ridge.intercept_, dtype=torch.float32))
    model.eval()
    log = [f"colour: k-means k={k} inertia {km.inertia_ / len(sample):.2f} per pixel"]
    return Trained(model, None, "colour", log, time.perf_counter() - t0)


def predict(model: nn.Module, images: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """The model's answer for images (n, 16, 16, 3), as a numpy array."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    with torch.no_grad():
        return torch.cat([model(c) for c in x.split(chunk)]).numpy() if len(x) else np.zeros(0)


def reconstruct(trained: Trained, images: np.ndarray) -> np.ndarray:
    """The (V)AE's reconstruction (decoder of the latent mean), uint8 (n, 16, 16, 3)."""
    assert trained.decoder is not None and isinstance(trained.model, SpectrumModel)
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    with torch.no_grad():
        out = trained.decoder(trained.model.latent(x))
    return np.clip(np.rint(out.numpy()), 0, 255).astype(np.uint8)


def save(trained: Trained, folder: Path) -> Path:
    """``<kind>.pt`` (state_dict of the served model), ``<kind>_decoder.pt``, ``<kind>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), folder / f"{trained.kind}.pt")
    if trained.decoder is not None:
        torch.save(trained.decoder.state_dict(), folder / f"{trained.kind}_decoder.pt")
    config: dict[str, Any] = {"kind": trained.kind, "seconds": trained.seconds, "log": trained.log}
    if isinstance(trained.model, ColourModel):
        config["k"] = int(trained.model.centroids.shape[0])
    (folder / f"{trained.kind}.json").write_text(json.dumps(config, indent=1))
    return folder / f"{trained.kind}.pt"


def load(folder: Path, kind: str, *, output: str = "spectrum") -> Trained:
    """A model saved by ``save``."""
    config = json.loads((folder / f"{kind}.json").read_text())
    model: nn.Module
    decoder = None
    if kind == "colour":
        model = ColourModel(config["k"])
    else:
        model = SpectrumModel(kind, output)
        decoder = Decoder()
        decoder.load_state_dict(torch.load(folder / f"{kind}_decoder.pt", weights_only=True))
        decoder.eval()
    model.load_state_dict(torch.load(folder / f"{kind}.pt", weights_only=True))
    model.eval()
    return Trained(model, decoder, kind, config["log"], config["seconds"])


def init_kwargs(trained: Trained, output: str = "spectrum") -> dict[str, Any]:
    """The keyword arguments the served class is built with (``describe_torch``)."""
    if trained.kind == "colour":
        assert isinstance(trained.model, ColourModel)
        return {"k": int(trained.model.centroids.shape[0])}
    return {"kind": trained.kind, "output": output}


def train_all(
    images: np.ndarray,
    absorbance: np.ndarray,
    out: Path,
    *,
    epochs: int = 20,
    regressor_epochs: int = 40,
    seed: int = 0,
) -> dict[str, Trained]:
    """Train the VAE, the AE and the colour model on these films and save them into ``out``
    (what ``servables.model_description(out, kind)`` publishes)."""
    trained = {
        kind: fit_autoencoder(
            images, absorbance, kind=kind, epochs=epochs, regressor_epochs=regressor_epochs,
            seed=seed,
        )
        for kind in ("vae", "ae")
    }  # fmt: skip
    trained["colour"] = fit_colour(images, absorbance, seed=seed)
    for t in trained.values():
        save(t, out)
    return trained

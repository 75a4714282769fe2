"""The CDI network: one encoder, two decoders (amplitude and phase), Keras 3 on PyTorch.

After Cherukara et al., Sci. Rep. 8, 16520 (2018): a convolutional encoder maps the 32×32
diffraction intensity to a 4×4×32 code; two decoders of the same shape turn it back into a 32×32
amplitude (sigmoid, in [0, 1]) and a 32×32 phase (tanh·π, in [−π, π], radians, 0 outside the
crystal as in the truth). Much smaller than the paper's (≈ 50 k parameters, ≈ 0.2 MB of float32
weights): it trains on two shared CPU cores and answers ~2,000 images/s on one.

    encoder  conv8 conv8 pool | conv16 conv16 pool | conv32 conv32 pool
    decoder  conv32 up | conv16 up | conv8 up | conv8 → conv1 (sigmoid | tanh·π)   ×2

Every 3×3 convolution but the last is followed by batch normalisation (momentum 0.9) and a ReLU.
Inside, the layers are channels-first (a Permute after the input and before each output): on
the torch backend, channels-last convolutions transpose their tensors on every call. A first
version twice as wide (0.2 M parameters, channels-last) scored a little better (see
docs/usecases/cdi.md) at a third of the speed.

Input: ``prepare(intensity)`` = log(1 + counts) / max over the image (so in [0, 1] whatever the
photon count), shape (N, 32, 32, 1). Loss: mean squared error on each output (equal weights),
Adam (10⁻³), batch 32, 20 epochs on the 8,000 training images, validated on the 1,000
validation images (≈ 15 s an epoch on two quiet CPU cores, many times that when they are shared);
the model of the epoch with the lowest validation loss is kept and saved as soon as it is reached.

    PYTHONPATH=$PWD nice -n 19 python -m examples.cdi.model        # 20 epochs, data/*.h5
    PYTHONPATH=$PWD nice -n 19 python -m examples.cdi.model --epochs 1 --data DIR --out DIR

writes ``trained/cdi_structure.json`` (architecture), ``cdi_structure.weights.h5`` (weights),
``cdi_structure.keras`` (the whole model) and ``history.json``. The trained files are not
committed (``.gitignore``): this script makes them from the simulated data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

# Keras picks its backend when first imported: PyTorch, as on the hub (no TensorFlow).
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras

__all__ = [
    "ARCH",
    "KERAS",
    "NAME",
    "WEIGHTS",
    "build",
    "load",
    "predict",
    "prepare",
    "save",
    "train",
    "weights",
]

NAME = "cdi_structure"
ARCH = f"{NAME}.json"
WEIGHTS = f"{NAME}.weights.h5"
KERAS = f"{NAME}.keras"
HERE = Path(__file__).resolve().parent
# Filters of the encoder's three blocks (the decoders use them in reverse).
WIDTHS = (8, 16, 32)
# Inside, the network is channels first: on the torch backend a channels-last convolution
# transposes its input and output on every call (a quarter of the predict time).
_FORMAT = "channels_first"


def prepare(intensity: np.ndarray) -> np.ndarray:
    """Photon counts (N, 32, 32) or (32, 32) → network input (N, 32, 32, 1) in [0, 1]."""
    x = np.asarray(intensity, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    x = np.log1p(np.clip(x, 0, None))
    peak = x.reshape(len(x), -1).max(axis=1).reshape(-1, 1, 1)
    return (x / np.maximum(peak, 1e-12))[..., None].astype(np.float32)


def _conv(x: Any, filters: int, folded: bool = False) -> Any:
    # Batch normalisation before the ReLU: without it the network settled on the mean image
    # (validation loss unchanged after two epochs) — most output pixels are empty background.
    # `folded`: the network for inference, the normalisation folded into the convolution's
    # weights and bias and the ReLU fused into it (`fold_batch_norm`).
    if folded:
        return keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", data_format=_FORMAT
        )(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, data_format=_FORMAT)(x)
    x = keras.layers.BatchNormalization(axis=1, momentum=0.9)(x)
    return keras.layers.Activation("relu")(x)


def _decoder(code: Any, name: str, activation: str, folded: bool = False) -> Any:
    x = code
    for filters in reversed(WIDTHS):
        x = _conv(x, filters, folded)
        x = keras.layers.UpSampling2D(2, data_format=_FORMAT)(x)
    x = _conv(x, WIDTHS[0], folded)
    x = keras.layers.Conv2D(1, 3, padding="same", activation=activation, data_format=_FORMAT)(x)
    x = keras.layers.Permute((2, 3, 1))(x)  # back to (32, 32, 1)
    if activation == "tanh":
        x = keras.layers.Rescaling(math.pi, name=name)(x)
    else:
        x = keras.layers.Identity(name=name)(x)
    return x


def build(seed: int = 0, *, folded: bool = False) -> keras.Model:
    """The untrained encoder–decoder (outputs: amplitude, phase); `folded`: its inference form
    (no batch normalisation layers; see `fold_batch_norm`)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(32, 32, 1), name="intensity")
    x = keras.layers.Permute((3, 1, 2))(inputs)  # (1, 32, 32): channels first inside
    for filters in WIDTHS:
        x = _conv(x, filters, folded)
        x = _conv(x, filters, folded)
        x = keras.layers.MaxPooling2D(2, data_format=_FORMAT)(x)
    amplitude = _decoder(x, "amplitude", "sigmoid", folded)
    phase = _decoder(x, "phase", "tanh", folded)
    model = keras.Model(inputs, [amplitude, phase], name=NAME)
    if not folded:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=["mse", "mse"])
    return model


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """The same network for inference: each batch normalisation folded into the convolution
    before it (kernel × γ/√(σ² + ε), bias β − μ·γ/√(σ² + ε)) and the ReLU fused into that
    convolution. Answers equal the trained model's to float32 rounding (~10⁻⁶) at ~30 % less
    time: Keras on torch runs a normalisation as several passes over the activations. A model
    without batch normalisation layers is returned as it is."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return model
    folded = build(folded=True)
    trained = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    target = [layer for layer in folded.layers if isinstance(layer, keras.layers.Conv2D)]
    pending = iter(norms)
    for source, into in zip(trained, target, strict=True):
        if source.use_bias:  # the last convolution of a decoder: no normalisation after it
            into.set_weights(source.get_weights())
            continue
        norm = next(pending)
        gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in norm.get_weights())
        scale = gamma / np.sqrt(variance + norm.epsilon)
        kernel = np.asarray(source.get_weights()[0], np.float64) * scale  # (kh, kw, in, out)
        into.set_weights([kernel.astype(np.float32), (beta - mean * scale).astype(np.float32)])
    return folded


class _SaveBest(keras.callbacks.Callback):
    """Save the model whenever the validation loss improves, so a run cut short keeps its best."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.best = math.inf
        self.epochs: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.epochs.append(logs)
        if logs.get("val_loss", math.inf) < self.best:
            self.best = logs["val_loss"]
            save(self.model, self.folder)
            summary = {"best_epoch": epoch + 1, "epochs_done": epoch + 1, "log": self.epochs}
            (self.folder / "history.json").write_text(json.dumps(summary, indent=1))


def train(
    train_set: dict[str, np.ndarray],
    validation_set: dict[str, np.ndarray],
    *,
    folder: Path | None = None,
    epochs: int = 20,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int = 2,
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit on a set (``intensity``, ``amplitude``, ``phase`` arrays); returns model and history.

    With `folder`, the model is saved there after every epoch that improves the validation loss.
    """
    model = build(seed)

    def xy(s: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        return prepare(s["intensity"]), [
            np.asarray(s["amplitude"], np.float32)[..., None],
            np.asarray(s["phase"], np.float32)[..., None],
        ]

    x, y = xy(train_set)
    vx, vy = xy(validation_set)
    best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=epochs, restore_best_weights=True
    )
    start = time.perf_counter()
    fitted = model.fit(
        x,
        y,
        validation_data=(vx, vy),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[best] + ([_SaveBest(folder)] if folder is not None else []),
        verbose=verbose,
    )
    history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
    history["seconds"] = time.perf_counter() - start
    history["epochs"] = epochs
    history["n_train"] = len(x)
    history["n_validation"] = len(vx)
    history["best_epoch"] = int(np.argmin(history["val_loss"])) + 1
    history["parameters"] = int(model.count_params())
    return model, history


def weights(model: keras.Model) -> list[np.ndarray]:
    """The model's weights as numpy arrays (``get_weights`` warns under numpy 2 on torch)."""
    return [v.value.detach().cpu().numpy() for v in model.weights]


def save(model: keras.Model, folder: Path) -> list[Path]:
    """Architecture JSON + weights HDF5 (DLHub's classic form) and the `.keras` archive, of the
    model's inference form (`fold_batch_norm`): what the hub serves."""
    folder.mkdir(parents=True, exist_ok=True)
    model = fold_batch_norm(model)
    # A fresh, uncompiled copy: the files hold the layers' weights only, no optimizer state
    # (which would triple their size) and no loss to deserialize.
    config = json.loads(model.to_json())
    config.pop("compile_config", None)
    clean = keras.models.model_from_json(json.dumps(config))
    for target, source in zip(clean.weights, model.weights, strict=True):
        target.assign(source.value)
    (folder / ARCH).write_text(clean.to_json())
    clean.save_weights(folder / WEIGHTS)
    clean.save(folder / KERAS)
    return [folder / ARCH, folder / WEIGHTS, folder / KERAS]


def load(folder: Path, *, form: str = "json") -> keras.Model:
    """Load the trained model: ``json`` (architecture + weights) or ``keras`` (the archive)."""
    if form == "keras":
        return keras.models.load_model(folder / KERAS, compile=False)
    model = keras.models.model_from_json((folder / ARCH).read_text())
    model.load_weights(folder / WEIGHTS)
    return model


def predict(
    model: keras.Model, intensity: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase (N, 32, 32) from counts (N, 32, 32)."""
    amplitude, phase = model.predict(prepare(intensity), batch_size=batch_size, verbose=0)
    return amplitude[..., 0], phase[..., 0]


def main(argv: list[str] | None = None) -> int:
    """Train on data/train.h5 with data/validation.h5, save to trained/."""
    from examples.cdi import simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=simulate.DATA_DIR)
    parser.add_argument("--out", type=Path, default=HERE / "trained")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-train", type=int, default=8000, help="first N training images")
    parser.add_argument("--n-validation", type=int, default=1000, help="first N validation images")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    keys = ("intensity", "amplitude", "phase")
    loaded = simulate.load(args.data / "train.h5")
    train_set = {k: loaded[k][: args.n_train] for k in keys}
    loaded = simulate.load(args.data / "validation.h5")
    validation_set = {k: loaded[k][: args.n_validation] for k in keys}
    model, history = train(
        train_set,
        validation_set,
        folder=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )
    paths = save(model, args.out)
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    print(
        f"trained {history['parameters']} parameters on {history['n_train']} images, "
        f"{args.epochs} epochs in {history['seconds']:.0f} s; best epoch {history['best_epoch']} "
        f"val_loss {min(history['val_loss']):.4f}"
    )
    for p in paths:
        print(f"  {p}  {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

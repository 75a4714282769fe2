"""Publish a Keras model to a MatterHub and run it — Keras 3 on PyTorch, no TensorFlow anywhere.

    python examples/keras_servable.py --url http://localhost:8000 --token <your token>

(or set MATTERHUB_URL and MATTERHUB_TOKEN). It trains nothing: it builds a small Keras model
that maps three composition fractions to two properties, saves it the classic way — the
architecture as JSON plus the weights as HDF5, as DLHub's Keras servables were — describes it
(shapes and dtypes come from the model), publishes it, waits until the hub has built and checked
it, runs it on new inputs and prints the hub's answers next to Keras's own.

Needs `pip install 'matterhub[ml]' torch` on this machine; the hub builds the servable's own
environment (keras, h5py, torch, numpy) itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Keras picks its backend when first imported: PyTorch here, as on the hub.
os.environ.setdefault("KERAS_BACKEND", "torch")


def build_model(folder: Path) -> tuple[Any, Path, Path]:
    """A tiny Keras model saved as architecture JSON + weights (returns model, arch, weights)."""
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input(shape=(3,), name="fractions")
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    outputs = keras.layers.Dense(2, name="properties")(hidden)
    model = keras.Model(inputs, outputs, name="composition_properties")
    arch = folder / "composition_properties.json"
    arch.write_text(model.to_json())
    weights = folder / "composition_properties.weights.h5"
    model.save_weights(weights)
    return model, arch, weights


def main(argv: list[str] | None = None) -> int:
    """Build, publish, wait, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL"), help="the hub's URL")
    parser.add_argument("--token", default=os.environ.get("MATTERHUB_TOKEN"), help="API token")
    parser.add_argument("--name", default="composition-properties", help="servable name")
    parser.add_argument("--timeout", type=float, default=1800.0, help="build wait, seconds")
    args = parser.parse_args(argv)
    if not args.url or not args.token:
        parser.error("give --url and --token (or MATTERHUB_URL and MATTERHUB_TOKEN)")

    import numpy as np

    from matterhub.client import Client
    from matterhub.client.describe import describe_keras

    client = Client(args.url, args.token)
    with tempfile.TemporaryDirectory() as tmp:
        model, arch, weights = build_model(Path(tmp))
        description = describe_keras(weights, args.name, arch=arch)
        run = description.run_method
        print(f"input  {run['input']['shape']} {run['input']['item_type']['type']}")
        print(f"output {run['output']['shape']} {run['output']['item_type']['type']}")
        sample = [[0.5, 0.25, 0.25]]
        expected = model.predict(np.asarray(sample, dtype="float32"), verbose=0)
        description.set_title("Composition → properties (Keras)").set_creators(["Doe, Jane"])
        description.set_example(sample, expected.tolist(), tolerance=1e-5)
        start = time.perf_counter()
        build = client.publish_servable(description, wait=True, timeout=args.timeout)
    print(f"build {build['id']}: {build['status']} in {time.perf_counter() - start:.1f} s")
    if build["status"] != "succeeded":
        print(build["log"], file=sys.stderr)
        return 1

    servable = f"{build['servable']}"
    inputs = [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]]
    answers = np.asarray(client.run(servable, inputs))
    local = model.predict(np.asarray(inputs, dtype="float32"), verbose=0)
    print(f"{servable} ran on {len(inputs)} inputs:")
    for x, hub, own in zip(inputs, answers, local, strict=True):
        print(f"  {x} -> hub {np.round(hub, 5).tolist()}  keras {np.round(own, 5).tolist()}")
    worst = float(np.abs(answers - local).max())
    print(f"largest difference from Keras's own predict: {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

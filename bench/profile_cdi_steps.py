"""Where a CNN image's time goes on the hub's path, step by step, in this process.

    nice -n 19 .venv/bin/python bench/profile_cdi_steps.py [--images 100]

For `--images` prepared test-set inputs of examples/cdi (one (1, 32, 32, 1) array each, as the
throughput benchmark sends them one per task) and the untrained network (`model.build(0)`, one
torch thread), times (best of 3, ms per image) each step a folded hub batch makes, in order:
the host writes the worker frame (orjson), the worker reads it (stdlib json), stacks the inputs,
runs the model, turns the outputs into lists (`shim.jsonable`) and writes its reply (stdlib json),
the host reads it (orjson) and stores each output (orjson), the client reads the results
(stdlib json) — the JSON path; then the same steps on the binary path the hub takes now
(hub/runtime/frames.py, worker.py, hub/arrays.py, msgpack answers). Two JSON steps are timed
again with the cyclic garbage collector off, as the warm worker runs a frame. Prints a table
and the bytes per image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "torch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    n = parser.parse_args().images
    import numpy as np
    import orjson
    import torch
    from examples.cdi import model as cnn
    from examples.cdi import simulate as sim

    from matterhub.hub import shim

    torch.set_num_threads(1)
    x = cnn.prepare(np.stack([im.intensity for im in sim.simulate_set(3, n)]))
    model = cnn.fold_batch_norm(cnn.build(0))  # as saved and served
    one = [x[i : i + 1].tolist() for i in range(n)]
    rows: list[tuple[str, float]] = []

    def step(label: str, function: Any) -> Any:
        best, out = float("inf"), None
        for _ in range(3):
            start = time.perf_counter()
            out = function()
            best = min(best, time.perf_counter() - start)
        rows.append((label, 1000 * best / n))
        return out

    frame = step(
        "host: frame to JSON (orjson)",
        lambda: orjson.dumps({"calls": [{"inputs": o} for o in one]}),
    )
    request = step("worker: frame from JSON (stdlib json)", lambda: json.loads(frame))
    stacked = step("worker: inputs to one array", lambda: np.concatenate(
        [np.asarray(c["inputs"], dtype=np.float32) for c in request["calls"]]))  # fmt: skip
    out = step("worker: model.predict_on_batch", lambda: model.predict_on_batch(stacked))
    cuts = np.arange(1, n)
    parts = [list(p) for p in zip(np.split(out[0], cuts), np.split(out[1], cuts), strict=True)]
    plain = step("worker: outputs to lists (shim.jsonable)", lambda: shim.jsonable(parts))
    import gc

    gc.disable()
    step("worker: outputs to lists, gc off", lambda: shim.jsonable(parts))
    step("worker: frame from JSON, gc off", lambda: json.loads(frame))
    gc.enable()
    reply = step("worker: reply to JSON (stdlib json)", lambda: json.dumps(
        {"results": [{"ok": True, "output": o} for o in plain]}, separators=(",", ":")))  # fmt: skip
    step("host: reply from JSON (orjson)", lambda: orjson.loads(reply))
    step(
        "host: each output to JSON for its record (orjson)",
        lambda: [orjson.dumps(o) for o in plain],
    )
    step("client: results from JSON (stdlib json)", lambda: json.loads(reply))

    # The binary path (what the hub does now): arrays as bytes in frames, records and answers.
    import msgpack

    from matterhub.client.run_bodies import decode as client_decode
    from matterhub.hub import arrays
    from matterhub.hub.runtime import frames, worker

    binary_in = [x[i : i + 1] for i in range(n)]
    bframe = step(
        "binary: host frame (frames.encode)",
        lambda: frames.encode({"calls": [{"inputs": a} for a in binary_in]}),
    )
    got = step("binary: worker reads it (worker.decode)",
               lambda: worker.decode(bytearray(bframe[4:]), True))  # fmt: skip
    step("binary: worker stacks the inputs",
         lambda: np.concatenate([c["inputs"] for c in got["calls"]]))  # fmt: skip
    outs = [list(p) for p in zip(np.split(out[0], cuts), np.split(out[1], cuts), strict=True)]
    breply = step(
        "binary: worker reply (worker.encode)",
        lambda: b"".join(bytes(p) for p in worker.encode(
            {"results": [{"ok": True, "output": o} for o in outs]}, shim.jsonable)),
    )  # fmt: skip
    back = step("binary: host reads it (frames.decode)", lambda: frames.decode(breply[4:]))
    kept = step(
        "binary: outputs to run records (arrays.stored + orjson)",
        lambda: [orjson.dumps(arrays.stored(r["output"])) for r in back["results"]],
    )
    loaded = step(
        "binary: records read back (orjson + arrays.loaded)",
        lambda: [arrays.loaded(orjson.loads(k)) for k in kept],
    )
    from matterhub.api.routes.run_bodies import _pack_default

    packed = step(
        "binary: batch status as msgpack (the route)",
        lambda: msgpack.packb({"tasks": loaded}, default=_pack_default, use_bin_type=True),
    )
    step("binary: client reads it (client decode)",
         lambda: client_decode("application/msgpack", packed))  # fmt: skip

    # Ways to call the network in-process: what the Keras shim does (predict_on_batch) and the
    # alternatives, one image and all of them.
    def inference(batch: Any) -> Any:
        with torch.inference_mode():
            return [o.numpy() for o in model(torch.as_tensor(batch), training=False)]

    calls = [
        (
            "model.predict(x, batch_size=1024)",
            lambda b: model.predict(b, verbose=0, batch_size=1024),
        ),
        ("model.predict_on_batch(x) (the shim)", model.predict_on_batch),
        ("model(x) under torch.inference_mode()", inference),
    ]
    for label, call in calls:
        step(
            f"in-process, 1 image a call: {label}",
            lambda c=call: [c(x[i : i + 1]) for i in range(min(n, 20))],
        )
        rows[-1] = (rows[-1][0], rows[-1][1] * n / min(n, 20))
        step(f"in-process, {n} images in one call: {label}", lambda c=call: c(x))
    print(f"\n{n} images; best of 3; one torch thread\n")
    print("| step | ms per image |")
    print("|---|---|")
    for label, ms in rows:
        print(f"| {label} | {ms:.3f} |")
    print(f"\nreply: {len(reply) / n / 1000:.1f} kB of JSON per image (input: "
          f"{len(frame) / n / 1000:.1f} kB); binary frames: {len(breply) / n / 1000:.1f} kB "
          f"(input: {len(bframe) / n / 1000:.1f} kB)")  # fmt: skip


if __name__ == "__main__":
    main()
